"""Checks for notebook 8's ``MultiLayerNet``.

``verify`` computes everything itself in plain numpy: the initial scales, the network's
forward pass and loss at the learner's own initial parameters (which the check records),
and their gradients by central differences. It runs none of the learner's code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import multilayer
from ..gradcheck import Check, LayerReport, diagnose
from ..i18n import _
from .channel import Raised, as_number, snapshot
from .core import define
from .deep import _arr
from .running import call, raised_check

_ACT = {
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: np.exp(-np.logaddexp(0, -z)),
    "tanh": np.tanh,
    "identity": lambda z: z,
}


def _net_inputs(
    seed: int = 0,
    input_size: int = 4,
    hidden_sizes: list | None = None,
    output_size: int = 3,
    batch: int = 5,
    activation: str = "relu",
    weight_init: str | float = "he",
) -> dict:
    """A small net's sizes, two batches x, t, and the in-place update applied between."""
    rng = np.random.default_rng(seed)
    hidden = [int(h) for h in (hidden_sizes if hidden_sizes is not None else [5, 4, 3])]
    return {
        "sizes": [int(input_size), *hidden, int(output_size)],
        "activation": activation,
        "weight_init": weight_init,
        "x": rng.standard_normal((batch, input_size)),
        "t": rng.integers(0, output_size, size=batch),
        "x2": rng.standard_normal((batch, input_size)),
        "t2": rng.integers(0, output_size, size=batch),
        "step": 0.3,
        "big": [300, 200, 100, 10],
    }


def _delta(shape: tuple[int, ...], step: float, phase: float = 0.0, last_bias: bool = False):
    """The in-place change made to each parameter before each batch. The output layer's
    bias also pushes its first score well below 0 and its second above it, whatever the
    learner's initial weights: an activation wrongly applied to the output (ReLU, sigmoid)
    then always shows, even in a net whose random initial weights left every ReLU dead
    (all scores 0 would give the same loss as a net that kept copies of its params)."""
    n = int(np.prod(shape))
    d = step * np.cos(np.arange(n, dtype=np.float64) * 1.7 + 0.5 + phase).reshape(shape)
    if last_bias and phase == 0.0 and d.ndim == 1 and d.size:
        d[0] -= 8.0
        if d.size > 1:
            d[1] += 3.0
    return d


def _moved(name: str, value: Any, inp: dict, phase: float = 0.0) -> np.ndarray:
    """_delta for the parameter called name (``b<L>`` is the output layer's bias)."""
    last = name == f"b{len(inp['sizes']) - 1}"
    return _delta(np.shape(value), inp["step"], phase, last_bias=last)


def _net_collect(target: Any, inp: dict) -> dict:
    obs: dict[str, Any] = {}
    s = inp["sizes"]
    make = lambda sizes, init: target(
        sizes[0],
        list(sizes[1:-1]),
        sizes[-1],  # noqa: E731
        activation=inp["activation"],
        weight_init=init,
    )
    net, err = call(make, s, inp["weight_init"])
    if err is not None:
        obs["error"] = {"step": "create", "raised": err}
        return obs
    params = getattr(net, "params", None)
    obs["params"] = (
        snapshot(dict(params))
        if isinstance(params, dict) or hasattr(params, "items")
        else snapshot(params)
    )

    def update(phase: float) -> bool:
        # in place, as an optimiser would; it also moves the biases off 0, so that no
        # ReLU input sits exactly on the kink where numerical gradients are meaningless
        try:
            for k in list(net.params):
                net.params[k] += _moved(k, net.params[k], inp, phase)
        except Exception as exc:  # noqa: BLE001
            obs["update_error"] = f"{type(exc).__name__}: {exc}"[:300]
            return False
        return True

    if not update(0.0):
        return obs
    for key, fn in (
        ("scores", lambda: net.predict(inp["x"])),
        ("loss", lambda: net.loss(inp["x"], inp["t"])),
        ("grads", lambda: net.gradient(inp["x"], inp["t"])),
    ):
        value, err = call(fn)
        obs[key] = err if err is not None else snapshot(value)
    if not update(1.0):
        return obs
    value, err = call(lambda: net.gradient(inp["x2"], inp["t2"]))
    obs["grads2"] = err if err is not None else snapshot(value)
    stds = {}
    for init in ("he", "xavier", 0.05):
        big, err = call(make, inp["big"], init)
        if err is not None:
            stds[str(init)] = err
            continue
        try:
            stds[str(init)] = {
                k: [float(np.std(v)), float(np.abs(np.asarray(v)).max()), list(np.shape(v))]
                for k, v in big.params.items()
            }
        except Exception as exc:  # noqa: BLE001
            stds[str(init)] = f"{type(exc).__name__}: {exc}"[:300]
    obs["init"] = stds
    return obs


def _forward_loss(
    params: dict, x: np.ndarray, t: np.ndarray, act: str, layers: int, output_act: bool = False
) -> float:
    h = x
    for l in range(1, layers + 1):
        h = h @ params[f"W{l}"] + params[f"b{l}"]
        if l < layers or output_act:
            h = _ACT[act](h)
    h = h - h.max(axis=1, keepdims=True)
    logp = h - np.log(np.exp(h).sum(axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(t)), t]))


def _relu_pattern(params: dict, x: np.ndarray, layers: int) -> list[np.ndarray]:
    """Which hidden ReLUs are on (pre-activation > 0), layer by layer."""
    h, on = x, []
    for l in range(1, layers):
        z = h @ params[f"W{l}"] + params[f"b{l}"]
        on.append(z > 0)
        h = np.maximum(z, 0.0)
    return on


def _numeric(params: dict, x: np.ndarray, t: np.ndarray, act: str, layers: int) -> dict:
    """Numerical gradients of the loss by central differences (step 1e-5).

    In a ReLU net, an entry whose two nudges switch a ReLU on or off (the learner's random
    initial weights put a pre-activation that close to 0 now and then) has no trustworthy
    difference quotient: it is NaN, and :func:`_judge_grads` leaves it out."""
    step = 1e-5
    base = _relu_pattern(params, x, layers) if act == "relu" else None
    out = {}
    for k, value in params.items():
        v = np.array(value, dtype=np.float64)
        grad = np.empty_like(v)
        for idx in np.ndindex(v.shape):
            old = v[idx]
            sides = []
            for sign in (1.0, -1.0):
                v[idx] = old + sign * step
                moved = {**params, k: v}
                sides.append(_forward_loss(moved, x, t, act, layers))
                if base is not None and any(
                    np.any(a != b)
                    for a, b in zip(_relu_pattern(moved, x, layers), base, strict=True)
                ):
                    sides[-1] = np.nan
            v[idx] = old
            grad[idx] = (sides[0] - sides[1]) / (2 * step)
        out[k] = grad
    return out


def _comparable(got: Any, expected: np.ndarray) -> np.ndarray:
    """expected with its unknown (NaN) entries taken from got, so they do not count."""
    if not np.isnan(expected).any():
        return expected
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return np.nan_to_num(expected)
    return (
        np.where(np.isnan(expected), g, expected)
        if g.shape == expected.shape
        else np.nan_to_num(expected)
    )


def _judge_grads(name: str, got: Any, want: dict, what: str) -> Check:
    if isinstance(got, Raised):
        return raised_check(
            name,
            what,
            got,
            _(
                "gradient runs the loss forward, then every "
                "layer's backward in reverse order; every hidden layer needs its "
                "own activation object (each keeps its own forward state)"
            ),
        )
    if not isinstance(got, dict):
        return Check(
            name,
            False,
            _("{what} should return a dict of gradients by parameter name, got {type}").format(
                what=what, type=type(got).__name__
            ),
            "return_value",
        )
    for k, expected in want.items():
        if k not in got:
            return Check(
                name, False, _("{what} has no gradient {key!r}").format(what=what, key=k), "missing"
            )
        d = diagnose("d" + k, got[k], _comparable(got[k], expected), threshold=1e-6)
        if not d.ok:
            return Check(
                name, False, f"{what}: d{k} {d.message}", d.mistake, d.rel_error, d.threshold
            )
    return Check(
        name, True, _("{what}: every gradient matches the numerical one").format(what=what)
    )


def _read_params(obs: dict, s: list[int]) -> tuple[dict[str, np.ndarray], Check | None]:
    """The recorded initial params as arrays, and the failed check if keys or shapes are off."""
    layers = len(s) - 1
    got = obs.get("params") if isinstance(obs.get("params"), dict) else {}
    want_keys = [f"{p}{l}" for l in range(1, layers + 1) for p in "Wb"]
    params: dict[str, np.ndarray] = {}
    if sorted(got) != sorted(want_keys):
        return params, Check(
            "params",
            False,
            _(
                "params has keys {keys}; a net with "
                "hidden sizes {hidden} has {layers} Affine layers: W1, b1, ..., "
                "W{layers}, b{layers}"
            ).format(keys=sorted(got), hidden=s[1:-1], layers=layers),
            "missing",
        )
    for l in range(1, layers + 1):
        for key, shape in ((f"W{l}", (s[l - 1], s[l])), (f"b{l}", (s[l],))):
            a = _arr(got[key])
            if a is None or a.shape != shape:
                return params, Check(
                    "params",
                    False,
                    _("{key} has shape {got}, expected {expected} (sizes {sizes})").format(
                        key=key, got=None if a is None else a.shape, expected=shape, sizes=s
                    ),
                    "transpose" if a is not None and a.shape == shape[::-1] else "shape",
                )
            params[key] = a
    return params, None


def _wrong_loss(
    v: float | None, params: dict, x: np.ndarray, t: np.ndarray, act: str, layers: int
) -> tuple[str, str] | None:
    """(mistake, why) when loss v is what a known mistake computes, else None."""
    named = {
        "activation_on_output": (
            _(
                "applies the activation after the last Affine "
                "layer too: the scores go straight into "
                "SoftmaxWithLoss"
            ),
            _forward_loss(params, x, t, act, layers, True),
        )
    }
    for other in ("relu", "sigmoid", "tanh", "identity"):
        if other != act:
            named["wrong_activation"] = named.get("wrong_activation") or (None, None)
            alt = _forward_loss(params, x, t, other, layers)
            if v is not None and np.isclose(v, alt, rtol=1e-7):
                named["wrong_activation"] = (
                    _(
                        "is the loss with {other} between the layers: "
                        "use the activation asked for ({act!r})"
                    ).format(other=other, act=act),
                    alt,
                )
    for key, (why, alt) in named.items():
        if why and v is not None and np.isclose(v, alt, rtol=1e-7):
            return key, why
    return None


def _loss_check(
    loss: Any, params: dict, initial: dict, x: np.ndarray, t: np.ndarray, act: str, layers: int
) -> Check:
    """loss(x, t) after the in-place update, against the plain-numpy forward pass."""
    want = _forward_loss(params, x, t, act, layers)
    v = as_number(loss)
    if isinstance(loss, Raised):
        return raised_check("loss", "loss(x, t)", loss)
    if v is not None and np.isclose(v, want, rtol=1e-7):
        return Check(
            "loss",
            True,
            _("matches the forward pass {layers} Affine layers deep").format(layers=layers),
        )
    if v is not None and np.isclose(v, _forward_loss(initial, x, t, act, layers), rtol=1e-7):
        return Check(
            "loss",
            False,
            _(
                "after net.params was changed in place (as sgd_step "
                "does), loss still used the old values: give the layers the very "
                "arrays in params (Affine(self.params['W1'], ...)), not copies"
            ),
            "copied_params",
        )
    wrong = _wrong_loss(v, params, x, t, act, layers)
    if wrong:
        return Check(
            "loss",
            False,
            _("{what} {why}").format(what=f"loss(x, t) = {v:.6g}", why=wrong[1]),
            wrong[0],
        )
    return Check(
        "loss",
        False,
        _(
            "loss(x, t) = {loss!r:.40} but the forward pass "
            "gives {want:.6g}: Affine, {act}, ..., Affine, then "
            "SoftmaxWithLoss"
        ).format(loss=loss, want=want, act=act),
        "mismatch",
    )


def _second_call_check(
    inp: dict, obs: dict, params: dict, act: str, layers: int, first_ok: bool
) -> Check:
    """gradient on a second batch after another in-place update of params."""
    moved = {k: v + _moved(k, v, inp, 1.0) for k, v in params.items()}
    x2, t2 = np.asarray(inp["x2"], dtype=np.float64), np.asarray(inp["t2"])
    second = _judge_grads(
        "second call",
        obs.get("grads2"),
        _numeric(moved, x2, t2, act, layers),
        _("after net.params changed in place, gradient on a new batch"),
    )
    if second.ok or not first_ok:
        return second
    stale = _judge_grads("x", obs.get("grads2"), _numeric(params, x2, t2, act, layers), "")
    if stale.ok:
        return Check(
            "second call",
            False,
            _(
                "after net.params was changed in place (as "
                "sgd_step does), gradient still used the old values: give the "
                "layers the very arrays in params, not copies"
            ),
            "copied_params",
        )
    return Check(
        "second call",
        False,
        second.message
        + _(
            ". The first call was "
            "right: does a layer keep state from the first call, or is one "
            "activation object shared by several layers?"
        ),
        "stale_state",
    )


def _net_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("MultiLayerNet")
    s, act = inp["sizes"], inp["activation"]
    layers = len(s) - 1
    error = obs.get("error") if isinstance(obs.get("error"), dict) else None
    if error:
        report.add(
            raised_check(
                "params",
                _("creating the net"),
                error.get("raised"),
                "MultiLayerNet(input_size, hidden_sizes, output_size, "
                "activation=..., weight_init=...)",
            )
        )
        return report
    initial, problem = _read_params(obs, s)
    report.add(
        problem
        or Check(
            "params",
            True,
            _("W1..W{layers}, b1..b{layers} with the right shapes").format(layers=layers),
        )
    )
    params = {k: v + _moved(k, v, inp) for k, v in initial.items()}
    report.add(_judge_init(inp, obs))
    if problem:
        for name in ("loss", "gradient", "second call"):
            report.add(Check(name, False, _("not judged until params is right"), "not_run"))
        return report
    x, t = np.asarray(inp["x"], dtype=np.float64), np.asarray(inp["t"])
    report.add(_loss_check(obs.get("loss"), params, initial, x, t, act, layers))
    report.add(
        _judge_grads(
            "gradient", obs.get("grads"), _numeric(params, x, t, act, layers), "gradient(x, t)"
        )
    )
    if "update_error" in obs:
        report.add(
            Check(
                "second call",
                False,
                _("net.params[key] += ... failed: {error}").format(error=obs["update_error"]),
                "error",
            )
        )
        return report
    report.add(_second_call_check(inp, obs, params, act, layers, report["gradient"].ok))
    return report


def _judge_init(inp: dict, obs: dict) -> Check:
    big = inp["big"]
    init = obs.get("init") if isinstance(obs.get("init"), dict) else {}
    for kind, c in (("he", 2.0), ("xavier", 1.0), ("0.05", None)):
        stats = init.get(kind)
        if isinstance(stats, Raised):
            return raised_check("init", f"MultiLayerNet(..., weight_init={kind})", stats)
        if not isinstance(stats, dict):
            return Check(
                "init",
                False,
                _("weight_init={kind}: the parameters could not be read").format(kind=kind),
                "missing",
            )
        for l in range(1, len(big)):
            n_in, n_out = big[l - 1], big[l]
            w, b = stats.get(f"W{l}"), stats.get(f"b{l}")
            want = 0.05 if c is None else np.sqrt(c / n_in)
            try:
                std, bmax = float(w[0]), float(b[1])
            except (TypeError, ValueError, IndexError, KeyError):
                return Check(
                    "init",
                    False,
                    _("weight_init={kind}: W{l} or b{l} missing").format(kind=kind, l=l),
                    "missing",
                )
            if bmax != 0:
                return Check(
                    "init", False, _("b{l} does not start at zero").format(l=l), "mismatch"
                )
            if abs(std / want - 1) < 0.1:
                continue
            if c is not None and abs(std / np.sqrt(c / n_out) - 1) < 0.1:
                return Check(
                    "init",
                    False,
                    _(
                        "weight_init={kind!r}: W{l} ({n_in}, {n_out}) has "
                        "std {std:.4g} = sqrt({c:g} / {n_out}), from its outputs: the "
                        "scale depends on the inputs per unit, n_in"
                    ).format(kind=kind, l=l, n_in=n_in, n_out=n_out, std=std, c=c),
                    "fan_out",
                )
            return Check(
                "init",
                False,
                _(
                    "weight_init={kind!r}: W{l} ({n_in}, {n_out}) has "
                    "std {std:.4g}, expected {want:.4g} (init_std(n_in, weight_init))"
                ).format(kind=kind, l=l, n_in=n_in, n_out=n_out, std=std, want=want),
                "init_scale",
            )
    return Check("init", True, _("He, Xavier and a fixed std give the right scale in every layer"))


check_multilayer_net = define(
    "multilayer_net",
    title="MultiLayerNet",
    inputs=_net_inputs,
    collect=_net_collect,
    verify=_net_verify,
    disable=lambda: (multilayer.MultiLayerNet, multilayer.init_std),
    doc="MultiLayerNet(input_size, hidden_sizes, output_size, activation, weight_init): "
    "checks 'params', 'init', 'loss', 'gradient' and 'second call'.",
)
