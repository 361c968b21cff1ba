"""What a notebook's cells say about grading it, read before it runs (no code is run).

* the learner's names: what the answer cells define (the guard keeps them; the
  instructor's imports are not made again over them);
* the instructor's imports, made again before each test cell (guard.py), so a learner
  cannot shadow ``np`` or a layer the notebook imports;
* the names to redact from the jailed kernel's ``backprop`` (redact.py): what this
  notebook has the learner build.
"""

from __future__ import annotations

import ast

from nbgrader import utils

from .cells import defined_names, is_test_cell, parse


def _instructor_cells(nb) -> list:
    """Locked code cells that are not answers: the instructor's own code and tests."""
    return [
        c
        for c in nb.cells
        if c.cell_type == "code" and not utils.is_solution(c) and utils.is_locked(c)
    ]


def learner_names(nb) -> list[str]:
    """The names the learner's answer cells bind (imports included), sorted."""
    names: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and utils.is_solution(cell):
            names |= defined_names(parse(cell.source))
    return sorted(names)


def instructor_imports(nb, learner: list[str] | set[str]) -> list[str]:
    """The import statements of the instructor's cells, as source, without the names the
    learner binds (those are the learner's to define) and without ``*`` imports."""
    imports = []
    for cell in _instructor_cells(nb):
        for node in getattr(parse(cell.source), "body", []):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            keep = [
                a
                for a in node.names
                if (a.asname or a.name).split(".")[0] not in learner and a.name != "*"
            ]
            if keep:
                node.names = keep
                imports.append(ast.unparse(node))
    return list(dict.fromkeys(imports))


def redaction_names(nb, learner: list[str] | set[str]) -> set[str]:
    """What this notebook has the learner build: the names the learner's answer cells
    define, and the names the (trusted) test cells use that no locked cell of the
    instructor's defines; minus what the instructor's cells import for the learner
    (the layers a later notebook builds on)."""
    given: set[str] = set()
    used: set[str] = set()
    for cell in _instructor_cells(nb):
        tree = parse(cell.source)
        if tree is None:
            continue
        given |= defined_names(tree)
        if is_test_cell(cell):
            used |= {
                n.id
                for n in ast.walk(tree)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            }
    return (set(learner) | used) - given
