"""The course notebooks: solutions run clean, learner versions fail until answered,
and course/ is exactly what nbgrader generates from solutions/."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS, COURSE = REPO / "solutions", REPO / "course"
ASSIGNMENTS = sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").is_file())
ALL_NOTEBOOKS = sorted(SOLUTIONS.glob("*/*.ipynb")) + sorted(COURSE.glob("*/*.ipynb"))

pytestmark = pytest.mark.skipif(not ASSIGNMENTS, reason="no notebooks in solutions/ yet")


def _notebook(folder: Path, assignment: str) -> Path:
    return folder / assignment / f"{assignment}.ipynb"


@pytest.fixture
def course_env(mnist_dir, monkeypatch):
    """Kernels see the MNIST copy and draw plots without a screen."""
    monkeypatch.setenv("BACKPROP_DATA", str(mnist_dir))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_runs_with_every_test_passing(assignment, course_env, tmp_path):
    path = _notebook(SOLUTIONS, assignment)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    seconds = time.perf_counter() - start
    errors = [
        c
        for c in nb.cells
        if c.cell_type == "code" and any(o.output_type == "error" for o in c.get("outputs", []))
    ]
    assert not errors  # NotebookClient raises on the first error; this guards allow_errors
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded, "a course notebook without graded tests"
    print(f"{assignment}: executed in {seconds:.1f} s")


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_unanswered_course_notebook_fails_every_test(assignment, course_env, tmp_path):
    """nbgrader's validator, inverted: no graded cell may pass without answers."""
    from nbgrader.validator import Validator

    path = _notebook(COURSE, assignment)
    assert path.is_file(), f"{path} missing: regenerate course/ (see README)"
    results = Validator(invert=True).validate(str(path))
    assert "changed" not in results and "type_changed" not in results, results
    assert not results.get("passed"), [r["source"][:80] for r in results["passed"]]


def _generate(root: Path) -> None:
    """Run nbgrader generate_assignment for every assignment into root/course."""
    for assignment in ASSIGNMENTS:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "nbgrader",
                "generate_assignment",
                assignment,
                "--force",
                f"--CourseDirectory.root={root}",
                f"--CourseDirectory.db_url=sqlite:///{root}/gb.db",
                "--log-level=WARN",
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        )


@pytest.mark.slow
def test_course_is_exactly_what_nbgrader_generates(tmp_path):
    (tmp_path / "solutions").symlink_to(SOLUTIONS, target_is_directory=True)
    _generate(tmp_path)
    generated = sorted(
        p.relative_to(tmp_path / "course") for p in (tmp_path / "course").rglob("*") if p.is_file()
    )
    committed = sorted(
        p.relative_to(COURSE)
        for p in COURSE.rglob("*")
        if p.is_file() and ".ipynb_checkpoints" not in p.parts
    )
    assert committed == generated, "course/ has other files than nbgrader generates"
    for rel in generated:
        ours, theirs = (COURSE / rel).read_bytes(), (tmp_path / "course" / rel).read_bytes()
        if rel.suffix == ".ipynb":
            ours, theirs = json.loads(ours), json.loads(theirs)
        assert ours == theirs, (
            f"course/{rel} differs from what nbgrader generates: run the "
            "regeneration command in the README"
        )


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO)))
def test_stored_without_outputs_and_with_python3_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, cell.source[:80]


def test_every_assignment_has_a_learner_version():
    assert sorted(p.parent.name for p in COURSE.glob("*/*.ipynb")) == ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_notebook_has_exercises_and_points(assignment):
    """Unique grade_ids, at least two answer cells, and 10 to 25 points per notebook."""
    nb = nbformat.read(_notebook(SOLUTIONS, assignment), as_version=4)
    meta = [c.metadata["nbgrader"] for c in nb.cells if "nbgrader" in c.metadata]
    ids = [m["grade_id"] for m in meta]
    assert len(ids) == len(set(ids)), f"{assignment}: duplicate grade_id"
    answers = [m for m in meta if m.get("solution")]
    assert len(answers) >= 2, f"{assignment}: fewer than two exercises"
    points = sum(m.get("points", 0) for m in meta if m.get("grade"))
    assert 10 <= points <= 25, f"{assignment}: {points} points"
