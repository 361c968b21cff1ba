"""Checks for notebook 8: ``init_std``, ``MultiLayerNet`` and ``layer_norms``.

``verify`` computes everything itself in plain numpy: the initial scales, the network's
forward pass and loss at the learner's own initial parameters (which the check records),
and their gradients by central differences. It runs none of the learner's code.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import multilayer
from ..gradcheck import Check, LayerReport, diagnose, numerical_gradient
from .channel import as_floats, Raised, snapshot
from .core import call, define, raised_check


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, (bool, str, list, dict, Raised)):
        return None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return float(arr) if arr.size == 1 else None


_arr = as_floats


# --- init_std -------------------------------------------------------------------------------

def _std_inputs(seed: int = 0, cases: int = 4) -> dict:
    """Fan-ins n_in (different from every fan-out used) and a fixed std."""
    rng = np.random.default_rng(seed)
    return {"n_in": [int(v) for v in rng.integers(3, 900, size=cases)],
            "fixed": float(np.round(rng.uniform(0.005, 0.2), 4))}


def _std_collect(target: Any, inp: dict) -> dict:
    obs: dict[str, Any] = {}
    for kind in ("he", "xavier"):
        got = []
        for n in inp["n_in"]:
            v, err = call(target, n, kind)
            got.append(err if err is not None else snapshot(v))
        obs[kind] = got
    v, err = call(target, inp["n_in"][0], inp["fixed"])
    obs["fixed"] = err if err is not None else snapshot(v)
    return obs


def _std_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("init_std")
    for kind, c, name, other in (("he", 2.0, "he", 1.0), ("xavier", 1.0, "xavier", 2.0)):
        got = obs.get(kind) if isinstance(obs.get(kind), list) else []
        check = Check(name, True, f"std = sqrt({c:g} / n_in) for every n_in tried")
        for i, n in enumerate(inp["n_in"]):
            value = got[i] if i < len(got) else None
            if isinstance(value, Raised):
                check = raised_check(name, f"init_std({n}, {kind!r})", value)
                break
            v, want = _num(value), np.sqrt(c / n)
            if v is not None and np.isclose(v, want, rtol=1e-6):
                continue
            named = {"no_sqrt": (f"is the variance {c:g} / n_in, not the standard deviation: "
                                 "take its square root", c / n),
                     "swapped": ("is the other initialisation's scale: He is for ReLU (which "
                                 "zeroes half its inputs), Xavier for sigmoid and tanh",
                                 np.sqrt(other / n)),
                     "sqrt_c_over_n": (f"is sqrt({c:g}) / n_in: the variance of a sum of n_in "
                                       "terms grows like n_in, so the std must shrink like "
                                       "1 / sqrt(n_in)", np.sqrt(c) / n)}
            for key, (why, alt) in named.items():
                if v is not None and np.isclose(v, alt, rtol=1e-6):
                    check = Check(name, False, f"init_std({n}, {kind!r}) = {v:.4g} {why}", key)
                    break
            else:
                check = Check(name, False, f"init_std({n}, {kind!r}) returned {value!r:.40}, "
                              f"expected {want:.4g}", "mismatch" if v is not None else
                              "return_value")
            break
        report.add(check)
    fixed = obs.get("fixed")
    if isinstance(fixed, Raised):
        report.add(raised_check("number", "init_std with a number", fixed))
    else:
        v = _num(fixed)
        report.add(Check("number", True, "a number is used as the std itself")
                   if v is not None and np.isclose(v, inp["fixed"]) else
                   Check("number", False, f"init_std(n_in, {inp['fixed']}) should return "
                         f"{inp['fixed']} itself, got {fixed!r:.40}", "mismatch"))
    return report


check_init_std = define(
    "init_std", title="init_std", inputs=_std_inputs, collect=_std_collect,
    verify=_std_verify, disable=lambda: (multilayer.init_std,),
    doc="init_std(n_in, weight_init): checks 'he', 'xavier' and 'number'.")


# --- MultiLayerNet --------------------------------------------------------------------------

_ACT = {"relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: np.exp(-np.logaddexp(0, -z)),
        "tanh": np.tanh, "identity": lambda z: z}


def _net_inputs(seed: int = 0, input_size: int = 4, hidden_sizes: list | None = None,
                output_size: int = 3, batch: int = 5, activation: str = "relu",
                weight_init: str | float = "he") -> dict:
    """A small net's sizes, two batches x, t, and the in-place update applied between."""
    rng = np.random.default_rng(seed)
    hidden = [int(h) for h in (hidden_sizes if hidden_sizes is not None else [5, 4, 3])]
    return {"sizes": [int(input_size), *hidden, int(output_size)], "activation": activation,
            "weight_init": weight_init,
            "x": rng.standard_normal((batch, input_size)),
            "t": rng.integers(0, output_size, size=batch),
            "x2": rng.standard_normal((batch, input_size)),
            "t2": rng.integers(0, output_size, size=batch),
            "step": 0.3, "big": [300, 200, 100, 10]}


def _delta(shape: tuple[int, ...], step: float, phase: float = 0.0) -> np.ndarray:
    """The in-place change made to each parameter before each batch."""
    n = int(np.prod(shape))
    return step * np.cos(np.arange(n, dtype=np.float64) * 1.7 + 0.5 + phase).reshape(shape)


def _net_collect(target: Any, inp: dict) -> dict:
    obs: dict[str, Any] = {}
    s = inp["sizes"]
    make = lambda sizes, init: target(sizes[0], list(sizes[1:-1]), sizes[-1],  # noqa: E731
                                      activation=inp["activation"], weight_init=init)
    net, err = call(make, s, inp["weight_init"])
    if err is not None:
        obs["error"] = {"step": "create", "raised": err}
        return obs
    params = getattr(net, "params", None)
    obs["params"] = snapshot(dict(params)) if isinstance(params, dict) or hasattr(
        params, "items") else snapshot(params)

    def update(phase: float) -> bool:
        # in place, as an optimiser would; it also moves the biases off 0, so that no
        # ReLU input sits exactly on the kink where numerical gradients are meaningless
        try:
            for k in list(net.params):
                net.params[k] += _delta(np.shape(net.params[k]), inp["step"], phase)
        except Exception as exc:  # noqa: BLE001
            obs["update_error"] = f"{type(exc).__name__}: {exc}"[:300]
            return False
        return True

    if not update(0.0):
        return obs
    for key, fn in (("scores", lambda: net.predict(inp["x"])),
                    ("loss", lambda: net.loss(inp["x"], inp["t"])),
                    ("grads", lambda: net.gradient(inp["x"], inp["t"]))):
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
            stds[str(init)] = {k: [float(np.std(v)), float(np.abs(np.asarray(v)).max()),
                                   list(np.shape(v))] for k, v in big.params.items()}
        except Exception as exc:  # noqa: BLE001
            stds[str(init)] = f"{type(exc).__name__}: {exc}"[:300]
    obs["init"] = stds
    return obs


def _forward_loss(params: dict, x: np.ndarray, t: np.ndarray, act: str, layers: int,
                  output_act: bool = False) -> float:
    h = x
    for l in range(1, layers + 1):
        h = h @ params[f"W{l}"] + params[f"b{l}"]
        if l < layers or output_act:
            h = _ACT[act](h)
    h = h - h.max(axis=1, keepdims=True)
    logp = h - np.log(np.exp(h).sum(axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(t)), t]))


def _numeric(params: dict, x: np.ndarray, t: np.ndarray, act: str, layers: int) -> dict:
    out = {}
    for k in params:
        def f(v: np.ndarray, k: str = k) -> float:
            return _forward_loss({**params, k: v}, x, t, act, layers)
        out[k] = numerical_gradient(f, np.array(params[k], dtype=np.float64))
    return out


def _judge_grads(name: str, got: Any, want: dict, what: str) -> Check:
    if isinstance(got, Raised):
        return raised_check(name, what, got, "gradient runs the loss forward, then every "
                            "layer's backward in reverse order; every hidden layer needs its "
                            "own activation object (each keeps its own forward state)")
    if not isinstance(got, dict):
        return Check(name, False, f"{what} should return a dict of gradients by parameter "
                     f"name, got {type(got).__name__}", "return_value")
    for k, expected in want.items():
        if k not in got:
            return Check(name, False, f"{what} has no gradient {k!r}", "missing")
        d = diagnose("d" + k, got[k], expected, threshold=1e-6)
        if not d.ok:
            return Check(name, False, f"{what}: d{k} {d.message}", d.mistake,
                         d.rel_error, d.threshold)
    return Check(name, True, f"{what}: every gradient matches the numerical one")


def _net_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("MultiLayerNet")
    s, act = inp["sizes"], inp["activation"]
    layers = len(s) - 1
    error = obs.get("error") if isinstance(obs.get("error"), dict) else None
    if error:
        report.add(raised_check("params", "creating the net", error.get("raised"),
                                "MultiLayerNet(input_size, hidden_sizes, output_size, "
                                "activation=..., weight_init=...)"))
        return report
    got = obs.get("params") if isinstance(obs.get("params"), dict) else {}
    want_keys = [f"{p}{l}" for l in range(1, layers + 1) for p in "Wb"]
    params: dict[str, np.ndarray] = {}
    problem = None
    if sorted(got) != sorted(want_keys):
        problem = Check("params", False, f"params has keys {sorted(got)}; a net with hidden "
                        f"sizes {s[1:-1]} has {layers} Affine layers: W1, b1, ..., W{layers}, "
                        f"b{layers}", "missing")
    else:
        for l in range(1, layers + 1):
            for key, shape in ((f"W{l}", (s[l - 1], s[l])), (f"b{l}", (s[l],))):
                a = _arr(got[key])
                if a is None or a.shape != shape:
                    problem = Check("params", False, f"{key} has shape "
                                    f"{None if a is None else a.shape}, expected {shape} "
                                    f"(sizes {s})", "transpose" if a is not None and
                                    a.shape == shape[::-1] else "shape")
                    break
                params[key] = a
            if problem:
                break
    report.add(problem or Check("params", True, f"W1..W{layers}, b1..b{layers} with the "
                                "right shapes"))
    initial = params
    params = {k: v + _delta(v.shape, inp["step"]) for k, v in params.items()}
    report.add(_judge_init(inp, obs))
    if problem:
        for name in ("loss", "gradient", "second call"):
            report.add(Check(name, False, "not judged until params is right", "not_run"))
        return report
    x, t = np.asarray(inp["x"], dtype=np.float64), np.asarray(inp["t"])
    want = _forward_loss(params, x, t, act, layers)
    loss = obs.get("loss")
    v = _num(loss)
    if isinstance(loss, Raised):
        report.add(raised_check("loss", "loss(x, t)", loss))
    elif v is not None and np.isclose(v, want, rtol=1e-7):
        report.add(Check("loss", True, f"matches the forward pass {layers} Affine layers deep"))
    elif v is not None and np.isclose(v, _forward_loss(initial, x, t, act, layers), rtol=1e-7):
        report.add(Check("loss", False, "after net.params was changed in place (as sgd_step "
                         "does), loss still used the old values: give the layers the very "
                         "arrays in params (Affine(self.params['W1'], ...)), not copies",
                         "copied_params"))
    else:
        named = {"activation_on_output": ("applies the activation after the last Affine "
                                          "layer too: the scores go straight into "
                                          "SoftmaxWithLoss",
                                          _forward_loss(params, x, t, act, layers, True))}
        for other in ("relu", "sigmoid", "tanh", "identity"):
            if other != act:
                named["wrong_activation"] = named.get("wrong_activation") or (
                    None, None)
                alt = _forward_loss(params, x, t, other, layers)
                if v is not None and np.isclose(v, alt, rtol=1e-7):
                    named["wrong_activation"] = (f"is the loss with {other} between the layers: "
                                                 f"use the activation asked for ({act!r})", alt)
        for key, (why, alt) in named.items():
            if why and v is not None and np.isclose(v, alt, rtol=1e-7):
                report.add(Check("loss", False, f"loss(x, t) = {v:.6g} {why}", key))
                break
        else:
            report.add(Check("loss", False, f"loss(x, t) = {loss!r:.40} but the forward pass "
                             f"gives {want:.6g}: Affine, {act}, ..., Affine, then "
                             "SoftmaxWithLoss", "mismatch"))
    report.add(_judge_grads("gradient", obs.get("grads"), _numeric(params, x, t, act, layers),
                            "gradient(x, t)"))
    if "update_error" in obs:
        report.add(Check("second call", False, "net.params[key] += ... failed: "
                         f"{obs['update_error']}", "error"))
        return report
    moved = {k: v + _delta(v.shape, inp["step"], 1.0) for k, v in params.items()}
    x2, t2 = np.asarray(inp["x2"], dtype=np.float64), np.asarray(inp["t2"])
    second = _judge_grads("second call", obs.get("grads2"), _numeric(moved, x2, t2, act, layers),
                          "after net.params changed in place, gradient on a new batch")
    if not second.ok and report["gradient"].ok:
        stale = _judge_grads("x", obs.get("grads2"), _numeric(params, x2, t2, act, layers), "")
        if stale.ok:
            second = Check("second call", False, "after net.params was changed in place (as "
                           "sgd_step does), gradient still used the old values: give the "
                           "layers the very arrays in params, not copies", "copied_params")
        else:
            second = Check("second call", False, second.message + ". The first call was "
                           "right: does a layer keep state from the first call, or is one "
                           "activation object shared by several layers?", "stale_state")
    report.add(second)
    return report


def _judge_init(inp: dict, obs: dict) -> Check:
    big = inp["big"]
    init = obs.get("init") if isinstance(obs.get("init"), dict) else {}
    for kind, c in (("he", 2.0), ("xavier", 1.0), ("0.05", None)):
        stats = init.get(kind)
        if isinstance(stats, Raised):
            return raised_check("init", f"MultiLayerNet(..., weight_init={kind})", stats)
        if not isinstance(stats, dict):
            return Check("init", False, f"weight_init={kind}: the parameters could not be "
                         "read", "missing")
        for l in range(1, len(big)):
            n_in, n_out = big[l - 1], big[l]
            w, b = stats.get(f"W{l}"), stats.get(f"b{l}")
            want = 0.05 if c is None else np.sqrt(c / n_in)
            try:
                std, bmax = float(w[0]), float(b[1])
            except (TypeError, ValueError, IndexError, KeyError):
                return Check("init", False, f"weight_init={kind}: W{l} or b{l} missing",
                             "missing")
            if bmax != 0:
                return Check("init", False, f"b{l} does not start at zero", "mismatch")
            if abs(std / want - 1) < 0.1:
                continue
            if c is not None and abs(std / np.sqrt(c / n_out) - 1) < 0.1:
                return Check("init", False, f"weight_init={kind!r}: W{l} ({n_in}, {n_out}) has "
                             f"std {std:.4g} = sqrt({c:g} / {n_out}), from its outputs: the "
                             "scale depends on the inputs per unit, n_in", "fan_out")
            return Check("init", False, f"weight_init={kind!r}: W{l} ({n_in}, {n_out}) has "
                         f"std {std:.4g}, expected {want:.4g} (init_std(n_in, weight_init))",
                         "init_scale")
    return Check("init", True, "He, Xavier and a fixed std give the right scale in every layer")


check_multilayer_net = define(
    "multilayer_net", title="MultiLayerNet", inputs=_net_inputs, collect=_net_collect,
    verify=_net_verify, disable=lambda: (multilayer.MultiLayerNet, multilayer.init_std),
    doc="MultiLayerNet(input_size, hidden_sizes, output_size, activation, weight_init): "
        "checks 'params', 'init', 'loss', 'gradient' and 'second call'.")


# --- layer_norms ----------------------------------------------------------------------------

def _norm_inputs(seed: int = 0, layers: int = 11) -> dict:
    """Gradients of a net with `layers` Affine layers (so W10 and W11 exist), twice: in
    layer order, and inserted in a shuffled order."""
    rng = np.random.default_rng(seed)
    sizes = [int(v) for v in rng.integers(2, 6, size=layers + 1)]
    grads = {}
    for l in range(1, layers + 1):
        grads[f"W{l}"] = rng.standard_normal((sizes[l - 1], sizes[l])) * 10.0 ** -l
        grads[f"b{l}"] = rng.standard_normal(sizes[l])
    order = [str(k) for k in rng.permutation(list(grads))]
    return {"grads": grads, "order": order, "layers": layers}


def _norm_collect(target: Any, inp: dict) -> dict:
    obs: dict[str, Any] = {}
    g = inp["grads"]
    for key, grads in (("ordered", dict(g)), ("shuffled", {k: g[k] for k in inp["order"]})):
        copies = {k: np.array(v, copy=True) for k, v in grads.items()}
        value, err = call(target, copies)
        obs[key] = err if err is not None else snapshot(value)
        obs[key + "_after"] = snapshot(copies)
    return obs


def _norm_verify(inp: dict, obs: dict) -> LayerReport:
    report = LayerReport("layer_norms")
    g, L = inp["grads"], inp["layers"]
    ws = [np.asarray(g[f"W{l}"], dtype=np.float64) for l in range(1, L + 1)]
    want = np.array([np.sqrt(np.sum(w ** 2)) for w in ws])
    strings = sorted(range(1, L + 1), key=str)
    named = {"squared": ("are squared norms: take the square root of the sum of squares",
                         want ** 2),
             "with_biases": ("include the biases: measure the weight gradients dW1..dWL only",
                             None),
             "string_order": ("are sorted as strings (W1, W10, W11, W2, ...): order by the "
                              "layer number", want[[l - 1 for l in strings]]),
             "mean_abs": ("are mean absolute values: use the Frobenius norm, the square root "
                          "of the sum of squares", np.array([np.mean(np.abs(w)) for w in ws]))}
    for key, label in (("ordered", "norms"), ("shuffled", "order")):
        got = obs.get(key)
        what = "layer_norms(grads)" + ("" if key == "ordered" else
                                       " with the keys of grads in another order")
        if isinstance(got, Raised):
            report.add(raised_check(label, what, got))
            continue
        arr = _arr(got)
        if arr is not None and arr.shape == want.shape and np.allclose(arr, want, rtol=1e-8):
            report.add(Check(label, True, f"{what}: ‖dW1‖ ... ‖dW{L}‖ in layer order"))
            continue
        found = None
        if arr is not None and arr.shape == (2 * L,):
            found = "with_biases"
        for m, (why, alt) in named.items():
            if found is None and alt is not None and arr is not None and arr.shape == alt.shape \
                    and np.allclose(arr, alt, rtol=1e-8):
                found = m
        if found is None and key == "shuffled" and arr is not None and arr.shape == want.shape \
                and np.allclose(np.sort(arr), np.sort(want), rtol=1e-8):
            report.add(Check(label, False, f"{what}: the right norms in the dict's order: "
                             "order them by layer, W1, W2, ..., whatever the order of the keys",
                             "order"))
            continue
        if found:
            report.add(Check(label, False, f"{what} {named[found][0]}", found))
        else:
            report.add(Check(label, False, f"{what} returned {got!r:.60}; expected an array "
                             f"of {L} norms", "mismatch" if arr is not None else "return_value"))
    changed = not all(np.array_equal(_arr((obs.get(k + "_after") or {}).get(n))
                                     if isinstance(obs.get(k + "_after"), dict) else None, g[n])
                      for k in ("ordered", "shuffled") for n in g)
    report.add(Check("grads unchanged", False, "layer_norms changed grads: compute into new "
                     "arrays", "mutated_input") if changed else
               Check("grads unchanged", True, "grads left alone"))
    return report


check_layer_norms = define(
    "layer_norms", title="layer_norms", inputs=_norm_inputs, collect=_norm_collect,
    verify=_norm_verify,
    doc="layer_norms(grads): checks 'norms', 'order' and 'grads unchanged'.")
