"""Grading on a real Dask cluster: a scheduler and two worker processes on 127.0.0.1.

One class of 21 learners (honest, wrong in one way each, hostile) is graded by the local
pool and by the cluster: every row must be equal. Then a worker process is killed in the
middle of a batch: every learner still gets a row, the honest ones their full score.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time

import nbformat
import pytest
from helpers import REPO, release_notebooks
from hostile import hostile_cases
from services import DaskCluster
from submissions import GRADE_ARGS, WRONG, dumps, filled, wrong_answer

from autograder.__main__ import command

pytest.importorskip("distributed", reason="Dask is not installed: pip install -e '.[dask]'")
pytestmark = pytest.mark.slow

A = "04_affine_layer"
HOSTILE = ["control_zeros", "invalid_json", "edited_tests", "infinite_loop", "os_exit",
           "segfault", "memory_bomb", "monkeypatch"]  # fmt: skip
HONEST = [f"honest{k}" for k in range(7)]


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """The class's submissions folder: honest, wrong and hostile learners."""
    tmp = tmp_path_factory.mktemp("class")
    release = nbformat.read(release_notebooks(tmp, [A])[A], as_version=4)
    files = {name: dumps(filled(release, A)) for name in HONEST}
    for mistake, (edits, _, _) in WRONG[A].items():
        files["wrong_" + mistake] = dumps(filled(release, A, wrong_answer(A, edits)))
    cases = hostile_cases(A, release)
    files.update({"hostile_" + name: cases[name][0] for name in HOSTILE})
    subs = tmp / "subs"
    for name, data in files.items():
        (subs / name).mkdir(parents=True)
        (subs / name / f"{A}.ipynb").write_bytes(data)
    return subs


def grade(subs, out, *extra, wait=True):
    cmd = [*command(subs, A, out), *GRADE_ARGS, "--no-report", *extra]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)


def rows(out) -> dict[str, dict]:
    with open(out / "grades.csv", newline="") as f:
        return {r["learner"]: r for r in csv.DictReader(f)}


def without_timing(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "reason"} | {
        "reason": " ".join(w for w in row["reason"].split() if not w[:1].isdigit())
    }


@pytest.fixture(scope="module")
def local(klass, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    proc = grade(klass, out)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return rows(out)


@pytest.fixture(scope="module")
def cluster():
    with DaskCluster(workers=2) as c:
        yield c


def test_the_cluster_grades_every_learner_as_the_local_pool_does(klass, local, cluster, tmp_path):
    proc = grade(klass, tmp_path / "out", "--dask", cluster.address)
    assert proc.returncode in (0, 1), proc.stderr[-3000:] + cluster.log()
    assert f"Dask cluster at {cluster.address}: 2 worker(s)" in proc.stdout
    assert "tried on up to 2 worker(s)" in proc.stdout
    got = rows(tmp_path / "out")
    assert set(got) == set(local) and len(got) == 7 + len(WRONG[A]) + len(HOSTILE)
    for learner in local:
        assert without_timing(got[learner]) == without_timing(local[learner]), learner
    for name in HONEST:
        assert float(got[name]["score"]) == float(got[name]["max_score"]) > 0
    assert float(got["hostile_edited_tests"]["score"]) <= float(
        got["hostile_control_zeros"]["score"]
    )
    assert got["hostile_invalid_json"]["status"] == "invalid"
    assert not [r for r in got.values() if r["status"] == "error"]


def _wait_for_records(out, n: int, proc, timeout: float = 300) -> None:
    folder = out / ".autograder" / "records" / A
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if folder.is_dir() and len(list(folder.glob("*.json"))) >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} learners graded in {timeout} s")


def test_a_worker_killed_in_the_middle_of_the_batch_loses_no_learner(klass, cluster, tmp_path):
    out = tmp_path / "out"
    proc = grade(klass, out, "--dask", cluster.address, wait=False)
    try:
        _wait_for_records(out, 3, proc)
        victims = cluster.worker_pids()
        assert len(victims) == 2
        os.kill(victims[0], signal.SIGKILL)  # busy: tasks are still waiting
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 1), stderr[-3000:] + cluster.log()
    got = rows(out)
    assert len(got) == 7 + len(WRONG[A]) + len(HOSTILE), stdout
    for name in HONEST:
        assert float(got[name]["score"]) == float(got[name]["max_score"]) > 0, got[name]
    assert not [r for r in got.values() if r["status"] == "error"], stdout
    assert victims[0] not in cluster.worker_pids()
    cluster.wait_for_workers(2)  # the nanny started a new one
