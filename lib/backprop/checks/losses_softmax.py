"""Checks for notebook 5's softmax (exercise 1) and its Jacobian (exercise 3), and the
helpers the function checks share (:mod:`.losses_cross_entropy` uses them too)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import losses
from ..gradcheck import Check, LayerReport, numerical_gradient
from ..i18n import _
from .channel import Raised, as_floats, snapshot
from .core import define
from .layer_rounds import _same
from .running import call, raised_check

# --- shared helpers for the function checks ---------------------------------------------------

_array = as_floats


def _softmax_ref(x: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64)
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def _compare(
    name: str,
    what: str,
    got: Any,
    want: np.ndarray,
    suspects: dict,
    rtol: float = 1e-7,
    atol: float = 1e-12,
    hint: str = "",
) -> Check:
    """got against want; a Raised, None, a wrong shape, nan or a named suspect each get their
    own message."""
    if isinstance(got, Raised):
        return raised_check(name, what, got, hint)
    arr = _array(got)
    if arr is None:
        return Check(
            name,
            False,
            _("{what} returned {got:.80}, not an array of numbers").format(
                what=what, got=repr(got)
            ),
            "missing" if got is None else "not_numeric",
        )
    want = np.asarray(want, dtype=np.float64)
    if arr.shape != want.shape:
        text = _("{what} returned shape {shape}, expected {expected}").format(
            what=what, shape=arr.shape, expected=want.shape
        )
        return Check(name, False, text, "shape")
    if not np.all(np.isfinite(arr)):
        text = _("{what} returned nan or inf ({values}...)").format(
            what=what, values=arr.ravel()[:4].tolist()
        )
        return Check(name, False, text, "nonfinite")
    if np.allclose(arr, want, rtol=rtol, atol=atol):
        text = _("{what}: right to within {rtol:.0e}").format(what=what, rtol=rtol)
        return Check(name, True, text)
    for key, (why, wrong) in suspects.items():
        wrong = np.asarray(wrong, dtype=np.float64)
        if (
            wrong.shape == arr.shape
            and np.all(np.isfinite(wrong))
            and np.allclose(arr, wrong, rtol=1e-6, atol=1e-12)
        ):
            return Check(name, False, f"{what}: {why}", key)
    return Check(
        name,
        False,
        _("{what} returned {got}..., expected {expected}...").format(
            what=what,
            got=np.round(arr, 4).ravel()[:6].tolist(),
            expected=np.round(want, 4).ravel()[:6].tolist(),
        ),
        "mismatch",
    )


def _unchanged(name: str, before: Any, after: Any, what: str) -> Check:
    if _same(before, after):
        return Check(name, True, _("left as it was"))
    return Check(
        name,
        False,
        _(
            "{what} changed its input in place: compute into a new array "
            "(x - m makes one; x -= m changes the caller's array)"
        ).format(what=what),
        "mutated_input",
    )


# --- softmax (exercise 1) ----------------------------------------------------------------------


def _softmax_inputs(
    seed: int = 0, batch_size: int = 4, num_classes: int = 5, scale: float = 2.0
) -> dict:
    """A batch (N, C) of scale * standard normal scores, one row (C,), and a batch whose rows sit
    at +-1000 and around -3000 (each row needs its own maximum)."""
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal((batch_size, num_classes))
    row = scale * rng.standard_normal(num_classes)
    offsets = np.array([1000.0, -1000.0, -3000.0, 0.0])[: max(2, min(4, batch_size))]
    big = offsets[:, None] + 3 * rng.standard_normal((offsets.size, num_classes))
    big[-1, 0] = 1000.0  # one row with a huge gap: the small entries round to 0, not nan
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
            "not_per_row": (
                _(
                    "the rows do not each sum to 1: divide each row by its own sum "
                    "(np.sum(e, axis=-1, keepdims=True))"
                ),
                e / np.sum(e),
            ),
            "wrong_axis": (
                _(
                    "each column sums to 1: softmax works along the last axis (axis=-1), "
                    "one row of scores per sample"
                ),
                e / np.sum(e, axis=0, keepdims=True),
            ),
        }
        if x.ndim == 2:
            ez = np.exp(x - np.max(x, axis=0, keepdims=True))
            found["max_axis0"] = (
                _(
                    "subtracts the maximum of each column: subtract each row's own "
                    "maximum (np.max(x, axis=-1, keepdims=True))"
                ),
                ez / np.sum(ez, axis=-1, keepdims=True),
            )
    return found


def _by_sums(check: Check, got: Any) -> Check:
    """A mismatch whose rows do not sum to 1 (or whose columns do) is named for that."""
    arr = _array(got)
    if check.ok or check.mistake != "mismatch" or arr is None or arr.ndim != 2:
        return check
    with np.errstate(all="ignore"):
        rows, cols = np.sum(arr, axis=-1), np.sum(arr, axis=0)
    if np.allclose(cols, 1.0) and not np.allclose(rows, 1.0):
        return Check(
            check.name,
            False,
            _(
                "each column sums to 1, not each row: softmax works "
                "along the last axis (axis=-1), one row of scores per sample"
            ),
            "wrong_axis",
        )
    if not np.allclose(rows, 1.0):
        return Check(
            check.name,
            False,
            _(
                "the rows sum to {sums}, not 1: "
                "divide each row by its own sum (axis=-1, keepdims=True)"
            ).format(sums=np.round(rows, 4).tolist()),
            "not_per_row",
        )
    return check


def _softmax_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("softmax")
    hint = _("axis=-1 is the last axis for both (C,) and (N, C); keepdims=True keeps it")
    for key, name, what in (
        ("x", "batch", _("softmax of a batch (N, C)")),
        ("row", "single row", _("softmax of one row (C,)")),
    ):
        x = inp[key]
        report.add(
            _by_sums(
                _compare(
                    name,
                    what,
                    obs.get(key),
                    _softmax_ref(x),
                    _softmax_suspects(x),
                    rtol=1e-9,
                    hint=hint,
                ),
                obs.get(key),
            )
        )
    big = inp["big"]
    got = obs.get("big")
    arr = _array(got)
    if arr is not None and arr.shape == big.shape and not np.all(np.isfinite(arr)):
        with np.errstate(all="ignore"):
            shifted_once = np.exp(big - np.max(big))
            once = shifted_once / np.sum(shifted_once, axis=-1, keepdims=True)
        if _same(np.isfinite(arr), np.isfinite(once)):
            key = "global_max"
            text = _(
                "softmax of scores of +-1000 gave nan or inf: it subtracts one maximum for "
                "the whole array: rows far below it underflow to 0 / 0; subtract each row's "
                "own maximum (axis=-1, keepdims=True)"
            )
        else:
            key = "not_shifted"
            text = _(
                "softmax of scores of +-1000 gave nan or inf: it is not stable: subtract each "
                "row's maximum before np.exp, so the largest exponent is 0 (exp(1000) "
                "overflows to inf, and inf / inf is nan)"
            )
        report.add(Check("stable", False, text, key))
    else:
        report.add(
            _compare(
                "stable",
                _("softmax of scores of +-1000"),
                got,
                _softmax_ref(big),
                {},
                rtol=1e-7,
                atol=1e-300,
                hint=hint,
            )
        )
    changed = [k for k in ("x", "row", "big") if not _same(obs.get(k + "_after"), inp[k])]
    report.add(
        Check(
            "x unchanged",
            not changed,
            _("left as it was")
            if not changed
            else _(
                "softmax changed its input x in place: compute into a new array "
                "(x - m makes one; x -= m changes the caller's array)"
            ),
            None if not changed else "mutated_input",
        )
    )
    return report


check_softmax = define(
    "softmax",
    title="softmax",
    inputs=_softmax_inputs,
    collect=_softmax_collect,
    verify=_softmax_verify,
    disable=lambda: (losses.softmax, losses.log_softmax),
    doc="softmax(x): rows of probabilities, for (N, C) and (C,), stable for scores of +-1000.",
)


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
        jac[i] = numerical_gradient(
            lambda v, i=i: float(_softmax_ref(v)[i]), np.array(x, dtype=np.float64)
        )
    return jac


def _jacobian_shape(got: Any, c: int, what: str) -> Check | None:
    """A failed check when got is not a finite (C, C) array (or raised), else None."""
    if isinstance(got, Raised):
        return raised_check("diagonal", what, got, _("y = softmax(x); build a (C, C) array"))
    arr = _array(got)
    if arr is None or arr.shape != (c, c) or not np.all(np.isfinite(arr)):
        shape = None if arr is None else arr.shape
        return Check(
            "diagonal",
            False,
            _("{what} returned {got:.60}").format(what=what, got=repr(got))
            if shape is None
            else _(
                "{what} returned shape {shape}, expected ({c}, {c}) with "
                "finite entries: entry [i, j] is dy_i / dx_j"
            ).format(what=what, shape=shape, c=c),
            "missing" if got is None else "shape",
        )
    return None


def _diagonal(arr: np.ndarray, want: np.ndarray, y: np.ndarray, what: str) -> Check | None:
    """None when the diagonal dy_i / dx_i is right, else the failed check naming the mistake."""
    eye = np.eye(y.size, dtype=bool)
    if np.allclose(arr[eye], want[eye], rtol=1e-6, atol=1e-9):
        return None
    if np.allclose(arr[eye], y, atol=1e-9):
        return Check(
            "diagonal",
            False,
            _(
                "the diagonal is y_i: the quotient rule gives the "
                "numerator's derivative times the sum *minus* the numerator times the "
                "sum's derivative"
            ),
            "diag_missing_term",
        )
    if np.allclose(arr[eye], -y * y, atol=1e-9):
        return Check(
            "diagonal",
            False,
            _("the diagonal is -y_i^2: on the diagonal the numerator e^{x_i} depends on x_i too"),
            "diag_as_off",
        )
    return Check(
        "diagonal",
        False,
        _("{what}: the diagonal entries {got} should be {expected}").format(
            what=what, got=np.round(arr[eye], 4).tolist(), expected=np.round(want[eye], 4).tolist()
        ),
        "mismatch",
    )


def _off_diagonal(arr: np.ndarray, want: np.ndarray, y: np.ndarray, what: str) -> Check | None:
    """None when every dy_i / dx_j (i != j) is right, else the failed check."""
    off = ~np.eye(y.size, dtype=bool)
    if np.allclose(arr[off], want[off], rtol=1e-6, atol=1e-9):
        return None
    if np.allclose(arr[off], 0.0, atol=1e-12):
        return Check(
            "off-diagonal",
            False,
            _(
                "the entries off the diagonal are 0: y_i depends on "
                "every score x_j through the sum in its denominator"
            ),
            "off_zero",
        )
    if np.allclose(arr[off], np.outer(y, y)[off], atol=1e-9):
        return Check(
            "off-diagonal",
            False,
            _(
                "the entries off the diagonal have the wrong sign: "
                "raising another score x_j makes y_i smaller"
            ),
            "sign",
        )
    if np.allclose(arr.T[off], want[off], atol=1e-9):
        return Check(
            "off-diagonal",
            False,
            _("rows and columns are swapped: entry [i, j] is dy_i / dx_j"),
            "transpose",
        )
    return Check(
        "off-diagonal",
        False,
        _(
            "{what}: entry [0, 1] is {got:.6f}, expected "
            "{expected:.6f} (dy_0 / dx_1, by the quotient rule)"
        ).format(what=what, got=arr[0, 1], expected=want[0, 1]),
        "mismatch",
    )


def _jac_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("softmax_jacobian")
    outs = obs.get("out") if isinstance(obs.get("out"), list) else []
    diag_check = off_check = None
    for k, row in enumerate(inp["rows"]):
        x = np.asarray(row, dtype=np.float64)
        y, want = _softmax_ref(x), _numeric_jacobian(x)
        got = outs[k] if k < len(outs) else None
        what = _("softmax_jacobian(x) for x = {x}").format(x=np.round(x, 3).tolist())
        problem = _jacobian_shape(got, x.size, what)
        if problem:
            report.add(problem)
            return report
        arr = _array(got)
        if diag_check is None:  # the first row that is wrong is the one reported
            diag_check = _diagonal(arr, want, y, what)
        if off_check is None:
            off_check = _off_diagonal(arr, want, y, what)
    report.add(
        diag_check or Check("diagonal", True, _("dy_i / dx_i matches the numerical Jacobian"))
    )
    report.add(
        off_check
        or Check("off-diagonal", True, _("dy_i / dx_j (i != j) matches the numerical Jacobian"))
    )
    after = obs.get("after") if isinstance(obs.get("after"), list) else []
    changed = len(after) != len(inp["rows"]) or not all(
        _same(a, b) for a, b in zip(after, inp["rows"], strict=False)
    )
    report.add(
        Check(
            "x unchanged",
            not changed,
            _("left as it was")
            if not changed
            else _("softmax_jacobian changed its input x in place"),
            None if not changed else "mutated_input",
        )
    )
    return report


check_softmax_jacobian = define(
    "softmax_jacobian",
    title="softmax_jacobian",
    inputs=_jac_inputs,
    collect=_jac_collect,
    verify=_jac_verify,
    doc="softmax_jacobian(x): the (C, C) matrix of dy_i / dx_j for one row.",
)
