"""The class report (autograder/report.py) and the similarity flags (autograder/similarity.py).

The class is report_class.py's: 32 learners of notebook 1 with planted mistakes, copies, a
renamed pair, correct answers written differently, a crash and a hang. A fast test builds a
results folder by hand (the interface ``grade`` writes); the slow one grades the class for
real, once per module, and checks that the report counts exactly what was planted, again
after a re-run and after ``--force``; the browser test opens the page in Chromium.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report_class as rc  # noqa: E402

REPO = rc.REPO
sys.path.insert(0, str(REPO))
from autograder import report, similarity  # noqa: E402
from autograder.__main__ import command as grade_command  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
GRADE = ["--jobs", "2", "--no-feedback", "--timeout", "120", "--cell-timeout", "6", "--quiet"]


# --- similarity, unit by unit ------------------------------------------------------------------


def test_normalise_drops_template_comments_docstrings_and_renames_consistently():
    template = rc.REF["mul_layer_impl"].split("    def forward")[0]
    a = (
        "class MulLayer:\n    def forward(self, x, y):\n        '''doc'''\n"
        "        self.x = x  # c\n        return x * y\n"
    )
    b = (
        "class MulLayer:\n    def forward(self, p, q):\n\n"
        "        self.p = p\n        return p * q\n"
    )
    assert similarity.normalise(a, template) == similarity.normalise(b, template)
    toks = similarity.normalise(a, template)
    assert "MulLayer" not in toks and "doc" not in " ".join(toks) and "#" not in toks
    assert toks[:3] == ["def", "v0", "("]  # names replaced, keywords and self kept
    assert "self" in toks


def test_normalise_sees_swapped_names_and_survives_broken_code():
    ok = "self.x = x\nself.y = y\ndx = dout * self.y\n"
    swapped = "self.x = x\nself.y = y\ndx = dout * self.x\n"
    assert similarity.normalise(ok) != similarity.normalise(swapped)
    assert similarity.normalise("dy = -dout * (self.y ** 2\n")[:2] == ["v0", "="]


def planted_answers():
    nb = nbformat.read(rc.COURSE_NB, as_version=4)
    templates = similarity.answer_cells(nb)
    answers = [similarity.make_answer(x.name, x.name, rc.sources(x), templates) for x in rc.CLASS]
    return answers, similarity.make_answer("reference", "", rc.REF, templates)


@pytest.mark.slow
def test_pairs_flag_copies_and_renamed_not_honest_and_mark_reference():
    answers, ref = planted_answers()
    pairs = similarity.similar_pairs(rc.ASSIGNMENT, answers, ref)
    flagged = {frozenset({p.a.learner, p.b.learner}) for p in pairs if p.kind == "similar"}
    assert flagged == rc.FLAGGED
    kinds = {frozenset({p.a.learner, p.b.learner}): p.kind for p in pairs}
    assert kinds[frozenset({"reference_a", "reference_b"})] == "reference"
    assert not [p for p in pairs if {p.a.learner, p.b.learner} & set(rc.HONEST_NAMES)]
    copies = next(p for p in pairs if {p.a.learner, p.b.learner} == {"copy_a", "copy_b"})
    assert copies.same_cells == list(rc.REF) and copies.ratio == 1.0  # all 5, normalised


# --- the report from a hand-made results folder ----------------------------------------------


def _row(learner: rc.Learner, points: dict[str, float], failing: set[str], status="graded"):
    cells = {g: (0.0 if g in failing else p) for g, p in points.items()}
    return {
        "learner": learner.name,
        "student_id": _sid(learner),
        "assignment": rc.ASSIGNMENT,
        "score": sum(cells.values()),
        "max_score": sum(points.values()),
        **cells,
        "status": status,
        "reason": "",
        "sandbox": "bwrap",
    }


def _sid(learner: rc.Learner) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", learner.name)


#: where each planted key fails (a test cell and a check), as mistakes.csv would say
WHERE = {
    "no_dout": ("test_mul_backward", "MulLayer: dx"),
    "not_swapped": ("test_mul_backward", "MulLayer: dy"),
    "dy_from_mul": ("test_fan_out", "FanOut: dy"),
    "multiplied": ("test_add_backward", "AddLayer: dx"),
    "mismatch": ("test_fan_out", "FanOut: dx"),
    "not_squared": ("test_div_layer", "DivLayer: dy"),
    "swapped": ("test_div_layer", "DivLayer: dx"),
    "sign": ("test_div_layer", "DivLayer: dy"),
    "from_input": ("test_exp_layer", "ExpLayer: dx"),
    "exp_of_dout": ("test_exp_layer", "ExpLayer: dx"),
    "power_rule": ("test_exp_layer", "ExpLayer: dx"),
    "state_changed": ("test_exp_layer", "ExpLayer: backward twice"),
    "mutated_dout": ("test_exp_layer", "ExpLayer: dout unchanged"),
}


def handmade_results(out: Path) -> Path:
    """A results folder as `grade` writes it, from the planted truth."""
    points = report.cell_points(rc.ASSIGNMENT)
    rows, mistakes = [], []
    for learner in rc.CLASS:
        folder = out / "autograded" / _sid(learner) / rc.ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(rc.notebook(learner), folder / f"{rc.ASSIGNMENT}.ipynb")
        failing = {WHERE[k][0] for k in learner.mistakes}
        base = {
            "learner": learner.name,
            "student_id": _sid(learner),
            "assignment": rc.ASSIGNMENT,
            "notebook": rc.ASSIGNMENT,
        }
        for key in sorted(learner.mistakes):
            cell, check = WHERE[key]
            mistakes.append(
                {
                    **base,
                    "cell": cell,
                    "check": check,
                    "mistake": key,
                    "message": f"{check}: FAIL <{key}> & more",
                }
            )
        if learner.crash:
            cell = learner.crash[0]
            failing.add(cell)
            key = learner.crash[1][0]
            mistakes.append(
                {**base, "cell": cell, "check": "", "mistake": key, "message": f"{key}: <{cell}>"}
            )
        rows.append(
            _row(
                learner,
                points,
                failing,
                "partial" if learner.crash and "timeout" in learner.crash[1] else "graded",
            )
        )
    _write_csv(out / "grades.csv", rows)
    _write_csv(out / "mistakes.csv", mistakes)
    return out


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def counted(summary: report.Summary) -> dict[str, set[str]]:
    """mistake key -> learners, named and unnamed (``mismatch``: no cause named) alike."""
    out: dict[str, set[str]] = {}
    for m in summary.mistakes + summary.unnamed:
        out.setdefault(m.key, set()).update(m.learners)
    return out


def check_report(results: Path) -> str:
    """Assert the report of results counts what was planted; return its HTML."""
    (s,) = report.summarise(results)
    assert counted(s) == rc.expected_mistakes()
    ranks = [len(m.learners) for m in s.mistakes]
    assert ranks == sorted(ranks, reverse=True)
    assert {m.key for m in s.unnamed} == {"mismatch"}  # listed apart from the named ones
    crashed: dict[str, set[tuple[str, str]]] = {}
    for m in s.crashes:
        for learner in m.learners:
            if m.key != "not_run":
                crashed.setdefault(learner, set()).add((m.checks[0].split(":")[0], m.key))
    assert set(crashed) == {x.name for x in rc.CLASS if x.crash}
    for learner in rc.CLASS:
        if learner.crash:
            ((cell, key),) = crashed[learner.name]
            assert cell == learner.crash[0] and key in learner.crash[1], (learner.name, key)
    assert {frozenset({p.a.learner, p.b.learner}) for p in s.flagged} == rc.FLAGGED
    assert s.alike_by_reference("reference") == (1, ["reference_a", "reference_b"])
    assert not set(s.alike_by_reference("near_reference")[1]) & set(rc.HONEST_NAMES)
    html = report.write_report(results).read_text()
    for m in s.mistakes:  # each count is on the page, in its row
        row = re.search(rf'<tr data-key="{m.key}"><td class="num count">(\d+)</td>', html)
        assert row and int(row.group(1)) == len(rc.expected_mistakes()[m.key]), m.key
    assert "<em>O'Neil" not in html and "&lt;em&gt;O&#39;Neil &amp; co" in html
    assert html.count('src="data:image/png;base64,') == 2 and "http" not in html.lower()
    scores = [float(x) for x in re.findall(r'<td class="num score">([\d.]+) / ', html)]
    assert len(scores) == len(rc.CLASS) and scores == sorted(scores, reverse=True)
    return html


@pytest.mark.slow
def test_report_of_a_handmade_folder_counts_what_was_planted(tmp_path):
    html = check_report(handmade_results(tmp_path))
    assert "FAIL &lt;no_dout&gt; &amp; more" in html
    (s,) = report.summarise(tmp_path)
    cells = {gid: (passed, of) for gid, _, passed, of in s.cells}
    assert cells["test_mul_forward"] == (len(rc.CLASS), len(rc.CLASS))
    n_mul = len(rc.expected_mistakes()["no_dout"] | rc.expected_mistakes()["not_swapped"])
    assert cells["test_mul_backward"] == (len(rc.CLASS) - n_mul, len(rc.CLASS))


@pytest.mark.slow
def test_report_without_mistakes_csv_says_so(tmp_path):
    handmade_results(tmp_path)
    (tmp_path / "mistakes.csv").unlink()
    (s,) = report.summarise(tmp_path)
    assert not s.has_mistakes and not s.mistakes
    assert (
        "No <code>mistakes.csv</code> in this folder" in report.write_report(tmp_path).read_text()
    )
    assert report.main([str(tmp_path / "nowhere")]) == 2


@pytest.mark.slow
def test_report_cli_and_a_repository_without_the_course(tmp_path, capsys):
    results = handmade_results(tmp_path / "results")
    assert report.main([str(results), "--out", str(tmp_path / "r.html")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r.html")
    (s,) = report.summarise(results, repo=tmp_path)  # no course/: points from grades.csv
    assert [(g, p) for g, p, _, _ in s.cells] == list(report.cell_points(rc.ASSIGNMENT).items())
    assert counted(s) == rc.expected_mistakes()


# --- the class graded for real -------------------------------------------------------------------


def grade(submissions: Path, out: Path, *extra: str) -> float:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    t0 = time.monotonic()
    proc = subprocess.run(
        [*grade_command(submissions, rc.ASSIGNMENT, out), *GRADE, *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    submissions = tmp_path_factory.mktemp("submissions")
    for learner in rc.CLASS:
        folder = submissions / learner.name
        folder.mkdir()
        nbformat.write(rc.notebook(learner), folder / f"{rc.ASSIGNMENT}.ipynb")
    out = tmp_path_factory.mktemp("results")
    grade(submissions, out)
    if not (out / "mistakes.csv").is_file():
        pytest.fail("grade wrote no mistakes.csv")
    return out


@pytest.mark.slow
def test_graded_class_report_counts_what_was_planted(graded):
    check_report(graded)


@pytest.mark.slow
def test_the_gradebook_keeps_the_named_mistakes_in_the_answer_cells_comments(graded):
    """mistakes.csv and the gradebook say the same: the answer cell that defines what a check
    named a mistake in carries it in its auto comment (formgrader shows it)."""
    from nbgrader.api import Gradebook

    from autograder import config

    named: dict[str, set[tuple[str, str]]] = {}
    with open(graded / "mistakes.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["mistake"] and not row["check"].startswith("the test cell"):
                named.setdefault(row["student_id"], set()).add((row["check"], row["mistake"]))
    assert named
    with Gradebook(config.sqlite_url(graded / "gradebook.db"), config.course_id()) as gb:
        for sid, found in named.items():
            snb = gb.find_submission_notebook(rc.ASSIGNMENT, rc.ASSIGNMENT, sid)
            text = "\n".join(c.auto_comment or "" for c in snb.comments)
            assert "Mistakes named by the checks" in text, sid
            for check, key in found:
                assert check in text and key in text, (sid, check, key, text)


@pytest.mark.slow
def test_regrading_leaves_counts_and_force_rebuilds(graded, tmp_path):
    submissions = graded.parent / graded.name.replace("results", "submissions")
    before = report.summarise(graded)[0]
    mtime = (graded / "mistakes.csv").stat().st_mtime_ns
    grade(submissions, graded)
    again = report.summarise(graded)[0]
    assert counted(again) == counted(before) == rc.expected_mistakes()
    # --force on a few learners (grading all again would double the cost): mistakes.csv is
    # rebuilt, theirs from the new grading and everyone else's from the kept records
    few = tmp_path / "few"
    for name in ("planted00", "copy_b", "crashes <em>O'Neil & co", "honest1"):
        (few / name).mkdir(parents=True)
        for nb in (submissions / name).iterdir():
            (few / name / nb.name).write_bytes(nb.read_bytes())
    (graded / "mistakes.csv").write_text(
        "learner,student_id,assignment,notebook,cell,check,mistake,message\n"
    )
    grade(few, graded, "--force")
    assert (graded / "mistakes.csv").stat().st_mtime_ns > mtime
    check_report(graded)


# --- the page in a real browser -----------------------------------------------------------------


@pytest.mark.browser
def test_report_opens_in_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from test_browser import CHROMIUM_ARGS

    page_path = report.write_report(handmade_results(tmp_path))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            page = context.new_page()
            page.goto(page_path.as_uri())
            images = page.locator("img")
            assert images.count() == 2
            for i in range(2):
                size = images.nth(i).evaluate(
                    "i => [i.complete, i.naturalWidth, i.getBoundingClientRect().width]"
                )
                assert size[0] and size[1] > 300 and size[2] > 300, size
            font = page.locator("table.mistakes td").first.evaluate(
                "e => parseFloat(getComputedStyle(e).fontSize)"
            )
            assert font >= 12
            assert page.locator(
                "table.mistakes tr[data-key='no_dout'] td.count"
            ).inner_text() == str(len(rc.expected_mistakes()["no_dout"]))
            assert page.locator("table.pairs tr").count() == 1 + len(rc.FLAGGED)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report-class.png"), full_page=False)
            page.locator("h3", has_text="Similar code").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "report-class-similar.png"))
            context.close()
        finally:
            browser.close()
