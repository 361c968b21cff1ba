"""Checks for notebook 2's gradient_descent, run on functions defined here (a quadratic bowl,
a linear slope) whose central differences are exact, so ``verify`` knows every step in closed
form. No learner code runs in ``verify``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import gradcheck
from ..gradcheck import Check, LayerReport, diagnose
from ..i18n import _
from .channel import Raised, as_floats, snapshot
from .core import define
from .running import call, raised_check

_as_array = as_floats


def _bowl(a: tuple[float, ...], b: tuple[float, ...], x: np.ndarray) -> float:
    """sum(a * (x - b)^2): its central differences are exact (up to rounding)."""
    return float(np.sum(np.asarray(a) * (x - np.asarray(b)) ** 2))


def _slope(c: tuple[float, ...], x: np.ndarray) -> float:
    return float(np.sum(np.asarray(c) * x))


def _gd_inputs(seed: int = 0, size: int = 2) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "a": [float(v) for v in rng.uniform(0.5, 1.5, size)],
        "b": [float(v) for v in rng.standard_normal(size)],
        "c": [float(v) for v in rng.standard_normal(size)],
        "x0": rng.standard_normal(size) * 3,
        "lr": float(rng.uniform(0.05, 0.2)),
        "steps": int(rng.integers(3, 8)),
    }


def _gd_collect(target: Any, inp: dict) -> dict:
    bowl = functools.partial(_bowl, tuple(inp["a"]), tuple(inp["b"]))
    slope = functools.partial(_slope, tuple(inp["c"]))
    obs: dict[str, Any] = {}
    runs = {
        "one": (bowl, inp["lr"], 1),
        "many": (bowl, inp["lr"], inp["steps"]),
        "slope": (slope, inp["lr"], inp["steps"]),
        "zero_steps": (bowl, inp["lr"], 0),
        "lr_zero": (bowl, 0.0, 3),
        "diverge": (bowl, 1.5 / min(inp["a"]), 3),
    }
    for key, (f, lr, n) in runs.items():
        x0 = np.array(inp["x0"], copy=True)
        got, err = call(target, f, x0, lr, n)
        obs[key] = err if err else snapshot(got)
        obs[key + "_x0_after"] = snapshot(x0)
        obs[key + "_is_x0"] = got is x0
    x0 = np.array(inp["x0"], copy=True)
    got, err = call(target, slope, x0)
    obs["defaults"] = err if err else snapshot(got)
    return obs


def _descend(inp: dict, f: str, lr: float, n: int) -> np.ndarray:
    a, b, c = (np.asarray(inp[k], dtype=np.float64) for k in "abc")
    x = np.asarray(inp["x0"], dtype=np.float64).copy()
    for _step in range(n):
        x = x - lr * (2 * a * (x - b) if f == "bowl" else c)
    return x


def _gd_run(
    name: str, label: str, got: Any, expected: np.ndarray, named: dict, threshold: float = 1e-6
) -> Check:
    if isinstance(got, Raised):
        return raised_check(
            name,
            label,
            got,
            _("gradient_descent calls your numerical_gradient above: check that one first"),
        )
    d = diagnose(name, got, expected, threshold=threshold, suspects=named)
    return d if d.ok else Check(name, False, f"{label}: {d.message}", d.mistake)


def _gd_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("gradient_descent")
    lr, n = inp["lr"], inp["steps"]
    up = {
        "uphill": (
            _("went uphill: subtract lr * gradient, x = x - lr * grad"),
            _descend(inp, "bowl", -lr, 1),
        )
    }
    one = _gd_run(
        "step",
        _("one step with lr={lr:.3g} on a quadratic bowl").format(lr=lr),
        obs.get("one"),
        _descend(inp, "bowl", lr, 1),
        {
            **up,
            "two_steps": (
                _("is two steps: make exactly step_num steps"),
                _descend(inp, "bowl", lr, 2),
            ),
            "no_lr": (
                _("took a step of the whole gradient: multiply it by lr"),
                _descend(inp, "bowl", 1.0, 1),
            ),
        },
    )
    if one.ok:
        one = _gd_run(
            "step",
            _("{n} steps on a quadratic bowl").format(n=n),
            obs.get("many"),
            _descend(inp, "bowl", lr, n),
            {},
        )
    report.add(one)
    steps = _gd_run(
        "steps",
        _(
            "step_num={n} on a linear function (each step moves x by lr * its constant gradient)"
        ).format(n=n),
        obs.get("slope"),
        _descend(inp, "slope", lr, n),
        {
            "off_by_one": (
                _("made {count} steps: make exactly step_num steps").format(count=n - 1),
                _descend(inp, "slope", lr, n - 1),
            ),
            "off_by_one_more": (
                _("made {count} steps: make exactly step_num steps").format(count=n + 1),
                _descend(inp, "slope", lr, n + 1),
            ),
        },
    )
    if steps.ok:
        steps = _gd_run(
            "steps", "step_num=0", obs.get("zero_steps"), _descend(inp, "bowl", lr, 0), {}
        )
        if steps.ok and obs.get("zero_steps_is_x0") is not False:
            steps = Check(
                "steps",
                False,
                _("step_num=0 returned init_x itself: return a new array (a copy)"),
                "returned_input",
            )
    report.add(steps)
    x0 = np.asarray(inp["x0"], dtype=np.float64)
    unchanged = Check("init_x unchanged", True, _("init_x is left as it was"))
    for key in ("one", "many", "slope", "zero_steps", "lr_zero", "diverge"):
        after = _as_array(obs.get(key + "_x0_after"))
        if after is None or after.shape != x0.shape or not np.array_equal(after, x0):
            unchanged = Check(
                "init_x unchanged",
                False,
                _(
                    "gradient_descent changed init_x: work "
                    "on a copy, x = np.array(init_x, dtype=np.float64)"
                ),
                "mutated_input",
            )
            break
    report.add(unchanged)
    rate = _gd_run("learning rate", _("lr=0 (x must not move)"), obs.get("lr_zero"), x0, {})
    big = 1.5 / min(inp["a"])
    if rate.ok:
        rate = _gd_run(
            "learning rate",
            _("lr={lr:.3g}, large enough to diverge, 3 steps").format(lr=big),
            obs.get("diverge"),
            _descend(inp, "bowl", big, 3),
            {},
            threshold=1e-5,
        )
    if rate.ok:
        rate = _gd_run(
            "learning rate",
            _("the defaults lr=0.01, step_num=100"),
            obs.get("defaults"),
            _descend(inp, "slope", 0.01, 100),
            {
                "default_lr": (
                    _("use the default lr=0.01 of the signature"),
                    _descend(inp, "slope", 0.1, 100),
                )
            },
        )
    report.add(rate)
    return report


check_gradient_descent = define(
    "gradient_descent",
    title="gradient_descent",
    inputs=_gd_inputs,
    collect=_gd_collect,
    verify=_gd_verify,
    disable=lambda: (gradcheck.numerical_diff, gradcheck.numerical_gradient),
    doc="gradient_descent(f, init_x, lr=0.01, step_num=100): checks 'step', 'steps', "
    "'init_x unchanged' and 'learning rate'.",
)
