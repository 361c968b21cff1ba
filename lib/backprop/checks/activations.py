"""Checks for the activation layers (notebook 3): Relu, Sigmoid."""
from __future__ import annotations

import numpy as np

from .. import activations
from .core import define
from .layer import collect_layer, verify_layer


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random numbers with |x| >= 0.1, so no entry sits on ReLU's kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.sign(x + 1e-12) * (0.1 + np.abs(x)), x)


def _relu_inputs(seed: int = 0, shape: tuple[int, ...] = (4, 5)) -> dict:
    """x away from 0 (the kink), dout, and a second batch with other signs."""
    rng = np.random.default_rng(seed)
    x, x2 = _away_from_zero(rng, shape), _away_from_zero(rng, shape)
    return {"init": {}, "forward": {"x": x}, "dout": rng.standard_normal(shape),
            "forward2": {"x": x2}, "dout2": rng.standard_normal(shape)}


def _relu_suspects(i: dict, r: str) -> dict:
    x, d = i["forward" + r]["x"], i["dout" + r]
    return {"dx": {
        "mask_inverted": ("lets the gradient through where x <= 0 instead of where x > 0: "
                          "is the mask inverted?", np.where(x > 0, 0, d)),
        "relu_of_dout": ("applies ReLU to dout itself; the mask must come from the input x",
                         np.maximum(d, 0)),
    }}


check_relu = define(
    "relu", title="Relu", inputs=_relu_inputs, collect=collect_layer,
    disable=lambda: (activations.Relu,),
    verify=lambda inp, obs: verify_layer(inp, obs, reference=lambda x: np.maximum(x, 0),
                                         wrt=["x"], suspects=_relu_suspects),
    doc="Relu: forward(x) = max(0, x); backward(dout) -> dout where x > 0, else 0.")


def _sigmoid_inputs(seed: int = 0, shape: tuple[int, ...] = (4, 5), scale: float = 2.0) -> dict:
    """x = scale * standard normal (scale 800 tests large inputs), dout, a second batch."""
    rng = np.random.default_rng(seed)
    return {"init": {}, "forward": {"x": scale * rng.standard_normal(shape)},
            "dout": rng.standard_normal(shape),
            "forward2": {"x": scale * rng.standard_normal(shape)},
            "dout2": rng.standard_normal(shape)}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _sigmoid_suspects(i: dict, r: str) -> dict:
    x, d = i["forward" + r]["x"], i["dout" + r]
    return {"dx": {"from_input": ("uses the input x in x * (1 - x); the local gradient is "
                                  "y * (1 - y) with y the *output* of forward",
                                  d * x * (1 - x))}}


check_sigmoid = define(
    "sigmoid", title="Sigmoid", inputs=_sigmoid_inputs, collect=collect_layer,
    disable=lambda: (activations.Sigmoid, activations.sigmoid),
    verify=lambda inp, obs: verify_layer(inp, obs, reference=_sigmoid, wrt=["x"],
                                         suspects=_sigmoid_suspects),
    doc="Sigmoid: forward(x) = 1 / (1 + exp(-x)); backward(dout) -> dout * y * (1 - y).")
