"""Ask before telling: no rule an exercise asks for appears above its answer cell.

tests/rules/<assignment>.json lists, for each exercise (the grade_id of its answer cell),
the key expressions the learner must find, in every spelling the notebook might use (code
and LaTeX). None of them may appear in any cell above the answer cell (the learning
objectives included), except inside a collapsed hint: ``<details>...</details>``. White
space is ignored when comparing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
RULES = sorted((REPO / "tests" / "rules").glob("*.json"))
_DETAILS = re.compile(r"<details>.*?</details>", re.DOTALL | re.IGNORECASE)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _visible(cell) -> str:
    """The text of a cell a learner reads without opening a hint."""
    return _DETAILS.sub("", cell.source) if cell.cell_type == "markdown" else cell.source


def _exercises():
    """Each exercise of each assignment, and of its Korean twin (``<assignment>_ko``), which
    asks the same questions: the same rules, in code and LaTeX, hold for it."""
    for path in RULES:
        table = json.loads(path.read_text())
        twins = [path.stem]
        if (REPO / "solutions" / f"{path.stem}_ko").is_dir():
            twins.append(f"{path.stem}_ko")
        for assignment in twins:
            for exercise in table["exercises"]:
                yield pytest.param(assignment, exercise, id=f"{assignment}:{exercise['answer']}")


@pytest.mark.parametrize("assignment, exercise", list(_exercises()))
@pytest.mark.parametrize("tree", ["solutions", "course"])
def test_rule_not_shown_above_its_answer_cell(tree, assignment, exercise):
    nb = nbformat.read(REPO / tree / assignment / f"{assignment}.ipynb", as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert exercise["answer"] in ids, f"{assignment}: no cell {exercise['answer']!r}"
    above = nb.cells[: ids.index(exercise["answer"])]
    assert exercise["rules"], f"{assignment}:{exercise['answer']} lists no rules"
    for rule in exercise["rules"]:
        for index, cell in enumerate(above):
            assert _squash(rule) not in _squash(_visible(cell)), (
                f"{tree}/{assignment} cell {index} shows {rule!r}, which exercise "
                f"{exercise['answer']!r} asks the learner to find: move it below the answer "
                "cell, or into a <details> hint"
            )


def test_every_assignment_has_a_rules_table():
    assignments = {p.name.removesuffix("_ko") for p in (REPO / "solutions").iterdir() if p.is_dir()}
    assert [p.stem for p in RULES] == sorted(assignments)
