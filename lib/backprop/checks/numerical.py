"""Checks for notebook 2: numerical_diff and numerical_gradient (gradient_descent:
:mod:`.numerical_descent`).

The functions handed to the learner's code are defined here (sums of cubes and sines), so
``verify`` knows in closed form what an exact central difference with step h gives:
``(f(x + h) - f(x - h)) / (2 h)`` evaluated entry by entry in plain numpy. No learner code
runs in ``verify``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import gradcheck
from ..gradcheck import Check, LayerReport, diagnose
from ..i18n import _
from .channel import Raised, as_floats, as_number, snapshot
from .core import define
from .running import call, raised_check


def _elementwise(c: np.ndarray, x: Any) -> Any:
    """c[0] x^3 + c[1] x^2 + c[2] sin(x), entry by entry."""
    return c[0] * x**3 + c[1] * x**2 + c[2] * np.sin(x)


def _scalar(c: tuple[float, ...], x: Any) -> float:
    return float(_elementwise(np.asarray(c), x))


def _summed(c: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum(_elementwise(c, x)))


def _central(c: Any, x: Any, h: float) -> Any:
    c = np.asarray(c, dtype=np.float64)
    return (_elementwise(c, x + h) - _elementwise(c, x - h)) / (2 * h)


def _forward_diff(c: Any, x: Any, h: float) -> Any:
    c = np.asarray(c, dtype=np.float64)
    return (_elementwise(c, x + h) - _elementwise(c, x)) / h


def _diff_mistakes(c: Any, x: float, h: float) -> dict:
    return {
        "forward": (
            _(
                "is the forward difference (f(x + h) - f(x)) / h: use the central "
                "difference (f(x + h) - f(x - h)) / (2 h)"
            ),
            _forward_diff(c, x, h),
        ),
        "no_half": (
            _("is twice the slope: divide by 2 h, the distance between x - h and x + h"),
            2 * _central(c, x, h),
        ),
    }


# --- numerical_diff -----------------------------------------------------------------------


def _diff_inputs(seed: int = 0, cases: int = 3) -> dict:
    """cases functions c0 x^3 + c1 x^2 + c2 sin x and points x; steps h for the h check."""
    rng = np.random.default_rng(seed)
    return {
        "cases": [
            {
                "c": [float(v) for v in rng.uniform(0.5, 2.0, 3) * rng.choice([-1, 1], 3)],
                "x": float(rng.uniform(-2, 2)),
            }
            for _ in range(cases)
        ],
        "steps": [0.5, 0.1],
    }


def _diff_collect(target: Any, inp: dict) -> dict:
    obs: dict[str, Any] = {"default": [], "given": []}
    for case in inp["cases"]:
        f = functools.partial(_scalar, tuple(case["c"]))
        got, err = call(target, f, case["x"])
        obs["default"].append(err if err else snapshot(got))
        for h in inp["steps"]:
            got, err = call(target, f, case["x"], h)
            obs["given"].append(err if err else snapshot(got))
    return obs


def _judge_numbers(
    name: str, got: list, want: list, mistakes: list[dict], tol: float, what: list[str]
) -> Check:
    """One check over several calls: the first wrong one is reported, its mistake named."""
    if not isinstance(got, list) or len(got) != len(want):
        return Check(name, False, _("nothing was collected from your function"), "not_run")
    for g, w, named, label in zip(got, want, mistakes, what, strict=False):
        if isinstance(g, Raised):
            return raised_check(name, label, g, _("run it by hand on a small example"))
        value = as_number(g)
        if value is None:
            return Check(
                name,
                False,
                _("{what} returned {got:.80}, not a number").format(what=label, got=repr(g)),
                "missing" if g is None else "not_numeric",
            )
        if not np.isfinite(value):
            text = _("{what} returned {value}").format(what=label, value=value)
            return Check(name, False, text, "nonfinite")
        scale = max(abs(w), 1.0)
        if abs(value - w) <= tol * scale:
            continue
        said = _("{what} returned {got}, expected {expected}").format(
            what=label, got=repr(value), expected=repr(w)
        )
        for key, (why, wrong) in named.items():
            if abs(value - float(wrong)) <= 1e-9 * max(abs(float(wrong)), 1.0):
                return Check(name, False, f"{said}: {why}", key)
        return Check(name, False, said, "mismatch")
    return Check(
        name, True, _("{count} calls right to within {tol:.0e}").format(count=len(want), tol=tol)
    )


def _diff_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("numerical_diff")
    cases, steps = inp["cases"], inp["steps"]

    def label(c: dict, call: str) -> str:
        return _("{call} on f = {c0:.3g} x^3 {c1:+.3g} x^2 {c2:+.3g} sin x").format(
            call=call, c0=c["c"][0], c1=c["c"][1], c2=c["c"][2]
        )

    labels = [label(c, f"numerical_diff(f, {c['x']:.4g})") for c in cases]
    report.add(
        _judge_numbers(
            "central",
            obs.get("default"),
            [float(_central(c["c"], c["x"], 1e-4)) for c in cases],
            [_diff_mistakes(c["c"], c["x"], 1e-4) for c in cases],
            1e-8,
            labels,
        )
    )
    want, named, what = [], [], []
    for c in cases:
        for h in steps:
            want.append(float(_central(c["c"], c["x"], h)))
            named.append(
                {
                    "ignores_h": (
                        _(
                            "use the step h you are given, in f(x + h), f(x - h) "
                            "and in the division by 2 h"
                        ),
                        _central(c["c"], c["x"], 1e-4),
                    ),
                    **_diff_mistakes(c["c"], c["x"], h),
                }
            )
            what.append(label(c, f"numerical_diff(f, {c['x']:.4g}, h={h})"))
    report.add(_judge_numbers("h", obs.get("given"), want, named, 1e-10, what))
    return report


check_numerical_diff = define(
    "numerical_diff",
    title="numerical_diff",
    inputs=_diff_inputs,
    collect=_diff_collect,
    verify=_diff_verify,
    disable=lambda: (gradcheck.numerical_diff, gradcheck.numerical_gradient),
    doc="numerical_diff(f, x, h=1e-4): checks 'central' (the default step) and 'h' (given steps).",
)


# --- numerical_gradient -------------------------------------------------------------------


def _grad_inputs(seed: int = 0, shape: tuple[int, ...] = (3, 4)) -> dict:
    """x of the given shape, coefficients, and small arrays of other shapes (0-d included)."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    return {
        "c": [float(v) for v in rng.uniform(0.5, 2.0, 3)],
        "x": rng.standard_normal(shape),
        "others": [rng.standard_normal(s) for s in [(2, 3, 2), (), (5,)]],
        "closure": rng.standard_normal(shape),
    }


def _grad_collect(target: Any, inp: dict) -> dict:
    c = np.asarray(inp["c"])
    f = functools.partial(_summed, c)
    obs: dict[str, Any] = {}

    def run(key: str, x: np.ndarray, *more: Any) -> Any:
        got, err = call(target, f, x, *more)
        obs[key] = err if err else snapshot(got)
        return got

    x = np.array(inp["x"], copy=True)
    got = run("default", x)
    obs["x_after"] = snapshot(x)
    obs["returned_x"] = bool(isinstance(got, np.ndarray) and np.shares_memory(got, x))
    run("given_h", np.array(inp["x"], copy=True), 1e-2)
    obs["others"] = []
    for other in inp["others"]:
        got, err = call(target, f, np.array(other, copy=True))
        obs["others"].append(err if err else snapshot(got))
    # f ignores its argument and reads y through a closure, as a network's loss does
    y = np.array(inp["closure"], copy=True)
    seen: list[bool] = []

    def loss(arg: Any) -> float:
        seen.append(arg is y)
        return float(np.sum(y**2))

    got, err = call(target, loss, y)
    obs["closure"] = err if err else snapshot(got)
    obs["closure_arg_is_x"] = bool(seen) and all(seen)
    obs["closure_after"] = snapshot(y)
    return obs


_as_array = as_floats


def _gradient_check(
    name: str, got: Any, expected: np.ndarray, named: dict, threshold: float = 1e-8
) -> Check:
    if isinstance(got, Raised):
        return raised_check(name, "numerical_gradient", got, _("run it on a small array by hand"))
    return diagnose(name, got, expected, threshold=threshold, suspects=named)


def _values_check(obs: dict, c: np.ndarray, x: np.ndarray) -> Check:
    """The gradient's values with the default h, then (if right) with h=1e-2."""
    mistakes = _diff_mistakes(c, x, 1e-5)
    first = _gradient_check("values", obs.get("default"), _central(c, x, 1e-5), mistakes)
    given = {
        "ignores_h": (
            _("use the step h you are given (here h=1e-2), not a fixed 1e-5"),
            _central(c, x, 1e-5),
        ),
        **_diff_mistakes(c, x, 1e-2),
    }
    check = _gradient_check("values", obs.get("given_h"), _central(c, x, 1e-2), given)
    if first.ok and not check.ok:
        text = _("with h=1e-2: {message}").format(message=check.message)
        return Check("values", False, text, check.mistake)
    return first


def _shape_problem(other: np.ndarray, got: Any, c: np.ndarray) -> Check | None:
    """What is wrong with the gradient got of an x shaped like other, or None."""
    label = _("for x of shape {shape}").format(shape=other.shape)
    if isinstance(got, Raised):
        return raised_check(
            "shapes",
            _("numerical_gradient {for_x}").format(for_x=label),
            got,
            _("np.ndindex(x.shape) walks every index of any shape, () for a 0-d x"),
        )
    if not isinstance(got, np.ndarray):
        return Check(
            "shapes",
            False,
            _("{for_x} returned {type}, not a numpy array").format(
                for_x=label, type=type(got).__name__
            ),
            "missing" if got is None else "return_value",
        )
    if got.shape != other.shape:
        return Check(
            "shapes",
            False,
            _("{for_x} returned shape {shape}: the gradient has x's shape").format(
                for_x=label, shape=got.shape
            ),
            "shape",
        )
    if got.dtype != np.float64:
        return Check(
            "shapes",
            False,
            _(
                "{for_x} returned dtype {dtype}, expected float64: "
                "make it with np.zeros(x.shape, dtype=np.float64)"
            ).format(for_x=label, dtype=got.dtype),
            "dtype",
        )
    d = diagnose("gradient", got, _central(c, other, 1e-5), threshold=1e-6)
    return None if d.ok else Check("shapes", False, d.message, d.mistake)


def _shapes_check(inp: dict, obs: dict, c: np.ndarray, x: np.ndarray) -> Check:
    """Shapes and dtype, on a 0-d, a 1-d and a 3-d x as well."""
    if len(obs.get("others") or []) != len(inp["others"]):
        return Check("shapes", False, _("nothing was collected for other shapes"), "not_run")
    for other, got in zip(
        [x, *inp["others"]], [obs.get("default"), *(obs.get("others") or [])], strict=False
    ):
        problem = _shape_problem(np.asarray(other, dtype=np.float64), got, c)
        if problem:
            return problem
    return Check(
        "shapes",
        True,
        _("a new float64 array shaped like x, for x of shapes {shapes}").format(
            shapes=", ".join(str(np.shape(o)) for o in [x, *inp["others"]])
        ),
    )


def _restore_check(inp: dict, obs: dict, x: np.ndarray) -> Check:
    """x restored exactly, a new array returned, f called with x itself (closures see it)."""
    after = _as_array(obs.get("x_after"))
    if after is None or after.shape != x.shape or not np.array_equal(after, x):
        err = (
            float(np.max(np.abs(after - x)))
            if after is not None and after.shape == x.shape
            else float("nan")
        )
        return Check(
            "x restored",
            False,
            _(
                "numerical_gradient left x changed (largest "
                "change {err:.1e}): after each entry, assign back the value you saved "
                "before changing it; adding and subtracting h again does not restore "
                "it exactly"
            ).format(err=err),
            "not_restored",
        )
    if obs.get("returned_x") is not False:
        return Check(
            "x restored",
            False,
            _("numerical_gradient returned x itself (or a view of it): return a new array"),
            "returned_input",
        )
    if obs.get("closure_arg_is_x") is not True:
        return Check(
            "x restored",
            False,
            _(
                "call f(x) with the array x itself (changed in "
                "place), not with a copy: a loss that reads the weights through a "
                "closure only sees in-place changes"
            ),
            "copied_x",
        )
    y = np.asarray(inp["closure"], dtype=np.float64)
    d = _gradient_check("closure", obs.get("closure"), 2 * y, {}, threshold=1e-6)
    closure_after = _as_array(obs.get("closure_after"))
    if not d.ok:
        return Check(
            "x restored",
            False,
            _(
                "with f = lambda _: np.sum(x ** 2), which reads x through a closure: {message}"
            ).format(message=d.message),
            d.mistake,
        )
    if closure_after is None or not np.array_equal(closure_after, y):
        return Check(
            "x restored",
            False,
            _(
                "with f reading x through a closure, x was left changed: assign back the saved "
                "value"
            ),
            "not_restored",
        )
    return Check(
        "x restored",
        True,
        _(
            "x is exactly as before; a new array is returned; "
            "f(x) is called with x itself, changed in place"
        ),
    )


def _grad_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("numerical_gradient")
    c, x = np.asarray(inp["c"], dtype=np.float64), np.asarray(inp["x"], dtype=np.float64)
    report.add(_values_check(obs, c, x))
    report.add(_shapes_check(inp, obs, c, x))
    report.add(_restore_check(inp, obs, x))
    return report


check_numerical_gradient = define(
    "numerical_gradient",
    title="numerical_gradient",
    inputs=_grad_inputs,
    collect=_grad_collect,
    verify=_grad_verify,
    disable=lambda: (gradcheck.numerical_diff, gradcheck.numerical_gradient),
    doc="numerical_gradient(f, x, h=1e-5): checks 'values', 'shapes' and 'x restored'.",
)
