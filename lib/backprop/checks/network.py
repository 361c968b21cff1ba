"""Checks for notebook 6: the learner's TwoLayerNet (predict, loss, gradient).

``inputs`` draws the parameters and the batches; ``collect`` builds the learner's network, puts
those parameters into its ``params`` in place (``params[k][...] = ...``, as loading weights
would), and records ``predict``, ``loss`` and ``gradient``. ``verify`` recomputes everything
with a plain-numpy network written here (no backprop layer is used) and compares the gradients
with central differences of that plain-numpy loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import network
from ..gradcheck import Check, LayerReport, diagnose, numerical_gradient
from ..i18n import _
from .channel import Raised, snapshot
from .core import define
from .layer_rounds import _same
from .running import call, raised_check

NAMES = ("W1", "b1", "W2", "b2")
OWNERS = {
    "W1": ("Affine1", "W"),
    "b1": ("Affine1", "b"),
    "W2": ("Affine2", "W"),
    "b2": ("Affine2", "b"),
}


def _inputs(
    seed: int = 0,
    batch_size: int = 4,
    input_size: int = 5,
    hidden_size: int = 3,
    output_size: int = 3,
    one_hot: bool = False,
) -> dict:
    """Parameters (weights of size ~0.5, non-zero biases), a batch x, t, a second batch, and
    in-place updates of every parameter applied before the last gradient. By default H = C,
    so a gradient that skips a layer keeps its shape and is named rather than mis-shaped."""
    rng = np.random.default_rng(seed)
    n, d, h, c = batch_size, input_size, hidden_size, output_size
    params = {
        "W1": 0.5 * rng.standard_normal((d, h)),
        "b1": np.zeros(h),
        "W2": 0.5 * rng.standard_normal((h, c)),
        "b2": 0.3 * rng.standard_normal(c),
    }
    x = rng.standard_normal((n, d))
    # every hidden unit active for some samples and not for others
    params["b1"] = -np.median(x @ params["W1"], axis=0) + 0.05 * rng.standard_normal(h)
    update = {k: -0.1 * rng.standard_normal(v.shape) for k, v in params.items()}
    updated = {k: v + update[k] for k, v in params.items()}

    def off_kink(x: np.ndarray, *ps: dict) -> np.ndarray:
        """Redraw rows whose pre-activations sit within 0.05 of ReLU's kink."""
        for row in range(n):
            for _attempt in range(200):
                if all(np.min(np.abs(x[row] @ p["W1"] + p["b1"])) >= 0.05 for p in ps):
                    break
                x[row] = rng.standard_normal(d)
        return x

    def targets() -> Any:
        labels = rng.integers(0, c, size=n)
        return np.eye(c)[labels] if one_hot else labels

    x = off_kink(x, params)
    x2 = off_kink(rng.standard_normal((n, d)), params, updated)
    t, t2 = targets(), targets()
    return {
        "sizes": [d, h, c],
        "params": params,
        "x": x,
        "t": t,
        "x2": x2,
        "t2": t2,
        "update": update,
    }


def _collect(target: Any, inp: dict) -> dict:
    obs: dict[str, Any] = {}
    d, h, c = inp["sizes"]
    net, err = call(target, d, h, c)
    if err:
        obs["error"] = {"step": "create", "raised": err}
        return obs

    def load() -> None:
        for k, v in inp["params"].items():
            net.params[k][...] = v

    _, err = call(load)
    if err:
        obs["error"] = {"step": "params", "raised": err}
        return obs
    x, t = np.array(inp["x"], copy=True), np.array(inp["t"], copy=True)

    def shares() -> bool:
        layers = net.layers
        return all(
            getattr(layers[layer], attr) is net.params[name]
            for name, (layer, attr) in OWNERS.items()
        )

    shared, err = call(shares)
    obs["shared"] = bool(shared) if err is None else None

    def record(key: str, fn: Any, *args: Any) -> Any:
        out, err = call(fn, *args)
        obs[key] = err if err else snapshot(out)
        return None if err else out

    record("predict", lambda a: net.predict(a), x)
    record("loss", lambda a, b: net.loss(a, b), x, t)
    record("grads", lambda a, b: net.gradient(a, b), x, t)
    obs["after"] = snapshot([x, t])
    # another batch goes through (as when a test loss is measured), then the first again
    record("loss2", lambda a, b: net.loss(a, b), np.array(inp["x2"]), np.array(inp["t2"]))
    record("grads_again", lambda a, b: net.gradient(a, b), x, t)

    def update() -> None:  # in place, as an optimiser does
        for k, v in inp["update"].items():
            net.params[k] += v

    _, err = call(update)
    if err:
        obs["error"] = {"step": "update", "raised": err}
        return obs
    record(
        "grads_updated", lambda a, b: net.gradient(a, b), np.array(inp["x2"]), np.array(inp["t2"])
    )
    return obs


# --- the plain-numpy network the verdict is computed with -------------------------------------


def _labels(t: Any, c: int) -> np.ndarray:
    t = np.asarray(t)
    return np.argmax(t, axis=1) if t.ndim == 2 else t.astype(np.int64)


def _scores(p: dict, x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ p["W1"] + p["b1"], 0.0) @ p["W2"] + p["b2"]


def _loss(p: dict, x: np.ndarray, t: Any) -> float:
    s = _scores(p, x)
    s = s - s.max(axis=1, keepdims=True)
    logy = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return float(-np.mean(logy[np.arange(x.shape[0]), _labels(t, s.shape[1])]))


def _numeric(p: dict, x: np.ndarray, t: Any) -> dict[str, np.ndarray]:
    p = {k: np.array(v, dtype=np.float64) for k, v in p.items()}
    return {k: numerical_gradient(lambda _: _loss(p, x, t), p[k]) for k in NAMES}


def _suspects(p: dict, x: np.ndarray, t: Any) -> dict[str, dict[str, tuple[str, np.ndarray]]]:
    """Wrong gradients a learner's gradient() gives, computed the way the mistake computes them."""
    n = x.shape[0]
    pre = x @ p["W1"] + p["b1"]
    hid = np.maximum(pre, 0.0)
    s = hid @ p["W2"] + p["b2"]
    e = np.exp(s - s.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    dscores = (y - np.eye(s.shape[1])[_labels(t, s.shape[1])]) / n
    found: dict[str, dict[str, tuple[str, np.ndarray]]] = {k: {} for k in NAMES}
    dh = dscores @ p["W2"].T
    found["W1"]["relu_skipped"] = (
        _(
            "skips Relu1's backward: the gradient into Affine1 must go "
            "through every layer in reverse order"
        ),
        x.T @ dh,
    )
    found["b1"]["relu_skipped"] = (found["W1"]["relu_skipped"][0], dh.sum(axis=0))
    if dscores.shape == pre.shape:
        chained = _(
            "is computed from the loss layer's gradient, not from what the layer after "
            "it returned: pass dout on, dout = layer.backward(dout) (forgot dout)"
        )
        masked = dscores * (pre > 0)
        found["W1"]["not_chained"] = (chained, x.T @ masked)
        found["b1"]["not_chained"] = (chained, masked.sum(axis=0))
    twice = _("is divided by N twice: SoftmaxWithLoss has already divided by the batch size")
    grads = {
        "W1": x.T @ (dh * (pre > 0)),
        "b1": (dh * (pre > 0)).sum(axis=0),
        "W2": hid.T @ dscores,
        "b2": dscores.sum(axis=0),
    }
    for k in NAMES:
        found[k]["batch_size_twice"] = (twice, grads[k] / n)
        for other in NAMES:
            if other != k and grads[other].shape == grads[k].shape:
                found[k]["swapped_" + other] = (
                    _(
                        "is the gradient of {other}: read each "
                        "parameter's gradient from its own layer "
                        "(Affine1: W1, b1; Affine2: W2, b2)"
                    ).format(other=other),
                    grads[other],
                )
    return found


def _grad_checks(prefix: str, got: Any, p: dict, x: np.ndarray, t: Any, what: str) -> list[Check]:
    names = [f"{prefix}{k}" for k in NAMES]
    if isinstance(got, Raised):
        return [
            raised_check(
                names[0],
                what,
                got,
                _(
                    "gradient runs self.loss(x, t) first, then "
                    "the backward passes from the loss layer back to Affine1"
                ),
            )
        ]
    if not isinstance(got, dict):
        return [
            Check(
                n,
                False,
                _(
                    "{what} returned {got!r:.80}: return a dict with the keys "
                    "'W1', 'b1', 'W2', 'b2'"
                ).format(what=what, got=got),
                "missing" if got is None else "return_value",
            )
            for n in names
        ]
    numeric = _numeric(p, x, t)
    found = _suspects(p, x, t)
    checks = []
    for k, name in zip(NAMES, names, strict=False):
        if k not in got:
            checks.append(
                Check(
                    name, False, _("{what} has no key {key!r}").format(what=what, key=k), "missing"
                )
            )
            continue
        checks.append(diagnose(name, got[k], numeric[k], batch_size=x.shape[0], suspects=found[k]))
    return checks


def _verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("TwoLayerNet")
    p = {k: np.asarray(v, dtype=np.float64) for k, v in inp["params"].items()}
    x, t = np.asarray(inp["x"], dtype=np.float64), inp["t"]
    error = obs.get("error") if isinstance(obs.get("error"), dict) else {}
    if error.get("step") in ("create", "params"):
        what = (
            "TwoLayerNet(input_size, hidden_size, output_size)"
            if error["step"] == "create"
            else _("setting net.params[k][...] in place")
        )
        report.add(
            raised_check(
                "predict",
                what,
                error.get("raised"),
                _("keep __init__ as given: params holds W1, b1, W2, b2"),
            )
        )
        return report
    pred = obs.get("predict")
    if isinstance(pred, Raised):
        report.add(
            raised_check(
                "predict",
                "predict(x)",
                pred,
                _("run each layer's forward in order: for layer in self.layers.values()"),
            )
        )
    else:
        want = _scores(p, x)
        e = np.exp(want - want.max(axis=1, keepdims=True))
        soft = e / e.sum(axis=1, keepdims=True)
        check = diagnose(
            "predict",
            pred,
            want,
            threshold=1e-9,
            suspects={
                "softmax_in_predict": (
                    _("returns probabilities: predict returns the scores, before softmax"),
                    soft,
                )
            },
        )
        if not check.ok and obs.get("shared") is False:
            check = Check(
                "predict",
                False,
                _(
                    "the layers do not hold the arrays in params (after "
                    "params[k][...] = new values, predict still used the old ones): give "
                    "the layers the very same arrays, not copies"
                ),
                "copied_params",
            )
        elif not check.ok and check.mistake == "mismatch":
            check = Check(
                "predict",
                False,
                _(
                    "predict(x) differs from relu(x @ W1 + b1) @ W2 + b2 "
                    "({message}): run each layer's forward, in order, on the output "
                    "of the one before"
                ).format(message=check.message),
                "mismatch",
            )
        report.add(check)
    loss = obs.get("loss")
    want_loss = _loss(p, x, t)
    if isinstance(loss, Raised):
        report.add(
            raised_check(
                "loss",
                "loss(x, t)",
                loss,
                _("scores from predict, then self.last_layer.forward(scores, t)"),
            )
        )
    else:
        try:
            value = float(np.asarray(loss, dtype=np.float64).reshape(()))
        except (TypeError, ValueError):
            value = None
        if value is not None and np.isclose(value, want_loss, rtol=1e-9):
            report.add(Check("loss", True, f"{value:.6f}"))
        else:
            report.add(
                Check(
                    "loss",
                    False,
                    _(
                        "loss(x, t) returned {loss!r:.60}, expected "
                        "{want:.6f}: return self.last_layer.forward(self.predict(x),"
                        " t)"
                    ).format(loss=loss, want=want_loss),
                    "missing" if loss is None else "mismatch",
                )
            )
    grads = obs.get("grads")
    report.checks += _grad_checks("", grads, p, x, t, "gradient(x, t)")
    after = obs.get("after")
    unchanged = (
        isinstance(after, list)
        and len(after) == 2
        and _same(after[0], inp["x"])
        and _same(after[1], inp["t"])
    )
    report.add(
        Check(
            "inputs unchanged",
            unchanged,
            _("x and t left as they were")
            if unchanged
            else _("predict, loss or gradient changed x or t in place"),
            None if unchanged else "mutated_input",
        )
    )
    report.add(_fresh(inp, obs, p))
    return report


def _fresh(inp: dict, obs: dict, p: dict) -> Check:
    """gradient() again, after another batch went through, and after in-place updates."""
    first, again = obs.get("grads"), obs.get("grads_again")
    if not all(r.ok for r in _grad_checks("", first, p, np.asarray(inp["x"]), inp["t"], "")):
        return Check(
            "fresh", False, _("could not be checked: gradient(x, t) is not right yet"), "not_run"
        )
    if isinstance(again, Raised):
        return raised_check("fresh", _("a second call of gradient"), again)
    if not isinstance(again, dict) or not all(_same(again.get(k), first.get(k)) for k in NAMES):
        return Check(
            "fresh",
            False,
            _(
                "after net.loss ran on another batch, gradient(x, t) gave "
                "different gradients: gradient must start with its own forward pass, "
                "self.loss(x, t), so every layer stores this batch"
            ),
            "stale_state",
        )
    updated = {k: p[k] + np.asarray(inp["update"][k]) for k in NAMES}
    x2 = np.asarray(inp["x2"], dtype=np.float64)
    got = obs.get("grads_updated")
    checks = _grad_checks("", got, updated, x2, inp["t2"], _("gradient after an update"))
    bad = [c for c in checks if not c.ok]
    if not bad:
        return Check(
            "fresh",
            True,
            _("gradients are recomputed on every call and follow in-place parameter updates"),
        )
    stale = _grad_checks("", got, p, x2, inp["t2"], "")
    if all(c.ok for c in stale):
        return Check(
            "fresh",
            False,
            _(
                "after params were changed in place (as an optimiser "
                "does), gradient still used the old values: the layers must hold the "
                "very arrays in params, not copies"
            ),
            "copied_params",
        )
    return Check(
        "fresh",
        False,
        _("after an in-place update: {name} {message}").format(
            name=bad[0].name, message=bad[0].message
        ),
        "stale_state",
    )


check_two_layer_net = define(
    "two_layer_net",
    title="TwoLayerNet",
    inputs=_inputs,
    collect=_collect,
    verify=_verify,
    disable=lambda: (network.TwoLayerNet,),
    doc="TwoLayerNet: predict(x) -> scores; loss(x, t); gradient(x, t) -> dict of W1, b1, W2, b2.",
)
