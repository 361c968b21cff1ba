"""Checks for the nodes of a computational graph: MulLayer, AddLayer, DivLayer, ExpLayer and
the fan-out graph (notebook 1), and the sigmoid built node by node (notebook 2)."""

from __future__ import annotations

import numpy as np

from .. import activations, nodes
from ..i18n import _
from .core import define
from .layer import collect_layer, verify_layer


def _pair_inputs(seed: int = 0, shape: tuple[int, ...] = (3, 4)) -> dict:
    """Two same-shaped float64 inputs x, y, a dout, and a second batch of each."""
    rng = np.random.default_rng(seed)
    x, y, dout, x2, y2, dout2 = (rng.standard_normal(shape) for _ in range(6))
    return {
        "init": {},
        "forward": {"x": x, "y": y},
        "dout": dout,
        "forward2": {"x": x2, "y": y2},
        "dout2": dout2,
    }


check_mul_layer = define(
    "mul_layer",
    title="MulLayer",
    inputs=_pair_inputs,
    collect=collect_layer,
    disable=lambda: (nodes.MulLayer,),
    verify=lambda inp, obs: verify_layer(
        inp,
        obs,
        reference=lambda x, y: x * y,
        wrt=["x", "y"],
        suspects=lambda i, r: {
            "dx": {
                "not_swapped": (
                    _("uses its own input: dz/dx is y and dz/dy is x (swap them)"),
                    i["dout" + r] * i["forward" + r]["x"],
                )
            },
            "dy": {
                "not_swapped": (
                    _("uses its own input: dz/dx is y and dz/dy is x (swap them)"),
                    i["dout" + r] * i["forward" + r]["y"],
                )
            },
        },
    ),
    doc="MulLayer: forward(x, y) = x * y; backward(dout) -> (dx, dy).",
)

check_add_layer = define(
    "add_layer",
    title="AddLayer",
    inputs=_pair_inputs,
    collect=collect_layer,
    disable=lambda: (nodes.AddLayer,),
    verify=lambda inp, obs: verify_layer(
        inp,
        obs,
        reference=lambda x, y: x + y,
        wrt=["x", "y"],
        suspects=lambda i, r: {
            "dx": {
                "multiplied": (
                    _("multiplies dout by an input: an add node passes dout on unchanged"),
                    i["dout" + r] * i["forward" + r]["y"],
                )
            },
            "dy": {
                "multiplied": (
                    _("multiplies dout by an input: an add node passes dout on unchanged"),
                    i["dout" + r] * i["forward" + r]["x"],
                )
            },
        },
    ),
    doc="AddLayer: forward(x, y) = x + y; backward(dout) -> (dout, dout).",
)


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], low: float) -> np.ndarray:
    """Random numbers with |v| >= low (denominators that are not nearly 0)."""
    v = rng.standard_normal(shape)
    return np.sign(v + 1e-12) * (low + np.abs(v))


def _div_inputs(seed: int = 0, shape: tuple[int, ...] = (3, 4)) -> dict:
    """x, y with |y| >= 0.5 (no division by nearly 0), a dout, and a second batch."""
    rng = np.random.default_rng(seed)
    x, y, dout = (
        rng.standard_normal(shape),
        _away_from_zero(rng, shape, 0.5),
        rng.standard_normal(shape),
    )
    x2, y2, dout2 = (
        rng.standard_normal(shape),
        _away_from_zero(rng, shape, 0.5),
        rng.standard_normal(shape),
    )
    return {
        "init": {},
        "forward": {"x": x, "y": y},
        "dout": dout,
        "forward2": {"x": x2, "y": y2},
        "dout2": dout2,
    }


def _div_suspects(i: dict, r: str) -> dict:
    x, y, d = i["forward" + r]["x"], i["forward" + r]["y"], i["dout" + r]
    return {
        "dx": {
            "swapped": (
                _(
                    "multiplies dout by y, as a multiply node would: the local "
                    "gradient of x / y with respect to x is 1 / y"
                ),
                d * y,
            )
        },
        "dy": {
            "not_squared": (
                _(
                    "divides by y once: the local gradient of x / y with respect "
                    "to y is -x / y**2 (y squared)"
                ),
                -d * x / y,
            ),
            "swapped": (
                _(
                    "multiplies dout by x, as a multiply node would: x / y changes with y as "
                    "-x / y**2"
                ),
                d * x,
            ),
        },
    }


check_div_layer = define(
    "div_layer",
    title="DivLayer",
    inputs=_div_inputs,
    collect=collect_layer,
    disable=lambda: (nodes.DivLayer,),
    verify=lambda inp, obs: verify_layer(
        inp, obs, reference=lambda x, y: x / y, wrt=["x", "y"], suspects=_div_suspects
    ),
    doc="DivLayer: forward(x, y) = x / y; backward(dout) -> (dx, dy).",
)


def _exp_inputs(seed: int = 0, shape: tuple[int, ...] = (3, 4)) -> dict:
    """x standard normal (exp of it stays moderate), a dout, and a second batch."""
    rng = np.random.default_rng(seed)
    x, dout, x2, dout2 = (rng.standard_normal(shape) for _ in range(4))
    return {"init": {}, "forward": {"x": x}, "dout": dout, "forward2": {"x": x2}, "dout2": dout2}


def _exp_suspects(i: dict, r: str) -> dict:
    x, d = i["forward" + r]["x"], i["dout" + r]
    return {
        "dx": {
            "from_input": (
                _(
                    "multiplies dout by the input x: the local gradient of exp(x) is "
                    "exp(x) itself, the output of forward"
                ),
                d * x,
            ),
            "exp_of_dout": (
                _("takes exp of dout: multiply dout by exp(x), the output of forward"),
                np.exp(d),
            ),
            "power_rule": (
                _(
                    "uses a power rule, x * exp(x - 1): exp is not a power of x; its "
                    "derivative is exp(x)"
                ),
                d * x * np.exp(x - 1),
            ),
        }
    }


check_exp_layer = define(
    "exp_layer",
    title="ExpLayer",
    inputs=_exp_inputs,
    collect=collect_layer,
    disable=lambda: (nodes.ExpLayer,),
    verify=lambda inp, obs: verify_layer(
        inp, obs, reference=lambda x: np.exp(x), wrt=["x"], suspects=_exp_suspects
    ),
    doc="ExpLayer: forward(x) = exp(x); backward(dout) -> dout * exp(x).",
)


def _fan_out_suspects(i: dict, r: str) -> dict:
    x, y, d = i["forward" + r]["x"], i["forward" + r]["y"], i["dout" + r]
    only_mul = _(
        "x is used twice, in the add node and in the multiply node: its gradient is the "
        "sum of what comes back along both uses, not only the one from the multiply node"
    )
    only_add = _(
        "x is used twice, in the add node and in the multiply node: its gradient is the "
        "sum of what comes back along both uses, not only the one from the add node"
    )
    return {
        "dx": {"not_added": (only_mul, d * (x + y)), "not_added_add": (only_add, d * x)},
        "dy": {
            "dy_from_mul": (
                _(
                    "is what the multiply node sends to its input x: y "
                    "reaches f only through the add node"
                ),
                d * (x + y),
            )
        },
    }


check_fan_out = define(
    "fan_out",
    title="FanOut",
    inputs=_pair_inputs,
    collect=collect_layer,
    verify=lambda inp, obs: verify_layer(
        inp, obs, reference=lambda x, y: (x + y) * x, wrt=["x", "y"], suspects=_fan_out_suspects
    ),
    doc="FanOut: forward(x, y) = (x + y) * x; backward(dout) -> (dx, dy).",
)


def _sigmoid_graph_inputs(
    seed: int = 0, shape: tuple[int, ...] = (3, 4), scale: float = 2.0
) -> dict:
    """x = scale * standard normal, a dout, and a second batch."""
    rng = np.random.default_rng(seed)
    x, dout, x2, dout2 = (rng.standard_normal(shape) for _ in range(4))
    return {
        "init": {},
        "forward": {"x": scale * x},
        "dout": dout,
        "forward2": {"x": scale * x2},
        "dout2": dout2,
    }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _sigmoid_graph_suspects(i: dict, r: str) -> dict:
    x, d = i["forward" + r]["x"], i["dout" + r]
    y, e = _sigmoid(x), np.exp(-x)
    return {
        "dx": {
            "no_minus_one": (
                _(
                    "has the wrong sign: the first node multiplies x by -1, so its "
                    "backward multiplies the gradient by -1 too"
                ),
                -d * y * (1 - y),
            ),
            "div_not_squared": (
                _(
                    "the divide node's gradient with respect to its denominator "
                    "is -1 / v**2, with v squared (here v = 1 + exp(-x))"
                ),
                d * e / (1 + e),
            ),
            "exp_from_input": (
                _(
                    "the exp node's backward multiplies by exp of its input, the "
                    "output it produced, not by its input"
                ),
                -d * x * y**2,
            ),
        }
    }


check_sigmoid_graph = define(
    "sigmoid_graph",
    title="SigmoidGraph",
    inputs=_sigmoid_graph_inputs,
    collect=collect_layer,
    disable=lambda: (activations.Sigmoid, activations.sigmoid),
    verify=lambda inp, obs: verify_layer(
        inp, obs, reference=_sigmoid, wrt=["x"], suspects=_sigmoid_graph_suspects
    ),
    doc="SigmoidGraph: 1 / (1 + exp(-x)) from Mul, Exp, Add and Div nodes; "
    "backward(dout) -> dx, checked against the sigmoid's own numbers.",
)
