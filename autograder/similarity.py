"""Pairs of learners whose own answer-cell code is near-identical, for a human to look at.

Only what a learner wrote counts. For every answer cell (a code cell whose trusted nbgrader
metadata says ``solution: true``) of the graded notebook, :func:`normalise` keeps the tokens
Python's :mod:`tokenize` finds on the lines the learner wrote and drops:

* every line that is, stripped of indentation, a line of the given template of that cell
  (``class MulLayer:``, the docstring, ``# YOUR CODE HERE``, ``raise NotImplementedError()``),
  so two learners are never alike because of what they were given;
* comments, docstrings (a logical line of string literals only), blank lines, indentation.

Names are then renamed by order of first appearance (``v0``, ``v1``, ... across all answer
cells of the notebook), except Python keywords, builtins (``len``, ``range``, ...) and
``self``. Attribute names count as names: ``self.cache`` and ``self.mem`` are the same code,
but ``dout * self.x`` and ``dout * self.y`` after ``self.x = x; self.y = y`` are not, so a
consistent renaming hides nothing and swapping two names is still seen. Numbers, strings and
operators stay as written; each statement ends in a ``;`` token. Code tokenize cannot read
(an unclosed bracket) falls back to words and single punctuation characters.

The measure is :class:`difflib.SequenceMatcher`'s ``ratio`` over the two learners' token
sequences (all answer cells of a notebook, in notebook order): 2 x matching tokens / total
tokens, 1.0 for the same code. A pair at or above :data:`THRESHOLD` is reported with the
answer cells that are identical after normalising. The reference solution is normalised the
same way; a pair is shown as ``reference`` ("both match the reference solution") when both
learners' code equals it, and as ``near_reference`` when both are at or above
:data:`REFERENCE_THRESHOLD` against it: the exercises are short, many answers are the textbook
one with a slip or two, and two learners making the same slip in it have not copied. Only
``similar`` pairs are flags. Nothing here changes a grade.

Why not ``copydetect`` (installed, maintained): its filter turns every name, attribute and
function into one letter (``V``, ``F``) and fingerprints k-grams of the filtered characters.
On these answers (a few lines per cell) that makes ``dx = dout * self.y`` and the mistaken
``dx = dout * self.x`` identical (measured: similarity 1.0 with its default k = 25), and at a
k small enough for 5-line answers (k = 5) two differently written correct answers score
0.87-0.95. It also reads files from disk and reports in its own HTML. Token sequences with a
renaming that keeps which name is which, compared by difflib, separate those cases.

The comparison is over all pairs of one assignment, O(n^2) ratios; ``quick_ratio`` upper
bounds skip most of the pairs below the threshold (notebook 1: 32 learners in 0.2 s, 128 in
4 s, so about 4 minutes for 1,000).
"""

from __future__ import annotations

import builtins
import difflib
import io
import itertools
import keyword
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .template import strip_markers

#: A pair is reported at or above this ratio (0..1). Measured on notebook 1: copies with
#: comments added, a blank line or names changed score 1.0; correct answers written
#: independently, in styles of their own, score at most 0.57 against each other.
THRESHOLD = 0.9
#: Both learners at least this alike to the reference: their likeness is the reference's
#: (the reference with one to four slips scores 0.87-0.99 against it on notebook 1).
REFERENCE_THRESHOLD = 0.8
#: A learner whose own code has fewer tokens than this (an answer left blank) is not compared.
MIN_TOKENS = 12
_KEEP = (
    frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins)) | {"self"}
)
_SKIP = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}
_WORDS = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|\S")


@dataclass
class Answer:
    """One learner's own code for one assignment.

    tokens: all answer cells, normalised together (one renaming); cells: grade_id ->
    that cell's tokens, normalised on its own (to name identical cells).
    """

    learner: str
    student_id: str
    tokens: list[str]
    cells: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Pair:
    """Two learners of one assignment whose code is alike. kind: similar | reference |
    near_reference (see the module docstring); same_cells: the answer cells identical after
    normalising; ratio_ref_a/b: each one's ratio against the reference solution."""

    assignment: str
    a: Answer
    b: Answer
    ratio: float
    kind: str
    same_cells: list[str]
    ratio_ref_a: float
    ratio_ref_b: float


def _raw_tokens(source: str) -> list[tuple[int, int, str]]:
    """(type, line, text) of every token; a fallback of words when tokenize gives up."""
    out: list[tuple[int, int, str]] = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(source).readline):
            out.append((t.type, t.start[0], t.string))
        return out
    except (tokenize.TokenError, IndentationError, SyntaxError):
        words = []
        for no, line in enumerate(source.splitlines(), 1):
            code = line.split("#", 1)[0]
            words += [
                (tokenize.NAME if w[0].isalpha() or w[0] == "_" else tokenize.OP, no, w)
                for w in _WORDS.findall(code)
            ]
            words.append((tokenize.NEWLINE, no, "\n"))
        return words


def _statements(tokens: list[tuple[int, int, str]]) -> list[list[tuple[int, int, str]]]:
    """The tokens grouped into logical lines (each ends with its NEWLINE, if any)."""
    lines, current = [], []
    for tok in tokens:
        if tok[0] in _SKIP:
            continue
        current.append(tok)
        if tok[0] == tokenize.NEWLINE:
            lines.append(current)
            current = []
    if current:
        lines.append(current)
    return lines


def normalise(source: str, template: str = "", names: dict[str, str] | None = None) -> list[str]:
    """The learner's own tokens of one cell, normalised (see the module docstring).

    template: the given cell, whose lines are dropped. names: the renaming so far (updated),
    to normalise several cells of one learner together.
    """
    given = {line.strip() for line in template.splitlines() if line.strip()}
    own = {no for no, line in enumerate(source.splitlines(), 1) if line.strip() not in given}
    names = {} if names is None else names
    out: list[str] = []
    for stmt in _statements(_raw_tokens(source)):
        kept = [t for t in stmt if t[1] in own and t[0] != tokenize.NEWLINE]
        if not kept or all(t[0] == tokenize.STRING for t in kept):
            continue  # the template's line, a blank, or a docstring
        for kind, _, text in kept:
            if kind == tokenize.NAME and text not in _KEEP:
                text = names.setdefault(text, f"v{len(names)}")
            out.append(text)
        out.append(";")
    return out


def answer_cells(nb: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> source of every answer cell (trusted metadata only), in notebook order."""
    cells = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and meta.get("grade_id"):
            cells[meta["grade_id"]] = cell.source
    return cells


def make_answer(
    learner: str, student_id: str, cells: dict[str, str], templates: dict[str, str]
) -> Answer:
    """Normalise one learner's answer cells (grade_id -> source) against the templates."""
    names: dict[str, str] = {}
    tokens: list[str] = []
    per_cell = {}
    for gid, source in cells.items():
        tokens += normalise(source, templates.get(gid, ""), names)
        per_cell[gid] = normalise(source, templates.get(gid, ""))
    return Answer(learner, student_id, tokens, per_cell)


def _ratio(a: list[str], b: list[str], floor: float = 0.0) -> float:
    """SequenceMatcher ratio; 0 when a cheap upper bound is already below floor."""
    m = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if m.real_quick_ratio() < floor or m.quick_ratio() < floor:
        return 0.0
    return m.ratio()


def similar_pairs(
    assignment: str,
    answers: list[Answer],
    reference: Answer | None,
    threshold: float = THRESHOLD,
    min_tokens: int = MIN_TOKENS,
    reference_threshold: float = REFERENCE_THRESHOLD,
) -> list[Pair]:
    """Every pair at or above threshold, most similar first (see the module docstring)."""
    usable = [a for a in answers if len(a.tokens) >= min_tokens]
    ref = reference.tokens if reference else None
    to_ref = {a.student_id: _ratio(a.tokens, ref) if ref else 0.0 for a in usable}
    pairs = []
    for a, b in itertools.combinations(usable, 2):
        r = _ratio(a.tokens, b.tokens, threshold)
        if r < threshold:
            continue
        ra, rb = to_ref[a.student_id], to_ref[b.student_id]
        if ref is not None and a.tokens == ref and b.tokens == ref:
            kind = "reference"
        elif ref is not None and min(ra, rb) >= reference_threshold:
            kind = "near_reference"
        else:
            kind = "similar"
        same = [g for g, toks in a.cells.items() if toks and toks == b.cells.get(g)]
        pairs.append(Pair(assignment, a, b, r, kind, same, ra, rb))
    pairs.sort(key=lambda p: (-p.ratio, p.a.learner, p.b.learner))
    return pairs


def _cells_of(path: Path) -> dict[str, str]:
    return answer_cells(nbformat.read(path, as_version=4)) if path.is_file() else {}


def class_answers(
    results: Path, assignment: str, learners: dict[str, str], repo: Path
) -> tuple[list[Answer], Answer | None]:
    """Every graded learner's answers to one assignment, and the reference's.

    results: the grading folder (``autograded/<student_id>/<assignment>/*.ipynb``);
    learners: student_id -> name; repo: the repository (course/ and solutions/).
    """
    templates: dict[str, str] = {}
    reference: dict[str, str] = {}
    for nb in sorted((repo / "course" / assignment).glob("*.ipynb")):
        templates.update(_cells_of(nb))
    for nb in sorted((repo / "solutions" / assignment).glob("*.ipynb")):
        reference.update({g: strip_markers(s) for g, s in _cells_of(nb).items()})
    answers = []
    for sid, name in sorted(learners.items()):
        cells: dict[str, str] = {}
        for nb in sorted((results / "autograded" / sid / assignment).glob("*.ipynb")):
            cells.update(_cells_of(nb))
        if cells:
            answers.append(make_answer(name, sid, cells, templates))
    ref = make_answer("reference", "", reference, templates) if reference else None
    return answers, ref
