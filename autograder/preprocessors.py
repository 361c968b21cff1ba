"""nbgrader preprocessors of the course, used through nbgrader_config.py.

Nothing in a submission's metadata is trusted: what a cell is, and what the notebook is,
comes from the gradebook.

RestoreCells       replaces OverwriteCells when sanitising a submission. The notebook's
                   metadata is made anew (the course's kernelspec and language; the
                   autograder's own entry starts empty, so only the grader writes it). Every
                   cell is matched to the gradebook's cells: by its ``grade_id`` when that
                   fits, else by content and order (:func:`match_cells`), so a notebook whose
                   cells lost their nbgrader metadata is still graded as the learner wrote
                   it. Matched cells get their nbgrader metadata from the gradebook, locked
                   cells their source too; every other cell metadata key and every cell tag
                   not in :data:`GRADING_TAGS` is dropped; cells that are missing are put
                   back where they belong (nbgrader 0.9's own ``add_missing_cells`` puts back
                   grade cells only, and fails when the cell before a missing one is a
                   locked cell).
GradeOutputs       after execution: an error anywhere in a test cell's output makes the cell
                   score zero (nbgrader looks only at the first error, stderr or result, so a
                   result published before the error by the learner's code could win).
HideHiddenTests    in feedback: test cells show their visible part only, and tracebacks lose
                   the frames that quote the test cell, so hidden tests never reach learners
                   (nbgrader issue #917); the error message itself, which names the mistake,
                   stays.
SanitizeLearnerContent
                   in feedback and formgrader: every output, and every markdown or raw cell
                   the learner wrote, is shown as sanitised HTML or escaped text (bleach, the
                   sanitiser nbconvert itself uses), so no script of the learner's runs in the
                   browser of whoever opens the page.
"""
from __future__ import annotations

import ast
import difflib
import html
import json
import re

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_raw_cell
from traitlets import Bool, Unicode

from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells

RESTORED_NOTE = "This cell was missing from the submission; the autograder put it back."
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

#: Cell tags kept from a submission. nbclient and nbconvert act on tags: "skip-execution"
#: (the cell is not run), "raises-exception" (its error is expected), "remove_cell" and
#: friends (TagRemovePreprocessor), papermill's "parameters". Grading this course needs
#: none of them, so none is kept.
GRADING_TAGS: frozenset[str] = frozenset()
#: Cell metadata read from a submission: ``nbgrader``, and that only as a hint of which
#: gradebook cell a cell is (everything in it is then rebuilt from the gradebook). The
#: grader writes ``editable``/``deletable`` (locked and answer cells, as nbgrader's
#: release does) and, while running, nbclient's ``execution`` timings; nothing else.
CELL_METADATA_READ: frozenset[str] = frozenset({"nbgrader"})
_ATTACHMENT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})
#: The kernel when the gradebook records none (generate_assignment always records one).
DEFAULT_KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
#: How alike (difflib ratio of the normalised text) a cell must be to a locked cell of the
#: same type, where the notebook's order puts it, to be taken for it.
SIMILAR = 0.8
_RATIO_CHARS = 5_000
#: Largest gap (its cells times the source's cells) compared cell by cell; past it (only a
#: notebook of thousands of cells gets there) the gap's cells stay the learner's own.
_GAP_PAIRS = 40_000


def remove_hidden_tests(source: str, begin: str = "BEGIN HIDDEN TESTS",
                        end: str = "END HIDDEN TESTS") -> str:
    """The visible part of a test cell: hidden regions removed (an unclosed one to the end)."""
    out, hidden = [], False
    for line in source.split("\n"):
        if begin in line:
            hidden = True
        elif end in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out).rstrip("\n")


def _events(nb) -> list:
    return nb.metadata.setdefault("autograder", {}).setdefault("cells", [])


# --- matching a submission's cells to the gradebook's ----------------------------------------

def normalise(source: str) -> str:
    """A cell's text for comparison: whitespace runs as one space, restore notes dropped."""
    lines = [line for line in str(source).split("\n")
             if RESTORED_NOTE not in line and "was missing from the submission" not in line]
    return " ".join(" ".join(lines).split())


def _bound(source: str) -> set[str]:
    """Top-level names a code cell defines (classes, functions, assignments)."""
    if len(source) > 50_000:  # no answer is that long; parsing it would only cost time
        return set()
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def _ratio(a: str, b: str) -> float:
    a, b = a[:_RATIO_CHARS], b[:_RATIO_CHARS]  # enough to tell; bounds the work
    m = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if m.real_quick_ratio() < SIMILAR:
        return m.real_quick_ratio()
    quick = m.quick_ratio()  # an upper bound of ratio(), and a cheap one
    return quick if quick < SIMILAR else m.ratio()


class SourceCell:
    """What the gradebook knows of one cell of the source notebook."""

    def __init__(self, name: str, cell_type: str, source: str, locked: bool, solution: bool,
                 grade: bool, points: float | None, checksum: str | None, task: bool = False):
        self.name, self.cell_type, self.source = name, cell_type, source or ""
        self.locked, self.solution, self.grade, self.task = locked, solution, grade, task
        self.points, self.checksum = points, checksum
        self.text = normalise(remove_hidden_tests(self.source) if grade and not solution
                              else self.source)
        self.names = _bound(self.source) if cell_type == "code" and solution else set()

    def key(self):
        return ("answer", self.name) if self.solution else (self.cell_type, self.text)


def gradebook_cells(gradebook, notebook_id: str, assignment_id: str) -> list[SourceCell]:
    """The source notebook's cells in order, as the gradebook holds them."""
    source_nb = gradebook.find_notebook(notebook_id, assignment_id)
    grades = {c.name: c for c in source_nb.grade_cells}
    solutions = {c.name for c in source_nb.solution_cells}
    tasks = {c.name for c in source_nb.task_cells}
    return [SourceCell(c.name, c.cell_type, c.source, bool(c.locked), c.name in solutions,
                       c.name in grades,
                       float(grades[c.name].max_score) if c.name in grades else None,
                       c.checksum, c.name in tasks)
            for c in source_nb.source_cells]


def _claim(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) and gid else None


def match_cells(cells: list, source: list[SourceCell]) -> dict[int, tuple[str, str]]:
    """Which gradebook cell each submission cell is: ``{index: (grade_id, how)}``.

    ``how`` is ``"id"`` (its grade_id fits: an answer cell by its id, a locked cell whose
    text is the gradebook's, or one whose grade_id is the only claim on that cell),
    ``"content"`` (no or another grade_id, but the text of that locked cell where the
    order puts it), ``"similar"`` (alike, at least :data:`SIMILAR`, where the order puts
    it) or ``"position"`` (a code cell where the source has an answer cell, between the
    cells matched around it). Cells not in the result are the learner's own.

    1. A sequence alignment (``difflib.SequenceMatcher``) of the cells' keys, the
       normalised text of locked cells and the grade_id of answer cells, fixes the cells
       that are exactly where the source has them.
    2. In each gap between those, an order-keeping assignment that maximises likeness
       pairs the rest: edited or retyped locked cells, and answer cells (by position; the
       code cell most like the stub when there are several). A gap bounded by no matched
       cell at all (nothing of the notebook matches the source) takes an answer cell
       only if it defines a name the stub defines.
    3. What is left keeps its grade_id if that names a cell nothing else took.
    """
    by_name = {s.name: k for k, s in enumerate(source)}
    claims = [_claim(cell) for cell in cells]
    texts = [normalise(cell.get("source", "")) for cell in cells]
    names: dict[int, set[str]] = {}

    def key(i: int):
        cell, claim = cells[i], claims[i]
        if claim in by_name and source[by_name[claim]].solution:
            return ("answer", claim)
        if not texts[i]:
            return ("empty", i)  # an empty cell is nobody
        return (cell.get("cell_type"), texts[i])

    sub_keys = [key(i) for i in range(len(cells))]
    sm = difflib.SequenceMatcher(None, sub_keys, [s.key() for s in source], autojunk=False)
    pairs = [(a + k, b + k) for a, b, n in sm.get_matching_blocks() for k in range(n)]
    result: dict[int, tuple[str, str]] = {}
    for i, k in pairs:
        result[i] = (source[k].name, "id" if claims[i] == source[k].name else "content")

    def weight(i: int, k: int, bounded: bool) -> float:
        cell, sc = cells[i], source[k]
        if cell.get("cell_type") != sc.cell_type or not texts[i]:
            return 0.0
        if sc.solution:
            if claims[i] == sc.name:
                return 3.0
            if not sc.locked:
                if not bounded:
                    if i not in names:
                        names[i] = _bound(cell.get("source", ""))
                    if not sc.names & names[i]:
                        return 0.0
                return 0.3 + 0.7 * _ratio(texts[i], sc.text)
        like = _ratio(texts[i], sc.text)
        if claims[i] == sc.name:
            return 1.5 + like
        return like if like >= SIMILAR else 0.0

    bounds = [(-1, -1)] + pairs + [(len(cells), len(source))]
    for (a0, b0), (a1, b1) in zip(bounds, bounds[1:]):
        rows, cols = list(range(a0 + 1, a1)), list(range(b0 + 1, b1))
        if not rows or not cols or len(rows) * len(cols) > _GAP_PAIRS:
            continue
        bounded = (a0, b0) != (-1, -1) or (a1, b1) != (len(cells), len(source))
        w = [[weight(i, k, bounded) for k in cols] for i in rows]
        best = [[0.0] * (len(cols) + 1) for _ in range(len(rows) + 1)]
        for r in range(1, len(rows) + 1):
            for q in range(1, len(cols) + 1):
                take = best[r - 1][q - 1] + w[r - 1][q - 1] if w[r - 1][q - 1] > 0 else -1.0
                best[r][q] = max(best[r - 1][q], best[r][q - 1], take)
        r, q = len(rows), len(cols)
        while r and q:
            if w[r - 1][q - 1] > 0 and best[r][q] == best[r - 1][q - 1] + w[r - 1][q - 1]:
                i, sc = rows[r - 1], source[cols[q - 1]]
                how = ("id" if claims[i] == sc.name else
                       "position" if sc.solution and not sc.locked else
                       "content" if texts[i] == sc.text else "similar")
                result[i] = (sc.name, how)
                r, q = r - 1, q - 1
            elif best[r][q] == best[r - 1][q]:
                r -= 1
            else:
                q -= 1
    # Of two copies of a cell side by side (nothing matched between them), the one that
    # carries the grade_id is that cell (nbgrader's DeduplicateIds leaves it on the last).
    for i, (name, how) in sorted(result.items()):
        if how not in ("content", "similar"):
            continue
        for j in (j for j, claim in enumerate(claims) if claim == name and j not in result):
            lo, hi = min(i, j), max(i, j)
            if texts[j] == texts[i] and not any(lo < m < hi for m in result):
                del result[i]
                result[j] = (name, "id")
                break
    taken = {name for name, _ in result.values()}
    for i, claim in enumerate(claims):
        if i not in result and claim in by_name and claim not in taken:
            result[i] = (claim, "id")
            taken.add(claim)
    return result


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


class RestoreCells(OverwriteCells):
    """OverwriteCells that trusts only the gradebook, and restores every missing cell."""

    add_missing_cells = Bool(True, help="Put back cells missing from the submission.").tag(
        config=True)
    match_by_content = Bool(True, help="Recognise cells whose nbgrader metadata is missing "
                            "or wrong by their content and place (see match_cells).").tag(
        config=True)

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
            self._source = gradebook_cells(self.gradebook, self.notebook_id,
                                           self.assignment_id)
            self._by_name = {sc.name: sc for sc in self._source}
            self._new_notebook_metadata(nb)
            self._match(nb)
            nb, resources = super(OverwriteCells, self).preprocess(nb, resources)
            if self.add_missing_cells:
                nb, resources = self.add_missing_grade_cells(nb, resources)
                nb, resources = self.add_missing_task_cells(nb, resources)
        if self._notes:
            _events(nb).extend(self._notes)
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
        learner = nb.metadata
        if "autograder" in learner:
            self._notes.append("the notebook's metadata held the grader's own entry "
                               "('autograder'); ignored")
        nb.metadata = NotebookNode({
            "kernelspec": NotebookNode(dict(kernelspec)),
            "language_info": NotebookNode({"name": kernelspec.get("language", "python")}),
        })

    def _match(self, nb) -> None:
        """Decide which gradebook cell each cell is; keep only the metadata grading reads."""
        known = {s.name for s in self._source}
        if self.match_by_content:
            found = match_cells(nb.cells, self._source)
        else:  # by grade_id only: the first cell claiming a known id is that cell
            found = {}
            for i, claim in enumerate(_claim(x) for x in nb.cells):
                if claim in known and claim not in {n for n, _ in found.values()}:
                    found[i] = (claim, "id")
        counts = {"content": 0, "similar": 0, "position": 0}
        wrong = 0
        tags_dropped: list[str] = []
        for i, cell in enumerate(nb.cells):
            claim = _claim(cell)
            meta = cell.get("metadata") or {}
            tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
            kept_tags = [t for t in tags if isinstance(t, str) and t in GRADING_TAGS]
            tags_dropped += [str(t) for t in tags if t not in kept_tags]
            new = NotebookNode()
            if kept_tags:
                new["tags"] = kept_tags
            if i in found:
                name, how = found[i]
                hint = dict(meta["nbgrader"]) if claim == name else {}
                hint["grade_id"] = name
                new["nbgrader"] = NotebookNode(hint)
                if how in counts:
                    counts[how] += 1
                    wrong += claim is not None
                    self._repaired.add(name)
            elif claim is not None:
                if claim not in known:
                    self._notes.append(f"{claim}: not a cell of this assignment; its nbgrader "
                                       "metadata was removed")
                else:
                    self._notes.append(f"{claim}: claimed by a cell that is not that cell; "
                                       "its nbgrader metadata was removed")
            cell.metadata = new
        if tags_dropped:
            names = sorted(set(tags_dropped))
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            self._notes.append(f"cell tags removed ({shown}): tags do not change grading")
        if any(counts.values()):
            parts = []
            if counts["content"]:
                parts.append(_plural(counts["content"], "locked cell", "locked cells")
                             + " matched by content")
            if counts["similar"]:
                parts.append(_plural(counts["similar"], "locked cell", "locked cells")
                             + " matched by similar content and restored")
            if counts["position"]:
                parts.append(_plural(counts["position"], "answer cell", "answer cells")
                             + " matched by position")
            self._notes.append(("cell metadata was missing or wrong: " if wrong else
                                "cell metadata was missing: ") + ", ".join(parts))

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            return cell, resources
        grade_id = meta.get("grade_id")
        repaired = grade_id in self._repaired
        sc = self._by_name[grade_id]
        fresh = {"grade": sc.grade, "grade_id": grade_id, "locked": sc.locked,
                 "schema_version": 3, "solution": sc.solution, "task": sc.task}
        if sc.grade:
            fresh["points"] = float(sc.points)
        changed = [k for k in ("grade", "solution", "locked", "points")
                   if k in fresh and meta.get(k) != fresh[k]
                   and not (k == "points" and _num(meta.get(k)) == fresh[k])]
        if changed and not repaired:
            self._notes.append(f"{grade_id}: nbgrader metadata edited ({', '.join(changed)}); "
                               "restored")
        cell.metadata["nbgrader"] = NotebookNode(fresh)
        if sc.locked:
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
            if "attachments" in cell:  # only images the gradebook's text shows
                cell["attachments"] = {
                    name: {m: v for m, v in bundle.items() if m in _ATTACHMENT_TYPES}
                    for name, bundle in (cell.get("attachments") or {}).items()
                    if isinstance(bundle, dict) and f"attachment:{name}" in sc.source}
            visible = remove_hidden_tests(sc.source)
            if not repaired and (cell.cell_type != sc.cell_type or (
                    cell.source.rstrip() not in (visible.rstrip(), sc.source.rstrip()))):
                self._notes.append(f"{grade_id}: locked cell edited; restored")
        elif sc.solution or sc.grade:
            cell.metadata["deletable"] = False
        return super().preprocess_cell(cell, resources, cell_index)

    def add_missing_grade_cells(self, nb, resources):
        order, restored = self._source, []

        def positions():
            return {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells)
                    if c.metadata.get("nbgrader", {}).get("grade_id")}

        for k, sc in enumerate(order):
            if sc.task:
                continue
            pos = positions()
            if sc.name in pos:
                continue
            after = next((pos[o.name] for o in reversed(order[:k]) if o.name in pos), None)
            if after is not None:
                index = after + 1
            else:
                index = next((pos[o.name] for o in order[k + 1:] if o.name in pos), len(nb.cells))
            meta = {"grade": sc.grade, "grade_id": sc.name, "locked": sc.locked,
                    "schema_version": 3, "solution": sc.solution, "task": False,
                    "checksum": sc.checksum}
            if sc.grade:
                meta["points"] = float(sc.points)
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
            make = {"code": new_code_cell, "markdown": new_markdown_cell}.get(sc.cell_type,
                                                                               new_raw_cell)
            cell = make(source=source, metadata=metadata)
            if nb.get("nbformat_minor", 5) < 5:
                cell.pop("id", None)
            nb.cells.insert(index, cell)
            restored.append(sc.name)
        if len(restored) > 8:  # a notebook that is mostly not this assignment's: one note
            self._notes.append(f"{', '.join(restored[:5])} and {len(restored) - 5} more cells: "
                               "missing from the submission; restored")
        else:
            self._notes += [f"{name}: missing from the submission; restored" for name in restored]
        return nb, resources


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class GradeOutputs(NbGraderPreprocessor):
    """Make nbgrader's rule 'an error means zero' hold whatever came before the error."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not utils.is_grade(cell) or utils.is_solution(cell):
            return cell, resources
        outputs = list(cell.get("outputs", []))
        errors = [o for o in outputs if o.output_type == "error"]
        if errors:
            # errors first: determine_grade stops at the first one and gives zero
            cell.outputs = errors + [o for o in outputs if o.output_type != "error"]
        else:
            # Only the cell's own result (its last statement an expression, the last result)
            # may give partial credit; results published by the learner's code are dropped.
            results = [o for o in outputs if o.output_type == "execute_result"]
            keep = results[-1] if results and _ends_with_expression(cell.source) else None
            cell.outputs = [o for o in outputs if o.output_type != "execute_result" or o is keep]
            if keep is not None:  # nbgrader raises on more than the cell's points
                points = float(cell.metadata.nbgrader.get("points", 0))
                try:
                    if float(keep.data.get("text/plain", "")) > points:
                        keep.data["text/plain"] = repr(points)
                except (TypeError, ValueError):
                    pass
        return cell, resources


def _ends_with_expression(source: str) -> bool:
    import ast
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError):
        return False
    return bool(body) and isinstance(body[-1], ast.Expr)


class HideHiddenTests(NbGraderPreprocessor):
    """Strip hidden tests from test cells (source and traceback frames) in feedback."""

    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end_test_delimeter = Unicode("END HIDDEN TESTS").tag(config=True)

    def preprocess(self, nb, resources):
        # frames quoting any test cell go (a helper defined in one test cell may fail in
        # another), and those of the guard and the grader's own code
        self._counts = {c.get("execution_count") for c in nb.cells
                        if c.cell_type == "code" and utils.is_grade(c)
                        and not utils.is_solution(c) and c.get("execution_count") is not None}
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        if utils.is_grade(cell) and not utils.is_solution(cell) \
                and self.begin_test_delimeter in cell.source:
            cell.source = remove_hidden_tests(cell.source, self.begin_test_delimeter,
                                              self.end_test_delimeter)
        starts = tuple(f"Cell In[{n}]" for n in self._counts) + tuple(
            f"Input In [{n}]" for n in self._counts)
        for out in cell.get("outputs", []):
            if out.output_type != "error":
                continue
            kept = []
            for entry in out.traceback:
                plain = _ANSI.sub("", entry).lstrip()
                if (starts and plain.startswith(starts)) or "<grading guard>" in plain \
                        or "_grading_guard" in plain or "autograder/guard.py" in plain:
                    continue  # this frame quotes a test cell, hidden lines included
                kept.append(entry)
            out.traceback = kept
        return cell, resources


# --- what a browser is shown: feedback and formgrader ------------------------------------------

#: HTML a learner's output may keep: nbconvert's own ``clean_html`` list (the template applies
#: it again with ``HTMLExporter.sanitize_html``), without ``id`` and ``class``, which could
#: clobber the page's scripts or dress learner output up as the grader's.
OUTPUT_TAGS = frozenset({"a", "abbr", "acronym", "b", "blockquote", "code", "em", "i", "li", "ol",
                         "strong", "ul", "div", "pre", "span", "table", "tr", "td"})
OUTPUT_ATTRIBUTES = {"a": ["href", "title"], "abbr": ["title"], "acronym": ["title"]}
#: HTML a learner's markdown cell may render to (the feedback and formgrade templates put
#: markdown cells on the page with no cleaning of their own).
MARKDOWN_TAGS = OUTPUT_TAGS | {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "del", "s",
                               "sub", "sup", "img", "thead", "tbody", "th", "details",
                               "summary", "dl", "dt", "dd"}
#: Output types shown as they are: text, and images as base64 in an ``<img>``. SVG is shown
#: only as ``<img src="data:image/svg+xml...">`` (nbconvert's default), where browsers run
#: no script. text/html is cleaned (:func:`clean_output_html`), text/markdown shown as its
#: text; every other type (JavaScript, widget views, mermaid, vendor types) is dropped, its
#: text/plain kept.
PLAIN_OUTPUTS = frozenset({"text/plain", "text/latex", "image/png", "image/jpeg", "image/gif",
                           "image/svg+xml"})
_PROTOCOLS = ("http", "https", "mailto")
_IMAGE_DATA = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_PYGMENTS_CLASS = re.compile(r"^(highlight|[a-z]{1,3}[0-9]?)$")
_GRADE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def _markdown_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("title", "alt"):
        return True
    if tag == "a" and name == "href":
        return not value.strip().lower().startswith("data:")
    if tag == "img":
        if name == "src":
            return bool(_IMAGE_DATA.match(value))
        return name in ("width", "height") and value.isdigit()
    if tag in ("th", "td"):
        return name == "align" and value in ("left", "right", "center") or (
            name in ("colspan", "rowspan") and value.isdigit())
    if tag in ("span", "div", "pre", "code") and name == "class":
        return all(_PYGMENTS_CLASS.match(c) for c in value.split())  # code highlighting
    return False


def clean_output_html(text: str) -> str:
    """A learner's HTML output, sanitised: allowed tags kept, the rest shown as text."""
    import bleach
    return bleach.clean(str(text), tags=OUTPUT_TAGS, attributes=OUTPUT_ATTRIBUTES,
                        protocols=_PROTOCOLS, strip=False, strip_comments=True)


def clean_markdown(source: str, attachments: dict | None = None) -> str:
    """A learner's markdown cell as the feedback shows it: rendered, then sanitised, as one
    raw HTML block (markdown passes it through unchanged; mathematics is left to MathJax,
    which the page loads with its Safe extension)."""
    import bleach
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    try:  # attachments become data: URLs (nbconvert's renderer, as in HTMLExporter)
        rendered = MarkdownWithMath(renderer=IPythonRenderer(
            escape=False, attachments=attachments or {})).render(str(source))
    except Exception:  # a missing attachment, or markdown mistune cannot take: as text
        rendered = "<pre>" + html.escape(str(source)) + "</pre>"
    cleaned = bleach.clean(rendered, tags=MARKDOWN_TAGS,
                           attributes={t: _markdown_attribute for t in MARKDOWN_TAGS},
                           protocols=(*_PROTOCOLS, "data"), strip=False, strip_comments=True)
    # one line: an HTML block ends at the first blank line, and &#10; is a newline in text
    return '<div class="learner-markdown">' + cleaned.replace("\r", "").replace(
        "\n", "&#10;") + "</div>"


def sanitise_outputs(outputs: list) -> list:
    """A code cell's outputs as a browser may be shown them."""
    kept = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            kept.append(NotebookNode(output_type="stream", name=out.get("name") if out.get(
                "name") in ("stdout", "stderr") else "stdout", text=str(out.get("text", ""))))
            continue
        if kind == "error":
            kept.append(NotebookNode(output_type="error", ename=str(out.get("ename", "")),
                                     evalue=str(out.get("evalue", "")),
                                     traceback=[str(t) for t in out.get("traceback", [])]))
            continue
        if kind not in ("display_data", "execute_result"):
            continue
        data, new, dropped, markdown = out.get("data") or {}, {}, [], None
        for mime, value in data.items():
            if isinstance(value, list):
                value = "".join(str(v) for v in value)
            if mime in PLAIN_OUTPUTS and isinstance(value, str):
                if mime.startswith("image/") and mime != "image/svg+xml" \
                        and not _BASE64.match(value):
                    dropped.append(mime)
                    continue
                new[mime] = value
            elif mime == "text/html" and isinstance(value, str):
                new[mime] = clean_output_html(value)
            elif mime == "text/markdown" and isinstance(value, str):
                markdown = value
            else:
                dropped.append(mime)
        if markdown is not None:  # the markdown itself, as text
            new["text/plain"] = markdown
        if not new:
            new["text/plain"] = f"[output not shown here: {', '.join(dropped) or 'empty'}]"
        sizes = {}
        for mime, meta in (out.get("metadata") or {}).items():  # an image's width and height
            if mime in new and mime.startswith("image/") and isinstance(meta, dict):
                size = {k: int(v) for k, v in meta.items()
                        if k in ("width", "height") and isinstance(v, (int, float))}
                if size:
                    sizes[mime] = size
        node = NotebookNode(output_type=kind, data=NotebookNode(new),
                            metadata=NotebookNode(sizes))
        if kind == "execute_result":
            count = out.get("execution_count")
            node["execution_count"] = count if isinstance(count, int) else None
        kept.append(node)
    return kept


class SanitizeLearnerContent(NbGraderPreprocessor):
    """Feedback and formgrader: nothing the learner wrote or printed runs in a browser.

    * every code cell's outputs (any cell's: learner code in the kernel can change what an
      instructor's cell displays) keep text, images and sanitised HTML only
      (:func:`sanitise_outputs`);
    * markdown and raw cells that are not locked (locked ones hold the gradebook's text)
      are rendered and sanitised (:func:`clean_markdown`), raw cells shown as text;
    * the notebook's metadata keeps only the kernel and language (no widget state, whose
      presence makes the page load the widget manager), and cells only the nbgrader
      metadata the templates read.

    Sanitising uses bleach, the HTML sanitiser nbconvert itself depends on and uses for its
    own ``sanitize_html``; the allow-lists are :data:`OUTPUT_TAGS` and :data:`MARKDOWN_TAGS`.
    """

    def preprocess(self, nb, resources):
        if resources.get("learner_content_sanitised"):
            return nb, resources  # registered twice (exporter and converter): once is enough
        resources["learner_content_sanitised"] = True
        ks = nb.metadata.get("kernelspec") if isinstance(nb.metadata.get("kernelspec"),
                                                         dict) else {}
        ks = {k: str(ks[k]) for k in ("display_name", "language", "name") if k in ks} \
            or dict(DEFAULT_KERNELSPEC)
        language = ks.get("language", "python")
        info = {"name": language}
        if language == "python":
            info["pygments_lexer"] = "ipython3"
        nb.metadata = NotebookNode(kernelspec=NotebookNode(ks), language_info=NotebookNode(info))
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.get("metadata") or {}
        kept = {}
        nbg = meta.get("nbgrader")
        if isinstance(nbg, dict) and _GRADE_ID.match(str(nbg.get("grade_id", ""))):
            kept["nbgrader"] = nbg  # the templates put grade_id into the page unescaped
        tags = [t for t in meta.get("tags", []) or [] if isinstance(t, str) and t in GRADING_TAGS]
        if tags:
            kept["tags"] = tags
        locked = bool(kept.get("nbgrader", {}).get("locked"))
        cell.metadata = NotebookNode(kept)
        if cell.cell_type == "code":
            cell.outputs = sanitise_outputs(cell.get("outputs", []))
        elif cell.cell_type == "markdown" and not locked:
            cell.source = clean_markdown(cell.source, cell.pop("attachments", None))
        elif cell.cell_type == "raw" and not locked:
            cell.source = html.escape(str(cell.source))
        return cell, resources
