"""Ready-made checks for each exercise of the course, used by the notebooks' tests and the
autograder.

Each ``check_*(Target, **args)`` builds its own seeded float64 inputs (batch sizes of at
least 2, square weights where a transpose would otherwise hide, N-d inputs, a second batch),
runs the learner's ``Target`` on them and returns a :class:`~backprop.gradcheck.LayerReport`::

    >>> check_affine(MyAffine, seed=3).assert_ok("out", "dx")

While the learner's code runs, the matching reference implementation in ``backprop`` is
switched off, so a class that merely hands the work to the reference fails. How checks are
split between the learner's kernel and the grader: :mod:`backprop.checks.core`.
"""

import importlib
import pkgutil

from .core import RECORD_MIME, SPECS, PlanError, Verdict, define, plan, verify_cell
from .running import MODE_ENV, REFUSED, grading, reference_disabled

# Every module of this package but the helpers in _SKIP defines checks: import them all and
# export their check_*.
_SKIP = {"channel", "core", "layer", "layer_rounds", "running"}
__all__ = [
    "MODE_ENV",
    "RECORD_MIME",
    "REFUSED",
    "SPECS",
    "PlanError",
    "Verdict",
    "define",
    "grading",
    "plan",
    "reference_disabled",
    "verify_cell",
]
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name in _SKIP or _info.name.startswith("_"):
        continue
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    for _name, _value in vars(_module).items():
        if _name.startswith("check_") and callable(_value):
            globals()[_name] = _value
            __all__.append(_name)
