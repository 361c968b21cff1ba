"""Flags for review: learner code that looks like tampering with the grader.

A flag never costs points: the jail and the verdict outside the kernel (verdict.py) make such
code useless. Flagged submissions are marked in the gradebook (formgrader shows them) and
named in the reason column, for a human to look at.
"""

from __future__ import annotations

import re

_SUSPICIOUS = [
    (re.compile(r"\bos\._exit\b|\bos\.abort\b|\bos\.kill"), "ends the process"),
    (re.compile(r"\b(np|numpy)(\.\w+)+\s*=[^=]"), "assigns to numpy"),
    (
        re.compile(
            r"\bbackprop(\.\w+)+\s*=[^=]|\b(gradcheck|checks|LayerReport|Check)\.\w+\s*=[^=]"
        ),
        "assigns to backprop",
    ),
    (re.compile(r"setattr\(\s*(np|numpy|backprop|builtins)"), "patches a module"),
    (
        re.compile(r"__code__|__globals__|\bgc\.get_objects|\bsys\.modules\b|\bctypes\b"),
        "reaches into the interpreter",
    ),
    (
        re.compile(r"get_ipython\(\)\.(run_|events|ast_|input_transform|set_custom_exc|compile)"),
        "changes how cells run",
    ),
    (re.compile(r"\bimport builtins\b|__builtins__"), "touches builtins"),
    (
        re.compile(r"sys\.settrace|sys\.setprofile|addaudithook|setitimer|signal\.alarm"),
        "installs hooks",
    ),
]


def suspicious(nb) -> list[str]:
    """What the learner-written code cells of nb do that looks like tampering."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("locked"):
            continue
        for pat, what in _SUSPICIOUS:
            if pat.search(cell.source) and what not in found:
                found.append(what)
    return found
