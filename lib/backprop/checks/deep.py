"""Checks for notebook 8: ``init_std`` and ``layer_norms`` (the ``MultiLayerNet`` check is in
:mod:`.deep_net`).

``verify`` computes everything itself in plain numpy: the initial scales and the norms of
the gradients. It runs none of the learner's code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import multilayer
from ..gradcheck import Check, LayerReport
from ..i18n import _
from .channel import Raised, as_floats, as_number, snapshot
from .core import define
from .running import call, raised_check

_arr = as_floats


# --- init_std -------------------------------------------------------------------------------


def _std_inputs(seed: int = 0, cases: int = 4) -> dict:
    """Fan-ins n_in (different from every fan-out used) and a fixed std."""
    rng = np.random.default_rng(seed)
    return {
        "n_in": [int(v) for v in rng.integers(3, 900, size=cases)],
        "fixed": float(np.round(rng.uniform(0.005, 0.2), 4)),
    }


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
        check = Check(name, True, _("std = sqrt({c:g} / n_in) for every n_in tried").format(c=c))
        for i, n in enumerate(inp["n_in"]):
            value = got[i] if i < len(got) else None
            if isinstance(value, Raised):
                check = raised_check(name, f"init_std({n}, {kind!r})", value)
                break
            v, want = as_number(value), np.sqrt(c / n)
            if v is not None and np.isclose(v, want, rtol=1e-6):
                continue
            named = {
                "no_sqrt": (
                    _(
                        "is the variance {c:g} / n_in, not the standard deviation: "
                        "take its square root"
                    ).format(c=c),
                    c / n,
                ),
                "swapped": (
                    _(
                        "is the other initialisation's scale: He is for ReLU (which "
                        "zeroes half its inputs), Xavier for sigmoid and tanh"
                    ),
                    np.sqrt(other / n),
                ),
                "sqrt_c_over_n": (
                    _(
                        "is sqrt({c:g}) / n_in: the variance of a sum of n_in "
                        "terms grows like n_in, so the std must shrink like "
                        "1 / sqrt(n_in)"
                    ).format(c=c),
                    np.sqrt(c) / n,
                ),
            }
            for key, (why, alt) in named.items():
                if v is not None and np.isclose(v, alt, rtol=1e-6):
                    check = Check(
                        name,
                        False,
                        _("{what} {why}").format(
                            what=f"init_std({n}, {kind!r}) = {v:.4g}", why=why
                        ),
                        key,
                    )
                    break
            else:
                check = Check(
                    name,
                    False,
                    _("init_std({n}, {kind!r}) returned {value!r:.40}, expected {want:.4g}").format(
                        n=n, kind=kind, value=value, want=want
                    ),
                    "mismatch" if v is not None else "return_value",
                )
            break
        report.add(check)
    fixed = obs.get("fixed")
    if isinstance(fixed, Raised):
        report.add(raised_check("number", _("init_std with a number"), fixed))
    else:
        v = as_number(fixed)
        report.add(
            Check("number", True, _("a number is used as the std itself"))
            if v is not None and np.isclose(v, inp["fixed"])
            else Check(
                "number",
                False,
                _("init_std(n_in, {fixed}) should return {fixed} itself, got {got!r:.40}").format(
                    fixed=inp["fixed"], got=fixed
                ),
                "mismatch",
            )
        )
    return report


check_init_std = define(
    "init_std",
    title="init_std",
    inputs=_std_inputs,
    collect=_std_collect,
    verify=_std_verify,
    disable=lambda: (multilayer.init_std,),
    doc="init_std(n_in, weight_init): checks 'he', 'xavier' and 'number'.",
)


# --- layer_norms ----------------------------------------------------------------------------


def _norm_inputs(seed: int = 0, layers: int = 11) -> dict:
    """Gradients of a net with `layers` Affine layers (so W10 and W11 exist), twice: in
    layer order, and inserted in a shuffled order."""
    rng = np.random.default_rng(seed)
    sizes = [int(v) for v in rng.integers(2, 6, size=layers + 1)]
    grads = {}
    for l in range(1, layers + 1):
        grads[f"W{l}"] = rng.standard_normal((sizes[l - 1], sizes[l])) * 10.0**-l
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
    want = np.array([np.sqrt(np.sum(w**2)) for w in ws])
    strings = sorted(range(1, L + 1), key=str)
    named = {
        "squared": (_("are squared norms: take the square root of the sum of squares"), want**2),
        "with_biases": (_("include the biases: measure the weight gradients dW1..dWL only"), None),
        "string_order": (
            _("are sorted as strings (W1, W10, W11, W2, ...): order by the layer number"),
            want[[l - 1 for l in strings]],
        ),
        "mean_abs": (
            _(
                "are mean absolute values: use the Frobenius norm, the square root "
                "of the sum of squares"
            ),
            np.array([np.mean(np.abs(w)) for w in ws]),
        ),
    }
    for key, label in (("ordered", "norms"), ("shuffled", "order")):
        got = obs.get(key)
        what = "layer_norms(grads)" + (
            "" if key == "ordered" else _(" with the keys of grads in another order")
        )
        if isinstance(got, Raised):
            report.add(raised_check(label, what, got))
            continue
        arr = _arr(got)
        if arr is not None and arr.shape == want.shape and np.allclose(arr, want, rtol=1e-8):
            report.add(
                Check(
                    label,
                    True,
                    _("{what}: ‖dW1‖ ... ‖dW{L}‖ in layer order").format(what=what, L=L),
                )
            )
            continue
        found = None
        if arr is not None and arr.shape == (2 * L,):
            found = "with_biases"
        for m, (_why, alt) in named.items():
            if (
                found is None
                and alt is not None
                and arr is not None
                and arr.shape == alt.shape
                and np.allclose(arr, alt, rtol=1e-8)
            ):
                found = m
        if (
            found is None
            and key == "shuffled"
            and arr is not None
            and arr.shape == want.shape
            and np.allclose(np.sort(arr), np.sort(want), rtol=1e-8)
        ):
            report.add(
                Check(
                    label,
                    False,
                    _(
                        "{what}: the right norms in the dict's order: "
                        "order them by layer, W1, W2, ..., whatever the order of the keys"
                    ).format(what=what),
                    "order",
                )
            )
            continue
        if found:
            report.add(
                Check(label, False, _("{what} {why}").format(what=what, why=named[found][0]), found)
            )
        else:
            report.add(
                Check(
                    label,
                    False,
                    _("{what} returned {got!r:.60}; expected an array of {L} norms").format(
                        what=what, got=got, L=L
                    ),
                    "mismatch" if arr is not None else "return_value",
                )
            )
    changed = not all(
        np.array_equal(
            _arr((obs.get(k + "_after") or {}).get(n))
            if isinstance(obs.get(k + "_after"), dict)
            else None,
            g[n],
        )
        for k in ("ordered", "shuffled")
        for n in g
    )
    report.add(
        Check(
            "grads unchanged",
            False,
            _("layer_norms changed grads: compute into new arrays"),
            "mutated_input",
        )
        if changed
        else Check("grads unchanged", True, _("grads left alone"))
    )
    return report


check_layer_norms = define(
    "layer_norms",
    title="layer_norms",
    inputs=_norm_inputs,
    collect=_norm_collect,
    verify=_norm_verify,
    doc="layer_norms(grads): checks 'norms', 'order' and 'grads unchanged'.",
)
