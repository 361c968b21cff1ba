"""GradeOutputs: nbgrader's rule "an error means zero" made to hold whatever came first.

After execution, an error anywhere in a test cell's output makes the cell score zero
(nbgrader looks only at the first error, stderr or result, so a result published before
the error by the learner's code could win).
"""

from __future__ import annotations

import ast

from nbgrader.preprocessors import NbGraderPreprocessor

from .cells import is_test_cell, parse


def _ends_with_expression(source: str) -> bool:
    """Whether a cell's last statement is an expression (its value is the cell's result)."""
    tree = parse(source)
    return tree is not None and bool(tree.body) and isinstance(tree.body[-1], ast.Expr)


def _capped(result, points: float) -> None:
    """A cell's result no larger than its points (nbgrader raises on more)."""
    try:
        if float(result.data.get("text/plain", "")) > points:
            result.data["text/plain"] = repr(points)
    except (TypeError, ValueError):
        pass


class GradeOutputs(NbGraderPreprocessor):
    """Make nbgrader's rule 'an error means zero' hold whatever came before the error."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not is_test_cell(cell):
            return cell, resources
        outputs = list(cell.get("outputs", []))
        errors = [o for o in outputs if o.output_type == "error"]
        if errors:
            # errors first: determine_grade stops at the first one and gives zero
            cell.outputs = errors + [o for o in outputs if o.output_type != "error"]
            return cell, resources
        # Only the cell's own result (its last statement an expression, the last result)
        # may give partial credit; results published by the learner's code are dropped.
        results = [o for o in outputs if o.output_type == "execute_result"]
        keep = results[-1] if results and _ends_with_expression(cell.source) else None
        cell.outputs = [o for o in outputs if o.output_type != "execute_result" or o is keep]
        if keep is not None:
            _capped(keep, float(cell.metadata.nbgrader.get("points", 0)))
        return cell, resources
