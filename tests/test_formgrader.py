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
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import nbformat
import pytest
from helpers import free_port, stop_group, wait_for_http
from submissions import GRADE_ARGS, filled

REPO = Path(__file__).resolve().parents[1]
A1, A2 = "01_computational_graphs", "02_chain_rule"
CLASSES = {A1: ("ana", "bob"), A2: ("cem",)}
# What the README tells an instructor to run in the results folder (the server's address
# and the empty token are this test's).
FORMGRADER = [
    "jupyter",
    "server",
    "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=True",
    "--ServerApp.default_url=/formgrader",
]

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


def get(url: str) -> tuple[str, str]:
    """The final address (after redirects) and the body of url."""
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.geturl(), resp.read().decode()


def test_formgrader_opens_in_the_results_folder_and_lists_every_learner(results):
    learner_setup = results["tmp"] / "learner-env"
    subprocess.run(
        [sys.executable, "-m", "backprop.jupyter", "--prefix", str(learner_setup)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    cmd = [sys.executable, "-m", *FORMGRADER, "--no-browser", "--ServerApp.ip=127.0.0.1"]
    cmd += [f"--ServerApp.port={port}", "--IdentityProvider.token=", "--ServerApp.password="]
    cmd += ["--allow-root"] if os.geteuid() == 0 else []
    env = env_for(results["home"], learner_setup / "etc" / "jupyter")
    proc = subprocess.Popen(
        cmd,
        cwd=results["out"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/api", proc)
        where, page = get(f"{base}/")  # the server opens on the formgrader
        assert "/formgrader" in where
        assert "nbgrader formgrade" in page
        students = json.loads(get(f"{base}/formgrader/api/students")[1])
        subs = json.loads(get(f"{base}/formgrader/api/submissions/{A1}")[1])
    finally:
        stop_group(proc)
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
