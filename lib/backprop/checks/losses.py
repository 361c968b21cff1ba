"""Checks for notebook 5: softmax, cross_entropy_error, the softmax Jacobian, SoftmaxWithLoss and
IdentityWithLoss."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import losses
from ..gradcheck import Check, LayerReport, numerical_gradient
from .channel import as_floats, Raised, snapshot
from .core import call, define, raised_check
from .layer import _same, collect_layer, verify_layer


def _inputs(seed: int = 0, batch_size: int = 4, num_classes: int = 5, one_hot: bool = False,
            scale: float = 3.0, dout: float = 2.5) -> dict:
    """Logits scale * standard normal (N, C), targets (indices or one-hot), a scalar dout
    other than 1 (so a backward that ignores it shows), and a second batch."""
    rng = np.random.default_rng(seed)

    def batch() -> tuple[np.ndarray, np.ndarray]:
        x = scale * rng.standard_normal((batch_size, num_classes))
        labels = rng.integers(0, num_classes, size=batch_size)
        return x, (np.eye(num_classes)[labels] if one_hot else labels)

    (x, t), (x2, t2) = batch(), batch()
    return {"init": {}, "forward": {"x": x, "t": t}, "dout": float(dout),
            "forward2": {"x": x2, "t": t2}, "dout2": float(dout) * 0.5 + 0.25}


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
    return {"dx": {
        "ignores_dout": ("ignores dout: multiply (y - t) / N by the upstream gradient",
                         y_t / n),
        "no_batch_no_dout": (f"is y - t: divide by the batch size N = {n} and multiply by "
                             "dout", y_t),
    }}


check_softmax_with_loss = define(
    "softmax_with_loss", title="SoftmaxWithLoss", inputs=_inputs, collect=collect_layer,
    disable=lambda: (losses.SoftmaxWithLoss, losses.softmax, losses.log_softmax,
                     losses.cross_entropy_error),
    verify=lambda inp, obs: verify_layer(
        inp, obs, reference=_loss, wrt=["x"], suspects=_suspects,
        threshold=1e-7 if np.max(np.abs(inp["forward"]["x"])) < 100 else 1e-6),
    doc="SoftmaxWithLoss: forward(x, t) -> mean loss; backward(dout) -> dout * (y - t) / N.")


# --- shared helpers for the function checks ---------------------------------------------------

_array = as_floats


def _softmax_ref(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64)
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def _compare(name: str, what: str, got: Any, want: np.ndarray, suspects: dict,
             rtol: float = 1e-7, atol: float = 1e-12, hint: str = "") -> Check:
    """got against want; a Raised, None, a wrong shape, nan or a named suspect each get their
    own message."""
    if isinstance(got, Raised):
        return raised_check(name, what, got, hint)
    arr = _array(got)
    if arr is None:
        return Check(name, False, f"{what} returned {got!r:.80}, not an array of numbers",
                     "missing" if got is None else "not_numeric")
    want = np.asarray(want, dtype=np.float64)
    if arr.shape != want.shape:
        return Check(name, False, f"{what} returned shape {arr.shape}, expected {want.shape}",
                     "shape")
    if not np.all(np.isfinite(arr)):
        return Check(name, False, f"{what} returned nan or inf ({arr.ravel()[:4].tolist()}...)",
                     "nonfinite")
    if np.allclose(arr, want, rtol=rtol, atol=atol):
        return Check(name, True, f"{what}: right to within {rtol:.0e}")
    for key, (why, wrong) in suspects.items():
        wrong = np.asarray(wrong, dtype=np.float64)
        if wrong.shape == arr.shape and np.all(np.isfinite(wrong)) and \
                np.allclose(arr, wrong, rtol=1e-6, atol=1e-12):
            return Check(name, False, f"{what}: {why}", key)
    return Check(name, False, f"{what} returned {np.round(arr, 4).ravel()[:6].tolist()}..., "
                 f"expected {np.round(want, 4).ravel()[:6].tolist()}...", "mismatch")


def _unchanged(name: str, before: Any, after: Any, what: str) -> Check:
    if _same(before, after):
        return Check(name, True, "left as it was")
    return Check(name, False, f"{what} changed its input in place: compute into a new array "
                 "(x - m makes one; x -= m changes the caller's array)", "mutated_input")


# --- softmax (exercise 1) ----------------------------------------------------------------------

def _softmax_inputs(seed: int = 0, batch_size: int = 4, num_classes: int = 5,
                    scale: float = 2.0) -> dict:
    """A batch (N, C) of scale * standard normal scores, one row (C,), and a batch whose rows sit
    at +-1000 and around -3000 (each row needs its own maximum)."""
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal((batch_size, num_classes))
    row = scale * rng.standard_normal(num_classes)
    offsets = np.array([1000.0, -1000.0, -3000.0, 0.0])[:max(2, min(4, batch_size))]
    big = offsets[:, None] + 3 * rng.standard_normal((offsets.size, num_classes))
    big[-1, 0] = 1000.0   # one row with a huge gap: the small entries round to 0, not nan
    return {"x": x, "row": row, "big": big}


def _softmax_collect(target: Any, inp: dict) -> dict:
    obs: dict[str, Any] = {}
    for key in ("x", "row", "big"):
        given = np.array(inp[key], copy=True)
        with np.errstate(all="ignore"):
            out, err = call(target, given)
        obs[key] = err if err else snapshot(out)
        obs[key + "_after"] = snapshot(given)
    return obs


def _softmax_suspects(x: np.ndarray) -> dict:
    e = np.exp(x - np.max(x))
    with np.errstate(all="ignore"):
        found = {
            "not_per_row": ("the rows do not each sum to 1: divide each row by its own sum "
                            "(np.sum(e, axis=-1, keepdims=True))", e / np.sum(e)),
            "wrong_axis": ("each column sums to 1: softmax works along the last axis (axis=-1), "
                           "one row of scores per sample", e / np.sum(e, axis=0, keepdims=True)),
        }
        if x.ndim == 2:
            ez = np.exp(x - np.max(x, axis=0, keepdims=True))
            found["max_axis0"] = ("subtracts the maximum of each column: subtract each row's own "
                                  "maximum (np.max(x, axis=-1, keepdims=True))",
                                  ez / np.sum(ez, axis=-1, keepdims=True))
    return found


def _by_sums(check: Check, got: Any) -> Check:
    """A mismatch whose rows do not sum to 1 (or whose columns do) is named for that."""
    arr = _array(got)
    if check.ok or check.mistake != "mismatch" or arr is None or arr.ndim != 2:
        return check
    with np.errstate(all="ignore"):
        rows, cols = np.sum(arr, axis=-1), np.sum(arr, axis=0)
    if np.allclose(cols, 1.0) and not np.allclose(rows, 1.0):
        return Check(check.name, False, "each column sums to 1, not each row: softmax works "
                     "along the last axis (axis=-1), one row of scores per sample", "wrong_axis")
    if not np.allclose(rows, 1.0):
        return Check(check.name, False, f"the rows sum to {np.round(rows, 4).tolist()}, not 1: "
                     "divide each row by its own sum (axis=-1, keepdims=True)", "not_per_row")
    return check


def _softmax_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("softmax")
    hint = "axis=-1 is the last axis for both (C,) and (N, C); keepdims=True keeps it"
    for key, name, what in (("x", "batch", "softmax of a batch (N, C)"),
                            ("row", "single row", "softmax of one row (C,)")):
        x = inp[key]
        report.add(_by_sums(_compare(name, what, obs.get(key), _softmax_ref(x),
                                     _softmax_suspects(x), rtol=1e-9, hint=hint), obs.get(key)))
    big = inp["big"]
    got = obs.get("big")
    arr = _array(got)
    if arr is not None and arr.shape == big.shape and not np.all(np.isfinite(arr)):
        with np.errstate(all="ignore"):
            shifted_once = np.exp(big - np.max(big))
            once = shifted_once / np.sum(shifted_once, axis=-1, keepdims=True)
        why = ("subtracts one maximum for the whole array: rows far below it underflow to 0 / 0; "
               "subtract each row's own maximum (axis=-1, keepdims=True)"
               if _same(np.isfinite(arr), np.isfinite(once)) else
               "is not stable: subtract each row's maximum before np.exp, so the largest "
               "exponent is 0 (exp(1000) overflows to inf, and inf / inf is nan)")
        report.add(Check("stable", False, f"softmax of scores of +-1000 gave nan or inf: it {why}",
                         "global_max" if "one maximum" in why else "not_shifted"))
    else:
        report.add(_compare("stable", "softmax of scores of +-1000", got, _softmax_ref(big), {},
                            rtol=1e-7, atol=1e-300, hint=hint))
    changed = [k for k in ("x", "row", "big") if not _same(obs.get(k + "_after"), inp[k])]
    report.add(Check("x unchanged", not changed, "left as it was" if not changed else
                     "softmax changed its input x in place: compute into a new array "
                     "(x - m makes one; x -= m changes the caller's array)",
                     None if not changed else "mutated_input"))
    return report


check_softmax = define(
    "softmax", title="softmax", inputs=_softmax_inputs, collect=_softmax_collect,
    verify=_softmax_verify, disable=lambda: (losses.softmax, losses.log_softmax),
    doc="softmax(x): rows of probabilities, for (N, C) and (C,), stable for scores of +-1000.")


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
    calls = {"one-hot": (y, hot), "indices": (y, labels), "row one-hot": (y[0], hot[0]),
             "row index": (y[1], int(labels[1])), "zero": (inp["zero"], labels)}
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
        return Check(name, False, f"{what} returned {got!r:.80}: return one number, the mean loss "
                     "over the batch", "missing" if got is None else "shape")
    value = float(arr.reshape(()))
    if not np.isfinite(value):
        return Check(name, False, f"{what} returned {value}: add eps inside the log", "nonfinite")
    if abs(value - want) <= 1e-6 * max(1.0, abs(want)):
        return Check(name, True, f"{what} = {value:.6f}")
    if n > 1 and abs(value - n * want) <= 1e-6 * max(1.0, abs(n * want)):
        return Check(name, False, f"{what} returned {value:.6f}, the sum over the batch: divide by "
                     f"the batch size N = {n} (the mean)", "batch_size")
    if abs(value + want) <= 1e-6 * max(1.0, abs(want)):
        return Check(name, False, f"{what} returned {value:.6f}: the loss is -log of the "
                     "probability (a positive number); a minus sign is missing", "sign")
    return Check(name, False, f"{what} returned {value:.6f}, expected {want:.6f}", "mismatch")


def _ce_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("cross_entropy_error")
    y, labels = np.asarray(inp["y"]), np.asarray(inp["labels"])
    n = y.shape[0]
    picked = y[np.arange(n), labels]
    want = float(-np.mean(np.log(picked + 1e-12)))
    hint = "t is one-hot exactly when t.shape == y.shape; make one row a batch of one"
    report.add(_ce_number("one-hot", "cross_entropy_error(y, one-hot t)", obs.get("one-hot"),
                          want, n, hint))
    report.add(_ce_number("indices", "cross_entropy_error(y, class indices t)",
                          obs.get("indices"), want, n, hint))
    first = _ce_number("single sample", "cross_entropy_error(y[0], t[0]) (one-hot row)",
                       obs.get("row one-hot"), float(-np.log(picked[0] + 1e-12)), 1, hint)
    second = _ce_number("single sample", "cross_entropy_error(y[1], int class index)",
                        obs.get("row index"), float(-np.log(picked[1] + 1e-12)), 1, hint)
    report.add(first if not first.ok else second)
    zero = np.asarray(inp["zero"])
    want_zero = float(-np.mean(np.log(zero[np.arange(n), labels] + 1e-12)))
    report.add(_ce_number("eps", "cross_entropy_error on a batch where a correct class has "
                          "probability exactly 0", obs.get("zero"), want_zero, n,
                          "add eps inside the log: np.log(y + eps)"))
    calls = {"one-hot": (inp["y"], inp["one_hot"]), "indices": (inp["y"], inp["labels"]),
             "zero": (inp["zero"], inp["labels"])}
    changed = [k for k, args in calls.items()
               if not isinstance(obs.get(k + " after"), list) or len(obs[k + " after"]) != 2
               or not all(_same(a, b) for a, b in zip(obs[k + " after"], args))]
    report.add(Check("inputs unchanged", not changed, "y and t left as they were" if not changed
                     else "cross_entropy_error changed y or t in place: compute into new arrays",
                     None if not changed else "mutated_input"))
    return report


check_cross_entropy_error = define(
    "cross_entropy_error", title="cross_entropy_error", inputs=_ce_inputs, collect=_ce_collect,
    verify=_ce_verify, disable=lambda: (losses.cross_entropy_error, losses.log_softmax),
    doc="cross_entropy_error(y, t): mean -log y[correct] over the batch; one-hot or indices.")


# --- the softmax Jacobian (exercise 3) ---------------------------------------------------------

def _jac_inputs(seed: int = 0, num_classes: int = 4, scale: float = 1.5) -> dict:
    """Two rows of scores (C,): the Jacobian of softmax is asked for each."""
    rng = np.random.default_rng(seed)
    return {"rows": [scale * rng.standard_normal(num_classes) for _ in range(2)]}


def _jac_collect(target: Any, inp: dict) -> dict:
    obs: dict[str, Any] = {"out": [], "after": []}
    for row in inp["rows"]:
        given = np.array(row, copy=True)
        out, err = call(target, given)
        obs["out"].append(err if err else snapshot(out))
        obs["after"].append(snapshot(given))
    return obs


def _numeric_jacobian(x: np.ndarray) -> np.ndarray:
    """J[i, j] = dy_i / dx_j by central differences of a plain-numpy softmax."""
    c = x.size
    jac = np.empty((c, c))
    for i in range(c):
        jac[i] = numerical_gradient(lambda v, i=i: float(_softmax_ref(v)[i]),
                                    np.array(x, dtype=np.float64))
    return jac


def _jac_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("softmax_jacobian")
    outs = obs.get("out") if isinstance(obs.get("out"), list) else []
    diag_check = off_check = None
    for k, row in enumerate(inp["rows"]):
        x = np.asarray(row, dtype=np.float64)
        y = _softmax_ref(x)
        c = x.size
        want = _numeric_jacobian(x)
        got = outs[k] if k < len(outs) else None
        what = f"softmax_jacobian(x) for x = {np.round(x, 3).tolist()}"
        if isinstance(got, Raised):
            report.add(raised_check("diagonal", what, got, "y = softmax(x); build a (C, C) array"))
            return report
        arr = _array(got)
        if arr is None or arr.shape != (c, c) or not np.all(np.isfinite(arr)):
            shape = None if arr is None else arr.shape
            report.add(Check("diagonal", False, f"{what} returned {got!r:.60}" if shape is None
                             else f"{what} returned shape {shape}, expected ({c}, {c}) with "
                             "finite entries: entry [i, j] is dy_i / dx_j",
                             "missing" if got is None else "shape"))
            return report
        eye = np.eye(c, dtype=bool)
        d_ok = np.allclose(arr[eye], want[eye], rtol=1e-6, atol=1e-9)
        o_ok = np.allclose(arr[~eye], want[~eye], rtol=1e-6, atol=1e-9)
        if not d_ok and diag_check is None:
            if np.allclose(arr[eye], y, atol=1e-9):
                diag_check = Check("diagonal", False, "the diagonal is y_i: the quotient rule "
                                   "gives the numerator's derivative times the sum *minus* the "
                                   "numerator times the sum's derivative", "diag_missing_term")
            elif np.allclose(arr[eye], -y * y, atol=1e-9):
                diag_check = Check("diagonal", False, "the diagonal is -y_i^2: on the diagonal "
                                   "the numerator e^{x_i} depends on x_i too", "diag_as_off")
            else:
                diag_check = Check("diagonal", False, f"{what}: the diagonal entries "
                                   f"{np.round(arr[eye], 4).tolist()} should be "
                                   f"{np.round(want[eye], 4).tolist()}", "mismatch")
        if not o_ok and off_check is None:
            outer = np.outer(y, y)[~eye]
            if np.allclose(arr[~eye], 0.0, atol=1e-12):
                off_check = Check("off-diagonal", False, "the entries off the diagonal are 0: "
                                  "y_i depends on every score x_j through the sum in its "
                                  "denominator", "off_zero")
            elif np.allclose(arr[~eye], outer, atol=1e-9):
                off_check = Check("off-diagonal", False, "the entries off the diagonal have the "
                                  "wrong sign: raising another score x_j makes y_i smaller",
                                  "sign")
            elif np.allclose(arr.T[~eye], want[~eye], atol=1e-9):
                off_check = Check("off-diagonal", False, "rows and columns are swapped: entry "
                                  "[i, j] is dy_i / dx_j", "transpose")
            else:
                off_check = Check("off-diagonal", False, f"{what}: entry [0, 1] is "
                                  f"{arr[0, 1]:.6f}, expected {want[0, 1]:.6f} (dy_0 / dx_1, by "
                                  "the quotient rule)", "mismatch")
    report.add(diag_check or Check("diagonal", True, "dy_i / dx_i matches the numerical Jacobian"))
    report.add(off_check or Check("off-diagonal", True, "dy_i / dx_j (i != j) matches the "
                                  "numerical Jacobian"))
    after = obs.get("after") if isinstance(obs.get("after"), list) else []
    changed = len(after) != len(inp["rows"]) or not all(
        _same(a, b) for a, b in zip(after, inp["rows"]))
    report.add(Check("x unchanged", not changed, "left as it was" if not changed else
                     "softmax_jacobian changed its input x in place", None if not changed
                     else "mutated_input"))
    return report


check_softmax_jacobian = define(
    "softmax_jacobian", title="softmax_jacobian", inputs=_jac_inputs, collect=_jac_collect,
    verify=_jac_verify, doc="softmax_jacobian(x): the (C, C) matrix of dy_i / dx_j for one row.")


# --- IdentityWithLoss (exercise 5) ---------------------------------------------------------------

def _identity_inputs(seed: int = 0, batch_size: int = 4, num_outputs: int = 3,
                     dout: float = 2.5) -> dict:
    """Predictions x and targets t (N, K), a dout other than 1, and a second batch."""
    rng = np.random.default_rng(seed)
    x, t, x2, t2 = (rng.standard_normal((batch_size, num_outputs)) for _ in range(4))
    return {"init": {}, "forward": {"x": x, "t": t}, "dout": float(dout),
            "forward2": {"x": x2, "t": t2}, "dout2": float(dout) * 0.5 + 0.25}


def _half_mse(x: np.ndarray, t: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(0.5 * np.sum((x - t) ** 2) / x.shape[0])


def _identity_suspects(i: dict, r: str) -> dict:
    x, t = i["forward" + r]["x"], i["forward" + r]["t"]
    n, k = x.shape
    d = i["dout" + r]
    return {"dx": {
        "no_half": ("is twice too large: the loss has a factor 1/2, which cancels the 2 of "
                    "the square's derivative", 2 * d * (x - t) / n),
        "all_entries": (f"divides by N * K = {n * k}: the loss is a mean over the batch (N = "
                        f"{n}) of each sample's sum of squares", d * (x - t) / (n * k)),
    }}


def _identity_verify(inp: dict, obs: dict) -> LayerReport:
    report = verify_layer(inp, obs, reference=_half_mse, wrt=["x"], suspects=_identity_suspects,
                          name="IdentityWithLoss")
    if "out" in report and not report["out"].ok:
        x, t = inp["forward"]["x"], inp["forward"]["t"]
        got = _array(obs.get("out"))
        want = _half_mse(x, t)
        for key, why, wrong in (
                ("plain_mse", "is twice the half-MSE: this course's loss is 0.5 * the mean over "
                 "the batch of the sum of squares", 2 * want),
                ("all_entries", "is the mean over all N * K entries: divide the sum by N only "
                 "(and keep the 1/2)", want / x.shape[1]),
                ("no_half_all", "is the mean of the squares over all entries: the loss is 0.5 * "
                 "sum / N", 2 * want / x.shape[1])):
            if got is not None and got.size == 1 and np.isclose(float(got.reshape(())), wrong,
                                                                rtol=1e-9):
                idx = report.checks.index(report["out"])
                report.checks[idx] = Check("out", False, why, key)
                break
    return report


check_identity_with_loss = define(
    "identity_with_loss", title="IdentityWithLoss", inputs=_identity_inputs,
    collect=collect_layer, verify=_identity_verify,
    disable=lambda: (losses.IdentityWithLoss,),
    doc="IdentityWithLoss: forward(x, t) -> 0.5 * sum((x - t)**2) / N; backward(dout) -> dx.")
