"""Korean feedback, where learners and instructors read it.

* In a learner's Korean notebook (a real kernel, the checks verifying in-process): each wrong
  answer of tests/submissions.py (one realistic mistake each) fails the same test cells as in
  English, and the failure names the mistake in Korean.
* Under grading: ``python -m autograder grade`` on a Korean assignment writes Korean
  verdicts into the feedback HTML and Korean reasons into grades.csv; the English assignment
  graded by the same command stays English.
* matplotlib draws Korean text with a Hangul font (no glyph is missing).
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from submissions import WRONG, dumps, filled, wrong_answer  # noqa: E402

HANGUL = re.compile(r"[\uac00-\ud7a3]")

# What the Korean feedback says for each wrong answer (the English phrase is in WRONG).
KOREAN = {
    "mul_not_swapped": "자기 입력을 사용했습니다",
    "add_forward_multiplies": "AddLayer: 실패",
    "sigmoid_backward_from_input": "입력 x를 사용했습니다",
    "relu_overwrites_input": "제자리에서 바꿨습니다",
    "dW_transposed": "정답을 전치한 것입니다",
    "x_at_dout": "backward에서 예외가 발생했습니다: ValueError",
    "db_not_summed": "배치 축(axis=0)을 따라 합을 구하십시오",
    "db_mean": "배치에 대한 dout의 평균입니다",
    "dx_not_reshaped": "형상이 (3, 8)인데, 올바른 형상은 (3, 2, 2, 2)입니다",
    "W_copied": "배열 자체를 저장하십시오",
    "softmax_no_max_shift": "각 행의 최댓값을 빼서",
    "loss_backward_missing_N": "N으로 나누는 것을 잊지 않았습니까?",
}

CASES = [
    pytest.param(a, name, edits, fails, words, id=f"{a}:{name}")
    for a, cases in WRONG.items()
    for name, (edits, fails, words) in cases.items()
]


def _run(nb, tmp_path) -> nbformat.NotebookNode:
    env_backup = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    try:
        NotebookClient(
            nb,
            timeout=300,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()
    finally:
        if env_backup is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = env_backup
    return nb


def _failures(nb) -> dict[str, str]:
    """grade_id -> the error text of each test cell that failed."""
    out = {}
    for cell in nb.cells:
        nbg = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not nbg.get("grade"):
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if errors:
            out[nbg["grade_id"]] = "\n".join(f"{e.ename}: {e.evalue}" for e in errors)
    return out


def test_every_wrong_answer_has_a_korean_phrase():
    assert set(KOREAN) == {name for cases in WRONG.values() for name in cases}


@pytest.mark.slow
@pytest.mark.parametrize("assignment, name, edits, fails, words", CASES)
def test_a_learner_reads_the_mistake_in_korean(assignment, name, edits, fails, words, tmp_path):
    ko = f"{assignment}_ko"
    nb = nbformat.read(REPO / "solutions" / ko / f"{ko}.ipynb", as_version=4)
    answers = wrong_answer(ko, edits)  # the Korean notebooks hold the same code
    nb = filled(nb, ko, answers)
    failed = _failures(_run(nb, tmp_path))
    assert set(failed) == set(fails), failed
    for gid, text in failed.items():
        if "AssertionError" in text:
            assert HANGUL.search(text), f"{gid}: not in Korean:\n{text}"
            assert "FAIL" not in text and "relative error" not in text, text
    joined = "\n".join(failed.values())
    assert KOREAN[name] in joined, joined
    if HANGUL.search(words) is None and "ValueError" not in words and "(3, " not in words:
        assert words not in joined, f"the English explanation is shown:\n{joined}"


@pytest.mark.slow
def test_the_grader_gives_korean_feedback_for_a_korean_assignment(tmp_path):
    from helpers import release_notebooks
    from test_autograder import grade, read_csv

    a = "04_affine_layer"
    ko = f"{a}_ko"
    release = nbformat.read(release_notebooks(tmp_path, [ko])[ko], as_version=4)
    subs = tmp_path / "subs"
    learners = {"reference": filled(release, ko)}
    for name in ("dW_transposed", "db_not_summed"):
        learners[name.replace("_", "-")] = filled(release, ko, wrong_answer(ko, WRONG[a][name][0]))
    for learner, nb in learners.items():
        path = subs / learner / ko / f"{ko}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(dumps(nb))
    broken = subs / "broken" / ko / f"{ko}.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text("{ not json")
    out = tmp_path / "out"
    proc = grade(subs, ko, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = read_csv(out / "grades.csv")
    assert float(rows["reference"]["score"]) == float(rows["reference"]["max_score"])
    assert "노트북이 아닙니다" in rows["broken"]["reason"], rows["broken"]
    assert rows["broken"]["status"] == "invalid"

    def feedback(learner: str) -> str:
        return (out / "feedback" / learner / ko / f"{ko}.html").read_text(encoding="utf-8")

    for learner, phrase in (("dW-transposed", KOREAN["dW_transposed"]),
                            ("db-not-summed", KOREAN["db_not_summed"])):  # fmt: skip
        assert float(rows[learner]["score"]) < float(rows[learner]["max_score"])
        page = feedback(learner)
        assert phrase in page, learner
        assert "실패" in page and "통과" in page
        assert "relative error" not in page and "FAIL " not in page


def test_korean_text_is_drawn_with_a_hangul_font(tmp_path, caplog):
    """Korean labels, the minus sign and the 10^-n of log-scale ticks all find their glyphs:
    matplotlib warns ("Glyph ... missing from font(s)") or logs ("does not have a glyph")
    for each one it draws as a box."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from backprop import i18n

    font = i18n.hangul_font()
    if font is None:
        pytest.skip("no Hangul font installed (apt install fonts-nanum)")
    old = dict(matplotlib.rcParams)
    try:
        assert i18n.use_hangul_font() == font
        fig, ax = plt.subplots()
        ax.semilogy([1, 2, 3], [1e-3, 1e-1, 10], label="기울기 크기")
        ax.set_title("역전파: 계산 그래프의 기울기 −0.5")
        ax.set_xlabel("에폭")
        ax.legend()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fig.savefig(tmp_path / "ko.png")
        plt.close(fig)
    finally:
        matplotlib.rcParams.update(old)
    assert "does not have a glyph" not in caplog.text


def test_nbgrader_autograde_takes_the_language_from_the_source_notebook(tmp_path):
    """Under nbgrader's own ``autograde`` the verdicts follow the assignment's source
    notebook; a course without the notebook (the grader's scratch course) keeps the
    language the grader runs in."""
    from backprop.i18n import using

    from autograder import config
    from autograder.preprocessors.execute import GuardedExecute

    def language(root, assignment):
        source = None if root == REPO else "source"  # a scratch course: source/ is empty
        cfg = config.settings(root, f"sqlite:///{tmp_path}/gb.db", source=source)
        ex = GuardedExecute(config=cfg)
        info = {"nbgrader": {"assignment": assignment, "notebook": assignment}}
        return ex._source_language(info)

    with using("en"):
        assert language(REPO, "04_affine_layer_ko") == "ko"
        assert language(REPO, "04_affine_layer") == "en"
        assert language(tmp_path, "04_affine_layer_ko") == "en"
    with using("ko"):
        assert language(tmp_path, "04_affine_layer_ko") == "ko"
