"""The parts of grading past one machine, one at a time: the task's packed template and
version check, the retry of a failed task, the Dask failure reasons, the gradebook URL."""

from __future__ import annotations

import concurrent.futures as cf
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from helpers import free_port

from autograder import batch, bundle, cluster, config, merge
from autograder.records import ERROR, Settings, Task
from autograder.worker import grade_task


def a_task(**kw) -> Task:
    fields = dict(learner="ada", assignment="04_affine_layer", notebooks={"04_affine_layer": b"{}"},
                  timestamp=None, template=b"", version=bundle.project_version(), hide=[],
                  settings=Settings({"04_affine_layer": [("t", 1.0)]}))  # fmt: skip
    return Task(**{**fields, **kw})


def test_the_template_travels_packed_and_unpacks_whole(tmp_path):
    tmpl = tmp_path / "tmpl"
    (tmpl / "source" / "04_affine_layer").mkdir(parents=True)
    (tmpl / "source" / "04_affine_layer" / "data.txt").write_text("weights")
    (tmpl / "gradebook.db").write_bytes(b"SQLite format 3\0" + bytes(100))
    (tmpl / "release").mkdir()  # not needed by a worker: left out
    (tmpl / "release" / "big.ipynb").write_text("x" * 10_000)
    data = bundle.pack(tmpl)
    assert len(data) < 2_000
    bundle.unpack(data, tmp_path / "course")
    files = {str(p.relative_to(tmp_path / "course")) for p in (tmp_path / "course").rglob("*")}
    assert files == {"source", "source/04_affine_layer", "source/04_affine_layer/data.txt",
                     "gradebook.db"}  # fmt: skip
    assert (tmp_path / "course" / "gradebook.db").read_bytes() == (
        tmpl / "gradebook.db"
    ).read_bytes()


def test_the_project_version_is_a_digest_of_the_code():
    v = bundle.project_version()
    assert len(v) == 16 and int(v, 16) >= 0 and bundle.project_version() == v
    assert bundle.version_mismatch(v) is None


def test_a_worker_with_other_code_refuses_the_task_and_says_why():
    result = grade_task(a_task(version="0123456789abcdef"))
    assert result.status == ERROR
    assert "another version of the project" in result.reasons[-1]
    assert "0123456789abcdef" in result.reasons[-1]
    assert result.notebooks["04_affine_layer"].submitted == b"{}"  # kept for the record


class Raising(cf.Future):
    def __init__(self, exc):
        super().__init__()
        self.set_exception(exc)


class Recorder:
    """An executor that records what is submitted (and may refuse it)."""

    def __init__(self, refuse: BaseException | None = None):
        self.submitted, self.refuse = [], refuse

    def submit(self, fn, task):
        if self.refuse:
            raise self.refuse
        self.submitted.append(task)
        return cf.Future()


def a_batch(dask=None) -> batch.Batch:
    opts = batch.Options("04_affine_layer", Path("out"), 2, dask=dask)
    return batch.Batch(opts, Path("out"), Path("state"), "sqlite://", {}, Path("r"), print, {}, [])


def test_a_task_whose_worker_failed_is_submitted_once_more_then_is_an_error_row():
    task, ex, futures, tried = a_task(), Recorder(), {}, set()
    first = batch._result(Raising(OSError("connection lost")), task, a_batch(), ex, futures, tried)
    assert first is None and ex.submitted == [task] and list(futures.values()) == [task]
    second = batch._result(Raising(OSError("connection lost")), task, a_batch(), ex, {}, tried)
    assert second.status == ERROR and second.learner == "ada"
    assert "the worker failed: OSError('connection lost') (twice)" in second.reasons[-1]


def test_a_task_that_cannot_be_submitted_again_is_an_error_row():
    broken = BrokenProcessPool("a worker died")
    res = batch._result(Raising(broken), a_task(), a_batch(), Recorder(broken), {}, set())
    assert res.status == ERROR and "could not be submitted again" in res.reasons[-1]


def test_a_task_dask_gave_up_on_is_not_retried_and_says_how_often_workers_died():
    from distributed.scheduler import KilledWorker

    killed = KilledWorker("grade_task-1", "tcp://127.0.0.1:4001", 1)
    ex = Recorder()
    res = batch._result(Raising(killed), a_task(), a_batch("tcp://x:1"), ex, {}, set())
    assert ex.submitted == [] and res.status == ERROR
    assert "died 2 time(s), the last one tcp://127.0.0.1:4001" in res.reasons[-1]
    assert cluster.failure(OSError("x")) == (True, "the Dask worker failed: OSError('x')")


@pytest.mark.slow
def test_an_unreachable_scheduler_is_a_clear_error_quickly():
    t0 = time.monotonic()
    with pytest.raises(SystemExit, match="cannot reach the Dask scheduler at tcp://127.0.0.1"):
        with cluster.connect(f"tcp://127.0.0.1:{free_port()}", timeout=2):
            pass
    assert time.monotonic() - t0 < 20


@pytest.mark.parametrize(
    "given, used",
    [
        ("postgresql://grader@db.example/grades", "postgresql+psycopg://grader@db.example/grades"),
        ("postgresql+psycopg://grader:pw@h:5433/g", "postgresql+psycopg://grader:pw@h:5433/g"),
        ("sqlite:////tmp/grades.db", "sqlite:////tmp/grades.db"),
    ],
)
def test_gradebook_urls_name_the_installed_driver(given, used):
    assert config.gradebook_url(given) == used


@pytest.mark.parametrize(
    "given, says",
    [
        ("grades.db", "is not a database URL SQLAlchemy knows"),
        ("mysql://u:secret@h/g", "driver is not installed"),
    ],
)
def test_a_bad_gradebook_url_is_refused_saying_why_and_hiding_the_password(given, says):
    with pytest.raises(SystemExit) as exc:
        config.gradebook_url(given)
    assert says in str(exc.value) and "secret" not in str(exc.value)


def test_an_output_folder_keeps_the_gradebook_it_was_graded_into(tmp_path):
    out = tmp_path / "out"
    merge._same_gradebook(out, None)
    merge._same_gradebook(out, None)  # the same again: fine
    with pytest.raises(SystemExit, match="holds grades merged into gradebook.db"):
        merge._same_gradebook(out, "postgresql+psycopg://g:secret@h/grades")
    other = tmp_path / "other"
    merge._same_gradebook(other, "postgresql+psycopg://g:secret@h/grades")
    assert "secret" not in (other / ".autograder" / "gradebook.txt").read_text()
    with pytest.raises(SystemExit, match=r"asks for gradebook.db"):
        merge._same_gradebook(other, None)


def test_an_instructors_own_course_config_is_kept_and_ours_follows_the_database(tmp_path):
    mine = tmp_path / "course"
    mine.mkdir()
    (mine / "nbgrader_config.py").write_text("c = get_config()\nc.Exchange.root = '/srv/x'\n")
    merge._write_course_config(mine, "postgresql+psycopg://g:pw@h/grades")
    assert "/srv/x" in (mine / "nbgrader_config.py").read_text()
    ours = tmp_path / "results"
    ours.mkdir()
    merge._write_course_config(ours, None)
    merge._write_course_config(ours, "postgresql+psycopg://g:pw@h/grades")
    text = (ours / "nbgrader_config.py").read_text()
    assert "postgresql+psycopg://g:pw@h/grades" in text
    assert (ours / "nbgrader_config.py").stat().st_mode & 0o077 == 0  # a password inside
