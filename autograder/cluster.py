"""Grading on a Dask cluster: ``python -m autograder grade ... --dask tcp://HOST:8786``.

The batch stays where it is (it finds the learners, merges every result into the one
gradebook, writes the CSV files); only the grading moves: one task per learner, through
``distributed.Client(address).get_executor()``, the same ``concurrent.futures`` interface
the local pool offers. A task carries everything a worker needs (records.Task, bundle.py);
a worker needs only the project installed (the same version: checked before the batch
starts and again by every task), bubblewrap for the sandbox, and MNIST for assignment 07.

When a worker dies in the middle of a task, the scheduler gives the task to another worker;
after ``distributed.scheduler.allowed-failures`` + 1 deaths (the README says to start the
scheduler with 1: two tries) it gives up, and the learner gets a row with status ``error``
and the reason (:func:`failure`).
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass

from . import bundle


@dataclass
class WorkerInfo:
    host: str
    version: str  # bundle.project_version()
    sandbox: str  # "bwrap", or "none (why not)"


def _worker_info() -> dict:
    """Run on each worker (Client.run): where it is, its code, its sandbox."""
    from .kernel import jail

    sandbox = jail.status(os.environ.get("AUTOGRADER_BWRAP", "bwrap"))[1]
    return dict(host=socket.gethostname(), version=bundle.project_version(), sandbox=sandbox)


def _allowed_failures(dask_scheduler=None) -> int:
    return int(dask_scheduler.allowed_failures)


@contextlib.contextmanager
def connect(address: str, timeout: float = 30.0):
    """A distributed Client of the scheduler at address; exits 2 saying why if it cannot."""
    try:
        from distributed import Client
    except ImportError:
        raise SystemExit(
            "--dask needs Dask's distributed package: pip install -e '.[dask]'"
        ) from None
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SystemExit(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        yield client
    finally:
        client.close()


def workers(client) -> dict[str, WorkerInfo]:
    """Every worker of the cluster now: address -> what it reports."""
    found = client.run(_worker_info, on_error="return")
    return {
        addr: WorkerInfo(**info)
        if isinstance(info, dict)
        else WorkerInfo("?", f"none: it cannot run the grader ({info!r})", "?")
        for addr, info in found.items()
    }


def check(client, say, wait: float = 30.0) -> dict[str, WorkerInfo]:
    """The workers, once at least one is there; exits 2 if none comes within wait seconds,
    or if any runs another version of the project than this one."""
    try:
        client.wait_for_workers(1, timeout=wait)
    except (TimeoutError, OSError):
        raise SystemExit(
            f"the Dask scheduler at {client.scheduler.address} has no workers "
            f"(waited {wait:g} s): start some with `dask worker {client.scheduler.address}`"
        ) from None
    found = workers(client)
    mine = bundle.project_version()
    wrong = {a: w for a, w in found.items() if w.version != mine}
    if wrong:
        lines = "\n".join(f"  {a} on {w.host}: version {w.version}" for a, w in wrong.items())
        raise SystemExit(
            f"Dask workers that do not run this version of the project ({mine}):\n{lines}\n"
            "install the batch's checkout on every worker (pip install -e '.[dask]' in it)"
        )
    tries = client.run_on_scheduler(_allowed_failures) + 1
    unjailed = sorted({w.sandbox for w in found.values() if w.sandbox != "bwrap"})
    say(
        f"Dask cluster at {client.scheduler.address}: {len(found)} worker(s) on "
        f"{len({w.host for w in found.values()})} host(s); a learner is tried on up to "
        f"{tries} worker(s) if workers die"
    )
    if unjailed:
        say("WARNING: some Dask workers have NO sandbox: " + "; ".join(unjailed))
    return found


def executor(client):
    """The concurrent.futures Executor of the cluster (tasks are never deduplicated)."""
    return client.get_executor(pure=False)


def failure(exc: BaseException) -> tuple[bool, str]:
    """(whether to submit the task once more, the reason) for a task that raised exc."""
    from distributed.scheduler import KilledWorker

    if isinstance(exc, KilledWorker):  # the scheduler has retried it already
        last = getattr(exc.last_worker, "address", exc.last_worker)
        return False, (
            f"the Dask workers grading this learner died {exc.allowed_failures + 1} "
            f"time(s), the last one {last}"
        )
    return True, f"the Dask worker failed: {exc!r}"
