"""The autograder, end to end: real nbgrader, real kernels, real gradebooks.

Submissions are built here from the learner notebooks (course/, or generated from
solutions/ with nbgrader when course/ has none yet): the reference solutions, realistic
wrong answers, correct answers written differently, and hostile or broken files. Each
assignment present is graded in one batch by ``python -m autograder grade --jobs 2``
(module-scoped fixture); the tests then read grades.csv, the feedback and the gradebook.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
COURSE = REPO / "course"
sys.path.insert(0, str(REPO))

from helpers import release_notebooks, shared_mnist_dir  # noqa: E402
from hostile import hostile_cases  # noqa: E402
from submissions import GRADE_ARGS, VARIANTS, WRONG, dumps, filled, grade_ids, wrong_answer  # noqa: E402

from autograder import config  # noqa: E402
from autograder.__main__ import command as grade_command  # noqa: E402

pytestmark = pytest.mark.slow

TIMINGS: dict[str, float] = {}


def present(assignment: str) -> bool:
    return (SOLUTIONS / assignment / f"{assignment}.ipynb").is_file()


# --- the batches -------------------------------------------------------------------------------


def releases(tmp: Path, assignments: list[str]) -> dict[str, Path]:
    return release_notebooks(tmp, assignments)


def grade(
    submissions: Path, assignment: str, out: Path, *extra: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    cmd = [*grade_command(submissions, assignment, out), *GRADE_ARGS, *extra]
    return subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )


def read_csv(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {row["learner"]: row for row in csv.DictReader(f)}


class Batch:
    def __init__(self, assignment, out, proc, rows, expectations, tests, max_points, ids):
        self.assignment, self.out, self.proc, self.rows = assignment, out, proc, rows
        self.expect, self.tests, self.max_points, self.ids = expectations, tests, max_points, ids

    def row(self, name: str) -> dict:
        """The csv row of the learner built as `name` (ids in file names lose their '_')."""
        return self.rows[self.ids[name]]

    def feedback(self, learner: str) -> str:
        """The feedback page as text (tags removed: code is split into highlighted tokens)."""
        import html
        import re

        learner = self.ids.get(learner, learner)
        p = self.out / "feedback" / learner / self.assignment / f"{self.assignment}.html"
        if not p.exists():
            return ""
        page = p.read_text()
        page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
        return html.unescape(re.sub(r"<[^>]+>", "", page))

    def failed_tests(self, learner: str) -> set[str]:
        row = self.row(learner)
        return {t for t in self.tests if float(row[t]) < self.max_points[t]}


HOSTILE_IN = "04_affine_layer" if present("04_affine_layer") else "01_computational_graphs"
# All assignments present; AUTOGRADER_TEST_ASSIGNMENTS="04_affine_layer ..." picks some.
GRADED = [
    a
    for a in os.environ.get("AUTOGRADER_TEST_ASSIGNMENTS", "").split()
    or (
        "01_computational_graphs",
        "02_chain_rule",
        "03_activations",
        "04_affine_layer",
        "05_softmax_with_loss",
        "06_two_layer_net",
        "07_training_mnist",
        "08_deep_networks",
        "09_autodiff",
    )
    if present(a)
]


@pytest.fixture(scope="module")
def batches(tmp_path_factory) -> dict[str, Batch]:
    tmp = tmp_path_factory.mktemp("autograder")
    rel_paths = releases(tmp, GRADED)
    env = {}
    if "07_training_mnist" in GRADED:
        src = shared_mnist_dir()
        if src is None:
            GRADED.remove("07_training_mnist")
        else:
            data = tmp / "mnist"
            shutil.copytree(src, data)
            env["BACKPROP_DATA"] = str(data)
    result = {}
    for a in GRADED:
        release = nbformat.read(rel_paths[a], as_version=4)
        tests = grade_ids(release)
        max_points = {
            c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"])
            for c in release.cells
            if c.metadata.get("nbgrader", {}).get("grade")
        }
        subs = tmp / f"subs-{a}"
        subs.mkdir()
        expect: dict[str, object] = {}
        ids: dict[str, str] = {}

        def put(learner, data, how, expectation, ids=ids, expect=expect, subs=subs, a=a):
            # nbgrader's attempt naming takes \w+ for the id, <learner>_<x>_<nb> the part
            # before the first '_': ids in file names have no '_'
            ids[learner] = {
                "attempt": learner.replace("_", ""),
                "flat": learner.replace("_", "-"),
            }.get(how, learner)
            expect[learner] = expectation
            learner = ids[learner]
            if how == "folder":  # a folder per learner, nbgrader's layout
                p = subs / learner / a / f"{a}.ipynb"
            elif how == "renamed":  # a folder per learner, the file saved under another name
                p = subs / learner / f"{a} (1).ipynb"
            elif how == "attempt":  # nbgrader zip_collect's documented example naming
                p = subs / f"{a}_{learner}_attempt_2024-05-01-10-00-00_{a}.ipynb"
            else:  # <learner>_<anything>_<notebook>.ipynb
                p = subs / f"{learner}_upload-3_{a}.ipynb"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)

        put("reference", dumps(filled(release, a)), "folder", "full")
        if a in VARIANTS:
            put("variant", dumps(filled(release, a, VARIANTS[a])), "renamed", "full")
        for name, (edits, fails, words) in WRONG.get(a, {}).items():
            put(
                f"wrong_{name}",
                dumps(filled(release, a, wrong_answer(a, edits))),
                "attempt",
                ("wrong", fails, words),
            )
        if a == HOSTILE_IN:
            hows = ["folder", "flat", "attempt", "renamed"]
            for i, (name, (data, expectation)) in enumerate(hostile_cases(a, release).items()):
                put(name, data, hows[i % len(hows)], expectation)
            (subs / "no_notebook").mkdir()
            (subs / "no_notebook" / "answers.txt").write_text("I forgot the notebook")
            expect["no_notebook"] = "nothing"
            ids["no_notebook"] = "no_notebook"
            # the platform's export: one .zip
            archive = tmp / f"export-{a}.zip"
            with zipfile.ZipFile(archive, "w") as zf:
                for p in sorted(subs.rglob("*")):
                    zf.write(p, p.relative_to(subs))
            source = archive
        else:
            source = subs
        out = tmp / f"out-{a}"
        t0 = time.monotonic()
        proc = grade(source, a, out, env=env)
        seconds = time.monotonic() - t0
        TIMINGS[f"batch {a} ({len(expect)} learners)"] = seconds
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rows = read_csv(out / "grades.csv")
        result[a] = Batch(a, out, proc, rows, expect, tests, max_points, ids)
    yield result
    if TIMINGS:
        print(
            "\nautograder batch timings: "
            + ", ".join(f"{k}: {v:.1f} s" for k, v in TIMINGS.items())
        )


def batch_for(batches, assignment) -> Batch:
    if assignment not in batches:
        pytest.skip(f"{assignment} is not in solutions/ yet")
    return batches[assignment]


def total(row) -> float:
    return float(row["score"])


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", GRADED)
def test_reference_solution_gets_full_marks(batches, assignment):
    b = batch_for(batches, assignment)
    row = b.row("reference")
    assert total(row) == float(row["max_score"]) > 0, row
    assert row["status"] == "graded", row
    assert b.feedback("reference"), "no feedback for the reference solution"


@pytest.mark.parametrize("assignment", [a for a in GRADED if a in VARIANTS])
def test_correct_answers_written_differently_get_full_marks(batches, assignment):
    b = batch_for(batches, assignment)
    row = b.row("variant")
    assert total(row) == float(row["max_score"]), row


@pytest.mark.parametrize("assignment,mistake", [(a, m) for a in GRADED for m in WRONG.get(a, {})])
def test_wrong_answer_loses_exactly_its_checks_and_feedback_names_it(batches, assignment, mistake):
    b = batch_for(batches, assignment)
    learner = f"wrong_{mistake}"
    _, fails, words = b.expect[learner]
    assert b.failed_tests(learner) == fails, b.row(learner)
    assert total(b.row(learner)) == sum(b.max_points[t] for t in b.tests if t not in fails)
    html = b.feedback(learner)
    assert words in html, f"the feedback of {learner} does not say {words!r}"


def test_feedback_never_shows_hidden_tests(batches):
    for b in batches.values():
        hidden = hidden_only_lines(b.assignment)
        for learner in b.rows:
            html = b.feedback(learner)
            assert "BEGIN HIDDEN TESTS" not in html, learner
            leaked = [line for line in hidden if line in html]
            assert not leaked, (
                f"{b.assignment}/{learner}: hidden test lines in feedback: {leaked[:3]}"
            )


def hidden_only_lines(assignment: str) -> list[str]:
    """Distinctive lines found only inside hidden test regions (HTML-escaped as in feedback)."""
    nb = nbformat.read(SOLUTIONS / assignment / f"{assignment}.ipynb", as_version=4)
    visible, hidden = set(), set()
    for c in nb.cells:
        inside = False
        for line in c.source.split("\n"):
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            else:
                (hidden if inside else visible).add(line.strip())
    return [
        line
        for line in hidden - visible
        if len(line) > 30 and ("seed=" in line or "assert" in line)
    ]


def hostile(batches) -> Batch:
    return batch_for(batches, HOSTILE_IN)


def test_bad_and_hostile_submissions_each_get_a_row_a_score_and_a_reason(batches):
    b = hostile(batches)
    full = float(b.row("reference")["max_score"])
    control = total(b.row("control_zeros"))
    assert control < full
    problems = []
    for learner, expectation in b.expect.items():
        row = b.rows.get(b.ids[learner])
        if row is None:
            problems.append(f"{learner}: no row")
            continue
        score = total(row)
        want = {"full": full, "zeros": control, "control": control, "nothing": 0.0}.get(
            expectation if isinstance(expectation, str) else "", None
        )
        if expectation == "forward_only":
            want = b.max_points["test_affine_forward"]
        if expectation == "at_most_zeros" and score > control:
            problems.append(f"{learner}: {score} points, more than the control's {control}")
        if want is not None and score != want:
            problems.append(
                f"{learner}: {score} points, expected {want} ({expectation}); "
                f"{row['status']}: {row['reason']}"
            )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "learner,status,words",
    [
        ("invalid_json", "invalid", "invalid JSON"),
        ("empty_file", "invalid", "empty"),
        ("nbformat_5", "invalid", "nbformat 5"),
        ("nbformat_3", "graded", "converted from nbformat 3"),
        ("no_notebook", "missing", "not handed in"),
        ("deleted_tests", "graded", "missing from the submission; restored"),
        ("edited_tests", "graded", "locked cell edited; restored"),
        ("segfault", "partial", "kernel died"),
        ("infinite_loop", "partial", "time limit"),
        ("monkeypatch", "graded", "flagged for review"),
    ],
)
def test_reasons(batches, learner, status, words):
    row = hostile(batches).row(learner)
    assert row["status"] == status, row
    assert words in row["reason"], row


def test_megabytes_of_printing_are_capped(batches):
    b = hostile(batches)
    nb = (
        b.out
        / "autograded"
        / b.ids["megabytes_of_printing"]
        / b.assignment
        / f"{b.assignment}.ipynb"
    )
    assert nb.stat().st_size < 1_000_000
    assert "output truncated by the autograder" in nb.read_text()


def test_hidden_tests_cannot_be_read_from_the_kernel(batches):
    b = hostile(batches)
    autograded = (
        b.out / "autograded" / b.ids["reads_hidden_tests"] / b.assignment / f"{b.assignment}.ipynb"
    )
    cell = next(
        c
        for c in nbformat.read(autograded, as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("solution") and "glob" in c.source
    )
    printed = "".join(o.get("text", "") for o in cell.outputs)
    assert "refused:" in printed or "[" in printed  # the code ran
    assert "BEGIN HIDDEN TESTS" not in printed
    assert not [line for line in hidden_only_lines(b.assignment) if line in printed]


def test_gradebook_has_every_learner_and_matches_export(batches):
    from nbgrader.api import Gradebook

    for b in batches.values():
        with Gradebook(f"sqlite:///{b.out / 'gradebook.db'}") as gb:
            students = {s.id for s in gb.students}
            assert set(b.rows) <= students, set(b.rows) - students
            for learner, row in b.rows.items():
                assert gb.find_submission(b.assignment, learner).score == pytest.approx(
                    total(row)
                ), learner
        proc = subprocess.run(
            ["nbgrader", "export", "--to", "export.csv"], cwd=b.out, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        with open(b.out / "export.csv", newline="") as f:
            exported = {
                r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == b.assignment
            }
        assert set(exported) == set(b.rows)
        for learner, row in b.rows.items():
            assert float(exported[learner]["score"]) == pytest.approx(total(row)), learner
            assert float(exported[learner]["max_score"]) == pytest.approx(float(row["max_score"]))


def test_csv_has_a_column_per_test_cell_and_the_summary_is_printed(batches):
    for b in batches.values():
        with open(b.out / "grades.csv", newline="") as f:
            header = next(csv.reader(f))
        assert header[:5] == ["learner", "student_id", "assignment", "score", "max_score"]
        assert header[5:-3] == b.tests and header[-3:] == ["status", "reason", "sandbox"]
        assert f"{b.assignment}: graded" in b.proc.stdout
        assert "grading" in b.proc.stderr  # the tqdm progress bar


def test_running_again_skips_graded_learners_and_a_timeout_is_a_row(batches, tmp_path):
    b = batch_for(batches, GRADED[0])
    subs = tmp_path / "subs"
    release = nbformat.read(
        next((b.out / "submitted" / "reference" / b.assignment).glob("*.ipynb")), as_version=4
    )
    (subs / "reference").mkdir(parents=True)
    shutil.copy(
        next((b.out / "submitted" / "reference" / b.assignment).glob("*.ipynb")),
        subs / "reference" / f"{b.assignment}.ipynb",
    )
    # a learner whose every test cell takes all its time: over the wall-clock limit
    sol = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution")][0]
    sol.source += (
        "\nimport time\n_real_sleep = time.sleep\ndef _slow(*a, **k):\n    _real_sleep(3600)\n"
    )
    import re

    for c in release.cells:
        if c.metadata.get("nbgrader", {}).get("solution"):
            c.source = re.sub(r"(def forward\(self[^)]*\):)", r"\1\n        _slow()", c.source)
    (subs / "slowpoke").mkdir()
    (subs / "slowpoke" / f"{b.assignment}.ipynb").write_text(nbformat.writes(release))
    before = (b.out / "grades.csv").read_text()
    proc = subprocess.run(
        [
            *grade_command(subs, b.assignment, b.out),
            "--jobs",
            "2",
            "--timeout",
            "12",
            "--cell-timeout",
            "5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 already graded" in proc.stdout
    rows = read_csv(b.out / "grades.csv")
    assert rows["reference"] == read_csv_text(before)["reference"]
    assert rows["slowpoke"]["status"] == "timeout" and total(rows["slowpoke"]) == 0
    assert "longer than 12" in rows["slowpoke"]["reason"]
    # the kernel went with it: no grading kernel is left running
    time.sleep(1)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "autograder/kernel/launcher.py" not in ps and "/run/grading/launcher.py" not in ps


def read_csv_text(text: str) -> dict[str, dict]:
    import io

    return {row["learner"]: row for row in csv.DictReader(io.StringIO(text))}


def test_nbgraders_own_commands_grade_the_same_with_the_course_config(batches, tmp_path):
    """Instructors run nbgrader autograde / generate_feedback / export themselves: the
    course's configuration gives them the same scores, guard and feedback as the batch."""
    b = hostile(batches)
    learners = [b.ids[n] for n in ("reference", "monkeypatch", "deleted_tests", "os_exit")]
    for learner in learners:
        shutil.copytree(b.out / "submitted" / learner, tmp_path / "submitted" / learner)
    config.write_config_file(tmp_path)
    for cmd in (
        ["generate_assignment", b.assignment, "--force"],
        ["autograde", b.assignment],
        ["generate_feedback", b.assignment],
        ["export", "--to", "export.csv"],
    ):
        proc = subprocess.run(
            ["nbgrader", *cmd],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if k != "AUTOGRADER_ZYGOTE"},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "export.csv", newline="") as f:
        scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
    assert scores == {learner: total(b.rows[learner]) for learner in learners}
    page = (
        tmp_path / "feedback" / b.ids["reference"] / b.assignment / f"{b.assignment}.html"
    ).read_text()
    assert "BEGIN HIDDEN TESTS" not in page
