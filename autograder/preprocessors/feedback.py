"""HideHiddenTests: feedback that never shows hidden tests (nbgrader issue #917).

Test cells show their visible part only, and tracebacks lose the frames that quote a test
cell or the grader's own code; the error message itself, which names the mistake, stays.
"""

from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from .cells import is_test_cell, remove_hidden_tests

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: Traceback frames of the grader's side in the kernel (the guard), never shown.
_GRADER_FRAMES = ("<grading guard>", "_grading_guard", "autograder/kernel/guard.py")


class HideHiddenTests(NbGraderPreprocessor):
    """Strip hidden tests from test cells (source and traceback frames) in feedback."""

    begin_test_delimeter = Unicode(
        "BEGIN HIDDEN TESTS",
        help="The line that starts a hidden region of a test cell (as ClearHiddenTests).",
    ).tag(config=True)
    end_test_delimeter = Unicode(
        "END HIDDEN TESTS",
        help="The line that ends a hidden region of a test cell (as ClearHiddenTests).",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        # frames quoting any test cell go (a helper defined in one test cell may fail in
        # another), and those of the guard and the grader's own code
        counts = {
            c.get("execution_count")
            for c in nb.cells
            if c.cell_type == "code" and is_test_cell(c) and c.get("execution_count") is not None
        }
        self._starts = tuple(f"Cell In[{n}]" for n in counts) + tuple(
            f"Input In [{n}]" for n in counts
        )
        return super().preprocess(nb, resources)

    def _hidden_frame(self, entry: str) -> bool:
        """Whether a traceback entry quotes a test cell (hidden lines included) or the guard."""
        plain = _ANSI.sub("", entry).lstrip()
        return bool(self._starts and plain.startswith(self._starts)) or any(
            mark in plain for mark in _GRADER_FRAMES
        )

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        if is_test_cell(cell) and self.begin_test_delimeter in cell.source:
            cell.source = remove_hidden_tests(
                cell.source, self.begin_test_delimeter, self.end_test_delimeter
            )
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                out.traceback = [e for e in out.traceback if not self._hidden_frame(e)]
        return cell, resources
