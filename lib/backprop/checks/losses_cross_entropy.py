"""Checks for notebook 5's cross_entropy_error (exercise 2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import losses
from ..gradcheck import Check, LayerReport
from ..i18n import _
from .channel import Raised, snapshot
from .core import define
from .layer_rounds import _same
from .losses_softmax import _array, _softmax_ref
from .running import call, raised_check

# --- cross_entropy_error (exercise 2) ------------------------------------------------------------


def _ce_inputs(seed: int = 0, batch_size: int = 4, num_classes: int = 5) -> dict:
    """Probabilities y (N, C), class indices, the same as one-hot rows, and a batch in which one
    correct class has probability exactly 0 (for eps)."""
    rng = np.random.default_rng(seed)
    y = _softmax_ref(1.5 * rng.standard_normal((batch_size, num_classes)))
    labels = rng.integers(0, num_classes, size=batch_size)
    zero = y.copy()
    zero[0] = 0.0
    zero[0, (labels[0] + 1) % num_classes] = 1.0
    return {"y": y, "labels": labels, "one_hot": np.eye(num_classes)[labels], "zero": zero}


def _ce_collect(target: Any, inp: dict) -> dict:
    y, labels, hot = inp["y"], inp["labels"], inp["one_hot"]
    calls = {
        "one-hot": (y, hot),
        "indices": (y, labels),
        "row one-hot": (y[0], hot[0]),
        "row index": (y[1], int(labels[1])),
        "zero": (inp["zero"], labels),
    }
    obs: dict[str, Any] = {}
    for key, args in calls.items():
        given = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
        with np.errstate(all="ignore"):
            out, err = call(target, *given)
        obs[key] = err if err else snapshot(out)
        obs[key + " after"] = snapshot(given)
    return obs


def _ce_number(name: str, what: str, got: Any, want: float, n: int, hint: str = "") -> Check:
    if isinstance(got, Raised):
        return raised_check(name, what, got, hint)
    arr = _array(got)
    if arr is None or arr.size != 1:
        return Check(
            name,
            False,
            _("{what} returned {got:.80}: return one number, the mean loss over the batch").format(
                what=what, got=repr(got)
            ),
            "missing" if got is None else "shape",
        )
    value = float(arr.reshape(()))
    if not np.isfinite(value):
        text = _("{what} returned {value}: add eps inside the log").format(what=what, value=value)
        return Check(name, False, text, "nonfinite")
    if abs(value - want) <= 1e-6 * max(1.0, abs(want)):
        return Check(name, True, f"{what} = {value:.6f}")
    if n > 1 and abs(value - n * want) <= 1e-6 * max(1.0, abs(n * want)):
        return Check(
            name,
            False,
            _(
                "{what} returned {value:.6f}, the sum over the batch: divide by "
                "the batch size N = {n} (the mean)"
            ).format(what=what, value=value, n=n),
            "batch_size",
        )
    if abs(value + want) <= 1e-6 * max(1.0, abs(want)):
        return Check(
            name,
            False,
            _(
                "{what} returned {value:.6f}: the loss is -log of the "
                "probability (a positive number); a minus sign is missing"
            ).format(what=what, value=value),
            "sign",
        )
    text = _("{what} returned {value:.6f}, expected {expected:.6f}").format(
        what=what, value=value, expected=want
    )
    return Check(name, False, text, "mismatch")


def _ce_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("cross_entropy_error")
    y, labels = np.asarray(inp["y"]), np.asarray(inp["labels"])
    n = y.shape[0]
    picked = y[np.arange(n), labels]
    want = float(-np.mean(np.log(picked + 1e-12)))
    hint = _("t is one-hot exactly when t.shape == y.shape; make one row a batch of one")
    report.add(
        _ce_number(
            "one-hot", _("cross_entropy_error(y, one-hot t)"), obs.get("one-hot"), want, n, hint
        )
    )
    report.add(
        _ce_number(
            "indices",
            _("cross_entropy_error(y, class indices t)"),
            obs.get("indices"),
            want,
            n,
            hint,
        )
    )
    first = _ce_number(
        "single sample",
        _("cross_entropy_error(y[0], t[0]) (one-hot row)"),
        obs.get("row one-hot"),
        float(-np.log(picked[0] + 1e-12)),
        1,
        hint,
    )
    second = _ce_number(
        "single sample",
        _("cross_entropy_error(y[1], int class index)"),
        obs.get("row index"),
        float(-np.log(picked[1] + 1e-12)),
        1,
        hint,
    )
    report.add(first if not first.ok else second)
    zero = np.asarray(inp["zero"])
    want_zero = float(-np.mean(np.log(zero[np.arange(n), labels] + 1e-12)))
    report.add(
        _ce_number(
            "eps",
            _("cross_entropy_error on a batch where a correct class has probability exactly 0"),
            obs.get("zero"),
            want_zero,
            n,
            _("add eps inside the log: np.log(y + eps)"),
        )
    )
    calls = {
        "one-hot": (inp["y"], inp["one_hot"]),
        "indices": (inp["y"], inp["labels"]),
        "zero": (inp["zero"], inp["labels"]),
    }
    changed = [
        k
        for k, args in calls.items()
        if not isinstance(obs.get(k + " after"), list)
        or len(obs[k + " after"]) != 2
        or not all(_same(a, b) for a, b in zip(obs[k + " after"], args, strict=False))
    ]
    report.add(
        Check(
            "inputs unchanged",
            not changed,
            _("y and t left as they were")
            if not changed
            else _("cross_entropy_error changed y or t in place: compute into new arrays"),
            None if not changed else "mutated_input",
        )
    )
    return report


check_cross_entropy_error = define(
    "cross_entropy_error",
    title="cross_entropy_error",
    inputs=_ce_inputs,
    collect=_ce_collect,
    verify=_ce_verify,
    disable=lambda: (losses.cross_entropy_error, losses.log_softmax),
    doc="cross_entropy_error(y, t): mean -log y[correct] over the batch; one-hot or indices.",
)
