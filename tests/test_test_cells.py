"""Every test cell is made of checks the grader can verify outside the learner's kernel,
and its hidden part checks only what its visible part checks, on other data."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from backprop.checks import plan

REPO = Path(__file__).resolve().parents[1]
_HIDDEN = re.compile(
    r"^\s*### BEGIN HIDDEN TESTS\s*$(.*?)^\s*### END HIDDEN TESTS\s*$", re.MULTILINE | re.DOTALL
)


def _test_cells(tree: str):
    for path in sorted((REPO / tree).glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                yield path.parent.name, meta["grade_id"], cell.source


CELLS = list(_test_cells("solutions"))


@pytest.mark.parametrize(
    "assignment, grade_id, source", CELLS, ids=[f"{a}:{g}" for a, g, _ in CELLS]
)
def test_test_cell_is_verifiable_and_hidden_part_checks_the_same(assignment, grade_id, source):
    hidden = "\n".join(m.group(1) for m in _HIDDEN.finditer(source))
    visible = _HIDDEN.sub("", source)
    shown = plan(visible)
    assert shown, f"{assignment}:{grade_id} has no visible check"
    kinds = {(p.check, p.target, p.names) for p in shown}
    for p in plan(hidden):
        assert (p.check, p.target, p.names) in kinds, (
            f"{assignment}:{grade_id}: the hidden test check_{p.check}({p.target}, ...)"
            f".assert_ok{p.names} checks something no visible test checks"
        )
    assert len(visible.strip().splitlines()) <= 8, (
        f"{assignment}:{grade_id}: keep the visible test to a few lines"
    )


def test_course_test_cells_are_the_visible_parts():
    course = {(a, g): s for a, g, s in _test_cells("course")}
    for assignment, grade_id, source in CELLS:
        assert plan(course[(assignment, grade_id)]) == plan(_HIDDEN.sub("", source))
