"""Checks for notebook 5's loss layers, SoftmaxWithLoss and IdentityWithLoss (the functions
softmax and its Jacobian: :mod:`.losses_softmax`; cross_entropy_error:
:mod:`.losses_cross_entropy`)."""

from __future__ import annotations

import numpy as np

from .. import losses
from ..gradcheck import Check, LayerReport
from ..i18n import _
from .channel import as_floats
from .core import define
from .layer import collect_layer, verify_layer


def _inputs(
    seed: int = 0,
    batch_size: int = 4,
    num_classes: int = 5,
    one_hot: bool = False,
    scale: float = 3.0,
    dout: float = 2.5,
) -> dict:
    """Logits scale * standard normal (N, C), targets (indices or one-hot), a scalar dout
    other than 1 (so a backward that ignores it shows), and a second batch."""
    rng = np.random.default_rng(seed)

    def batch() -> tuple[np.ndarray, np.ndarray]:
        x = scale * rng.standard_normal((batch_size, num_classes))
        labels = rng.integers(0, num_classes, size=batch_size)
        return x, (np.eye(num_classes)[labels] if one_hot else labels)

    (x, t), (x2, t2) = batch(), batch()
    return {
        "init": {},
        "forward": {"x": x, "t": t},
        "dout": float(dout),
        "forward2": {"x": x2, "t": t2},
        "dout2": float(dout) * 0.5 + 0.25,
    }


def _labels(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.argmax(t, axis=1) if np.ndim(t) == 2 else np.asarray(t)


def _loss(x: np.ndarray, t: np.ndarray) -> float:
    logp = x - np.max(x, axis=1, keepdims=True)
    logp = logp - np.log(np.sum(np.exp(logp), axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(x.shape[0]), _labels(x, t)]))


def _suspects(i: dict, r: str) -> dict:
    x, t = i["forward" + r]["x"], i["forward" + r]["t"]
    n, c = x.shape
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    y_t = y - np.eye(c)[_labels(x, t)]
    return {
        "dx": {
            "ignores_dout": (
                _("ignores dout: multiply (y - t) / N by the upstream gradient"),
                y_t / n,
            ),
            "no_batch_no_dout": (
                _("is y - t: divide by the batch size N = {n} and multiply by dout").format(n=n),
                y_t,
            ),
        }
    }


check_softmax_with_loss = define(
    "softmax_with_loss",
    title="SoftmaxWithLoss",
    inputs=_inputs,
    collect=collect_layer,
    disable=lambda: (
        losses.SoftmaxWithLoss,
        losses.softmax,
        losses.log_softmax,
        losses.cross_entropy_error,
    ),
    verify=lambda inp, obs: verify_layer(
        inp,
        obs,
        reference=_loss,
        wrt=["x"],
        suspects=_suspects,
        threshold=1e-7 if np.max(np.abs(inp["forward"]["x"])) < 100 else 1e-6,
    ),
    doc="SoftmaxWithLoss: forward(x, t) -> mean loss; backward(dout) -> dout * (y - t) / N.",
)


# --- IdentityWithLoss (exercise 5) ---------------------------------------------------------------


def _identity_inputs(
    seed: int = 0, batch_size: int = 4, num_outputs: int = 3, dout: float = 2.5
) -> dict:
    """Predictions x and targets t (N, K), a dout other than 1, and a second batch."""
    rng = np.random.default_rng(seed)
    x, t, x2, t2 = (rng.standard_normal((batch_size, num_outputs)) for _ in range(4))
    return {
        "init": {},
        "forward": {"x": x, "t": t},
        "dout": float(dout),
        "forward2": {"x": x2, "t": t2},
        "dout2": float(dout) * 0.5 + 0.25,
    }


def _half_mse(x: np.ndarray, t: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(0.5 * np.sum((x - t) ** 2) / x.shape[0])


def _identity_suspects(i: dict, r: str) -> dict:
    x, t = i["forward" + r]["x"], i["forward" + r]["t"]
    n, k = x.shape
    d = i["dout" + r]
    return {
        "dx": {
            "no_half": (
                _(
                    "is twice too large: the loss has a factor 1/2, which cancels the 2 of "
                    "the square's derivative"
                ),
                2 * d * (x - t) / n,
            ),
            "all_entries": (
                _(
                    "divides by N * K = {nk}: the loss is a mean over the batch (N = "
                    "{n}) of each sample's sum of squares"
                ).format(nk=n * k, n=n),
                d * (x - t) / (n * k),
            ),
        }
    }


def _identity_verify(inp: dict, obs: dict) -> LayerReport:
    report = verify_layer(
        inp,
        obs,
        reference=_half_mse,
        wrt=["x"],
        suspects=_identity_suspects,
        name="IdentityWithLoss",
    )
    if "out" in report and not report["out"].ok:
        x, t = inp["forward"]["x"], inp["forward"]["t"]
        got = as_floats(obs.get("out"))
        want = _half_mse(x, t)
        for key, why, wrong in (
            (
                "plain_mse",
                _(
                    "is twice the half-MSE: this course's loss is 0.5 * the mean over "
                    "the batch of the sum of squares"
                ),
                2 * want,
            ),
            (
                "all_entries",
                _(
                    "is the mean over all N * K entries: divide the sum by N only (and keep the "
                    "1/2)"
                ),
                want / x.shape[1],
            ),
            (
                "no_half_all",
                _("is the mean of the squares over all entries: the loss is 0.5 * sum / N"),
                2 * want / x.shape[1],
            ),
        ):
            if (
                got is not None
                and got.size == 1
                and np.isclose(float(got.reshape(())), wrong, rtol=1e-9)
            ):
                idx = report.checks.index(report["out"])
                report.checks[idx] = Check("out", False, why, key)
                break
    return report


check_identity_with_loss = define(
    "identity_with_loss",
    title="IdentityWithLoss",
    inputs=_identity_inputs,
    collect=collect_layer,
    verify=_identity_verify,
    disable=lambda: (losses.IdentityWithLoss,),
    doc="IdentityWithLoss: forward(x, t) -> 0.5 * sum((x - t)**2) / N; backward(dout) -> dx.",
)
