"""What the preprocessors agree on about cells: which cells are tests, what is hidden in
them, which tags and metadata grading keeps, and which names a code cell defines."""

from __future__ import annotations

import ast

from nbgrader import utils

#: The line a restored locked cell starts with (a comment in code, emphasis in markdown).
RESTORED_NOTE = "This cell was missing from the submission; the autograder put it back."
#: Cell tags kept from a submission. nbclient and nbconvert act on tags: "skip-execution"
#: (the cell is not run), "raises-exception" (its error is expected), "remove_cell" and
#: friends (TagRemovePreprocessor), papermill's "parameters". Grading this course needs
#: none of them, so none is kept.
GRADING_TAGS: frozenset[str] = frozenset()
#: The kernel when the gradebook records none (generate_assignment always records one).
DEFAULT_KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def is_test_cell(cell) -> bool:
    """A test cell: graded and not an answer (its source comes from the gradebook)."""
    return utils.is_grade(cell) and not utils.is_solution(cell)


def remove_hidden_tests(
    source: str, begin: str = "BEGIN HIDDEN TESTS", end: str = "END HIDDEN TESTS"
) -> str:
    """The visible part of a test cell: hidden regions removed (an unclosed one to the end)."""
    out, hidden = [], False
    for line in source.split("\n"):
        if begin in line:
            hidden = True
        elif end in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out).rstrip("\n")


def parse(source: str) -> ast.Module | None:
    """A code cell's syntax tree, or None when it is not Python."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def defined_names(tree: ast.Module | None, imports: bool = True) -> set[str]:
    """Top-level names a cell binds: classes, functions, assignments and, with ``imports``,
    the names its imports bind (``import numpy as np`` binds ``np``)."""
    names: set[str] = set()
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif imports and isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names
