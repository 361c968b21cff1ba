"""Batch grading, fairly compared: stock nbgrader against ``python -m autograder grade``.

A synthetic class (the reference solutions varied: renamed variables, comments, blank
lines, in some a mistake) is graded on this machine in one run, in up to five ways
(--rows), feedback made in each:

1. stock ``nbgrader autograde`` then ``nbgrader generate_feedback``, per assignment;
2. the same as 2 concurrent processes, each on half the class in its own course copy;
3. ours, ``python -m autograder grade --jobs 2`` per assignment (everything included:
   finding the files, the template course, grading, feedback, the merge; not the class
   report, ``--no-report``, which stock nbgrader has no counterpart of);
4. (gone) ours ``--jobs 2`` without the pool workers' warm-up: it measured what the warm-up
   saved, 10 % of the wall time, under the 15 % a speed device must save to stay; the
   warm-up was removed and row 3 is now what row 4 was (README: its last figures);
5. ours ``--dask`` on a local cluster of 2 workers (``dask worker --nthreads 1``), started
   before the timed commands and not counted: an instructor's cluster is already running.

Every command runs with OPENBLAS_NUM_THREADS=1 and the course's limits. The table shows
medians over --repeat runs (interleaved 1 2 3 5 1 2 ...); exit 1 if any score differs.

    python benchmarks/bench_autograde.py                 # 40 learners x 01 and 04, rows 1-5
    python benchmarks/bench_autograde.py --learners 4 --assignments 01_computational_graphs
    python benchmarks/bench_autograde.py --rows 3 --scale 20,200   # cost per notebook vs size
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from autograder import config  # noqa: E402
from autograder.__main__ import command as grade_command  # noqa: E402
from autograder.template import strip_markers  # noqa: E402

ROWS = {
    1: "stock nbgrader, sequential",
    2: "stock nbgrader, 2 processes",
    3: "ours --jobs 2",
    5: "ours --dask, 2 workers",
}
EXPORT = {"ExportPlugin.to": "export.csv"}  # nbgrader export writes the totals here
Cmd = tuple[list[str], Path, dict]  # command, working folder, environment


def vary(source: str, rng: random.Random) -> str:
    """A learner's version of the reference: same meaning, different text; sometimes wrong."""
    out = source
    for old, new in [("dout", "grad_out"), ("dx", "grad_x"), ("out", "result")]:
        if rng.random() < 0.5:
            out = re.sub(rf"(?<![\w.]){old}(?!\w)(?!\s*=\s*None)", new, out)
    lines = out.split("\n")
    for _ in range(rng.randint(0, 3)):
        i = rng.randrange(len(lines) + 1)
        indent = re.match(r"\s*", lines[i - 1] if 0 < i <= len(lines) else "").group()
        lines.insert(i, indent + rng.choice(["# my notes", "", "# TODO tidy up"]))
    out = "\n".join(lines)
    if rng.random() < 0.25:  # a mistake: one sign flipped somewhere in the code
        candidates = [m.start() for m in re.finditer(r"(?<=[^\s=(])\s\*\s", out)]
        if candidates:
            i = rng.choice(candidates)
            out = out[:i] + " * -1 * " + out[i + 3 :]
    return out


def make_class(root: Path, assignments: list[str], learners: int, seed: int) -> Path:
    """Stock course folder with release + submitted/, and returns it."""
    root.mkdir(parents=True, exist_ok=True)
    config.write_config_file(root, None, EXPORT)  # relative to its folder: copies work too
    for a in assignments:
        subprocess.run(
            ["nbgrader", "generate_assignment", a, "--force"],
            cwd=root,
            check=True,
            capture_output=True,
        )
    rng = random.Random(seed)
    for a in assignments:
        release = nbformat.read(root / "release" / a / f"{a}.ipynb", as_version=4)
        ref = nbformat.read(SOLUTIONS / a / f"{a}.ipynb", as_version=4)
        answers = {
            c.metadata.nbgrader["grade_id"]: strip_markers(c.source)
            for c in ref.cells
            if c.metadata.get("nbgrader", {}).get("solution")
        }
        for k in range(learners):
            nb = nbformat.from_dict(nbformat.reads(nbformat.writes(release), as_version=4))
            for c in nb.cells:
                gid = c.metadata.get("nbgrader", {}).get("grade_id")
                if c.metadata.get("nbgrader", {}).get("solution") and gid in answers:
                    c.source = vary(answers[gid], rng)
            dest = root / "submitted" / f"learner{k:03d}" / a / f"{a}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, dest)
    return root


def course_copy(master: Path, dest: Path, learners: list[str]) -> Path:
    """A fresh stock course: master's config, gradebook and release, these learners only."""
    dest.mkdir(parents=True)
    shutil.copy(master / "nbgrader_config.py", dest)
    shutil.copy(master / "gradebook.db", dest)
    shutil.copytree(master / "release", dest / "release")
    for name in learners:
        shutil.copytree(master / "submitted" / name, dest / "submitted" / name)
    return dest


def submissions(master: Path, a: str, learners: list[str], dest: Path) -> Path:
    """The folder ours grades: dest/<learner>/<a>.ipynb, as a learning platform gives it."""
    for name in learners:
        (dest / name).mkdir(parents=True)
        shutil.copy(master / "submitted" / name / a / f"{a}.ipynb", dest / name)
    return dest


class Peaks(threading.Thread):
    """Samples every 0.1 s the RSS of the running commands' process trees and of extra (the
    Dask cluster's processes): the largest *worker* process, and the largest of all.

    workers: "command" (the commands: nbgrader), "pool" (the commands' children forked from
    them: the local pool's workers) or a list of pids (the Dask workers)."""

    def __init__(self, workers: str | list[int], extra: list[int]) -> None:
        super().__init__(daemon=True)
        self.workers, self.extra, self.commands = workers, extra, []
        self.worker_mb = self.all_mb = 0.0
        self.done = threading.Event()

    def sample(self) -> None:
        try:
            commands = [psutil.Process(pid) for pid in self.commands]
            roots = commands + [psutil.Process(pid) for pid in self.extra]
            workers = self._workers(commands)
            tree = roots + [c for p in roots for c in p.children(recursive=True)]
        except psutil.Error:  # a command ended while the tree was walked: next time
            return
        self.worker_mb = max(self.worker_mb, _rss_mb(workers))
        self.all_mb = max(self.all_mb, _rss_mb(tree))

    def _workers(self, commands: list[psutil.Process]) -> list[psutil.Process]:
        if self.workers == "command":
            return commands
        if self.workers == "pool":  # forked: the same command line as their parent
            return [c for p in commands for c in p.children() if c.cmdline() == p.cmdline()]
        return [psutil.Process(pid) for pid in self.workers]

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.sample()


def _each(f, procs) -> list:
    """f(p) for each process p still there."""
    out = []
    for p in procs:
        try:
            out.append(f(p))
        except psutil.Error:
            pass
    return out


def _rss_mb(procs: list[psutil.Process]) -> float:
    """The largest RSS of procs, MiB."""
    return max([0.0, *_each(lambda p: p.memory_info().rss / 2**20, procs)])


def _cpu(pids: list[int]) -> float:
    """user+sys CPU seconds of these processes, with those of their reaped children."""
    times = _each(lambda pid: psutil.Process(pid).cpu_times(), pids)
    return sum(t.user + t.system + t.children_user + t.children_system for t in times)


def _children_cpu(keep: list[int]) -> float:
    """user+sys CPU seconds of every reaped descendant, once the orphans handed to this
    process (its subreaper) are reaped too: stock's kernels, whose bwrap is killed, and
    whatever a stopped cluster leaves. keep: children not to wait for (the cluster)."""
    strays = [c for c in psutil.Process().children() if c.pid not in keep]
    _, alive = psutil.wait_procs(strays, timeout=10)
    if alive:
        print(f"WARNING: still running, their CPU time not counted: {alive}")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Measure:
    wall: float  # s
    cpu: float  # s, user+sys of every process involved, kernels included
    worker_mb: float  # peak RSS of one worker process
    all_mb: float  # peak RSS of any process, kernels included


def run_stage(stage: list[Cmd], logs: Path, peaks: Peaks) -> None:
    """Start the stage's commands together and wait for all of them; exit if one fails.
    Their output goes to logs-0.log, logs-1.log, ..."""
    procs = []
    for i, (cmd, cwd, environ) in enumerate(stage):
        name = logs.with_name(f"{logs.name}-{i}.log")
        with open(name, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=cwd, env=environ, stdout=out, stderr=out)
        procs.append((cmd, name, proc))
    peaks.commands = [proc.pid for _, _, proc in procs]
    for cmd, name, proc in procs:
        if proc.wait() != 0:
            tail = name.read_text(errors="replace")[-3000:]
            sys.exit(f"failed: {' '.join(map(str, cmd))}\n{tail}")


def measure(stages: list[list[Cmd]], logs: Path, workers, cluster=None) -> Measure:
    """Run the stages one after the other (the commands of a stage concurrently), their
    output in the folder logs.

    workers: as :class:`Peaks` takes it; cluster: a running DaskCluster, whose processes
    (not this one's reaped children) count their CPU time in their own cpu_times()."""
    extra = cluster.pids() if cluster else []
    peaks = Peaks(cluster.worker_pids() if cluster else workers, extra)
    cpu0, cluster0 = _children_cpu(extra), _cpu(extra)
    peaks.start()
    t0 = time.perf_counter()
    try:
        for s, stage in enumerate(stages):
            run_stage(stage, logs / f"stage{s}", peaks)
    finally:
        peaks.done.set()
        peaks.join()
    wall = time.perf_counter() - t0
    cpu = _children_cpu(extra) - cpu0 + _cpu(extra) - cluster0
    return Measure(wall, cpu, peaks.worker_mb, peaks.all_mb)


def totals(path: Path) -> dict[tuple[str, str], float]:
    """(student id, assignment) -> total, from nbgrader export's CSV or ours' grades.csv."""
    with open(path, newline="") as f:
        return {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(f)}


def stock(ctx: Context, row: int, learners: list[str], where: Path) -> tuple[Measure, dict]:
    """Rows 1 and 2; the totals from nbgrader export, untimed (grades.csv is in ours' time)."""
    half = len(learners) // 2
    parts = [learners] if row == 1 else [learners[:half], learners[half:]]
    courses = [course_copy(ctx.master, where / f"course{i}", p) for i, p in enumerate(parts)]
    steps = ("autograde", "generate_feedback")
    stages = [
        [(["nbgrader", s, a], c, dict(os.environ)) for c in courses]
        for a in ctx.assignments
        for s in steps
    ]
    m = measure(stages, where, "command")
    scores = {}
    for c in courses:
        subprocess.run(["nbgrader", "export"], cwd=c, check=True, capture_output=True)
        scores.update(totals(c / "export.csv"))
    return m, scores


def ours(ctx: Context, row: int, learners: list[str], where: Path) -> tuple[Measure, dict]:
    """Rows 3 and 5: one grade command per assignment, into one output folder."""
    out = where / "out"
    subs = {a: submissions(ctx.master, a, learners, where / "subs" / a) for a in ctx.assignments}
    environ = dict(os.environ)

    def stages(*opts: str) -> list[list[Cmd]]:
        return [
            [(grade_command(subs[a], a, out, *opts, "--quiet", "--no-report"), REPO, environ)]
            for a in ctx.assignments
        ]

    if row == 5:
        from services import DaskCluster  # tests/services.py

        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        with DaskCluster(workers=2, env={"PYTHONPATH": path}) as c:
            m = measure(stages("--dask", c.address), where, None, cluster=c)
    else:
        m = measure(stages("--jobs", "2"), where, "pool")
    return m, totals(out / "grades.csv")


@dataclass
class Context:
    master: Path  # the stock course folder of the whole synthetic class
    assignments: list[str]
    tmp: Path
    keep: bool  # keep each run's folders


def run_once(ctx: Context, row: int, learners: list[str], k: int) -> tuple[Measure, dict]:
    """Run k: row for these learners; its measures and its totals by (learner, assignment)."""
    where = ctx.tmp / f"run{k:02d}-row{row}-{len(learners)}"
    where.mkdir()
    m, scores = (stock if row <= 2 else ours)(ctx, row, learners, where)
    if not ctx.keep:
        shutil.rmtree(where, ignore_errors=True)
    return m, scores


def median(ms: list[Measure]) -> Measure:
    return Measure(*(statistics.median(getattr(m, k) for m in ms) for k in Measure.__annotations__))


HEADER = ("", "wall s", "s/nb", "CPU s/nb", "worker MB", "max MB", "vs row 2", "vs row 3")
LINE = "{:34} {:>8} {:>6} {:>9} {:>10} {:>7} {:>9} {:>9}"
NOTES = """\
s/nb: wall s per notebook. CPU s/nb: user+sys of every process, kernels included.
worker MB: the largest RSS of an nbgrader process, a pool worker or a Dask worker;
max MB: of any process, kernels included. vs row 2: throughput against stock 2-way;
vs row 3: the Dask overhead against the local pool."""
DASK_NOTE = """
row 5: the Dask cluster (scheduler, 2 workers) was started before the timed commands and
is not counted: an instructor's cluster is already running."""


def table(results: dict[int, list[Measure]], n: int) -> None:
    """Print the table of medians (n notebooks per run) and the targets."""
    med = {row: median(ms) for row, ms in results.items()}
    print("\n" + LINE.format(*HEADER))
    for row, m in med.items():
        ratio = f"{med[2].wall / m.wall:.2f}x" if 2 in med else "-"
        over = f"{100 * (m.wall / med[3].wall - 1):+.1f}%" if row == 5 and 3 in med else ""
        cells = [f"{m.wall:.1f}", f"{m.wall / n:.2f}", f"{m.cpu / n:.2f}"]
        cells += [f"{m.worker_mb:.0f}", f"{m.all_mb:.0f}", ratio, over]
        print(LINE.format(f"{row} {ROWS[row]}", *cells))
    print(NOTES + (DASK_NOTE if 5 in med else ""))
    met = {True: "met", False: "NOT met"}
    if 2 in med and 3 in med:
        x = med[2].wall / med[3].wall
        print(f"target: row 3 >= 1.5x the throughput of row 2: {x:.2f}x, {met[x >= 1.5]}")
    if 3 in med and 5 in med:
        over = 100 * (med[5].wall / med[3].wall - 1)
        print(f"target: Dask overhead (row 5 vs row 3) <= 10%: {over:+.1f}%, {met[over <= 10]}")


def same_scores(runs: list[tuple[str, dict, set]]) -> bool:
    """Whether each run (label, totals, the submissions it should have graded) graded all
    of its submissions, and every run gave each submission the same total."""
    seen: dict = {}
    bad = [
        f"{label}: {len(s)} submissions graded of {len(want)}; differ: {sorted(set(s) ^ want)[:5]}"
        for label, s, want in runs
        if set(s) != want
    ]
    for label, scores, _ in runs:
        for key, score in scores.items():
            first = seen.setdefault(key, (label, score))
            if first[1] != score:
                bad.append(f"{key}: {first[0]} {first[1]:g}, {label} {score:g}")
    print(f"scores identical for all {len(seen)} submissions: {not bad}")
    for line in bad[:20]:
        print("  ", line)
    return not bad


def load(when: str) -> None:
    """Print the 1-minute load average; warn before the runs when it is above 0.5."""
    avg = os.getloadavg()[0]
    busy = when == "before" and avg > 0.5
    print(f"load average {when}: {avg:.2f}" + (" WARNING: busy, the times are unfair" * busy))


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


DEFAULT = ["01_computational_graphs", "04_affine_layer"]
OPTIONS = {  # flag -> argparse keywords
    "--learners": dict(type=int, default=40, help="learners in the class (default 40)"),
    "--assignments": dict(
        nargs="+", default=DEFAULT, help=f"handed in (default: {' '.join(DEFAULT)})"
    ),
    "--rows": dict(type=_ints, default=[1, 2, 3, 5], help="which rows (default 1,2,3,5)"),
    "--scale": dict(type=_ints, default=[], help="also row 3 alone at learner counts, e.g. 20,200"),
    "--repeat": dict(
        type=int, default=1, help="runs of each row, interleaved; medians (default 1)"
    ),
    "--seed": dict(type=int, default=0, help="the synthetic class's random seed (default 0)"),
    "--keep": dict(action="store_true", help="keep the temporary folders"),
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for flag, kwargs in OPTIONS.items():
        parser.add_argument(flag, **kwargs)
    args = parser.parse_args()
    if not set(args.rows) <= set(ROWS):
        parser.error(f"--rows: pick from {sorted(ROWS)}")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # as in CI
    if sys.platform == "linux":  # PR_SET_CHILD_SUBREAPER: see _children_cpu
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
    import nbgrader

    print(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}, nbgrader {nbgrader.__version__}"
    )
    load("before")
    tmp = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        size = max([args.learners, *args.scale])
        master = make_class(tmp / "master", args.assignments, size, args.seed)
        return run_all(Context(master, args.assignments, tmp, args.keep), args)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run_all(ctx: Context, args) -> int:
    """Every run (rows interleaved, then the --scale runs), the table, the score check."""
    per_learner = len(ctx.assignments)
    names = [f"learner{k:03d}" for k in range(max([args.learners, *args.scale]))]
    n = args.learners * per_learner
    print(
        f"synthetic class: {args.learners} learners x {per_learner} assignments "
        f"({', '.join(ctx.assignments)}) = {n} notebooks; feedback made in every row"
    )
    results: dict = {("row", r): [] for r in args.rows} | {("scale", k): [] for k in args.scale}
    runs: list[tuple[str, dict, set]] = []
    rows, scale = [("row", r) for r in args.rows], [("scale", k) for k in args.scale]
    for k, (kind, x) in enumerate(rows * args.repeat + scale * args.repeat):
        row, learners = (x, names[: args.learners]) if kind == "row" else (3, names[:x])
        m, scores = run_once(ctx, row, learners, k)
        results[kind, x].append(m)
        want = {(name, a) for name in learners for a in ctx.assignments}
        runs.append((f"{kind} {x} run {len(results[kind, x])}", scores, want))
    load("after")
    table({r: results["row", r] for r in args.rows}, n)
    if args.scale:
        per = {k: median(results["scale", k]).wall / (k * per_learner) for k in args.scale}
        for k, s in per.items():
            print(f"row 3 at {k * per_learner} notebooks: {s:.2f} s per notebook")
        print(f"cost per notebook, largest / smallest class: {per[max(per)] / per[min(per)]:.2f}")
    return 0 if same_scores(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
