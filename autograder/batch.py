"""A batch from start to summary: ``python -m autograder grade``.

The parent process

1. makes (once per version of the source notebooks) the template course (template.py);
2. finds each learner's notebooks (collect/) and reads them as bytes;
3. hands one :class:`~records.Task` per learner (self-contained: bundle.py) to a
   ``concurrent.futures`` executor: a process pool by default, or a Dask cluster's
   (cluster.py); worker.py grades it there. A task whose
   worker failed is submitted once more; a second failure is a row with status ``error``;
4. merges each :class:`~records.Result`, as it arrives, into the one gradebook of the
   output course and its ``submitted/``, ``autograded/`` and ``feedback/`` folders
   (merge.py), and records the learner's :class:`~records.Row`;
5. writes ``grades.csv``, ``mistakes.csv`` and prints a summary.

Re-running the batch is safe: a learner whose files have not changed since the recorded
row is skipped (``--force`` grades again). SIGTERM or Ctrl-C stops it within seconds, the
workers' grading children and kernels with it.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from backprop.i18n import _, language, using

from . import bundle, config, merge, processes
from .records import ERROR, GRADED, INVALID, Cells, Row, Settings, Task, failed
from .template import assignment_cells, assignment_language, make_template
from .worker import grade_task

STATE = ".autograder"  # inside the output folder: records and templates


@dataclass
class Options:
    assignment: str
    out: Path
    jobs: int
    force: bool = False
    timeout: float = 900.0  # wall clock per learner, seconds
    cell_timeout: int | None = None  # per cell, seconds (None: the config's)
    memory_mb: int | None = None  # kernel address space (None: the config's)
    isolate_network: bool = True
    regexp: str | None = None
    feedback: bool = True
    quiet: bool = False
    dask: str | None = None  # a Dask scheduler's address: grade on its cluster
    db: str | None = None  # the gradebook's SQLAlchemy URL (None: sqlite in out)


@dataclass
class Batch:
    """One run's places and what it has found so far."""

    opts: Options
    out: Path
    state: Path
    url: str
    cells: Cells
    records: Path
    say: object
    names: dict[str, str]  # nbgrader id -> the learner's name as handed in
    problems: list[tuple[str, str, str]]
    graded: int = 0
    skipped: int = 0

    def record(self, row: Row) -> None:
        row.save(self.records)
        if row.status == GRADED:
            self.graded += 1
        else:
            self.problems.append((row.learner, row.status, row.reason))


def digest(notebooks: dict[str, bytes | None]) -> str:
    h = hashlib.sha256()
    for k in sorted(notebooks):
        h.update(k.encode())
        h.update(notebooks[k] or b"<none>")
    return h.hexdigest()[:16]


def run(submissions: Path, opts: Options, executor: cf.Executor | None = None) -> int:
    """Grade every learner found in submissions; returns how many the grader itself failed
    on (status "error"); learners whose work could not be graded are not counted."""
    say = (lambda *a: None) if opts.quiet else (lambda *a: print(*a, flush=True))
    import nbgrader.apps.api  # noqa: F401  (before the workers fork: they inherit it)

    sandbox = merge.sandbox_status()
    if sandbox != "bwrap":
        say(
            f"WARNING: grading kernels are NOT sandboxed here: {sandbox}. Learner code "
            "can read and write what this user can; install bubblewrap (bwrap)."
        )
    if executor is None and opts.dask:
        from . import cluster

        with cluster.connect(opts.dask) as client:
            cluster.check(client, say)
            return run(submissions, opts, cluster.executor(client))
    own, stopped = executor is None, False
    with _StopOnSignals():
        try:
            if own:  # the workers start while the template is made
                executor = cf.ProcessPoolExecutor(
                    max_workers=max(1, opts.jobs), initializer=processes.init_worker
                )
                for _ in range(max(1, opts.jobs)):
                    executor.submit(int)
            return _run(submissions, opts, executor, say)
        except _Stopped as stop:
            stopped = True
            _stop_workers(executor)
            say(
                f"\nstopped by {signal.Signals(stop.signum).name}: grading processes and "
                "kernels ended, temporary folders removed. Run the same command again to go "
                "on: learners already graded are skipped."
            )
            raise SystemExit(128 + stop.signum) from None
        finally:
            if own and executor is not None:
                executor.shutdown(wait=not stopped, cancel_futures=True)


class _Stopped(BaseException):
    """SIGTERM or SIGINT reached the batch (raised in the main thread)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _StopOnSignals:
    """While active, SIGTERM and SIGINT (Ctrl-C) raise :class:`_Stopped` in the main thread;
    once one arrived, more of them are ignored while the batch cleans up."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __enter__(self):
        self.old, self.fired = {}, False
        try:
            for sig in self.SIGNALS:
                self.old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            pass
        return self

    def _handle(self, signum, frame):
        if self.fired:
            return
        self.fired = True
        raise _Stopped(signum)

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        return False


def _stop_workers(executor) -> None:
    """End the workers (each kills its grading child, the kernel with it, and removes the
    child's scratch folder) within a few seconds, and any grading child of this process.
    A cluster's tasks are cancelled: those running finish their learner on their worker."""
    if hasattr(executor, "_client"):  # distributed's ClientExecutor
        executor.shutdown(wait=False)
        return
    procs = list((getattr(executor, "_processes", None) or {}).values())
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except (ProcessLookupError, TypeError):
            pass
    deadline = time.monotonic() + 4.0
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(1.0)
    processes.stop_children()  # a thread executor's children are this process's own


def _collect(submissions: Path, batch: Batch, work: Path):
    """The learners found in submissions; exits 2, saying why, if it cannot be read."""
    from .collect import CollectError, collect, open_submissions

    try:
        opened = open_submissions(submissions.resolve(), work / "collect")
        found, unmatched = collect(opened, list(batch.cells), batch.opts.regexp)
    except CollectError as exc:  # SUBMISSIONS itself: nothing to grade, say why
        print(f"python -m autograder grade: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    for note in unmatched:
        batch.say(f"warning: {note}")
    return opened, found


def _hidden(submissions: Path, batch: Batch, work: Path) -> list[str]:
    """Folders no grading kernel may see: the output, the sources, the submissions, ..."""
    repo = [config.ROOT / p for p in ("gradebook.db", "submitted", "autograded", "feedback")]
    mine = [batch.out, config.source_dir(), submissions.resolve(), work, *repo]
    return sorted({str(p) for p in mine})


def _settings(batch: Batch, work: Path, kernels: Path) -> Settings:
    o = batch.opts
    local = None if o.dask else (str(work / "scratch"), str(kernels))  # a cluster: its own
    return Settings(batch.cells, o.timeout, o.cell_timeout, o.memory_mb, o.isolate_network,
                    o.feedback, *(local or (None, None)), language())  # fmt: skip


def _wanted(task: Task, entry, batch: Batch) -> bool:
    """Whether task goes to a worker: refused learners are recorded here at once, unchanged
    ones skipped (unless --force)."""
    if entry.refused(task.notebooks):  # all it handed in was refused: no kernel needed
        result = failed(task, INVALID, _("nothing that could be graded was handed in"))
        name = batch.names[task.learner]
        batch.record(merge.merge(batch.url, batch.out, result, batch.cells, name))
        return False
    old = Row.load(batch.records / f"{task.learner}.json")
    if old is not None and old.digest == task.digest and not batch.opts.force:
        batch.skipped += 1
        return False
    return True


def _tasks(submissions: Path, batch: Batch, tmpl: Path, work: Path, kernels: Path) -> list:
    """One task per learner to grade."""
    opened, found = _collect(submissions, batch, work)
    hide, settings = _hidden(submissions, batch, work), _settings(batch, work, kernels)
    template, version = bundle.pack(tmpl), bundle.project_version()
    tasks = []
    for learner, entry in sorted(found.items()):
        sid = entry.folder  # collect.student_id: safe in paths, globs and the gradebook
        batch.names[sid] = learner
        notebooks = entry.read(list(batch.cells))  # None: not handed in, or refused
        task = Task(sid, batch.opts.assignment, notebooks, entry.timestamp, template, version,
                    hide, settings, entry.notes, digest(notebooks), entry.secret)  # fmt: skip
        if _wanted(task, entry, batch):
            tasks.append(task)
    opened.close()  # every notebook has been read
    return tasks


def _grade(tasks: list[Task], batch: Batch, executor) -> None:
    """Every task through the executor, each result merged as it arrives."""
    from tqdm import tqdm

    futures = {executor.submit(grade_task, t): t for t in tasks}
    tried: set[str] = set()
    bar = tqdm(
        total=len(futures),
        unit="learner",
        disable=batch.opts.quiet or not futures,
        desc=f"grading {batch.opts.assignment}",
        file=sys.stderr,
    )
    while futures:
        done, _waiting = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        for fut in done:
            task = futures.pop(fut)
            result = _result(fut, task, batch, executor, futures, tried)
            if result is None:  # submitted once more
                continue
            row = _merge(batch, result)
            batch.record(row)
            bar.set_postfix_str(f"{task.learner} {row.score:g}/{row.max_score:g}")
            bar.update()
    bar.close()


def _merge(batch: Batch, result) -> Row:
    """merge.merge; exits 3, saying why and how to go on, if the gradebook fails."""
    from sqlalchemy.exc import DBAPIError

    try:
        return merge.merge(batch.url, batch.out, result, batch.cells,
                           batch.names.get(result.learner, result.learner))  # fmt: skip
    except DBAPIError as exc:
        raise SystemExit(
            f"the gradebook {config.shown_url(batch.url)} failed while merging "
            f"{result.learner}: {str(exc).splitlines()[0]}\nEvery learner merged before is "
            "recorded: run the same command again to go on."
        ) from None


def _result(fut, task: Task, batch: Batch, executor, futures: dict, tried: set):
    """The task's result; None if it failed for the first time and was submitted again;
    a row with status error if it failed twice, or for a reason a new try cannot help."""
    try:
        return fut.result()
    except Exception as exc:  # the executor (a worker, the cluster) failed, not the grader
        again, why = _failure(exc, batch)
    if again and task.learner not in tried:
        tried.add(task.learner)
        try:
            futures[executor.submit(grade_task, task)] = task
            return None
        except Exception as exc:  # a broken pool takes nothing more
            why += f"; it could not be submitted again: {exc!r}"
    elif again:
        why += " (twice)"
    return failed(task, ERROR, why)


def _failure(exc: BaseException, batch: Batch) -> tuple[bool, str]:
    if batch.opts.dask:
        from . import cluster

        return cluster.failure(exc)
    return True, f"the worker failed: {exc!r}"


def _run(submissions: Path, opts: Options, executor, say) -> int:
    """Grade the batch in the assignment's language (reasons, verdicts, feedback)."""
    with using(assignment_language(opts.assignment)):
        return _run_batch(submissions, opts, executor, say)


def _run_batch(submissions: Path, opts: Options, executor, say) -> int:
    t_start = time.monotonic()
    out = opts.out.resolve()
    state = out / STATE
    state.mkdir(parents=True, exist_ok=True)
    tmpl = make_template(opts.assignment, state)
    batch = Batch(
        opts,
        out,
        state,
        merge.ensure_output_course(out, opts.assignment, tmpl, opts.db),
        assignment_cells(config.sqlite_url(tmpl / "gradebook.db"), opts.assignment),
        state / "records" / opts.assignment,
        say,
        {},
        [],
    )
    batch.records.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="autograder-batch-"))
    kernels = Path(tempfile.mkdtemp(prefix="autograder-kernels-"))  # not hidden: kernels live here
    try:
        tasks = _tasks(submissions, batch, tmpl, work, kernels)
        say(
            f"{opts.assignment}: {len(batch.names)} learners found, {len(tasks)} to grade"
            + (
                f", {batch.skipped} already graded (--force grades them again)"
                if batch.skipped
                else ""
            )
            + (
                f"; on the Dask cluster at {opts.dask}"
                if opts.dask
                else f"; {opts.jobs} worker{'s' if opts.jobs != 1 else ''}"
            )  # fmt: skip
        )
        _grade(tasks, batch, executor)
        rows = merge.recorded_rows(state / "records")
        merge.write_grades(out, rows)
        merge.write_mistakes(out, rows)
    except _Stopped:  # the workers go first: nothing is writing in these folders after
        _stop_workers(executor)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(kernels, ignore_errors=True)
    _summary(batch, rows, len(tasks), time.monotonic() - t_start)
    return sum(1 for _, status, _ in batch.problems if status == ERROR)


def _summary(batch: Batch, rows: list[Row], graded: int, elapsed: float) -> None:
    say, out = batch.say, batch.out
    say(
        f"\n{batch.opts.assignment}: graded {batch.graded}, with problems "
        f"{len(batch.problems)}, skipped {batch.skipped}, in {elapsed:.1f} s "
        f"({elapsed / max(1, graded):.1f} s per learner)"
    )
    for learner, status, reason in batch.problems:
        say(f"  {learner}: {status}: {reason}")
    say(
        f"grades: {out / 'grades.csv'}\nmistakes: {out / 'mistakes.csv'}\n"
        f"gradebook: {config.shown_url(batch.url)}\nformgrader: cd {out} && jupyter server "
        "--ServerApp.default_url=/formgrader "
        "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=True\n"
        f"export: cd {out} && nbgrader export  (writes nbgrader_export.csv)"
    )
    unjailed: dict[str, int] = {}
    for row in rows:
        if row.assignment == batch.opts.assignment and row.sandbox != "bwrap":
            unjailed[row.sandbox] = unjailed.get(row.sandbox, 0) + 1
    if unjailed:
        say(
            f"WARNING: {sum(unjailed.values())} learner(s) graded WITHOUT a sandbox: "
            + "; ".join(f"{why}: {n}" for why, n in unjailed.items())
            + " (the sandbox column of grades.csv)"
        )
