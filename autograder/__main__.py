"""python -m autograder grade|report|export ...

grade SUBMISSIONS --assignment ID --out DIR [options]
    Grades every learner's notebooks in SUBMISSIONS (a folder, or a .zip as a learning
    platform exports it) with nbgrader, in parallel, into the nbgrader course folder DIR:
    gradebook.db, submitted/, autograded/ and feedback/ per learner, grades.csv,
    mistakes.csv, and the class report report.html.
report DIR
    (Re)writes DIR/report.html, the class report, from a grading output folder.
export DIR --format canvas|moodle --roster ROSTER.csv
    Grades as a CSV the learning platform imports.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def command(submissions, assignment: str, out, *options: str) -> list[str]:
    """The command line of ``python -m autograder grade`` (for tests, benchmarks, scripts)."""
    return [sys.executable, "-m", "autograder", "grade", str(submissions),
            "--assignment", assignment, "--out", str(out), *options]  # fmt: skip


# grade's options: flag -> (argparse keywords). A table, so each option is documented once.
GRADE_OPTIONS: dict[str, dict] = {
    "--assignment": dict(required=True, help="assignment id, e.g. 04_affine_layer"),
    "--out": dict(type=Path, default=Path("results"), help="output course folder (default: results/)"),
    "--jobs": dict(type=int, default=os.cpu_count() or 1, help="parallel workers of the local pool (default: the number of CPUs)"),
    "--dask": dict(default=None, metavar="SCHEDULER", help="grade on a Dask cluster instead of the local pool: the scheduler's address, e.g. tcp://10.0.0.5:8786 (needs the dask extra; README: grading on a cluster)"),
    "--db": dict(default=None, metavar="URL", help="the gradebook: any SQLAlchemy URL nbgrader takes, e.g. postgresql://user@host/grades (needs the postgresql extra); default: sqlite OUT/gradebook.db"),
    "--force": dict(action="store_true", help="grade again learners already graded with the same files"),
    "--timeout": dict(type=float, default=900, help="wall-clock limit per learner in seconds (default 900)"),
    "--cell-timeout": dict(type=int, default=None, help="limit per cell in seconds (default: nbgrader_config.py's, 180)"),
    "--memory-mb": dict(type=int, default=None, help="address-space cap of each grading kernel in MiB (default 4096)"),
    "--allow-network": dict(action="store_true", help="do not cut the grading kernels off the network"),
    "--regexp": dict(default=None, help="nbgrader zip_collect style named_regexp for file names (groups student_id and file_id, optionally timestamp)"),
    "--no-feedback": dict(action="store_true", help="skip the HTML feedback"),
    "--quiet": dict(action="store_true", help="no progress bar or summary"),
    "--no-report": dict(action="store_true", help="do not write the class report (report.html) at the end"),
}  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="autograde a batch of submissions")
    g.add_argument("submissions", type=Path, help="folder or .zip of learners' notebooks")
    for flag, kwargs in GRADE_OPTIONS.items():
        g.add_argument(flag, **kwargs)
    sub.add_parser(
        "report", help="write the class report of a grading output folder", add_help=False
    )
    sub.add_parser("export", help="grades as a CSV for Canvas or Moodle", add_help=False)
    return parser


def _report(args) -> int:
    """The class report at the end of grade; 1 (grades kept) if it cannot be written."""
    from .report import write_report

    try:
        path = write_report(args.out)
    except Exception as exc:  # the grades are saved: say so, and how to try again
        print(
            f"the class report could not be written ({exc!r}); grades.csv and the "
            f"gradebook are complete. Try again: python -m autograder report {args.out}",
            file=sys.stderr,
        )
        return 1
    if not args.quiet:
        print(f"class report: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("report", "export"):  # their own options, their own parsers
        from . import export, report

        return {"report": report.main, "export": export.main}[argv[0]](argv[1:])
    args = _parser().parse_args(argv)

    from . import config
    from .batch import Options, run

    opts = Options(
        assignment=args.assignment,
        out=args.out,
        jobs=max(1, args.jobs),
        force=args.force,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        memory_mb=args.memory_mb,
        isolate_network=not args.allow_network,
        regexp=args.regexp,
        feedback=not args.no_feedback,
        quiet=args.quiet,
        dask=args.dask,
        db=config.gradebook_url(args.db) if args.db else None,
    )
    errors = run(args.submissions, opts)
    if not args.no_report and _report(args):
        return 1
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
