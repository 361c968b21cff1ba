"""Checks for notebook 9's worked examples with the learner's tape (x**2 and x**5 with their
second derivatives, a persistent tape, (sum x)**2) and for a two-layer network's gradients
computed by the tape (the protocol: :mod:`.autodiff_ops`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import autodiff
from ..gradcheck import LayerReport, diagnose, numerical_gradient
from ..i18n import _
from .autodiff_ops import _names
from .autodiff_tape import _grad_check, _pair
from .channel import Raised, snapshot
from .core import define
from .running import call, raised_check

# --- the seed examples ---------------------------------------------------------------------


def _seed_inputs(at: float = 5.0, shape: tuple = (2, 2)) -> dict:
    """x = at for the scalar examples, a `shape` of ones for z = (sum x)**2."""
    return {"at": float(at), "shape": [int(n) for n in shape]}


def _collect_seeds(Tape: Any, inp: dict) -> dict:
    ns = _names(Tape)
    Tensor = ns.get("Tensor")
    obs: dict[str, Any] = {}

    def nested(f):
        def go():
            x = Tensor(inp["at"])
            with Tape() as outer:
                outer.watch(x)
                with Tape() as inner:
                    inner.watch(x)
                    y = f(x)
                dy = inner.gradient(y, x)
            d2 = outer.gradient(dy, x)
            return [None if dy is None else dy.value, None if d2 is None else d2.value]

        return go

    for name, f in (("x2", lambda x: x**2), ("x5", lambda x: x**5)):
        got, err = call(nested(f))
        obs[name] = err if err else snapshot(got)

    def chain():
        x = Tensor(inp["at"])
        with Tape(persistent=True) as tape:
            tape.watch(x)
            y = x * x
            z = y * y
            w = z * z
        return [None if g is None else g.value for g in (tape.gradient(t, x) for t in (w, z, y))]

    got, err = call(chain)
    obs["w"] = err if err else snapshot(got)

    def sum_squared():
        x = Tensor(np.ones(inp["shape"]))
        with Tape() as tape:
            tape.watch(x)
            z = x.sum() ** 2
        return tape.gradient(z, x).value

    got, err = call(sum_squared)
    obs["sum_squared"] = err if err else snapshot(got)
    return obs


def _verify_seeds(inp: dict, obs: dict) -> LayerReport:
    a = inp["at"]
    r = LayerReport("GradientTape")
    for name, first, second, label in (
        ("x2", 2 * a, 2.0, "y = x**2"),
        ("x5", 5 * a**4, 20 * a**3, "y = x**5"),
    ):
        d1, d2 = _pair(obs, name)
        r.add(
            _grad_check(
                name,
                d1,
                np.asarray(first),
                {},
                _("{function} at {x:g}, dy/dx").format(function=label, x=a),
            )
        )
        r.add(
            _grad_check(
                name + "_second",
                d2,
                np.asarray(second),
                {
                    "constant_rules": (
                        _(
                            "the outer tape saw only constants: build the "
                            "local rules from Tensor operations"
                        ),
                        np.asarray(0.0),
                    )
                },
                _("{function} at {x:g}, second derivative").format(function=label, x=a),
            )
        )
    w = obs.get("w")
    want = [8 * a**7, 4 * a**3, 2 * a]
    for i, name in enumerate(("w", "z", "y")):
        got = (
            w if isinstance(w, Raised) else (w[i] if isinstance(w, list) and len(w) == 3 else None)
        )
        r.add(
            _grad_check(
                f"d{name}",
                got,
                np.asarray(want[i]),
                {},
                _("persistent tape, d{name}/dx at {x:g} for y = x*x, z = y*y, w = z*z").format(
                    name=name, x=a
                ),
            )
        )
    shape = tuple(inp["shape"])
    n = float(np.prod(shape))
    r.add(
        _grad_check(
            "sum_squared",
            obs.get("sum_squared"),
            np.full(shape, 2 * n),
            {},
            _("z = (sum x)**2 for x = ones{shape}").format(shape=shape),
        )
    )
    return r


check_autodiff_seeds = define(
    "autodiff_seeds",
    title="GradientTape",
    inputs=_seed_inputs,
    collect=_collect_seeds,
    verify=_verify_seeds,
    disable=lambda: (autodiff.Tensor, autodiff.GradientTape),
    doc="The worked examples: x**2 and x**5 with their second derivatives, w = ((x^2)^2)^2 "
    "with a persistent tape, z = (sum x)**2.",
)


# --- a network's gradients by the tape -------------------------------------------------------


def _net_inputs(seed: int = 0, n: int = 4, d: int = 5, h: int = 6, c: int = 3) -> dict:
    """A two-layer net's parameters W1 (d, h), b1 (h,), W2 (h, c), b2 (c,), x (n, d), t (n,)."""
    rng = np.random.default_rng([seed, 5])
    params = {
        "W1": rng.standard_normal((d, h)),
        "b1": rng.standard_normal(h) * 0.1,
        "W2": rng.standard_normal((h, c)),
        "b2": rng.standard_normal(c) * 0.1,
    }
    return {"params": params, "x": rng.standard_normal((n, d)), "t": rng.integers(0, c, size=n)}


def _net_loss(params: dict, x: np.ndarray, t: np.ndarray) -> float:
    hid = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    s = hid @ params["W2"] + params["b2"]
    s = s - s.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(t)), t].mean())


def _collect_net(fn: Any, inp: dict) -> dict:
    got, err = call(
        fn, {k: v.copy() for k, v in inp["params"].items()}, inp["x"].copy(), inp["t"].copy()
    )
    return {"grads": err if err else snapshot(got)}


def _verify_net(inp: dict, obs: dict) -> LayerReport:
    r = LayerReport("tape_gradient")
    grads = obs.get("grads")
    if isinstance(grads, Raised):
        r.add(raised_check("grads", "tape_gradient", grads))
        return r
    grads = grads if isinstance(grads, dict) else {}
    n = len(inp["t"])
    for name, value in inp["params"].items():

        def f(v: np.ndarray, name: str = name) -> float:
            return _net_loss({**inp["params"], name: v}, inp["x"], inp["t"])

        want = numerical_gradient(f, value.copy())
        r.add(diagnose("d" + name, grads.get(name), want, batch_size=n))
    return r


check_autodiff_net = define(
    "autodiff_net",
    title="tape_gradient",
    inputs=_net_inputs,
    collect=_collect_net,
    verify=_verify_net,
    disable=lambda: (autodiff.Tensor, autodiff.GradientTape),
    doc="tape_gradient(params, x, t) -> {name: numpy gradient} of the two-layer net's mean "
    "softmax cross-entropy, by the learner's tape.",
)
