"""Which gradebook cell each cell of a submission is, whatever its metadata says.

:func:`gradebook_cells` reads the source notebook's cells from the gradebook;
:func:`match_cells` pairs a submission's cells with them, by ``grade_id`` where that fits,
else by content and order. RestoreCells (restore.py) then rebuilds every matched cell.
"""

from __future__ import annotations

import difflib

from .cells import RESTORED_NOTE, defined_names, parse, remove_hidden_tests

#: How alike (difflib ratio of the normalised text) a cell must be to a locked cell of the
#: same type, where the notebook's order puts it, to be taken for it.
SIMILAR = 0.8
#: Characters of each text compared by :func:`_ratio`: enough to tell; bounds the work.
_RATIO_CHARS = 5_000
#: Largest gap (its cells times the source's cells) compared cell by cell; past it (only a
#: notebook of thousands of cells gets there) the gap's cells stay the learner's own.
_GAP_PAIRS = 40_000
#: Longest code cell whose defined names are compared: no answer is that long, and
#: parsing it would only cost time.
_PARSE_CHARS = 50_000


def normalise(source: str) -> str:
    """A cell's text for comparison: whitespace runs as one space, restore notes dropped."""
    lines = [
        line
        for line in str(source).split("\n")
        if RESTORED_NOTE not in line and "was missing from the submission" not in line
    ]
    return " ".join(" ".join(lines).split())


def _bound(source: str) -> set[str]:
    """Top-level names a code cell defines (classes, functions, assignments)."""
    if len(source) > _PARSE_CHARS:
        return set()
    return defined_names(parse(source), imports=False)


def _ratio(a: str, b: str) -> float:
    """difflib's ratio of two texts, or an upper bound of it when that is below SIMILAR."""
    a, b = a[:_RATIO_CHARS], b[:_RATIO_CHARS]
    m = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if m.real_quick_ratio() < SIMILAR:
        return m.real_quick_ratio()
    quick = m.quick_ratio()  # an upper bound of ratio(), and a cheap one
    return quick if quick < SIMILAR else m.ratio()


class SourceCell:
    """What the gradebook knows of one cell of the source notebook."""

    def __init__(
        self,
        name: str,
        cell_type: str,
        source: str,
        locked: bool,
        solution: bool,
        grade: bool,
        points: float | None,
        checksum: str | None,
        task: bool = False,
    ):
        self.name, self.cell_type, self.source = name, cell_type, source or ""
        self.locked, self.solution, self.grade, self.task = locked, solution, grade, task
        self.points, self.checksum = points, checksum
        self.text = normalise(
            remove_hidden_tests(self.source) if grade and not solution else self.source
        )
        self.names = _bound(self.source) if cell_type == "code" and solution else set()

    def key(self) -> tuple[str, str]:
        """What the sequence alignment compares: an answer cell's name, else its text."""
        return ("answer", self.name) if self.solution else (self.cell_type, self.text)


def gradebook_cells(gradebook, notebook_id: str, assignment_id: str) -> list[SourceCell]:
    """The source notebook's cells in order, as the gradebook holds them."""
    source_nb = gradebook.find_notebook(notebook_id, assignment_id)
    grades = {c.name: c for c in source_nb.grade_cells}
    solutions = {c.name for c in source_nb.solution_cells}
    tasks = {c.name for c in source_nb.task_cells}
    return [
        SourceCell(
            c.name,
            c.cell_type,
            c.source,
            bool(c.locked),
            c.name in solutions,
            c.name in grades,
            float(grades[c.name].max_score) if c.name in grades else None,
            c.checksum,
            c.name in tasks,
        )
        for c in source_nb.source_cells
    ]


def claim(cell) -> str | None:
    """The grade_id a submission's cell claims in its nbgrader metadata, if any."""
    meta = cell.get("metadata", {}).get("nbgrader")
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) and gid else None


def best_path(w: list[list[float]]) -> list[tuple[int, int]]:
    """The order-keeping assignment of rows to columns with the largest total weight:
    ``(row, column)`` pairs, both increasing, each of positive weight ``w[row][column]``."""
    rows, cols = len(w), len(w[0]) if w else 0
    best = [[0.0] * (cols + 1) for _ in range(rows + 1)]
    for r in range(1, rows + 1):
        for q in range(1, cols + 1):
            take = best[r - 1][q - 1] + w[r - 1][q - 1] if w[r - 1][q - 1] > 0 else -1.0
            best[r][q] = max(best[r - 1][q], best[r][q - 1], take)
    path, r, q = [], rows, cols
    while r and q:
        if w[r - 1][q - 1] > 0 and best[r][q] == best[r - 1][q - 1] + w[r - 1][q - 1]:
            path.append((r - 1, q - 1))
            r, q = r - 1, q - 1
        elif best[r][q] == best[r - 1][q]:
            r -= 1
        else:
            q -= 1
    return path[::-1]


class _Matcher:
    """One run of :func:`match_cells`: the submission's cells as the matching sees them."""

    def __init__(self, cells: list, source: list[SourceCell]):
        self.cells, self.source = cells, source
        self.by_name = {s.name: k for k, s in enumerate(source)}
        self.claims = [claim(cell) for cell in cells]
        self.texts = [normalise(cell.get("source", "")) for cell in cells]
        self._names: dict[int, set[str]] = {}

    def key(self, i: int) -> tuple:
        """Cell i's key for the alignment (comparable with :meth:`SourceCell.key`)."""
        gid = self.claims[i]
        if gid in self.by_name and self.source[self.by_name[gid]].solution:
            return ("answer", gid)
        if not self.texts[i]:
            return ("empty", i)  # an empty cell is nobody
        return (self.cells[i].get("cell_type"), self.texts[i])

    def aligned(self) -> dict[int, tuple[str, str]]:
        """Step 1: the cells exactly where the source has them."""
        keys = [self.key(i) for i in range(len(self.cells))]
        sm = difflib.SequenceMatcher(None, keys, [s.key() for s in self.source], autojunk=False)
        return {
            a + k: (
                self.source[b + k].name,
                "id" if self.claims[a + k] == self.source[b + k].name else "content",
            )
            for a, b, n in sm.get_matching_blocks()
            for k in range(n)
        }

    def weight(self, i: int, k: int, bounded: bool) -> float:
        """How much cell i looks like source cell k (0: it is not that cell)."""
        cell, sc, text = self.cells[i], self.source[k], self.texts[i]
        if cell.get("cell_type") != sc.cell_type or not text:
            return 0.0
        if sc.solution and self.claims[i] == sc.name:
            return 3.0
        if sc.solution and not sc.locked:
            if not bounded:
                if i not in self._names:
                    self._names[i] = _bound(cell.get("source", ""))
                if not sc.names & self._names[i]:
                    return 0.0
            return 0.3 + 0.7 * _ratio(text, sc.text)
        like = _ratio(text, sc.text)
        if self.claims[i] == sc.name:
            return 1.5 + like
        return like if like >= SIMILAR else 0.0

    def gap(self, rows: list[int], cols: list[int], bounded: bool) -> dict:
        """Step 2 in one gap: the best order-keeping pairing of its cells."""
        w = [[self.weight(i, k, bounded) for k in cols] for i in rows]
        found = {}
        for r, q in best_path(w):
            i, sc = rows[r], self.source[cols[q]]
            how = (
                "id"
                if self.claims[i] == sc.name
                else "position"
                if sc.solution and not sc.locked
                else "content"
                if self.texts[i] == sc.text
                else "similar"
            )
            found[i] = (sc.name, how)
        return found

    def fill_gaps(self, result: dict) -> None:
        """Step 2: pair what lies between the aligned cells."""
        pairs = sorted((i, self.by_name[name]) for i, (name, _) in result.items())
        ends = (len(self.cells), len(self.source))
        bounds = [(-1, -1)] + pairs + [ends]
        for (a0, b0), (a1, b1) in zip(bounds, bounds[1:], strict=False):
            rows, cols = list(range(a0 + 1, a1)), list(range(b0 + 1, b1))
            if rows and cols and len(rows) * len(cols) <= _GAP_PAIRS:
                bounded = (a0, b0) != (-1, -1) or (a1, b1) != ends
                result.update(self.gap(rows, cols, bounded))

    def prefer_claimed_copies(self, result: dict) -> None:
        """Of two copies of a cell side by side (nothing matched between them), the one that
        carries the grade_id is that cell (nbgrader's DeduplicateIds leaves it on the last)."""
        for i, (name, how) in sorted(result.items()):
            if how not in ("content", "similar"):
                continue
            for j, gid in enumerate(self.claims):
                if gid != name or j in result or self.texts[j] != self.texts[i]:
                    continue
                lo, hi = min(i, j), max(i, j)
                if not any(lo < m < hi for m in result):
                    del result[i]
                    result[j] = (name, "id")
                    break

    def keep_free_claims(self, result: dict) -> None:
        """Step 3: a cell still unmatched keeps a grade_id that nothing else took."""
        taken = {name for name, _ in result.values()}
        for i, gid in enumerate(self.claims):
            if i not in result and gid in self.by_name and gid not in taken:
                result[i] = (gid, "id")
                taken.add(gid)


def match_cells(cells: list, source: list[SourceCell]) -> dict[int, tuple[str, str]]:
    """Which gradebook cell each submission cell is: ``{index: (grade_id, how)}``.

    ``how`` is ``"id"`` (its grade_id fits: an answer cell by its id, a locked cell whose
    text is the gradebook's, or one whose grade_id is the only claim on that cell),
    ``"content"`` (no or another grade_id, but the text of that locked cell where the
    order puts it), ``"similar"`` (alike, at least :data:`SIMILAR`, where the order puts
    it) or ``"position"`` (a code cell where the source has an answer cell, between the
    cells matched around it). Cells not in the result are the learner's own.

    1. A sequence alignment (``difflib.SequenceMatcher``) of the cells' keys, the
       normalised text of locked cells and the grade_id of answer cells, fixes the cells
       that are exactly where the source has them.
    2. In each gap between those, an order-keeping assignment that maximises likeness
       pairs the rest: edited or retyped locked cells, and answer cells (by position; the
       code cell most like the stub when there are several). A gap bounded by no matched
       cell at all (nothing of the notebook matches the source) takes an answer cell
       only if it defines a name the stub defines.
    3. What is left keeps its grade_id if that names a cell nothing else took.
    """
    m = _Matcher(cells, source)
    result = m.aligned()
    m.fill_gaps(result)
    m.prefer_claimed_copies(result)
    m.keep_free_claims(result)
    return result
