"""python -m autograder export: Canvas and Moodle gradebook CSVs from grades.csv and a roster."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from autograder import export  # noqa: E402

GRADES = [  # two assignments; bob has no row for the second; carol is not in the roster
    ("ada", "ada", "01_computational_graphs", "15.0", "graded"),
    ("ada", "ada", "02_chain_rule", "7.5", "graded"),
    ("Bob Smith", "Bob_Smith", "01_computational_graphs", "9.0", "partial"),
    ("carol", "carol", "01_computational_graphs", "12.0", "graded"),
    ("dan", "dan", "02_chain_rule", "0", "error"),
]
ROSTER = [
    {
        "learner": "ada",
        "name": "Lovelace, Ada",
        "canvas_id": "101",
        "sis_user_id": "S1",
        "sis_login_id": "ada@uni",
        "section": "A",
        "email": "ada@uni.edu",
        "idnumber": "1",
    },
    {
        "learner": "Bob_Smith",
        "name": "Smith, Bob",
        "canvas_id": "102",
        "sis_user_id": "S2",
        "sis_login_id": "bob@uni",
        "section": "B",
        "email": "bob@uni.edu",
        "idnumber": "2",
    },
    {
        "learner": "dan",
        "name": "Dee, Dan",
        "canvas_id": "103",
        "sis_user_id": "S3",
        "sis_login_id": "dan@uni",
        "section": "A",
        "email": "dan@uni.edu",
        "idnumber": "3",
    },
    {
        "learner": "eve",
        "name": "Eve",
        "canvas_id": "104",
        "sis_user_id": "S4",
        "sis_login_id": "eve@uni",
        "section": "B",
        "email": "eve@uni.edu",
        "idnumber": "4",
    },
]


def _csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def results(tmp_path) -> Path:
    out = tmp_path / "results"
    out.mkdir()
    _csv(
        out / "grades.csv",
        [
            {
                "learner": who,
                "student_id": s,
                "assignment": a,
                "score": sc,
                "max_score": "15",
                "status": st,
                "reason": "the grader failed" if st == "error" else "",
                "sandbox": "bwrap",
            }
            for who, s, a, sc, st in GRADES
        ],
    )
    _csv(tmp_path / "roster.csv", ROSTER)
    return out


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder.export", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_canvas_layout_and_warnings(results):
    proc = run(str(results), "--format", "canvas", "--roster", str(results.parent / "roster.csv"))
    assert proc.returncode == 0, proc.stderr
    rows = read(results / "canvas_grades.csv")
    assert rows[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        "01_computational_graphs",
        "02_chain_rule",
    ]
    assert rows[1] == ["Lovelace, Ada", "101", "S1", "ada@uni", "A", "15.0", "7.5"]
    assert rows[2] == ["Smith, Bob", "102", "S2", "bob@uni", "B", "9.0", ""]  # by student_id
    assert rows[3][5:] == ["", ""] and rows[4][5:] == ["", ""]  # dan: error; eve: nothing
    err = proc.stderr
    assert (
        "carol (student_id carol) is graded for 01_computational_graphs but not in the "
        "roster" in err
    )
    assert "Bob_Smith: in the roster, no grade for 02_chain_rule" in err
    assert "eve: in the roster, no grade for 01_computational_graphs" in err
    assert "dan: 02_chain_rule not graded (status error" in err
    assert "4 learners x 2 assignments" in proc.stdout and "6 warning(s)" in proc.stdout


def test_moodle_layout_by_email_and_idnumber(results, tmp_path):
    roster = str(results.parent / "roster.csv")
    out = tmp_path / "m.csv"
    proc = run(str(results), "--format", "moodle", "--roster", roster, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = read(out)
    assert rows[0] == ["Email address", "01_computational_graphs", "02_chain_rule"]
    assert rows[1] == ["ada@uni.edu", "15.0", "7.5"] and len(rows) == 1 + len(ROSTER)
    assert "carol" in proc.stderr
    proc = run(
        str(results),
        "--format",
        "moodle",
        "--roster",
        roster,
        "--moodle-id",
        "idnumber",
        "--out",
        str(out),
    )
    assert proc.returncode == 0 and read(out)[0][0] == "ID number" and read(out)[1][0] == "1"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "blackboard"], "unknown format 'blackboard'"),
        (["--format", "canvas", "--roster", "nope.csv"], "roster not found"),
        (["--format", "moodle", "--moodle-id", "phone"], "unknown --moodle-id 'phone'"),
    ],
)
def test_bad_input_exits_2_with_a_message(results, args, message):
    if "--roster" not in args:
        args = [*args, "--roster", str(results.parent / "roster.csv")]
    proc = run(str(results), *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (results / "canvas_grades.csv").exists()


def test_missing_grades_or_roster_column(results, tmp_path):
    proc = run(
        str(tmp_path / "empty"),
        "--format",
        "canvas",
        "--roster",
        str(results.parent / "roster.csv"),
    )
    assert proc.returncode == 2 and "grades.csv not found" in proc.stderr
    bad = _csv(tmp_path / "bad.csv", [{"who": "ada", "email": "a@b"}])
    with pytest.raises(export.BadInput, match="has no column learner"):
        export.table(results, bad, "moodle")
