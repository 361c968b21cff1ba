"""Checks for notebook 7: one SGD step in place (``sgd_step``); one shuffled epoch
(``train_epoch``) is checked in :mod:`.training_epoch`.

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
from .channel import as_floats, snapshot
from .core import define
from .running import call, raised_check

_arr = as_floats


def _close(a: Any, b: np.ndarray, tol: float = 1e-6) -> bool:
    a = _arr(a)
    return a is not None and a.shape == np.shape(b) and bool(np.allclose(a, b, rtol=tol, atol=tol))


# --- sgd_step -------------------------------------------------------------------------------


def _step_inputs(seed: int = 0, shapes: dict | None = None, lr: float = 0.1) -> dict:
    """params and grads of the given shapes (default W (3, 4), b (4,)), and lr."""
    rng = np.random.default_rng(seed)
    shapes = shapes or {"W": [3, 4], "b": [4]}
    return {
        "params": {k: rng.standard_normal(s) for k, s in shapes.items()},
        "grads": {k: rng.standard_normal(s) for k, s in shapes.items()},
        "lr": float(lr),
    }


def _step_collect(target: Any, inp: dict) -> dict:
    obs: dict[str, Any] = {}
    runs = {
        "main": (np.float64, inp["lr"], 1),
        "f32": (np.float32, inp["lr"], 1),
        "zero": (np.float64, 0.0, 1),
        "three": (np.float64, inp["lr"], 3),
    }
    for key, (dtype, lr, times) in runs.items():
        params = {k: np.array(v, dtype=dtype) for k, v in inp["params"].items()}
        grads = {k: np.array(v, dtype=dtype) for k, v in inp["grads"].items()}
        arrays = dict(params)
        for _step in range(times):
            got, err = call(target, params, grads, lr)
            if err is not None:
                obs[key] = {"error": err}
                break
        else:
            obs[key] = {
                "params": snapshot(params),
                "arrays": snapshot(arrays),
                "same": {k: params.get(k) is a for k, a in arrays.items()},
                "grads": snapshot(grads),
                "returned": snapshot(got),
            }
    return obs


def _misstep(k: str, got: Any, after: Any, p0: np.ndarray, g: np.ndarray, lr: float) -> Check:
    """The failed check for params[k], whose array got (and entry after) is not p0 - lr * g."""
    if _close(got, p0):
        why, key = (
            _(
                "did not change at all: did you rebind a loop variable (p = p - lr * "
                "g)? Update the array in the dict: params[key] -= lr * grads[key]"
            ),
            "no_update",
        )
    elif _close(got, p0 + lr * g) or _close(after, p0 + lr * g):
        why, key = _("moved along the gradient, not against it: subtract lr * grad"), "sign"
    elif _close(got, p0 - g) or _close(after, p0 - g):
        why, key = _("moved by the whole gradient: multiply it by the learning rate lr"), "no_lr"
    else:
        why, key = _("does not equal params - lr * grads"), "mismatch"
    return Check("values", False, _("{what} {why}").format(what=f"params[{k!r}]", why=why), key)


def _values_check(inp: dict, obs: dict, main: dict, p0: dict, g: dict) -> Check:
    """One step's values (a new array with the right values is judged under "in place"),
    then lr=0 and three steps in a row."""
    lr = inp["lr"]
    arrays = main.get("arrays") if isinstance(main.get("arrays"), dict) else {}
    after = main.get("params") if isinstance(main.get("params"), dict) else {}
    for k in p0:
        want = p0[k] - lr * g[k]
        if not (_close(arrays.get(k), want) or _close(after.get(k), want)):
            return _misstep(k, arrays.get(k), after.get(k), p0[k], g[k], lr)
    for key, lr_, times, what in (
        ("zero", 0.0, 1, _("with lr=0 (nothing may move)")),
        ("three", lr, 3, _("after three steps in a row")),
    ):
        r = obs.get(key)
        ps = r.get("params") if isinstance(r, dict) and isinstance(r.get("params"), dict) else {}
        if isinstance(r, dict) and "error" in r:
            return raised_check("values", f"sgd_step {what}", r["error"])
        bad = [k for k in p0 if not _close(ps.get(k), p0[k] - times * lr_ * g[k])]
        if bad:
            return Check(
                "values",
                False,
                _("params[{key!r}] is wrong {what}").format(key=bad[0], what=what),
                "mismatch",
            )
    return Check("values", True, _("every parameter is now p - lr * grad"))


def _step_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("sgd_step")
    p0 = {k: np.asarray(v, dtype=np.float64) for k, v in inp["params"].items()}
    g = {k: np.asarray(v, dtype=np.float64) for k, v in inp["grads"].items()}
    main = obs.get("main")
    if not isinstance(main, dict):
        report.add(Check("values", False, _("sgd_step was not run"), "not_run"))
        return report
    if "error" in main:
        report.add(
            raised_check(
                "values",
                "sgd_step",
                main["error"],
                _("params and grads are dicts of arrays with the same keys"),
            )
        )
        return report
    report.add(_values_check(inp, obs, main, p0, g))
    same = main.get("same") if isinstance(main.get("same"), dict) else {}
    replaced = [k for k in p0 if same.get(k) is not True]
    report.add(
        Check(
            "in place",
            False,
            _(
                "params[{key!r}] is a new array object after "
                "the step: update the existing array in place (params[key] -= lr * "
                "grads[key]); a layer that holds the old array never sees the change"
            ).format(key=replaced[0]),
            "copied_params",
        )
        if replaced
        else Check("in place", True, _("the same array objects, changed in place"))
    )
    grads_after = main.get("grads") if isinstance(main.get("grads"), dict) else {}
    changed = [k for k in g if not _close(grads_after.get(k), g[k], 0)]
    report.add(
        Check(
            "grads unchanged",
            False,
            _(
                "grads[{key!r}] was changed: compute "
                "lr * grads[key] into a new array and leave the gradients alone"
            ).format(key=changed[0]),
            "mutated_input",
        )
        if changed
        else Check("grads unchanged", True, _("grads left alone"))
    )
    f32 = obs.get("f32")
    ps = f32.get("params") if isinstance(f32, dict) and isinstance(f32.get("params"), dict) else {}
    kept = all(isinstance(ps.get(k), np.ndarray) and ps[k].dtype == np.float32 for k in p0)
    report.add(
        Check("dtype", True, _("float32 parameters stay float32"))
        if kept
        else Check(
            "dtype",
            False,
            _(
                "float32 parameters did not stay float32 arrays: an "
                "in-place update keeps the array's dtype"
            ),
            "dtype",
        )
    )
    return report


check_sgd_step = define(
    "sgd_step",
    title="sgd_step",
    inputs=_step_inputs,
    collect=_step_collect,
    verify=_step_verify,
    disable=lambda: (optim.SGD, training.train, training.train_epoch),
    doc="sgd_step(params, grads, lr): checks 'values', 'in place', 'grads unchanged', 'dtype'.",
)
