"""The JupyterHub path, end to end, with nbgrader's own exchange commands.

A temporary exchange folder (``Exchange.root``), an instructor's course folder and two
learners, each with a HOME and a working folder of their own (their nbgrader settings in
``~/.jupyter/nbgrader_config.py``, nbgrader's submission cache under their HOME):

    instructor: nbgrader generate_assignment, nbgrader release_assignment
    learners:   nbgrader fetch_assignment, answer (ana right, bob with a mistake), nbgrader submit
    instructor: nbgrader collect, python -m autograder grade <course>/submitted --out <course>,
                nbgrader release_feedback
    learners:   nbgrader fetch_feedback -> their own feedback page, with their own score

All the processes run as one unix user here, so each learner's id is given with
``--student`` (on a JupyterHub each learner is a unix user and nbgrader takes the id from
the account: ``--student`` is not needed there).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from submissions import GRADE_ARGS, WRONG, filled, wrong_answer

REPO = Path(__file__).resolve().parents[1]
A = "01_computational_graphs"
COURSE_ID = "backprop-from-scratch"
MISTAKE = "mul_not_swapped"  # bob's: MulLayer.backward returns the wrong input
LEARNERS = ("ana", "bob")

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    """cmd as the user whose HOME is home; fails the test, with its output, if cmd fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(HOME=str(home), OPENBLAS_NUM_THREADS="1")
    res = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}"
    return res


def nbgrader(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "nbgrader", *args], cwd, home)


def write_configs(root: Path) -> tuple[Path, Path, dict[str, Path]]:
    """The exchange, the instructor's course folder (its nbgrader_config.py: the course's
    settings with this folder as the root) and each learner's HOME with their settings."""
    exchange = root / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # as on a hub: every user writes their submissions into it
    course = root / "instructor" / "course"
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        f"load_subconfig({str(REPO / 'autograder' / 'nbgrader_config.py')!r})  # noqa: F821\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.source_directory = {str(REPO / 'solutions')!r}\n"
        "c.CourseDirectory.release_directory = 'release'\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        "c.ExportPlugin.to = 'nbgrader_export.csv'  # not over grades.csv\n"
    )
    homes = {}
    for name in LEARNERS:
        home = root / name
        (home / ".jupyter").mkdir(parents=True)
        (home / ".jupyter" / "nbgrader_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
            f"c.Exchange.root = {str(exchange)!r}\n"
        )
        homes[name] = home
    return exchange, course, homes


def answer(path: Path, name: str) -> None:
    """ana's notebook answered with the reference solution, bob's with one mistake in it."""
    nb = nbformat.read(path, as_version=4)
    wrong = wrong_answer(A, WRONG[A][MISTAKE][0]) if name == "bob" else None
    nbformat.write(filled(nb, A, wrong), path)


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> dict:
    """The round trip up to grading, as an instructor and two learners run it."""
    root = tmp_path_factory.mktemp("hub")
    exchange, course, homes = write_configs(root)
    instructor = course.parent
    nbgrader("generate_assignment", A, cwd=course, home=instructor)
    nbgrader("release_assignment", A, cwd=course, home=instructor)
    for name, home in homes.items():
        nbgrader("fetch_assignment", A, cwd=home, home=home)
        answer(home / A / f"{A}.ipynb", name)
        nbgrader("submit", A, f"--student={name}", cwd=home, home=home)
    nbgrader("collect", A, cwd=course, home=instructor)
    grade = [sys.executable, "-m", "autograder", "grade", str(course / "submitted")]
    run([*grade, "--assignment", A, "--out", str(course), *GRADE_ARGS], REPO, instructor)
    with open(course / "grades.csv", newline="") as f:
        rows = {row["learner"]: row for row in csv.DictReader(f)}
    return {"exchange": exchange, "course": course, "homes": homes, "rows": rows}


def test_collected_submissions_are_graded_in_the_course_folder(hub):
    rows, course = hub["rows"], hub["course"]
    assert set(rows) == set(LEARNERS)
    for name in LEARNERS:
        assert rows[name]["student_id"] == name and rows[name]["status"] == "graded"
        # grading into the course folder leaves nbgrader collect's copy as it was
        submitted = course / "submitted" / name / A
        handed_in = hub["homes"][name] / A / f"{A}.ipynb"
        assert (submitted / f"{A}.ipynb").read_bytes() == handed_in.read_bytes()
        assert (submitted / "submission_secret.txt").is_file()
    ana, bob = rows["ana"], rows["bob"]
    assert float(ana["score"]) == float(ana["max_score"]) > 0
    failing = WRONG[A][MISTAKE][1]
    assert all(float(bob[cell]) == 0 for cell in failing)
    assert float(bob["score"]) < float(bob["max_score"])
    feedback = course / "feedback" / "bob" / A / f"{A}.html"
    assert WRONG[A][MISTAKE][2] in feedback.read_text()


def test_each_learner_fetches_their_own_feedback_with_their_score(hub):
    course = hub["course"]
    nbgrader("release_feedback", A, cwd=course, home=course.parent)
    for name, home in hub["homes"].items():
        nbgrader("fetch_feedback", A, f"--student={name}", cwd=home, home=home)
        pages = sorted((home / A / "feedback").glob(f"*/{A}.html"))
        assert len(pages) == 1, pages  # <timestamp>/<notebook>.html, one submission
        row = hub["rows"][name]
        score = f"{A} (Score: {float(row['score'])} / {float(row['max_score'])})"
        assert score in pages[0].read_text(), (name, score)
