"""Grading one learner: :func:`grade_task`, run by a worker of the batch's executor.

The task carries all it needs (records.Task, bundle.py): the worker may be a process of
the batch's local pool or of a Dask cluster on another machine. The work runs in a forked child in a session of its own, inside a scratch course: a copy
of the template's gradebook, ``source/<assignment>/`` with only the assignment's other
files, and the learner's notebooks in ``submitted/<learner>/<assignment>/``. There the
child runs nbgrader's own ``autograde`` and ``generate_feedback`` through ``NbGraderAPI``,
reads scores and comments back from the scratch gradebook and the grader's notes from the
graded notebooks (notes.py), and sends the :class:`~records.Result` to the worker through a
pipe. Nothing here touches the output course: the batch's merge is its only writer.
On the deadline the child's whole session is killed, the kernel with it.
"""

from __future__ import annotations

import atexit
import json
import os
import pickle
import select
import shutil
import signal
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

from backprop.i18n import _, using

from . import bundle, config, notes, processes
from .flags import suspicious
from .records import (
    ERROR,
    INVALID,
    MISSING,
    PARTIAL,
    TIMEOUT,
    Grade,
    NotebookResult,
    Result,
    Task,
    failed,
    zero_grades,
)


def scratch_settings(task: Task, course: Path, db: Path):
    """The nbgrader Config of a learner's scratch course: the batch's limits applied."""
    s = task.settings
    cfg = config.course_config()
    hidden = list(cfg.GuardedExecute.get("hide_paths", [])) + list(task.hide)
    overrides = {
        "GuardedExecute.isolate_network": bool(s.isolate_network),
        "GuardedExecute.hide_paths": hidden,
        "NbGraderAPI.log_level": "WARN",
    }
    if s.cell_timeout:
        overrides["Execute.timeout"] = int(s.cell_timeout)
    if s.memory_mb:
        overrides["GuardedExecute.memory_limit_mb"] = int(s.memory_mb)
    return config.settings(course, config.sqlite_url(db), source="source", overrides=overrides)


def _hand_in(task: Task, folder: Path, result: Result) -> list[str]:
    """Write the learner's readable notebooks into folder; the ids of those written."""
    import nbformat

    from .notebooks import read_submission

    folder.mkdir(parents=True)
    valid = []
    for nb_id in task.settings.cells:
        data = task.notebooks.get(nb_id)
        result.notebooks[nb_id] = NotebookResult(
            submitted=data, grades=zero_grades(task.settings.cells, nb_id)
        )
        if data is None:
            result.reasons.append(_("{notebook}: not handed in").format(notebook=nb_id))
            continue
        s = read_submission(data)
        if s.error:
            result.reasons.append(f"{nb_id}: {s.error}")
            continue
        result.reasons += [f"{nb_id}: {r}" for r in s.repairs]
        result.flags += [f for f in suspicious(s.nb) if f not in result.flags]
        nbformat.write(s.nb, str(folder / f"{nb_id}.ipynb"))
        valid.append(nb_id)
    if task.timestamp:
        (folder / "timestamp.txt").write_text(task.timestamp)
    return valid


def _read_gradebook(task: Task, db: Path, result: Result, valid: list[str]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(config.sqlite_url(db), config.course_id()) as gb:
        for nb_id in valid:
            entry = result.notebooks[nb_id]
            try:
                snb = gb.find_submission_notebook(nb_id, task.assignment, task.learner)
            except MissingEntry:
                continue
            entry.late_penalty = snb.late_submission_penalty
            for g in snb.grades:
                entry.grades[g.name] = Grade(
                    g.auto_score, float(g.max_score), bool(g.needs_manual_grade)
                )
            entry.comments = {c.name: c.auto_comment for c in snb.comments}


def _read_files(task: Task, course: Path, result: Result, valid: list[str]) -> None:
    """The graded notebooks, their notes (notes.py) and the feedback pages."""
    import nbformat

    for nb_id in valid:
        entry = result.notebooks[nb_id]
        graded = course / "autograded" / task.learner / task.assignment / f"{nb_id}.ipynb"
        if graded.exists():
            entry.autograded = graded.read_text()
            # again on the graded notebook, where "locked" is the gradebook's word
            result.flags += [
                f for f in suspicious(nbformat.reads(entry.autograded, 4)) if f not in result.flags
            ]
            found = notes.read(json.loads(entry.autograded).get("metadata", {}))
            result.reasons += [f"{nb_id}: {p}" for p in found.problems + found.cells]
            entry.mistakes = found.mistakes
            result.sandbox = found.sandbox or result.sandbox
            if found.problems:
                result.status = PARTIAL
        html = course / "feedback" / task.learner / task.assignment / f"{nb_id}.html"
        if html.exists():
            entry.feedback = html.read_text()


def last_error(res: dict) -> str:
    """The line of an NbGraderAPI result that says what went wrong."""
    text = (res.get("error") or "") + "\n" + (res.get("log") or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "Error" in line]
    return (errors[-1] if errors else (lines[-1] if lines else "unknown error"))[:300]


def grade_in_scratch(task: Task, scratch: Path) -> Result:
    """Grade task in the scratch folder (in the forked child): autograde and feedback."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    course, db = scratch / "course", scratch / "db" / "gradebook.db"
    bundle.unpack(task.template, course)
    db.parent.mkdir()
    os.replace(course / "gradebook.db", db)
    result = Result(
        task.learner,
        task.assignment,
        "graded",
        list(task.notes),
        timestamp=task.timestamp,
        digest=task.digest,
        secret=task.secret,
    )
    valid = _hand_in(task, course / "submitted" / task.learner / task.assignment, result)
    if not valid:
        result.status = (
            MISSING if all(task.notebooks.get(n) is None for n in task.settings.cells) else INVALID
        )
        return result
    if task.settings.kernel_dir:
        os.environ["AUTOGRADER_KERNEL_DIR"] = task.settings.kernel_dir
    cfg = scratch_settings(task, course, db)
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    res = api.autograde(task.assignment, task.learner, force=True, create=True)
    if not res["success"]:
        result.status = ERROR
        result.reasons.append(_("nbgrader autograde failed: {error}").format(error=last_error(res)))
        return result
    if task.settings.feedback:
        fb = api.generate_feedback(task.assignment, task.learner, force=True)
        if not fb["success"]:
            result.reasons.append(
                _("feedback could not be made: {error}").format(error=last_error(fb))
            )
    _read_gradebook(task, db, result, valid)
    _read_files(task, course, result, valid)
    if len(valid) < len(task.settings.cells):
        result.status = PARTIAL
    return result


def grade_task(task: Task) -> Result:
    """Grade one learner; always returns a result, whatever the submission does.

    The scratch course lives in the batch's work folder (hidden from every kernel) and is
    removed here, by the worker, however the child ends.
    """
    with using(task.settings.language):
        return _grade_task(task)


def _grade_task(task: Task) -> Result:
    t0 = time.monotonic()
    wrong = bundle.version_mismatch(task.version)
    if wrong:
        return failed(task, ERROR, wrong)
    # Imported once per worker process, before the forks: every child inherits it (a local
    # pool's workers inherit it from the batch; a Dask worker imports it at its first task).
    import nbgrader.apps.api  # noqa: F401

    task = _placed(task)
    base = task.settings.scratch_base or None
    if base:
        os.makedirs(base, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="grade-", dir=base))
    try:
        return _fork_and_grade(task, scratch, t0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_OWN: dict[str, str] = {}  # a cluster worker's own folder for kernels, for its lifetime


def _placed(task: Task) -> Task:
    """task with a folder for kernels on this machine: the batch's (local pool), or else
    this worker process's own, kept across its tasks (kernels share the redacted copy of
    backprop made there) and removed when the process exits."""
    if task.settings.kernel_dir:
        return task
    if "kernels" not in _OWN:
        _OWN["kernels"] = tempfile.mkdtemp(prefix="autograder-kernels-")
        atexit.register(shutil.rmtree, _OWN["kernels"], True)
    return replace(task, settings=replace(task.settings, kernel_dir=_OWN["kernels"]))


def _child(task: Task, scratch: Path, wfd: int, worker: int, t0: float) -> None:
    """The forked child: its own session, dies with the worker, sends its result."""
    status = 0
    try:
        os.setsid()
        processes.die_with_parent(signal.SIGKILL)
        if os.getppid() != worker:  # the worker was stopped while forking
            os._exit(1)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        log = open(scratch / "log.txt", "w+b")
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            result = grade_in_scratch(task, scratch)
        except BaseException:
            last = traceback.format_exc().strip().splitlines()[-1]
            result = failed(task, ERROR, _("the grader failed: {error}").format(error=last))
        view = memoryview(pickle.dumps(replace(result, seconds=time.monotonic() - t0)))
        while view:
            view = view[os.write(wfd, view) :]
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _read_until(rfd: int, deadline: float) -> tuple[bytes, bool]:
    """What the child sent before it closed the pipe; and whether the deadline passed."""
    chunks = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"".join(chunks), True
            ready, _w, _x = select.select([rfd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(rfd, 1 << 20)
                if not chunk:
                    return b"".join(chunks), False
                chunks.append(chunk)
    finally:
        os.close(rfd)


def _fork_and_grade(task: Task, scratch: Path, t0: float) -> Result:
    rfd, wfd = os.pipe()
    worker = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _child(task, scratch, wfd, worker, t0)
    os.close(wfd)
    processes.CHILDREN[pid] = str(scratch)
    data, timed_out = _read_until(rfd, t0 + float(task.settings.timeout or 900))
    if timed_out:
        processes.kill_tree(pid)
    _pid, status = os.waitpid(pid, 0)
    processes.CHILDREN.pop(pid, None)
    seconds = time.monotonic() - t0
    if timed_out:
        return failed(
            task,
            TIMEOUT,
            _(
                "grading took longer than {seconds} s (an infinite loop that ignores "
                "interrupts?) and was stopped"
            ).format(seconds=task.settings.timeout),
            seconds,
        )
    try:
        return pickle.loads(data)
    except Exception:
        why = (
            _("killed by signal {n}").format(n=os.WTERMSIG(status))
            if os.WIFSIGNALED(status)
            else _("exit status {n}").format(n=os.WEXITSTATUS(status))
        )
        return failed(task, ERROR, _("the grading process died ({why})").format(why=why), seconds)
