"""Batch grading: stock sequential ``nbgrader autograde`` against ``python -m autograder grade``.

A synthetic class (the reference solutions with random variations: renamed variables,
comments, blank lines, and in some a mistake) is graded twice on this machine in the same
run:

1. stock nbgrader: ``nbgrader autograde <assignment>`` over a course folder holding every
   submission (the course's nbgrader_config.py, so both grade the same way), one
   assignment after the other; then ``nbgrader generate_feedback`` too, since our command
   also makes feedback;
2. ours: ``python -m autograder grade <folder> --assignment <a> --jobs N`` per assignment
   (everything included: finding the files, the template, grading, feedback, the merge).

It prints both times, the speed-up, the cost per notebook, and checks that every learner
got the same score both ways (nbgrader export against our grades.csv).

    python benchmarks/bench_autograde.py                       # 40 learners, 01 and 04
    python benchmarks/bench_autograde.py --learners 20 --assignments 01_computational_graphs
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
sys.path.insert(0, str(REPO))

from autograder import config  # noqa: E402
from autograder.__main__ import command as grade_command  # noqa: E402
from autograder.template import strip_markers  # noqa: E402


def course_config(root: Path) -> str:
    return config.config_file(
        root, config.sqlite_url(root / "gradebook.db"), {"ExportPlugin.to": "export.csv"}
    )


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
    (root / "nbgrader_config.py").write_text(course_config(root))
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


def run(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    present = (
        sorted(p.name for p in SOLUTIONS.iterdir() if (p / f"{p.name}.ipynb").is_file())
        if SOLUTIONS.is_dir()
        else []
    )
    default = [a for a in ("01_computational_graphs", "04_affine_layer") if a in present]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", type=int, default=40)
    parser.add_argument(
        "--assignments",
        nargs="*",
        default=default,
        help=f"default: {' '.join(default)} (present: {' '.join(present)})",
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args()
    if not args.assignments:
        sys.exit("no assignments in solutions/ yet")

    tmp = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        stock = make_class(tmp / "stock", args.assignments, args.learners, args.seed)
        n = args.learners * len(args.assignments)
        print(
            f"synthetic class: {args.learners} learners x {len(args.assignments)} assignments "
            f"({', '.join(args.assignments)}) = {n} notebooks; {os.cpu_count()} CPUs; "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )

        t_stock = sum(run(["nbgrader", "autograde", a], stock) for a in args.assignments)
        t_feedback = sum(run(["nbgrader", "generate_feedback", a], stock) for a in args.assignments)
        run(["nbgrader", "export"], stock)

        out = tmp / "ours"
        t_ours = 0.0
        for a in args.assignments:
            subs = tmp / "subs" / a
            for d in (stock / "submitted").iterdir():
                src = d / a / f"{a}.ipynb"
                (subs / d.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(src, subs / d.name / f"{a}.ipynb")
            t_ours += run([*grade_command(subs, a, out), "--jobs", str(args.jobs), "--quiet"], REPO)

        with open(stock / "export.csv", newline="") as f:
            theirs = {
                (r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(f)
            }
        with open(out / "grades.csv", newline="") as f:
            ours = {(r["learner"], r["assignment"]): float(r["score"]) for r in csv.DictReader(f)}
        same = theirs == ours
        full = sum(1 for k, v in ours.items() if v == max(ours.values()))
        print(
            f"stock nbgrader autograde, sequential:     {t_stock:8.1f} s  "
            f"({t_stock / n:.2f} s per notebook)"
        )
        print(
            f"  + nbgrader generate_feedback:           {t_stock + t_feedback:8.1f} s  "
            f"({(t_stock + t_feedback) / n:.2f} s per notebook)"
        )
        print(
            f"python -m autograder grade --jobs {args.jobs}:      {t_ours:8.1f} s  "
            f"({t_ours / n:.2f} s per notebook, feedback included)"
        )
        print(f"speed-up over autograde alone:            {t_stock / t_ours:8.2f}x")
        print(f"speed-up over autograde + feedback:       {(t_stock + t_feedback) / t_ours:8.2f}x")
        print(
            f"scores identical for all {len(ours)} submissions: {same} ({full} with the top score)"
        )
        if not same:
            diff = {
                k: (theirs.get(k), ours.get(k))
                for k in set(theirs) | set(ours)
                if theirs.get(k) != ours.get(k)
            }
            print("differences (stock, ours):", diff)
            sys.exit(1)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
