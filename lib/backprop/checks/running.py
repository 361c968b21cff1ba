"""Running the learner's code for a check: calls that never raise, and the reference switched off.

:func:`call` runs one function of the learner's and turns an exception into a
:class:`~backprop.checks.channel.Raised` (its type, message and the line of the learner's cell
it came from); :func:`raised_check` turns that into a failed check. :func:`reference_disabled`
makes backprop's own implementation of the exercise refuse to run while the learner's code
runs, so a class that hands the work to the reference (or inherits it) fails.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..gradcheck import Check
from ..i18n import _
from .channel import Raised

MODE_ENV = "BACKPROP_CHECKS"
_PACKAGE = str(Path(__file__).resolve().parents[1])
# Not translated: the reference functions raise exactly this text (see _refuse), and
# raised_check recognises it by comparison, then explains it in the learner's language.
REFUSED = (
    "this exercise must be solved with your own code, "
    "not by calling backprop's reference implementation"
)


def grading() -> bool:
    """True in a grading kernel: checks collect and publish instead of judging."""
    return os.environ.get(MODE_ENV) == "collect"


def _where(tb: types.TracebackType | None) -> tuple[str, str]:
    """The innermost frame of a traceback that is the learner's code, as (where, line)."""
    frames = [
        f
        for f in traceback.extract_tb(tb)
        if not f.filename.startswith(_PACKAGE)
        and "site-packages" not in f.filename
        and "/lib/python" not in f.filename
    ]
    if not frames:
        return "", ""
    f = frames[-1]
    name = f.filename
    try:
        ip = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
        if ip is not None:
            label = ip.compile.format_code_name(name)
            if label:
                name = f"{label[0]} {label[1]}"
    except Exception:
        pass
    line = (f.line or linecache.getline(f.filename, f.lineno or 0)).strip()
    where = _("{cell}, line {lineno}, in {function}").format(
        cell=name, lineno=f.lineno, function=f.name
    )
    return where, line[:200]


def call(fn: Any, *args: Any) -> tuple[Any, Raised | None]:
    """fn(*args) → (result, None), or (None, Raised) if it raised; never raises itself."""
    try:
        return fn(*args), None
    except BaseException as exc:  # noqa: BLE001 - a learner's code can raise anything
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and not grading():
            raise
        where, line = _where(exc.__traceback__)
        message = str(exc) if not isinstance(exc, RecursionError) else _("maximum recursion depth")
        return None, Raised(type(exc).__name__, message[:2000], where, line)


def raised_check(name: str, what: str, error: Raised, hint: str = "") -> Check:
    """A failed check for code that raised: the exception, where in the learner's cell, a hint."""
    if isinstance(error, Raised) and error.message == REFUSED:
        return Check(
            name,
            False,
            _(
                "{what} called backprop's reference implementation: "
                "this exercise must be solved with your own code"
            ).format(what=what),
            "delegated",
        )
    text = _("{what} raised {error}").format(what=what, error=error)
    if hint:
        text += "\n    " + _("hint: {hint}").format(hint=hint)
    return Check(name, False, text, "error")


def _refuse(*args, **kwargs):
    # This code object is lent to the reference functions, so it may use only
    # builtins: the globals it sees are those of the function it replaces.
    raise RuntimeError(
        "this exercise must be solved with your own code, "
        "not by calling backprop's reference implementation"
    )


def _ours(cls: type) -> bool:
    """True for a class defined in one of backprop's own modules."""
    module = getattr(cls, "__module__", "") or ""
    return module == "backprop" or module.startswith("backprop.")


def _methods(cls: type) -> list[types.FunctionType]:
    """The functions of cls and of every base class backprop defines (``object`` and other
    libraries' classes excluded), so that a learner's subclass of a reference class cannot
    inherit the answers from a shared base (``TwoLayerNet``'s ``predict`` is LayerStack's)."""
    classes = [cls] + [base for base in cls.__mro__[1:] if base is not object and _ours(base)]
    return [v for c in classes for v in vars(c).values() if isinstance(v, types.FunctionType)]


@contextlib.contextmanager
def reference_disabled(*targets: object) -> Iterator[None]:
    """Make the given reference functions and classes raise RuntimeError while inside.

    targets: functions, or classes: all their methods are switched off, and those of the
    base classes defined in backprop's modules. The function objects themselves are changed,
    so every name bound to them (``from backprop import Affine`` included) is covered.
    (Under grading the reference code of the exercise is not in the kernel at all; this is
    what a learner's own notebook gets.)
    """
    saved: dict[types.FunctionType, types.CodeType] = {}
    functions: list[types.FunctionType] = []
    for target in targets:
        if isinstance(target, type):
            functions += _methods(target)
        elif isinstance(target, types.FunctionType):
            functions.append(target)
    try:
        for fn in functions:
            if fn not in saved:  # a base shared by two targets is switched off once
                saved[fn] = fn.__code__
                fn.__code__ = _refuse.__code__.replace(co_name=fn.__code__.co_name)
        yield
    finally:
        for fn, code in saved.items():
            fn.__code__ = code
