"""RestoreCells: a submission's cells and metadata rebuilt from the gradebook.

It replaces nbgrader's OverwriteCells when sanitising a submission. The notebook's metadata
is made anew (the course's kernelspec and language; the grader's notes, notes.py, start
empty, so only the grader writes them). Every cell is matched to the gradebook's cells
(matching.py), so a notebook whose cells lost their nbgrader metadata is still graded as
the learner wrote it. Matched cells get their nbgrader metadata from the gradebook, locked
cells their source too; every other cell metadata key and every cell tag not in
:data:`~.cells.GRADING_TAGS` is dropped; cells that are missing are put back where they
belong (nbgrader 0.9's own ``add_missing_cells`` puts back grade cells only, and fails
when the cell before a missing one is a locked cell).
"""

from __future__ import annotations

import json

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_raw_cell
from nbgrader.api import Gradebook
from nbgrader.preprocessors import OverwriteCells
from traitlets import Bool

from .. import notes
from .cells import DEFAULT_KERNELSPEC, GRADING_TAGS, RESTORED_NOTE, remove_hidden_tests
from .matching import SourceCell, claim, gradebook_cells, match_cells

#: Attachment types a locked markdown cell keeps (only images the gradebook's text shows).
_ATTACHMENT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})
#: More restored cells than this get one note, not one each (a notebook that is mostly
#: not this assignment's).
_NOTES_PER_CELL = 8
#: How a cell matched otherwise than by its grade_id is described in the notes.
_HOW = {
    "content": ("locked cell", "matched by content"),
    "similar": ("locked cell", "matched by similar content and restored"),
    "position": ("answer cell", "matched by position"),
}


def _num(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _nbgrader_metadata(sc: SourceCell, task: bool) -> dict:
    """A cell's nbgrader metadata as the gradebook has it (nbgrader's schema 3)."""
    meta = {
        "grade": sc.grade,
        "grade_id": sc.name,
        "locked": sc.locked,
        "schema_version": 3,
        "solution": sc.solution,
        "task": task,
    }
    if sc.grade:
        meta["points"] = float(sc.points)
    return meta


def _restored_cell(sc: SourceCell, nbformat_minor: int) -> NotebookNode:
    """A cell missing from the submission, as the gradebook has it (locked ones noted)."""
    meta = {**_nbgrader_metadata(sc, task=False), "checksum": sc.checksum}
    metadata = {"nbgrader": meta}
    if sc.locked:
        metadata.update(editable=False, deletable=False)
    elif sc.solution or sc.grade:
        metadata.update(deletable=False)
    source = sc.source
    if sc.locked and sc.cell_type == "code":
        source = f"# {RESTORED_NOTE}\n{source}"
    elif sc.locked and sc.cell_type == "markdown":
        source = f"*{RESTORED_NOTE}*\n\n{source}"
    make = {"code": new_code_cell, "markdown": new_markdown_cell}.get(sc.cell_type, new_raw_cell)
    cell = make(source=source, metadata=metadata)
    if nbformat_minor < 5:
        cell.pop("id", None)
    return cell


def _insert_at(order: list[SourceCell], k: int, pos: dict[str, int], end: int) -> int:
    """Where source cell ``order[k]`` goes: after the nearest earlier cell the notebook has,
    else before the nearest later one, else at the end."""
    after = next((pos[o.name] for o in reversed(order[:k]) if o.name in pos), None)
    if after is not None:
        return after + 1
    return next((pos[o.name] for o in order[k + 1 :] if o.name in pos), end)


def _kept_tags(meta: dict) -> tuple[list[str], list[str]]:
    """(the cell's tags grading keeps, those it drops)."""
    tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
    kept = [t for t in tags if isinstance(t, str) and t in GRADING_TAGS]
    return kept, [str(t) for t in tags if t not in kept]


class RestoreCells(OverwriteCells):
    """OverwriteCells that trusts only the gradebook, and restores every missing cell."""

    add_missing_cells = Bool(True, help="Put back cells missing from the submission.").tag(
        config=True
    )
    match_by_content = Bool(
        True,
        help="Recognise cells whose nbgrader metadata is missing "
        "or wrong by their content and place (see match_cells).",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        # OverwriteCells.preprocess, with the notebook's metadata made anew and the cells
        # matched to the gradebook's before each is restored
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.db_url = resources["nbgrader"]["db_url"]
        self.gradebook = Gradebook(self.db_url)
        self._notes: list[str] = []
        self._repaired: set[str] = set()
        with self.gradebook:
            self._source = gradebook_cells(self.gradebook, self.notebook_id, self.assignment_id)
            self._by_name = {sc.name: sc for sc in self._source}
            self._new_notebook_metadata(nb)
            self._match(nb)
            nb, resources = super(OverwriteCells, self).preprocess(nb, resources)
            if self.add_missing_cells:
                nb, resources = self.add_missing_grade_cells(nb, resources)
                nb, resources = self.add_missing_task_cells(nb, resources)
        if self._notes:
            notes.add_repairs(nb, self._notes)
        return nb, resources

    def _new_notebook_metadata(self, nb) -> None:
        """The notebook's metadata made from the gradebook: the learner's is dropped whole."""
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        kernelspec = DEFAULT_KERNELSPEC
        if source_nb.kernelspec:
            try:
                loaded = json.loads(source_nb.kernelspec)
                if isinstance(loaded, dict) and isinstance(loaded.get("name"), str):
                    kernelspec = loaded
            except ValueError:
                pass
        if notes.KEY in nb.metadata:
            self._notes.append(
                f"the notebook's metadata held the grader's own entry ({notes.KEY!r}); ignored"
            )
        nb.metadata = NotebookNode(
            {
                "kernelspec": NotebookNode(dict(kernelspec)),
                "language_info": NotebookNode({"name": kernelspec.get("language", "python")}),
            }
        )

    def _found(self, nb) -> dict[int, tuple[str, str]]:
        """Which gradebook cell each cell is (see match_cells)."""
        if self.match_by_content:
            return match_cells(nb.cells, self._source)
        found: dict[int, tuple[str, str]] = {}  # by grade_id only: the first claim wins
        for i, gid in enumerate(claim(x) for x in nb.cells):
            if gid in self._by_name and gid not in {n for n, _ in found.values()}:
                found[i] = (gid, "id")
        return found

    def _match(self, nb) -> None:
        """Decide which gradebook cell each cell is; keep only the metadata grading reads.

        Of a cell's metadata only ``nbgrader`` is read, and that only as a hint of which
        gradebook cell it is (everything in it is then rebuilt from the gradebook). The
        grader writes ``editable``/``deletable`` (locked and answer cells, as nbgrader's
        release does) and, while running, nbclient's ``execution`` timings; nothing else.
        """
        found = self._found(nb)
        counts = dict.fromkeys(_HOW, 0)
        wrong = False
        tags_dropped: list[str] = []
        for i, cell in enumerate(nb.cells):
            gid = claim(cell)
            meta = cell.get("metadata") or {}
            kept_tags, dropped = _kept_tags(meta)
            tags_dropped += dropped
            new = NotebookNode({"tags": kept_tags} if kept_tags else {})
            if i in found:
                name, how = found[i]
                hint = dict(meta["nbgrader"]) if gid == name else {}
                new["nbgrader"] = NotebookNode({**hint, "grade_id": name})
                if how in counts:
                    counts[how] += 1
                    wrong = wrong or gid is not None
                    self._repaired.add(name)
            elif gid is not None:
                self._notes.append(
                    f"{gid}: "
                    + (
                        "claimed by a cell that is not that cell"
                        if gid in self._by_name
                        else "not a cell of this assignment"
                    )
                    + "; its nbgrader metadata was removed"
                )
            cell.metadata = new
        self._note_matches(sorted(set(tags_dropped)), counts, wrong)

    def _note_matches(self, tags_dropped: list[str], counts: dict[str, int], wrong: bool) -> None:
        if tags_dropped:
            shown = ", ".join(tags_dropped[:5]) + (", ..." if len(tags_dropped) > 5 else "")
            self._notes.append(f"cell tags removed ({shown}): tags do not change grading")
        parts = [
            f"{n} {what}{'' if n == 1 else 's'} {how}"
            for (what, how), n in ((_HOW[k], counts[k]) for k in _HOW)
            if n
        ]
        if parts:
            self._notes.append(
                ("cell metadata was missing or wrong: " if wrong else "cell metadata was missing: ")
                + ", ".join(parts)
            )

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            return cell, resources
        grade_id = meta.get("grade_id")
        repaired = grade_id in self._repaired
        sc = self._by_name[grade_id]
        fresh = _nbgrader_metadata(sc, task=sc.task)
        changed = [
            k
            for k in ("grade", "solution", "locked", "points")
            if k in fresh
            and meta.get(k) != fresh[k]
            and not (k == "points" and _num(meta.get(k)) == fresh[k])
        ]
        if changed and not repaired:
            self._notes.append(
                f"{grade_id}: nbgrader metadata edited ({', '.join(changed)}); restored"
            )
        cell.metadata["nbgrader"] = NotebookNode(fresh)
        if sc.locked:
            self._lock(cell, sc, repaired)
        elif sc.solution or sc.grade:
            cell.metadata["deletable"] = False
        return super().preprocess_cell(cell, resources, cell_index)

    def _lock(self, cell, sc: SourceCell, repaired: bool) -> None:
        """A locked cell as released (its source is restored by OverwriteCells)."""
        cell.metadata["editable"] = False
        cell.metadata["deletable"] = False
        if "attachments" in cell:  # only images the gradebook's text shows
            cell["attachments"] = {
                name: {m: v for m, v in bundle.items() if m in _ATTACHMENT_TYPES}
                for name, bundle in (cell.get("attachments") or {}).items()
                if isinstance(bundle, dict) and f"attachment:{name}" in sc.source
            }
        visible = remove_hidden_tests(sc.source)
        if not repaired and (
            cell.cell_type != sc.cell_type
            or (cell.source.rstrip() not in (visible.rstrip(), sc.source.rstrip()))
        ):
            self._notes.append(f"{sc.name}: locked cell edited; restored")

    def add_missing_grade_cells(self, nb, resources):
        """Every non-task cell of the source that the notebook lacks, put back in place."""
        restored = []
        for k, sc in enumerate(self._source):
            pos = {
                c.metadata["nbgrader"]["grade_id"]: i
                for i, c in enumerate(nb.cells)
                if c.metadata.get("nbgrader", {}).get("grade_id")
            }
            if sc.task or sc.name in pos:
                continue
            index = _insert_at(self._source, k, pos, len(nb.cells))
            nb.cells.insert(index, _restored_cell(sc, nb.get("nbformat_minor", 5)))
            restored.append(sc.name)
        if len(restored) > _NOTES_PER_CELL:
            self._notes.append(
                f"{', '.join(restored[:5])} and {len(restored) - 5} more cells: "
                "missing from the submission; restored"
            )
        else:
            self._notes += [f"{name}: missing from the submission; restored" for name in restored]
        return nb, resources
