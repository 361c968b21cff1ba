"""The Korean edition: each ``<assignment>_ko`` notebook is its English twin in Korean.

Parity: the same cells in the same order (types, ids, nbgrader metadata: grade_ids, points,
locked flags), test cells with the same code (comments may be Korean), other code cells with
the same code but for comments and display strings, and one extra pair of lines in the setup
cell (the first code cell), ``set_language("ko")``. Markdown is Korean. The terms are the glossary's
(lib/backprop/locale/glossary.ko.tsv), each spelled one way. The seeds' mistakes stay
corrected. That the Korean notebooks run, fail unanswered and regenerate equal is
tests/test_notebooks.py's work (it takes every folder of solutions/).
"""

from __future__ import annotations

import csv
import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest
from backprop import i18n

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS, COURSE = REPO / "solutions", REPO / "course"
ENGLISH = sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and not p.name.endswith("_ko"))
KOREAN = [f"{a}_ko" for a in ENGLISH]
SETUP_LINES = ("from backprop.i18n import set_language", 'set_language("ko")')
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _nb(tree: Path, assignment: str):
    return nbformat.read(tree / assignment / f"{assignment}.ipynb", as_version=4)


def _pairs():
    for tree in (SOLUTIONS, COURSE):
        for en, ko in zip(ENGLISH, KOREAN, strict=True):
            yield pytest.param(tree, en, ko, id=f"{tree.name}/{ko}")


def _tokens(source: str, *, keep_strings: bool) -> list[tuple[int, str]]:
    """The code's tokens without comments (and without the text of strings, unless kept)."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL):
            continue
        text = tok.string
        if not keep_strings and tok.type == tokenize.STRING:
            text = "<str>"
        if not keep_strings and tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            text = "<str>"
        out.append((tok.type, text))
    return out


def _without_language_lines(source: str) -> str:
    lines = source.split("\n")
    kept = [line for line in lines if line.split("#")[0].strip() not in SETUP_LINES]
    return "\n".join(kept)


def _cell_meta(cell) -> dict:
    """A cell's metadata without nbgrader's checksum of its source (course/ has one)."""
    meta = dict(cell.metadata)
    if "nbgrader" in meta:
        meta["nbgrader"] = {k: v for k, v in meta["nbgrader"].items() if k != "checksum"}
    return meta


def _first_code(nb) -> int:
    """The index of the setup cell: the first code cell, which imports what the notebook uses."""
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")


def test_every_assignment_has_a_korean_twin():
    missing = [ko for ko in KOREAN if not (SOLUTIONS / ko / f"{ko}.ipynb").is_file()]
    assert not missing, f"no Korean notebook for {missing}"


@pytest.mark.parametrize("tree, en, ko", list(_pairs()))
def test_the_korean_notebook_has_the_same_cells_and_code(tree, en, ko):
    english, korean = _nb(tree, en), _nb(tree, ko)
    assert i18n.notebook_language(korean.metadata) == "ko"
    meta = {k: v for k, v in korean.metadata.items() if k != "backprop"}
    assert meta == dict(english.metadata)
    assert len(korean.cells) == len(english.cells), f"{ko}: another number of cells"
    for index, (e, k) in enumerate(zip(english.cells, korean.cells, strict=True)):
        where = f"{tree.name}/{ko} cell {index} ({e.metadata.get('nbgrader', {}).get('grade_id')})"
        assert k.cell_type == e.cell_type, where
        assert k.get("id") == e.get("id"), where
        assert _cell_meta(k) == _cell_meta(e), f"{where}: other metadata (grade_id, points, locks)"
        nbg = e.metadata.get("nbgrader", {})
        if e.cell_type == "markdown":
            if re.search(r"[A-Za-z]{3}", re.sub(r"\$[^$]*\$|`[^`]*`", "", e.source)):
                assert HANGUL.search(k.source), f"{where}: markdown not translated"
            continue
        if e.cell_type != "code":
            assert k.source == e.source, where
            continue
        source = _without_language_lines(k.source) if index == _first_code(korean) else k.source
        if nbg.get("grade") and not nbg.get("solution"):  # a test cell: the same code exactly
            assert _tokens(source, keep_strings=True) == _tokens(e.source, keep_strings=True), (
                f"{where}: a test cell's code differs (only comments may)"
            )
        else:  # locked code and answer cells: the same code; comments and strings may differ
            assert _tokens(source, keep_strings=False) == _tokens(e.source, keep_strings=False), (
                f"{where}: the code differs (only comments and display strings may)"
            )


@pytest.mark.parametrize("tree", [SOLUTIONS, COURSE], ids=lambda t: t.name)
@pytest.mark.parametrize("ko", KOREAN)
def test_the_setup_cell_sets_korean(tree, ko):
    nb = _nb(tree, ko)
    setup = nb.cells[_first_code(nb)]
    lines = [line.split("#")[0].strip() for line in setup.source.split("\n")]
    assert lines[: len(SETUP_LINES)] == list(SETUP_LINES)


# --- the glossary ---------------------------------------------------------------------------


def _glossary() -> list[dict]:
    path = i18n.LOCALE_DIR / "glossary.ko.tsv"
    rows = [
        line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")
    ]
    return list(csv.DictReader(rows, delimiter="\t"))


def _korean_texts() -> dict[str, str]:
    """Every Korean text of the edition, by where it is: markdown, comments and strings of
    the Korean notebooks, README.ko.md and the catalog's translations."""
    from babel.messages.pofile import read_po

    texts = {}
    for ko in KOREAN:
        path = SOLUTIONS / ko / f"{ko}.ipynb"
        if not path.is_file():
            continue
        for index, cell in enumerate(_nb(SOLUTIONS, ko).cells):
            texts[f"{ko} cell {index}"] = cell.source
    readme = REPO / "README.ko.md"
    if readme.is_file():
        texts["README.ko.md"] = readme.read_text(encoding="utf-8")
    po = i18n.LOCALE_DIR / "ko" / "LC_MESSAGES" / "backprop.po"
    with open(po, "rb") as f:
        for m in read_po(f, locale="ko"):
            if m.id:
                texts[f"catalog: {m.id[:50]!r}"] = m.string
    return texts


def test_the_glossary_is_well_formed():
    rows = _glossary()
    assert len(rows) >= 30
    english = [r["english"] for r in rows]
    assert len(english) == len(set(english)), "an English term twice"
    for r in rows:
        assert HANGUL.search(r["korean"]), r
        if r["avoid"]:
            re.compile(r["avoid"])
            assert not re.search(r["avoid"], r["korean"]), f"{r['korean']} avoids itself"


def test_no_term_is_spelled_another_way():
    texts = _korean_texts()
    found = []
    for r in _glossary():
        if not r["avoid"]:
            continue
        pattern = re.compile(r["avoid"])
        for where, text in texts.items():
            for m in pattern.finditer(text):
                found.append(f"{where}: {m.group(0)!r} (the glossary says {r['korean']!r})")
    assert not found, "\n".join(found[:40])


def test_every_term_the_english_edition_uses_is_used_in_korean():
    english = " ".join(
        c.source for a in ENGLISH for c in _nb(SOLUTIONS, a).cells if c.cell_type == "markdown"
    ).lower()
    korean = " ".join(_korean_texts().values())
    unused = [
        f"{r['english']} -> {r['korean']}"
        for r in _glossary()
        if re.search(rf"\b{re.escape(r['english'])}", english) and r["korean"] not in korean
    ]
    assert not unused, f"terms the English notebooks use, never used in Korean: {unused}"


# --- the seeds' mistakes, corrected in Korean as in English ---------------------------------


def test_backpropagation_is_not_called_reinforcement_learning():
    for where, text in _korean_texts().items():
        for sentence in re.split(r"(?<=[.!?。])\s+|\n", text):
            if "강화학습" in sentence:
                assert re.search("아니|아닙|않", sentence), f"{where}: {sentence}"
    intro = _nb(SOLUTIONS, "07_training_mnist_ko").cells[0].source
    assert "강화학습" in intro and "지도 학습" in intro


def test_the_power_rule_example_is_right():
    text = " ".join(c.source for c in _nb(SOLUTIONS, "02_chain_rule_ko").cells)
    squashed = re.sub(r"\s+", "", text)
    assert r"\frac{d}{dx}x^5=5x^4" in squashed
    assert not re.search(r"x\^5=2x(?!\^)", squashed.replace("f'(x)", ""))


# --- plots ----------------------------------------------------------------------------------


def _strings(source: str) -> list[str]:
    return [
        tok.string
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.STRING
    ]


@pytest.mark.parametrize("ko", KOREAN)
def test_no_plot_label_mixes_korean_with_a_formula(ko):
    """matplotlib draws a string with ``$...$`` entirely with mathtext, from one font that has
    no Hangul (backprop.i18n.use_hangul_font): Korean there would show as boxes. Korean
    labels write their symbols in Unicode instead (x₀, ∂L/∂x, 10⁻⁷)."""
    mixed = [
        f"cell {index}: {text}"
        for index, cell in enumerate(_nb(SOLUTIONS, ko).cells)
        if cell.cell_type == "code"
        for text in _strings(cell.source)
        if HANGUL.search(text) and re.search(r"\$[^$\n]+\$", text)
    ]
    assert not mixed, "\n".join(mixed)
