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
How each is judged: :mod:`.layer_rounds`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..gradcheck import Check, LayerReport
from ..i18n import N_, _
from .channel import Raised, snapshot
from .layer_rounds import Suspects, _round, _second, _twice
from .running import call, raised_check

# Marked, not translated: verify_layer translates a hint when it shows it.
HINTS = {
    "create": N_("the class must be callable with the arguments shown in the exercise"),
    "forward": N_("run your forward by hand on a small array and read the error"),
    "backward": N_(
        "backward receives only dout: whatever it needs from the input must be "
        "kept by forward (self.x = ...)"
    ),
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
        obs["param_grads" + suffix] = {
            g: snapshot(getattr(layer, g, None)) for g in params.values()
        }
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


def verify_layer(
    inp: dict,
    obs: Mapping[str, Any],
    *,
    reference: Callable[..., Any],
    wrt: Sequence[str],
    params: Mapping[str, str] = {},
    suspects: Suspects | None = None,
    threshold: float = 1e-7,
    hints: Mapping[str, str] = {},
    name: str = "layer",
) -> LayerReport:
    """Judge what :func:`collect_layer` recorded against ``reference(**init, **forward)``.

    wrt: forward arguments whose gradients backward returns, in its order.
    suspects(inputs, round): layer-specific mistakes, ``{gradient: {key: (why, value)}}``,
    for round "" (first batch) or "2".
    """
    report = LayerReport(name)
    hints = {k: _(v) for k, v in {**HINTS, **hints}.items()}
    error = obs.get("error") if isinstance(obs.get("error"), dict) else None
    stopped = error.get("step") if error else None
    raised = error.get("raised") if error else None
    if stopped == "create":
        report.add(raised_check("forward", _("creating the layer"), raised, hints["create"]))
        return report
    if stopped == "forward":
        report.add(raised_check("forward", "forward", raised, hints["forward"]))
        return report
    first = _round(report, inp, obs, "", reference, wrt, params, suspects, threshold)
    if first is None and stopped is None:
        report.add(Check("forward", False, _("nothing was collected from the layer"), "not_run"))
        return report
    if stopped == "backward":
        report.add(raised_check("backward", "backward", raised, hints["backward"]))
        return report
    if not first:
        return report
    _twice(report, obs, wrt, params, stopped, raised)
    _second(report, inp, obs, reference, wrt, params, suspects, threshold, stopped, raised)
    return report
