"""python -m autograder export RESULTS --format canvas|moodle --roster ROSTER [--out FILE]

Writes the scores of RESULTS/grades.csv as a CSV a learning platform imports, one row per
roster entry and one column per assignment graded into RESULTS (the column is named by the
assignment id, e.g. ``01_computational_graphs``: name the platform's assignment or grade
item the same, or let the import create it).

* ``canvas``: Canvas's gradebook import layout: ``Student``, ``ID``, ``SIS User ID``,
  ``SIS Login ID``, ``Section``, then one column per assignment (points, as in
  grades.csv's ``score``). Canvas matches a row to a learner by ``ID``, ``SIS User ID`` or
  ``SIS Login ID``; fill at least one of them in the roster.
* ``moodle``: Moodle's CSV grade import: an identifier column (``Email address``,
  ``ID number`` or ``Username``, by ``--moodle-id``; in the import form, map it to the user
  field of that name) and one column per grade item.

The roster (a CSV with a header row, UTF-8) maps our learners to the platform's:

=================  =======================================================================
column             what
=================  =======================================================================
``learner``        required: grades.csv's ``learner`` (the name as handed in) or
                   ``student_id`` (nbgrader's id); either matches
``name``           Canvas ``Student`` (``Last, First``); optional
``canvas_id``      Canvas ``ID`` (the user's numeric id in Canvas)
``sis_user_id``    Canvas ``SIS User ID``
``sis_login_id``   Canvas ``SIS Login ID``
``section``        Canvas ``Section``; optional
``email``          Moodle ``Email address``
``idnumber``       Moodle ``ID number``
``username``       Moodle ``Username``
=================  =======================================================================

Learners in grades.csv missing from the roster, roster entries without a grade for an
assignment (their cell is left empty), and rows whose status is ``error`` (the grader
failed: no score; left empty) are each reported on stderr and counted in a summary line;
none is dropped silently. Exit status: 0 (also with such warnings); 2 on bad input (a
missing file, an unknown format, a roster without a ``learner`` column or without the
identifier column the format needs).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_FIELDS = ["name", "canvas_id", "sis_user_id", "sis_login_id", "section"]
MOODLE_IDS = {"email": "Email address", "idnumber": "ID number", "username": "Username"}


class BadInput(Exception):
    """Input the export cannot work with (exit status 2)."""


def _read(path: Path, what: str) -> tuple[list[str], list[dict]]:
    if not path.is_file():
        raise BadInput(f"{what} not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def table(
    results: Path, roster: Path, fmt: str, moodle_id: str = "email"
) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows, warnings) of the export; BadInput on input it cannot use."""
    if fmt not in ("canvas", "moodle"):
        raise BadInput(f"unknown format {fmt!r}: use canvas or moodle")
    fields, grades = _read(results / "grades.csv", "grades.csv")
    if not {"learner", "student_id", "assignment", "score"} <= set(fields):
        raise BadInput(
            f"{results / 'grades.csv'} lacks learner, student_id, assignment or "
            "score: is it a grades.csv of `python -m autograder grade`?"
        )
    rfields, people = _read(roster, "roster")
    need = ["learner"] + ([moodle_id] if fmt == "moodle" else [])
    if fmt == "moodle" and moodle_id not in MOODLE_IDS:
        raise BadInput(f"unknown --moodle-id {moodle_id!r}: use one of {sorted(MOODLE_IDS)}")
    missing = [c for c in need if c not in rfields]
    if missing:
        raise BadInput(
            f"the roster {roster} has no column {', '.join(missing)} "
            f"(its columns: {', '.join(rfields) or 'none'})"
        )
    assignments = sorted({g["assignment"] for g in grades})
    warnings: list[str] = []
    score: dict[tuple[str, str], str] = {}
    for g in grades:
        value = "" if g.get("status") == "error" else g["score"]
        if g.get("status") == "error":
            warnings.append(
                f"{g['learner']}: {g['assignment']} not graded (status error: "
                f"{g.get('reason', '')}); left empty"
            )
        score[(g["learner"], g["assignment"])] = score[(g["student_id"], g["assignment"])] = value
    known = {p["learner"] for p in people}
    for g in grades:
        if g["learner"] not in known and g["student_id"] not in known:
            warnings.append(
                f"{g['learner']} (student_id {g['student_id']}) is graded for "
                f"{g['assignment']} but not in the roster: not exported"
            )
    rows = []
    for p in people:
        cells = []
        for a in assignments:
            if (p["learner"], a) not in score:
                warnings.append(f"{p['learner']}: in the roster, no grade for {a}; left empty")
            cells.append(score.get((p["learner"], a), ""))
        ids = [p.get(f, "") for f in CANVAS_FIELDS] if fmt == "canvas" else [p[moodle_id]]
        if fmt == "moodle" and not p[moodle_id]:
            warnings.append(
                f"{p['learner']}: empty {moodle_id} in the roster: Moodle cannot match this row"
            )
        rows.append(ids + cells)
    header = (CANVAS_COLUMNS if fmt == "canvas" else [MOODLE_IDS[moodle_id]]) + assignments
    return header, rows, warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results", type=Path, help="the folder `grade --out` wrote")
    parser.add_argument("--format", required=True, help="canvas or moodle")
    parser.add_argument(
        "--roster",
        required=True,
        type=Path,
        help="CSV mapping our learners to the platform's (see above)",
    )
    parser.add_argument(
        "--moodle-id",
        default="email",
        help="the roster column Moodle "
        "identifies learners by: email (default), idnumber or username",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the CSV to write (default: RESULTS/<format>_grades.csv)",
    )
    args = parser.parse_args(argv)
    try:
        header, rows, warnings = table(args.results, args.roster, args.format, args.moodle_id)
    except BadInput as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    out = args.out or args.results / f"{args.format}_grades.csv"
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    for w in warnings:
        print(f"export: warning: {w}", file=sys.stderr)
    print(
        f"export: {len(rows)} learners x {len(header) - (5 if args.format == 'canvas' else 1)}"
        f" assignments written to {out}; {len(warnings)} warning(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
