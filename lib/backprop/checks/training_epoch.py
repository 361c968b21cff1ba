"""Checks for notebook 7's ``train_epoch``: one shuffled epoch, replayed in plain numpy.

``train_epoch`` is run on a small softmax-regression model defined here (plain numpy, so
the check needs none of the course's layers) on synthetic data with one distinct row per
index. ``verify`` replays the epoch itself, in plain numpy, from the same seed: the batches
must be ``rng.permutation(N)`` cut in order, and the losses and the final parameters must
be those of that replay. It never takes the learner's loss history on trust.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import optim, training
from ..gradcheck import Check, LayerReport
from ..i18n import _
from .channel import Raised, snapshot
from .core import define
from .running import call, raised_check
from .training import _arr, _close


def _softmax_loss(
    W: np.ndarray, b: np.ndarray, x: np.ndarray, t: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean cross-entropy of softmax(x @ W + b) and its gradients dW, db."""
    s = x @ W + b
    s = s - s.max(axis=1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=1, keepdims=True)
    n = x.shape[0]
    loss = float(-np.mean(np.log(p[np.arange(n), t] + 1e-300)))
    d = p.copy()
    d[np.arange(n), t] -= 1
    d /= n
    return loss, x.T @ d, d.sum(axis=0)


class _LastLayer:
    loss: float | None = None


class _Model:
    """Softmax regression with the net protocol (params, gradient, loss, last_layer.loss)
    that remembers every batch given to gradient."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.params = {"W": W, "b": b}
        self.last_layer = _LastLayer()
        self.batches: list[tuple[np.ndarray, np.ndarray]] = []

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        self.last_layer.loss = _softmax_loss(
            self.params["W"], self.params["b"], np.asarray(x), np.asarray(t)
        )[0]
        return self.last_layer.loss

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        self.batches.append((np.array(x, copy=True), np.array(t, copy=True)))
        loss, dW, db = _softmax_loss(
            self.params["W"], self.params["b"], np.asarray(x), np.asarray(t)
        )
        self.last_layer.loss = loss
        return {"W": dW, "b": db}

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x) @ self.params["W"] + self.params["b"]


def _epoch_inputs(
    seed: int = 0, n: int = 30, d: int = 3, classes: int = 3, batch_size: int = 8, lr: float = 0.5
) -> dict:
    """n rows (all distinct) of d features in `classes` clusters, a model's W and b, and the
    seed of the generator passed to train_epoch (two epochs are run with it)."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, size=n)
    x = 2 * rng.standard_normal((classes, d))[t] + rng.standard_normal((n, d))
    return {
        "x": x,
        "t": t,
        "W": 0.1 * rng.standard_normal((d, classes)),
        "b": np.zeros(classes),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "seed": int(seed) + 1000,
    }


def _epoch_collect(target: Any, inp: dict) -> dict:
    x, t = np.array(inp["x"], copy=True), np.array(inp["t"], copy=True)
    model = _Model(np.array(inp["W"], copy=True), np.array(inp["b"], copy=True))
    arrays = dict(model.params)
    rng = np.random.default_rng(inp["seed"])
    obs: dict[str, Any] = {}
    for epoch in ("1", "2"):
        start = len(model.batches)
        losses, err = call(target, model, x, t, inp["batch_size"], inp["lr"], rng)
        obs["losses" + epoch] = err if err is not None else snapshot(losses)
        obs["batches_x" + epoch] = [b[0] for b in model.batches[start:]][:1000]
        obs["batches_t" + epoch] = [b[1] for b in model.batches[start:]][:1000]
        obs["params" + epoch] = snapshot(model.params)
        obs["same" + epoch] = {k: model.params.get(k) is a for k, a in arrays.items()}
        if err is not None:
            break
    obs["x_after"], obs["t_after"] = snapshot(x), snapshot(t)
    return obs


def _replay(inp: dict, epochs: int = 2, *, loss_after: bool = False) -> list[dict]:
    """The reference: `epochs` epochs from np.random.default_rng(seed), in plain numpy."""
    x, t = np.asarray(inp["x"], dtype=np.float64), np.asarray(inp["t"])
    W, b = np.array(inp["W"], dtype=np.float64), np.array(inp["b"], dtype=np.float64)
    rng = np.random.default_rng(inp["seed"])
    n, bs, lr = x.shape[0], inp["batch_size"], inp["lr"]
    out = []
    for _epoch in range(epochs):
        order = rng.permutation(n)
        batches = [order[s : s + bs] for s in range(0, n, bs)]
        losses = []
        for idx in batches:
            loss, dW, db = _softmax_loss(W, b, x[idx], t[idx])
            W, b = W - lr * dW, b - lr * db
            if loss_after:
                loss = _softmax_loss(W, b, x[idx], t[idx])[0]
            losses.append(loss)
        out.append({"batches": batches, "losses": losses, "W": W, "b": b})
    return out


def _rows(inp: dict, xs: Any, ts: Any) -> tuple[list[list[int]] | None, str]:
    """The row indices of each recorded batch, or None and why they are unusable."""
    x, t = np.asarray(inp["x"], dtype=np.float64), np.asarray(inp["t"])
    if not isinstance(xs, list) or not isinstance(ts, list) or len(xs) != len(ts):
        return None, _("the batches passed to net.gradient could not be read")
    lookup = {row.tobytes(): i for i, row in enumerate(x)}
    rows = []
    for xb, tb in zip(xs, ts, strict=False):
        xb, tb = _arr(xb), _arr(tb)
        if xb is None or tb is None or xb.ndim != 2 or xb.shape[1] != x.shape[1]:
            return None, _("net.gradient was given something that is not a batch of rows of x")
        idx = [lookup.get(np.ascontiguousarray(r).tobytes()) for r in xb]
        if None in idx:
            return None, _("net.gradient was given rows that are not rows of x")
        if tb.shape != (len(idx),) or not np.array_equal(tb, t[idx]):
            return None, "labels"
        rows.append(idx)
    return rows, ""


def _judge_batches(inp: dict, obs: dict, epoch: str, want: list[np.ndarray]) -> Check:
    n, bs = len(inp["t"]), inp["batch_size"]
    rows, why = _rows(inp, obs.get("batches_x" + epoch), obs.get("batches_t" + epoch))
    label = "" if epoch == "1" else _("in the second epoch (the same rng, called again): ")
    if rows is None:
        if why == "labels":
            return Check(
                "batches",
                False,
                label
                + _(
                    "t_batch is not the labels of the rows in "
                    "x_batch: index x and t with the same indices"
                ),
                "labels_mismatched",
            )
        return Check("batches", False, label + why, "mismatch")
    flat = [i for r in rows for i in r]
    sizes = [len(r) for r in rows]
    if not rows:
        return Check("batches", False, label + _("net.gradient was never called"), "no_update")
    if len(set(flat)) < len(flat):
        return Check(
            "batches",
            False,
            label
            + _(
                "{count} rows were used "
                "twice and others not at all: batches drawn with replacement "
                "(rng.integers) are not an epoch. Shuffle the indices 0..N-1 once per "
                "epoch and cut them into consecutive batches"
            ).format(count=len(flat) - len(set(flat))),
            "with_replacement",
        )
    if len(flat) < n:
        return Check(
            "batches",
            False,
            label
            + _(
                "only {used} of the {n} rows were used "
                "(batches of sizes {sizes}): the last, smaller batch must be used too "
                "({n} is not a multiple of {batch_size})"
            ).format(used=len(flat), n=n, sizes=sizes, batch_size=bs),
            "dropped_last",
        )
    if len(flat) > n:
        return Check(
            "batches",
            False,
            label + _("{used} rows for N = {n}").format(used=len(flat), n=n),
            "mismatch",
        )
    if flat == list(range(n)):
        return Check(
            "batches",
            False,
            label
            + _(
                "the rows were used in their stored order "
                "0, 1, 2, ...: shuffle them first (rng.permutation(N))"
            ),
            "not_shuffled",
        )
    if any(s != bs for s in sizes[:-1]) or sizes[-1] > bs:
        return Check(
            "batches",
            False,
            label
            + _(
                "batch sizes {sizes}: every batch but the last "
                "must hold batch_size = {batch_size} rows"
            ).format(sizes=sizes, batch_size=bs),
            "batch_size",
        )
    if flat != [int(i) for r in want for i in r]:
        if epoch == "2" and flat == [int(i) for r in _replay(inp, 1)[0]["batches"] for i in r]:
            return Check(
                "batches",
                False,
                label
                + _(
                    "it used the same order as the first "
                    "epoch: draw a new permutation from rng at every call (do not make "
                    "a new generator inside train_epoch)"
                ),
                "reseeded",
            )
        return Check(
            "batches",
            False,
            label
            + _(
                "every row once, but not in the order of "
                "rng.permutation(N) with the rng passed in: shuffle with that generator "
                "(not np.random, and not a generator made inside)"
            ),
            "unseeded",
        )
    return Check(
        "batches",
        True,
        _(
            "each epoch is rng.permutation(N) cut into batches, every "
            "row exactly once, labels with their rows"
        ),
    )


def _not_run(obs: dict, epoch: str) -> Check | None:
    """The failed check when train_epoch raised or was not run in this epoch, else None."""
    losses = obs.get("losses" + epoch)
    if isinstance(losses, Raised):
        return raised_check(
            "batches", "train_epoch", losses, "train_epoch(net, x, t, batch_size, lr, rng)"
        )
    if "losses" + epoch not in obs:
        return Check("batches", False, _("train_epoch was not run"), "not_run")
    return None


def _epoch_losses(got: Any, r: dict, a: dict) -> Check | None:
    """What is wrong with one epoch's returned losses (r: the replay, a: losses after each
    update), or None."""
    arr = _arr(got)
    if got is None:
        return Check(
            "losses",
            False,
            _("train_epoch returned None: return the list of batch losses"),
            "missing",
        )
    if arr is None or arr.ndim != 1:
        return Check(
            "losses", False, _("should be a list of numbers, one per batch"), "return_value"
        )
    if arr.size != len(r["losses"]):
        return Check(
            "losses",
            False,
            _("{losses} losses for {batches} batches: one loss per batch").format(
                losses=arr.size, batches=len(r["losses"])
            ),
            "length",
        )
    if np.allclose(arr, a["losses"], rtol=1e-6) and not np.allclose(arr, r["losses"], rtol=1e-6):
        return Check(
            "losses",
            False,
            _(
                "are the losses after each update: record the "
                "loss of the batch before the step (net.last_layer.loss right "
                "after net.gradient)"
            ),
            "loss_after_update",
        )
    if not np.allclose(arr, r["losses"], rtol=1e-6, atol=1e-9):
        return Check(
            "losses",
            False,
            _(
                "differ from a replay of the epoch with the same "
                "batches: record net.last_layer.loss after each net.gradient, and "
                "update with sgd_step(net.params, grads, lr)"
            ),
            "mismatch",
        )
    return None


def _epoch_params(inp: dict, obs: dict, epoch: str, r: dict) -> Check | None:
    """What is wrong with net.params after this epoch (r: the replay), or None."""
    ps = obs.get("params" + epoch) if isinstance(obs.get("params" + epoch), dict) else {}
    same = obs.get("same" + epoch) if isinstance(obs.get("same" + epoch), dict) else {}
    if not (_close(ps.get("W"), r["W"]) and _close(ps.get("b"), r["b"])):
        if _close(ps.get("W"), np.asarray(inp["W"], dtype=np.float64), 0):
            return Check(
                "params",
                False,
                _(
                    "net.params did not change: update them with "
                    "sgd_step(net.params, grads, lr) after every net.gradient"
                ),
                "no_update",
            )
        return Check(
            "params",
            False,
            _(
                "after epoch {epoch}, net.params differs from a "
                "replay of the same batches: one sgd_step per batch, with lr"
            ).format(epoch=epoch),
            "mismatch",
        )
    if not all(same.get(k) is True for k in ("W", "b")):
        return Check(
            "params",
            False,
            _(
                "net.params holds new arrays: update in place (sgd_step), "
                "so the layers see the change"
            ),
            "copied_params",
        )
    return None


def _epoch_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("train_epoch")
    ref = _replay(inp)
    after = _replay(inp, loss_after=True)
    x0, t0 = np.asarray(inp["x"], dtype=np.float64), np.asarray(inp["t"])
    for epoch in ("1", "2"):
        problem = _not_run(obs, epoch)
        if problem:
            report.add(problem)
            return report
        batches = _judge_batches(inp, obs, epoch, ref[int(epoch) - 1]["batches"])
        if not batches.ok:
            break
    report.add(batches)
    x_ok = _close(obs.get("x_after"), x0, 0) and _close(obs.get("t_after"), t0, 0)
    report.add(
        Check("data unchanged", True, _("x and t left alone"))
        if x_ok
        else Check(
            "data unchanged",
            False,
            _(
                "x or t was changed (shuffled in place?): shuffle "
                "the indices, and index x and t with them"
            ),
            "mutated_input",
        )
    )
    if not batches.ok:
        for name in ("losses", "params"):
            report.add(Check(name, False, _("not judged until the batches are right"), "not_run"))
        return report
    losses = params = None  # the first epoch that is wrong is the one reported
    for epoch, r, a in (("1", ref[0], after[0]), ("2", ref[1], after[1])):
        if losses is None:
            losses = _epoch_losses(obs.get("losses" + epoch), r, a)
        if params is None:
            params = _epoch_params(inp, obs, epoch, r)
    report.add(
        losses
        or Check(
            "losses", True, _("one loss per batch, each before its update, as the replay gives")
        )
    )
    report.add(
        params
        or Check(
            "params", True, _("after two epochs net.params equals the replay's, updated in place")
        )
    )
    return report


check_train_epoch = define(
    "train_epoch",
    title="train_epoch",
    inputs=_epoch_inputs,
    collect=_epoch_collect,
    verify=_epoch_verify,
    disable=lambda: (optim.SGD, training.train, training.train_epoch, training.epoch_batches),
    doc="train_epoch(net, x, t, batch_size, lr, rng): checks 'batches', 'data unchanged', "
    "'losses' and 'params' against a replay of two epochs from the same seed.",
)
