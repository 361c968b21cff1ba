"""Checks for the activation layers (notebook 3): Relu, Sigmoid, Tanh."""

from __future__ import annotations

import numpy as np

from .. import activations
from ..i18n import N_, _
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
    return {
        "init": {},
        "forward": {"x": x},
        "dout": rng.standard_normal(shape),
        "forward2": {"x": x2},
        "dout2": rng.standard_normal(shape),
    }


def _relu_suspects(i: dict, r: str) -> dict:
    x, d = i["forward" + r]["x"], i["dout" + r]
    return {
        "dx": {
            "mask_inverted": (
                _(
                    "lets the gradient through where x <= 0 instead of where x > 0: "
                    "is the mask inverted?"
                ),
                np.where(x > 0, 0, d),
            ),
            "relu_of_dout": (
                _("applies ReLU to dout itself; the mask must come from the input x"),
                np.maximum(d, 0),
            ),
        }
    }


check_relu = define(
    "relu",
    title="Relu",
    inputs=_relu_inputs,
    collect=collect_layer,
    disable=lambda: (activations.Relu,),
    verify=lambda inp, obs: verify_layer(
        inp, obs, reference=lambda x: np.maximum(x, 0), wrt=["x"], suspects=_relu_suspects
    ),
    doc="Relu: forward(x) = max(0, x); backward(dout) -> dout where x > 0, else 0.",
)


def _sigmoid_inputs(seed: int = 0, shape: tuple[int, ...] = (4, 5), scale: float = 2.0) -> dict:
    """x = scale * standard normal (scale 800 tests large inputs), dout, a second batch."""
    rng = np.random.default_rng(seed)
    return {
        "init": {},
        "forward": {"x": scale * rng.standard_normal(shape)},
        "dout": rng.standard_normal(shape),
        "forward2": {"x": scale * rng.standard_normal(shape)},
        "dout2": rng.standard_normal(shape),
    }


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def _sigmoid_suspects(i: dict, r: str) -> dict:
    x, d = i["forward" + r]["x"], i["dout" + r]
    return {
        "dx": {
            "from_input": (
                _(
                    "uses the input x in x * (1 - x); the local gradient is "
                    "y * (1 - y) with y the *output* of forward"
                ),
                d * x * (1 - x),
            )
        }
    }


def _collect_strictly(target, inp: dict) -> dict:
    """collect_layer with overflow and invalid operations raised as errors: the layer must
    work for any input (|x| = 800 included) without exp overflowing."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        return collect_layer(target, inp)


# Marked, not translated: verify_layer translates hints when it shows them.
_STABLE_HINT = {
    "forward": N_(
        "run your forward by hand on a small array and read the error. A FloatingPointError "
        "(overflow) means exp got too large an argument: compute from e = exp(-|x|), which "
        "never overflows, and remember that np.where evaluates both of its branches"
    )
}


check_sigmoid = define(
    "sigmoid",
    title="Sigmoid",
    inputs=_sigmoid_inputs,
    collect=_collect_strictly,
    disable=lambda: (activations.Sigmoid, activations.sigmoid),
    verify=lambda inp, obs: verify_layer(
        inp, obs, reference=_sigmoid, wrt=["x"], suspects=_sigmoid_suspects, hints=_STABLE_HINT
    ),
    doc="Sigmoid: forward(x) = 1 / (1 + exp(-x)); backward(dout) -> dout * y * (1 - y).",
)


def _tanh_suspects(i: dict, r: str) -> dict:
    x, d = i["forward" + r]["x"], i["dout" + r]
    y = np.tanh(x)
    return {
        "dx": {
            "from_input": (
                _(
                    "uses the input x in 1 - x**2; the local gradient of tanh is computed "
                    "from y, the *output* of forward, which forward must keep"
                ),
                d * (1 - x**2),
            ),
            "not_squared": (
                _("is dout * (1 - y): the derivative of tanh is not 1 - tanh; square the output"),
                d * (1 - y),
            ),
            "sigmoid_rule": (
                _(
                    "is dout * y * (1 - y), the sigmoid's rule; tanh has its own "
                    "derivative: differentiate tanh and write it with y = tanh(x)"
                ),
                d * y * (1 - y),
            ),
        }
    }


check_tanh = define(
    "tanh",
    title="Tanh",
    inputs=_sigmoid_inputs,
    collect=_collect_strictly,
    disable=lambda: (activations.Tanh,),
    verify=lambda inp, obs: verify_layer(
        inp,
        obs,
        reference=lambda x: np.tanh(x),
        wrt=["x"],
        suspects=_tanh_suspects,
        hints=_STABLE_HINT,
    ),
    doc="Tanh: forward(x) = tanh(x); backward(dout) -> dout times tanh's derivative, "
    "computed from the output.",
)
