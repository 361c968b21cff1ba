"""Ending grading processes for good: the child of each worker and all it started.

A worker grades each learner in a forked child (worker.py) in a session of its own; the
child starts the kernel's bwrap, which starts the kernel. On a timeout, or when the batch
stops, all of them go: :func:`kill_tree` stops every process below the child first (so none
forks away), then kills them. The registry :data:`CHILDREN` lets a stopping worker find its
child and the child's scratch folder.
"""

from __future__ import annotations

import os
import shutil
import signal

from .kernel.launcher import die_with_parent  # noqa: F401  (the one prctl; re-exported)

CHILDREN: dict[int, str] = {}  # grading children running in this process -> scratch folder


def _descendants(pid: int) -> list[int]:
    """pid and every process below it, each SIGSTOPped as it is found."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            os.kill(p, signal.SIGSTOP)
        except (ProcessLookupError, PermissionError):
            continue
        found.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            tasks = []
        for tid in tasks:  # a child belongs to the thread that started it
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split() if int(c) not in found]
            except (OSError, ValueError):
                pass
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL pid's session and every process below pid, each stopped first so that none
    forks away. Below are the kernels' bwrap: a sandbox caught while bwrap still sets it up
    would miss its parent-death signal, so it is killed here by name, not by inheritance;
    a jailed kernel is PID 1 of its namespace: whatever runs inside goes with it."""
    found = _descendants(pid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in found:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def stop_children() -> None:
    """Kill every grading child of this process with all it started (kernels and their
    jails included), wait for them, and remove their scratch folders."""
    for pid, scratch in list(CHILDREN.items()):
        kill_tree(pid)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        shutil.rmtree(scratch, ignore_errors=True)
        CHILDREN.pop(pid, None)


def stop_worker(signum, frame) -> None:
    """SIGTERM in a worker: the batch is stopping. Its grading child goes, then it ends."""
    stop_children()
    os._exit(128 + signum)


def init_worker() -> None:
    """The local pool's initializer: Ctrl-C is the batch's to handle; SIGTERM (the batch
    stopping) ends the worker's grading child, then the worker; the worker dies with the
    batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop_worker)
    die_with_parent(signal.SIGTERM)
