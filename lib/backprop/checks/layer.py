"""The protocol every layer check follows, written once.

A layer check's inputs are a dict:

``init``      constructor arguments by name, in order (``{"W": W, "b": b}``; ``{}`` for none)
``forward``   forward arguments by name, in order (``{"x": x}``, ``{"x": x, "t": t}``)
``dout``      the upstream gradient for backward
``forward2``, ``dout2``  a second batch, run on the same layer afterwards
``update``    optional: amounts added *in place* to constructor arrays before the second
              batch, as an optimiser would (``{"W": dW, "b": db}``)

:func:`collect_layer` (learner's kernel) runs: make the layer; forward on copies of the
inputs; backward on a copy of dout; backward again with the same dout; then, after the
optional in-place update, forward and backward on the second batch. It records every
result and every input as it was afterwards. :func:`verify_layer` (anywhere; runs no
learner code) compares them with a reference forward function and its numerical gradients
and names the mistake. The checks, by name:

``forward``, ``out``, ``<input> unchanged``, ``backward``, ``dout unchanged``, ``d<input>``
and ``d<param>``, ``backward twice`` (the same dout gives the same gradients: no ``+=``, no
state changed by backward), ``second call`` (a new batch, and parameters changed in place,
are used: nothing computed only on the first call, no copies of the parameters).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..gradcheck import Check, LayerReport, diagnose, numerical_gradient
from .channel import Raised, snapshot
from .core import call, raised_check

Suspects = Callable[[dict, str], Mapping[str, Mapping[str, tuple[str, Any]]]]

HINTS = {
    "create": "the class must be callable with the arguments shown in the exercise",
    "forward": "run your forward by hand on a small array and read the error",
    "backward": "backward receives only dout: whatever it needs from the input must be "
                "kept by forward (self.x = ...)",
}


def _copy(value: Any) -> Any:
    return np.array(value, copy=True) if isinstance(value, np.ndarray) else value


def _copies(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) for k, v in values.items()}


def collect_layer(target: Any, inp: dict, *, params: Mapping[str, str] = {}) -> dict:
    """Run the learner's layer class through the protocol; what came out, as plain data.

    params: constructor argument -> gradient attribute, e.g. ``{"W": "dW", "b": "db"}``.
    """
    obs: dict[str, Any] = {}

    def failed(step: str, error: Raised | None) -> bool:
        if error is not None:
            obs["error"] = {"step": step, "raised": error}
        return error is not None

    init = _copies(inp["init"])
    layer, err = call(target, *init.values())
    if failed("create", err):
        return obs

    def one_pass(forward: dict, dout: Any, suffix: str) -> bool:
        given = _copies(forward)
        out, err = call(lambda *a: layer.forward(*a), *given.values())
        if failed("forward" + suffix, err):
            return False
        obs["out" + suffix] = snapshot(out)
        obs["after_forward" + suffix] = snapshot(given)
        d = _copy(dout)
        grads, err = call(lambda g: layer.backward(g), d)
        if failed("backward" + suffix, err):
            return False
        obs["grads" + suffix] = snapshot(grads)
        obs["param_grads" + suffix] = {g: snapshot(getattr(layer, g, None)) for g in params.values()}
        obs["dout_after" + suffix] = snapshot(d)
        obs["after_backward" + suffix] = snapshot(given)
        return True

    if not one_pass(inp["forward"], inp["dout"], ""):
        return obs
    grads, err = call(lambda g: layer.backward(g), _copy(inp["dout"]))
    if failed("backward_again", err):
        return obs
    obs["grads_again"] = snapshot(grads)
    obs["param_grads_again"] = {g: snapshot(getattr(layer, g, None)) for g in params.values()}
    for name, delta in (inp.get("update") or {}).items():
        init[name] += delta  # in place, on the very arrays the layer was given
    one_pass(inp["forward2"], inp["dout2"], "2")
    return obs


def numerical_grads(reference: Callable[..., Any], values: Mapping[str, Any], dout: Any,
                    names: Sequence[str]) -> dict[str, np.ndarray]:
    """d(sum(reference(**values) * dout))/d(value) for each name, by central differences."""
    grads = {}
    for name in names:
        def f(v: np.ndarray, name: str = name) -> float:
            return float(np.sum(np.asarray(reference(**{**values, name: v})) * dout))
        grads["d" + name] = numerical_gradient(f, np.array(values[name], dtype=np.float64))
    return grads


def _d(obs: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """obs[key] if it is a dict (what the kernel sent may be anything), else {}."""
    value = obs.get(key)
    return value if isinstance(value, dict) else {}


def _as_list(grads: Any, n: int) -> list | None:
    if n == 1 and not isinstance(grads, list):
        return [grads]
    if isinstance(grads, list) and len(grads) == n:
        return grads
    return None


def _same(a: Any, b: Any) -> bool:
    try:
        return np.array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                              equal_nan=True)
    except (TypeError, ValueError):
        return False


def verify_layer(inp: dict, obs: Mapping[str, Any], *, reference: Callable[..., Any],
                 wrt: Sequence[str], params: Mapping[str, str] = {},
                 suspects: Suspects | None = None, threshold: float = 1e-7,
                 hints: Mapping[str, str] = {}, name: str = "layer") -> LayerReport:
    """Judge what :func:`collect_layer` recorded against ``reference(**init, **forward)``.

    wrt: forward arguments whose gradients backward returns, in its order.
    suspects(inputs, round): layer-specific mistakes, ``{gradient: {key: (why, value)}}``,
    for round "" (first batch) or "2".
    """
    report = LayerReport(name)
    hints = {**HINTS, **hints}
    error = obs.get("error") if isinstance(obs.get("error"), dict) else None
    stopped = error.get("step") if error else None
    raised = error.get("raised") if error else None
    if stopped == "create":
        report.add(raised_check("forward", "creating the layer", raised, hints["create"]))
        return report
    if stopped == "forward":
        report.add(raised_check("forward", "forward", raised, hints["forward"]))
        return report
    first = _round(report, inp, obs, "", reference, wrt, params, suspects, threshold)
    if first is None and stopped is None:
        report.add(Check("forward", False, "nothing was collected from the layer", "not_run"))
        return report
    if stopped == "backward":
        report.add(raised_check("backward", "backward", raised, hints["backward"]))
        return report
    if not first:
        return report
    _twice(report, obs, wrt, params, stopped, raised)
    _second(report, inp, obs, reference, wrt, params, suspects, threshold, stopped, raised)
    return report


def _round(report: LayerReport, inp: dict, obs: Mapping[str, Any], r: str,
           reference: Callable[..., Any], wrt: Sequence[str], params: Mapping[str, str],
           suspects: Suspects | None, threshold: float,
           record: bool = True) -> list[Check] | None:
    """Checks of one batch (r = "" or "2"); record=False returns them without adding them."""
    checks: list[Check] = []
    forward, dout = inp["forward" + r], inp["dout" + r]
    init = dict(inp["init"])
    if r:
        init = {k: (v + inp["update"][k] if k in (inp.get("update") or {}) else v)
                for k, v in init.items()}
    values = {**init, **forward}
    first = next(iter(forward.values()))
    batch = np.shape(first)[0] if np.ndim(first) >= 2 else None
    if "out" + r not in obs:
        return None
    out = obs["out" + r]
    if out is None:
        checks.append(Check("forward", False, "returned None: did you forget to return?",
                            "missing"))
    else:
        checks.append(Check("forward", True, "runs"))
        checks.append(diagnose("out", out, np.asarray(reference(**values)),
                               threshold=threshold, batch_size=batch))
    for k, v in forward.items():
        if not _same(_d(obs, "after_forward" + r).get(k), v):
            checks.append(Check(f"{k} unchanged", False, f"forward changed its input {k} in "
                                "place: compute into a new array instead", "mutated_input"))
        elif "after_backward" + r in obs and not _same(_d(obs, "after_backward" + r).get(k), v):
            checks.append(Check(f"{k} unchanged", False, f"backward changed the input {k} in "
                                "place (through what forward kept of it)", "mutated_input"))
        elif "after_backward" + r in obs:
            checks.append(Check(f"{k} unchanged", True, "forward and backward leave it alone"))
    if "grads" + r not in obs:
        if record:
            report.checks += checks
        return checks
    if not _same(obs.get("dout_after" + r), dout):
        checks.append(Check("dout unchanged", False, "backward changed the upstream gradient "
                            "dout in place: the layer before may still need it; compute into "
                            "a new array", "mutated_dout"))
    else:
        checks.append(Check("dout unchanged", True, "backward leaves it alone"))
    grads = _as_list(obs["grads" + r], len(wrt))
    if grads is None:
        want = ", ".join("d" + k for k in wrt)
        checks.append(Check("backward", False, f"should return {want}"
                            + (" as a tuple" if len(wrt) > 1 else "")
                            + f", got {_describe(obs['grads' + r])}",
                            "missing" if obs["grads" + r] is None else "return_value"))
        if record:
            report.checks += checks
        return checks
    checks.append(Check("backward", True, "runs"))
    analytic = {"d" + k: g for k, g in zip(wrt, grads)}
    for p, g in params.items():
        analytic["d" + p] = _d(obs, "param_grads" + r).get(g)
    numeric = numerical_grads(reference, values, dout, [*wrt, *params])
    ones = 1.0 if np.ndim(dout) == 0 else np.ones_like(dout)
    local = numerical_grads(reference, values, ones, [*wrt, *params]) \
        if not _same(dout, ones) else {}
    extra = suspects(inp, r) if suspects else {}
    for gname, expected in numeric.items():
        named = dict(extra.get(gname, {}))
        if gname in local:
            named.setdefault("no_dout", (
                "is the local gradient alone: multiply it by the upstream gradient dout "
                "(the chain rule)", local[gname]))
        checks.append(diagnose(gname, analytic[gname], expected, threshold=threshold,
                               batch_size=batch, dout=dout, suspects=named))
    if record:
        report.checks += checks
    return checks


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"{len(value)} values"
    if isinstance(value, np.ndarray):
        return f"one array of shape {value.shape}"
    return repr(value)[:80]


def _twice(report: LayerReport, obs: Mapping[str, Any], wrt: Sequence[str],
           params: Mapping[str, str], stopped: str | None, raised: Any) -> None:
    if stopped == "backward_again":
        report.add(raised_check("backward twice", "a second call to backward", raised,
                                "backward must not depend on having been called before"))
        return
    if "grads_again" not in obs:
        return
    for g in params.values():
        first, again = _d(obs, "param_grads").get(g), _d(obs, "param_grads_again").get(g)
        if _same(first, again):
            continue
        doubled = _same(np.asarray(first, dtype=np.float64) * 2, again) if first is not None \
            else False
        report.add(Check("backward twice", False, (
            f"{g} doubled on a second backward with the same dout: you add to {g} (+=); set it "
            f"({g} = ...)") if doubled else (
            f"a second backward with the same dout gave a different {g}"),
            "accumulates" if doubled else "state_changed"))
        return
    first, again = _as_list(obs["grads"], len(wrt)), _as_list(obs["grads_again"], len(wrt))
    if first is None or again is None or not all(_same(a, b) for a, b in zip(first, again)):
        report.add(Check("backward twice", False, "a second backward with the same dout gave "
                         "different gradients: backward changes what forward stored (for "
                         "example self.y -= self.t): compute into a new array instead",
                         "state_changed"))
        return
    report.add(Check("backward twice", True, "the same dout gives the same gradients"))


def _subsets(names: list[str]) -> list[list[str]]:
    """The non-empty subsets of names, largest first."""
    found = [[n for i, n in enumerate(names) if mask >> i & 1]
             for mask in range(1, 2 ** len(names))]
    return sorted(found, key=len, reverse=True)


def _second(report: LayerReport, inp: dict, obs: Mapping[str, Any],
            reference: Callable[..., Any], wrt: Sequence[str], params: Mapping[str, str],
            suspects: Suspects | None, threshold: float, stopped: str | None,
            raised: Any) -> None:
    if stopped in ("forward2", "backward2"):
        report.add(raised_check("second call", f"{stopped[:-1]} on a second batch", raised,
                                "every call must work on its own inputs"))
        return
    checks = _round(report, inp, obs, "2", reference, wrt, params, suspects, threshold,
                    record=False)
    if checks is None:
        return
    # only what went right on the first batch and wrong on the second is this check's business
    bad = [c for c in checks if not c.ok and (c.name not in report or report[c.name].ok)]
    if not bad:
        report.add(Check("second call", True, "a second batch gives right results too"))
        return
    update = inp.get("update") or {}
    for stale in _subsets(list(update)):  # which parameters the layer kept copies of
        values = {k: (v if k in stale else v + update.get(k, 0)) for k, v in inp["init"].items()}
        guess = diagnose("out", obs.get("out2"),
                         np.asarray(reference(**values, **inp["forward2"])), threshold=threshold)
        if guess.ok:
            report.add(Check("second call", False, "after " + " and ".join(stale)
                             + (" was" if len(stale) == 1 else " were") + " changed in place (as an optimiser does), forward still "
                             "used the old values: keep the arrays themselves "
                             "(self.W = W), not copies", "copied_params"))
            return
    first = bad[0]
    report.add(Check("second call", False, "on a second call with new inputs: "
                     f"{first.name} {first.message}. The first call was right: is something "
                     "kept from the first call, or computed only once (if self.mask is None)?",
                     "stale_state"))
