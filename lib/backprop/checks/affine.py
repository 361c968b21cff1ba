"""Checks for notebook 4: BiasAdd (a bias added to every row) and the Affine layer."""

from __future__ import annotations

import numpy as np

from .. import affine
from ..i18n import _
from .core import define
from .layer import collect_layer, verify_layer


def _inputs(seed: int = 0, x_shape: tuple[int, ...] = (4, 5), out_size: int = 5) -> dict:
    """x of x_shape (N-d allowed), W (D, out_size), b, dout; then W and b updated in place
    and a second batch. The defaults make W square, so a transpose keeps its shape."""
    rng = np.random.default_rng(seed)
    d = int(np.prod(x_shape[1:]))
    W, b = rng.standard_normal((d, out_size)), rng.standard_normal(out_size)
    n = x_shape[0]
    return {
        "init": {"W": W, "b": b},
        "forward": {"x": rng.standard_normal(x_shape)},
        "dout": rng.standard_normal((n, out_size)),
        "update": {"W": rng.standard_normal(W.shape), "b": rng.standard_normal(b.shape)},
        "forward2": {"x": rng.standard_normal(x_shape)},
        "dout2": rng.standard_normal((n, out_size)),
    }


def _forward(W: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1) @ W + b


def _suspects(i: dict, r: str) -> dict:
    x, dout = i["forward" + r]["x"], i["dout" + r]
    W = i["init"]["W"] + (i["update"]["W"] if r else 0)
    x2 = x.reshape(x.shape[0], -1)
    square = W.shape[0] == W.shape[1]
    why = _(
        "is the transpose of the right answer (the shapes only agree because W is "
        "square): check the order of the factors and which one is transposed"
    )
    found = {
        "db": {
            "db_mean": (
                _(
                    "is the mean of dout over the batch; db is the sum (the loss "
                    "layer has already divided by N)"
                ),
                dout.mean(axis=0),
            )
        }
    }
    if square:
        found["dW"] = {"transpose": (why, dout.T @ x2)}
        found["dx"] = {"transpose": (why, (dout @ W).reshape(x.shape))}
    return found


check_affine = define(
    "affine",
    title="Affine",
    inputs=_inputs,
    disable=lambda: (affine.Affine,),
    collect=lambda target, inp: collect_layer(target, inp, params={"W": "dW", "b": "db"}),
    verify=lambda inp, obs: verify_layer(
        inp, obs, reference=_forward, wrt=["x"], params={"W": "dW", "b": "db"}, suspects=_suspects
    ),
    doc="Affine(W, b): forward(x) = x.reshape(N, -1) @ W + b; backward -> dx; sets dW, db.",
)


def _bias_inputs(seed: int = 0, batch_size: int = 4, size: int = 5) -> dict:
    """x (N, M), a bias b (M,) added to every row, dout (N, M), and a second batch."""
    rng = np.random.default_rng(seed)
    n, m = batch_size, size
    return {
        "init": {},
        "forward": {"x": rng.standard_normal((n, m)), "b": rng.standard_normal(m)},
        "dout": rng.standard_normal((n, m)),
        "forward2": {"x": rng.standard_normal((n + 1, m)), "b": rng.standard_normal(m)},
        "dout2": rng.standard_normal((n + 1, m)),
    }


def _bias_suspects(i: dict, r: str) -> dict:
    dout = i["dout" + r]
    return {
        "db": {
            "db_mean": (
                _(
                    "is the mean of dout over the batch: b is used by every "
                    "sample, and the gradients of all its uses add up"
                ),
                dout.mean(axis=0),
            )
        }
    }


check_bias_add = define(
    "bias_add",
    title="BiasAdd",
    inputs=_bias_inputs,
    collect=collect_layer,
    verify=lambda inp, obs: verify_layer(
        inp, obs, reference=lambda x, b: x + b, wrt=["x", "b"], suspects=_bias_suspects
    ),
    doc="BiasAdd: forward(x, b) = x + b for every row of x; backward(dout) -> (dx, db).",
)
