"""python -m autograder grade SUBMISSIONS --assignment ID --out DIR [options]

Grades every learner's notebooks in SUBMISSIONS (a folder, or a .zip as a learning
platform exports it) with nbgrader, in parallel, into the nbgrader course folder DIR:
gradebook.db, submitted/, autograded/ and feedback/ per learner, and grades.csv.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="autograde a batch of submissions")
    g.add_argument("submissions", type=Path, help="folder or .zip of learners' notebooks")
    g.add_argument("--assignment", required=True, help="assignment id, e.g. 04_affine_layer")
    g.add_argument("--out", type=Path, default=Path("results"),
                   help="output course folder (default: results/)")
    g.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel workers (default: the number of CPUs)")
    g.add_argument("--force", action="store_true",
                   help="grade again learners already graded with the same files")
    g.add_argument("--timeout", type=float, default=900,
                   help="wall-clock limit per learner in seconds (default 900)")
    g.add_argument("--cell-timeout", type=int, default=None,
                   help="limit per cell in seconds (default: nbgrader_config.py's, 180)")
    g.add_argument("--memory-mb", type=int, default=None,
                   help="address-space cap of each grading kernel in MiB (default 4096)")
    g.add_argument("--allow-network", action="store_true",
                   help="do not cut the grading kernels off the network")
    g.add_argument("--regexp", default=None,
                   help="nbgrader zip_collect style named_regexp for file names "
                        "(groups student_id and file_id, optionally timestamp)")
    g.add_argument("--no-feedback", action="store_true", help="skip the HTML feedback")
    g.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    args = parser.parse_args(argv)

    from .batch import Options, run
    opts = Options(assignment=args.assignment, out=args.out, jobs=max(1, args.jobs),
                   force=args.force, timeout=args.timeout, cell_timeout=args.cell_timeout,
                   memory_mb=args.memory_mb, isolate_network=not args.allow_network,
                   regexp=args.regexp, feedback=not args.no_feedback, quiet=args.quiet)
    errors = run(args.submissions, opts)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
