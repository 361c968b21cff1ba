"""nbgrader preprocessors of the course, used through nbgrader_config.py.

RestoreCells       replaces OverwriteCells when sanitising a submission: every cell the
                   gradebook knows gets its nbgrader metadata back from the gradebook (not
                   from the learner's file), locked cells their source, and cells that were
                   deleted are put back where they belong (nbgrader 0.9's own
                   ``add_missing_cells`` puts back grade cells only, and fails when the cell
                   before a missing one is a locked cell).
GradeOutputs       after execution: an error anywhere in a test cell's output makes the cell
                   score zero (nbgrader looks only at the first error, stderr or result, so a
                   result published before the error by the learner's code could win).
HideHiddenTests    in feedback: test cells show their visible part only, and tracebacks lose
                   the frames that quote the test cell, so hidden tests never reach learners
                   (nbgrader issue #917); the error message itself, which names the mistake,
                   stays.
"""
from __future__ import annotations

import re

from nbformat.v4 import new_code_cell, new_markdown_cell, new_raw_cell
from traitlets import Bool, Unicode

from nbgrader import utils
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells

RESTORED_NOTE = "This cell was missing from the submission; the autograder put it back."
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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


class RestoreCells(OverwriteCells):
    """OverwriteCells that trusts only the gradebook, and restores every missing cell."""

    add_missing_cells = Bool(True, help="Put back cells missing from the submission.").tag(
        config=True)

    def preprocess(self, nb, resources):
        self._nb = nb
        self._notes: list[str] = []
        nb, resources = super().preprocess(nb, resources)
        if self._notes:
            _events(nb).extend(self._notes)
        return nb, resources

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            return cell, resources
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        if not grade_id:
            del cell.metadata["nbgrader"]
            return cell, resources
        try:
            source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id,
                                                          self.assignment_id)
        except MissingEntry:
            self._notes.append(f"{grade_id}: not a cell of this assignment; its nbgrader "
                               "metadata was removed")
            del cell.metadata["nbgrader"]
            return cell, resources
        try:
            graded = self.gradebook.find_graded_cell(grade_id, self.notebook_id,
                                                     self.assignment_id)
        except MissingEntry:
            graded = None
        try:
            self.gradebook.find_solution_cell(grade_id, self.notebook_id, self.assignment_id)
            is_solution = True
        except MissingEntry:
            is_solution = False
        fresh = {"grade": graded is not None, "grade_id": grade_id, "locked": source_cell.locked,
                 "schema_version": 3, "solution": is_solution, "task": False}
        if graded is not None:
            fresh["points"] = float(graded.max_score)
        if meta.get("task"):
            fresh["task"] = True
        changed = [k for k in ("grade", "solution", "locked", "points")
                   if k in fresh and meta.get(k) != fresh[k]
                   and not (k == "points" and _num(meta.get(k)) == fresh[k])]
        if changed:
            self._notes.append(f"{grade_id}: nbgrader metadata edited ({', '.join(changed)}); "
                               "restored")
        cell.metadata["nbgrader"] = fresh
        if source_cell.locked:
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
            visible = remove_hidden_tests(source_cell.source)
            if cell.cell_type != source_cell.cell_type or (
                    cell.source.rstrip() not in (visible.rstrip(), source_cell.source.rstrip())):
                self._notes.append(f"{grade_id}: locked cell edited; restored")
        return super().preprocess_cell(cell, resources, cell_index)

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        order = list(source_nb.source_cells)
        grades = {c.name: c for c in source_nb.grade_cells}
        solutions = {c.name for c in source_nb.solution_cells}
        tasks = {c.name for c in source_nb.task_cells}

        def positions():
            return {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells)
                    if c.metadata.get("nbgrader", {}).get("grade_id")}

        for k, sc in enumerate(order):
            if sc.name in tasks:
                continue
            pos = positions()
            if sc.name in pos:
                continue
            after = next((pos[o.name] for o in reversed(order[:k]) if o.name in pos), None)
            if after is not None:
                index = after + 1
            else:
                index = next((pos[o.name] for o in order[k + 1:] if o.name in pos), len(nb.cells))
            meta = {"grade": sc.name in grades, "grade_id": sc.name, "locked": sc.locked,
                    "schema_version": 3, "solution": sc.name in solutions, "task": False,
                    "checksum": sc.checksum}
            if sc.name in grades:
                meta["points"] = float(grades[sc.name].max_score)
            metadata = {"nbgrader": meta}
            if sc.locked:
                metadata.update(editable=False, deletable=False)
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
            self._notes.append(f"{sc.name}: missing from the submission; restored")
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
