"""Manual review in a results folder: nbgrader's formgrader and ``nbgrader export``.

The formgrader is a Jupyter server extension (``nbgrader formgrader`` is not a command in
nbgrader 0.9). A tiny class is graded (ana and bob hand in notebook 01, cem only notebook
02; ana answers with the reference solution, the others hand in the release), then, in the results folder, the command the README gives is started on 127.0.0.1
in an environment set up for learners (``python -m backprop.jupyter``, which switches the
formgrader off): the formgrader still opens and lists every learner; ``nbgrader export``
lists every learner against every assignment, where grades.csv has a row per submission.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from helpers import formgrader_api
from submissions import GRADE_ARGS, filled

REPO = Path(__file__).resolve().parents[1]
A1, A2 = "01_computational_graphs", "02_chain_rule"
CLASSES = {A1: ("ana", "bob"), A2: ("cem",)}
pytestmark = pytest.mark.slow


def env_for(home: Path, config: Path | None = None) -> dict[str, str]:
    """This process's environment with a HOME of its own (and extra Jupyter config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(HOME=str(home), OPENBLAS_NUM_THREADS="1")
    if config is not None:
        env["JUPYTER_CONFIG_PATH"] = str(config)
    return env


def grade_class(tmp: Path, results: Path, home: Path) -> None:
    """Each assignment's class graded into results, without feedback."""
    for assignment, learners in CLASSES.items():
        release = nbformat.read(REPO / "course" / assignment / f"{assignment}.ipynb", 4)
        submissions = tmp / f"class-{assignment}"
        for name in learners:
            nb = filled(release, assignment) if name == "ana" else release
            (submissions / name).mkdir(parents=True)
            nbformat.write(nb, submissions / name / f"{assignment}.ipynb")
        cmd = [sys.executable, "-m", "autograder", "grade", str(submissions)]
        cmd += ["--assignment", assignment, "--out", str(results), "--no-feedback", "--quiet"]
        cmd += GRADE_ARGS
        res = subprocess.run(
            cmd, cwd=REPO, env=env_for(home), capture_output=True, text=True, check=False
        )
        assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("formgrader")
    home, out = tmp / "home", tmp / "results"
    home.mkdir()
    grade_class(tmp, out, home)
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"tmp": tmp, "home": home, "out": out, "rows": rows}


def test_formgrader_opens_in_the_results_folder_and_lists_every_learner(results):
    learner_setup = results["tmp"] / "learner-env"
    subprocess.run(
        [sys.executable, "-m", "backprop.jupyter", "--prefix", str(learner_setup)],
        check=True,
        capture_output=True,
    )
    env = env_for(results["home"], learner_setup / "etc" / "jupyter")
    where, page, (students, subs) = formgrader_api(
        results["out"], env, ["students", f"submissions/{A1}"]
    )
    assert "/formgrader" in where  # the server opens on the formgrader
    assert "nbgrader formgrade" in page
    assert {s["id"] for s in students} == {"ana", "bob", "cem"}
    assert {s["student"] for s in subs} == {"ana", "bob"}
    assert all(s["autograded"] and s["submitted"] for s in subs)
    scores = {(r["student_id"], r["assignment"]): float(r["score"]) for r in results["rows"]}
    assert {(s["student"], A1): s["score"] for s in subs} == {
        k: v for k, v in scores.items() if k[1] == A1
    }


def test_nbgrader_export_lists_every_learner_against_every_assignment(results):
    out = results["out"]
    res = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export"],
        cwd=out,
        env=env_for(results["home"]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    with open(out / "nbgrader_export.csv", newline="") as f:
        exported = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    learners = {name for names in CLASSES.values() for name in names}
    assert set(exported) == {(s, a) for s in learners for a in CLASSES}
    graded = {(r["student_id"], r["assignment"]): r for r in results["rows"]}
    assert set(graded) == {(s, a) for a, names in CLASSES.items() for s in names}
    for key, row in graded.items():  # the same totals where both have a row
        assert float(exported[key]["score"]) == float(row["score"])
    assert all(float(exported[k]["score"]) == 0 for k in set(exported) - set(graded))
