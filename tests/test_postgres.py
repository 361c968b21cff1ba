"""A PostgreSQL gradebook: a real server started here (Debian's postgresql, 127.0.0.1).

Two ``grade`` commands for two assignments write into one database at the same time (the
same learners in both, so both create the same students at once); both finish with every
learner present, and ``nbgrader export`` against the database lists every learner with the
totals of both grades.csv files.
"""

from __future__ import annotations

import csv
import subprocess

import nbformat
import pytest
from helpers import REPO, formgrader_api, release_notebooks
from services import PostgresServer
from submissions import GRADE_ARGS, WRONG, dumps, filled, wrong_answer

from autograder import config
from autograder.__main__ import command

pytestmark = pytest.mark.slow
pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgresql]'")

ASSIGNMENTS = ["01_computational_graphs", "04_affine_layer"]
LEARNERS = 6  # the last two with a mistake each


@pytest.fixture(scope="module")
def server():
    why = PostgresServer.unavailable()
    if why:
        pytest.skip(why)
    with PostgresServer() as pg:
        yield pg


def make_class(tmp, assignment: str):
    release = nbformat.read(release_notebooks(tmp, [assignment])[assignment], as_version=4)
    mistakes = list(WRONG[assignment].values())
    subs = tmp / f"subs-{assignment}"
    for k in range(LEARNERS):
        wrong = k - (LEARNERS - 2)
        answers = wrong_answer(assignment, mistakes[wrong][0]) if wrong >= 0 else None
        (subs / f"learner{k}").mkdir(parents=True)
        (subs / f"learner{k}" / f"{assignment}.ipynb").write_bytes(
            dumps(filled(release, assignment, answers))
        )
    return subs


def grade(subs, assignment, out, url, *extra):
    # one worker each: two batches on 2 cores (the last --jobs counts)
    cmd = [*command(subs, assignment, out), *GRADE_ARGS, "--jobs", "1", "--db", url,
           "--no-report", *extra]  # fmt: skip
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def totals(path) -> dict[tuple[str, str], float]:
    with open(path, newline="") as f:
        return {
            (r.get("student_id") or r["learner"], r["assignment"]): float(r["score"])
            for r in csv.DictReader(f)
        }


@pytest.fixture(scope="module")
def graded(server, tmp_path_factory):
    """Both batches, started together into one database."""
    tmp = tmp_path_factory.mktemp("pg")
    url = server.create_database("grades")
    subs = {a: make_class(tmp, a) for a in ASSIGNMENTS}
    procs = {a: grade(subs[a], a, tmp / f"out-{a}", url) for a in ASSIGNMENTS}
    outputs = {a: p.communicate(timeout=900) for a, p in procs.items()}
    for a, p in procs.items():
        assert p.returncode == 0, outputs[a][1][-3000:] + server.log()
    return tmp, url, subs, outputs


def test_two_batches_at_once_into_one_database_both_complete(graded):
    tmp, url, _, outputs = graded
    for a in ASSIGNMENTS:
        got = totals(tmp / f"out-{a}" / "grades.csv")
        assert sorted(got) == [(f"learner{k}", a) for k in range(LEARNERS)]
        assert "gradebook: postgresql+psycopg://postgres@127.0.0.1" in outputs[a][0]
    from nbgrader.api import Gradebook

    with Gradebook(config.gradebook_url(url), config.course_id()) as gb:
        assert sorted(s.id for s in gb.students) == [f"learner{k}" for k in range(LEARNERS)]
        assert sorted(a.name for a in gb.assignments) == ASSIGNMENTS
        for a in ASSIGNMENTS:
            assert len(gb.find_assignment(a).submissions) == LEARNERS


def test_nbgrader_export_against_the_database_lists_every_learner_with_our_totals(graded):
    tmp, _, _, _ = graded
    out = tmp / f"out-{ASSIGNMENTS[0]}"
    proc = subprocess.run(["nbgrader", "export"], cwd=out, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exported = totals(out / "nbgrader_export.csv")
    ours = {}
    for a in ASSIGNMENTS:
        ours.update(totals(tmp / f"out-{a}" / "grades.csv"))
    assert exported == ours and len(exported) == LEARNERS * len(ASSIGNMENTS)
    full = [v for (learner, _), v in ours.items() if learner in ("learner0", "learner1")]
    wrong = [v for (learner, _), v in ours.items() if learner == f"learner{LEARNERS - 1}"]
    assert min(full) > max(wrong)


def test_the_formgrader_reads_the_database(graded):
    tmp, _, _, _ = graded
    a = ASSIGNMENTS[1]
    out = tmp / f"out-{a}"
    _, _, (students, subs) = formgrader_api(out, None, ["students", f"submissions/{a}"])
    assert {s["id"] for s in students} == {f"learner{k}" for k in range(LEARNERS)}
    ours = totals(out / "grades.csv")
    assert {(s["student"], a): s["score"] for s in subs} == ours


def test_running_again_skips_everyone_and_another_gradebook_is_refused(graded):
    tmp, url, subs, _ = graded
    a = ASSIGNMENTS[0]
    before = (tmp / f"out-{a}" / "grades.csv").read_text()
    again = grade(subs[a], a, tmp / f"out-{a}", url)
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr[-2000:]
    assert f"{LEARNERS} already graded" in stdout
    assert (tmp / f"out-{a}" / "grades.csv").read_text() == before
    cmd = [*command(subs[a], a, tmp / f"out-{a}"), "--no-report"]  # sqlite: not where it was
    refused = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0
    assert "holds grades merged into postgresql+psycopg://postgres@127.0.0.1" in refused.stderr
