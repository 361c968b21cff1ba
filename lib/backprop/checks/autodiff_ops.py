"""Checks for the autodiff engine the learner writes (notebook 9), first part: a Tensor's
operations and their local rules (the tape: :mod:`.autodiff_tape`; the seed examples and a
network's gradients: :mod:`.autodiff_seeds`).

The learner's objects follow the notebook's protocol: ``Tensor(value)`` with ``.value``;
an operation's result has ``._parents`` (its input Tensors) and ``._backward(g)`` (one
gradient per parent); ``GradientTape(persistent=..., watch_accessed_variables=...)`` with
``watch`` and ``gradient``. ``Variable`` is a Tensor a tape watches when it is used.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .. import autodiff
from ..gradcheck import Check, LayerReport, diagnose, numerical_gradient
from ..i18n import _
from .channel import Raised, snapshot
from .core import define
from .running import call, raised_check

# --- helpers ------------------------------------------------------------------------------


def _value(t: Any) -> Any:
    """What a learner's result holds: t.value for a Tensor-like, t itself otherwise."""
    return snapshot(getattr(t, "value", t))


def _arr(v: Any) -> np.ndarray | None:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return a


def _names(target: Any) -> dict:
    """The notebook's namespace the learner's class lives in (Tensor, Variable, ...)."""
    for attr in ("__init__", "gradient", "watch"):
        fn = getattr(target, attr, None)
        glob = getattr(fn, "__globals__", None)
        if isinstance(glob, dict) and "Tensor" in glob:
            return glob
    main = sys.modules.get("__main__")
    return vars(main) if main is not None else {}


# --- operations and their local rules -------------------------------------------------------

OPS = ("add", "mul", "matmul", "pow", "exp", "log", "relu", "sum")
_CALL = {
    "add": lambda a, b, **k: a + b,
    "mul": lambda a, b, **k: a * b,
    "matmul": lambda a, b, **k: a @ b,
    "pow": lambda a, p=3.0, **k: a**p,
    "exp": lambda a, **k: a.exp(),
    "log": lambda a, **k: a.log(),
    "relu": lambda a, **k: a.relu(),
    "sum": lambda a, axis=None, keepdims=False, **k: a.sum(axis=axis, keepdims=keepdims),
}
_NUMPY = {
    "add": lambda a, b, **k: a + b,
    "mul": lambda a, b, **k: a * b,
    "matmul": lambda a, b, **k: a @ b,
    "pow": lambda a, p=3.0, **k: a**p,
    "exp": lambda a, **k: np.exp(a),
    "log": lambda a, **k: np.log(a),
    "relu": lambda a, **k: np.maximum(a, 0.0),
    "sum": lambda a, axis=None, keepdims=False, **k: np.sum(a, axis=axis, keepdims=keepdims),
}


def _op_inputs(op: str = "mul", seed: int = 0) -> dict:
    """Two cases for one operation: inputs, keyword arguments and an upstream gradient g."""
    if op not in OPS:
        raise ValueError(_("op must be one of {ops}").format(ops=OPS))
    rng = np.random.default_rng([seed, OPS.index(op)])
    n = 3 + seed % 3
    nrm = rng.standard_normal
    pos = lambda *s: rng.uniform(0.5, 2.0, size=s)  # noqa: E731
    kink = lambda *s: np.sign(nrm(s) + 1e-12) * (0.1 + np.abs(nrm(s)))  # noqa: E731
    cases = {
        "add": [([nrm((n, 4)), nrm((n, 4))], {}), ([nrm((n, 4)), nrm(4)], {})],
        "mul": [([nrm((n, 4)), nrm((n, 4))], {}), ([nrm((n, 4)), nrm(4)], {})],
        "matmul": [([nrm((n, n)), nrm((n, n))], {}), ([nrm((n, 4)), nrm((4, 2))], {})],
        "pow": [([pos(n, 4)], {"p": 3.0}), ([pos(n, 2)], {"p": -1.5})],
        "exp": [([nrm((n, 4))], {}), ([nrm(5)], {})],
        "log": [([pos(n, 4)], {}), ([pos(5)], {})],
        "relu": [([kink(n, 4)], {}), ([kink(2, n, 2)], {})],
        "sum": [([nrm((n, 4))], {}), ([nrm((n, 4))], {"axis": 0})],
    }[op]
    out = []
    for args, kw in cases:
        shape = np.shape(_NUMPY[op](*args, **kw))
        out.append({"args": args, "kw": kw, "g": rng.standard_normal(shape)})
    return {"op": op, "cases": out}


def _collect_op(Tensor: Any, inp: dict) -> dict:
    cases = []
    for case in inp["cases"]:
        rec: dict[str, Any] = {}
        cases.append(rec)
        ts = []
        for a in case["args"]:
            t, err = call(Tensor, np.array(a))
            if err:
                rec["error"] = {"step": "Tensor(value)", "raised": err}
                break
            ts.append(t)
        if "error" in rec:
            continue
        out, err = call(lambda ts=ts, kw=case["kw"]: _CALL[inp["op"]](*ts, **kw))
        if err:
            rec["error"] = {"step": "forward", "raised": err}
            continue
        rec["out"] = _value(out)
        parents = getattr(out, "_parents", None)
        rec["parents"] = (
            isinstance(parents, (tuple, list))
            and len(parents) == len(ts)
            and all(p is t for p, t in zip(parents, ts, strict=False))
        )
        g, err = call(Tensor, np.array(case["g"]))
        if err:
            rec["error"] = {"step": "Tensor(g)", "raised": err}
            continue
        grads, err = call(out._backward, g)
        if err:
            rec["error"] = {"step": "backward", "raised": err}
            continue
        grads = grads if isinstance(grads, (tuple, list)) else [grads]
        rec["grads"] = [_value(x) for x in grads]
        rec["tensors"] = [isinstance(x, Tensor) for x in grads]
        rec["g_after"] = _value(g)
        rec["args_after"] = [_value(t) for t in ts]
    return {"cases": cases}


def _op_suspects(op: str, args: list, kw: dict, g: np.ndarray, i: int) -> dict:
    ones = np.ones_like(g)
    local = _numeric(op, args, kw, ones)[i]
    s = {
        "no_dout": (
            _(
                "is the local gradient alone: multiply it by g, the gradient that "
                "comes from above (the chain rule)"
            ),
            local,
        )
    }
    a = args[0]
    if op == "mul":
        s["not_swapped"] = (
            _("uses {name} itself: the gradient of one factor is g times the OTHER factor").format(
                name="ab"[i]
            ),
            g * args[i],
        )
    if op == "matmul":
        b = args[1]
        wrong = (
            [
                (
                    "transpose",
                    _(
                        "is missing a transpose: match the shapes, g (N, M) and b (K, M) "
                        "must give (N, K)"
                    ),
                    lambda: g @ b,
                ),
                (
                    "order",
                    _("has the product in the wrong order: the result must be (N, K)"),
                    lambda: b.T @ g,
                ),
            ]
            if i == 0
            else [
                (
                    "transpose",
                    _(
                        "is missing a transpose: match the shapes, a (N, K) and g "
                        "(N, M) must give (K, M)"
                    ),
                    lambda: a @ g,
                ),
                (
                    "order",
                    _("has the product in the wrong order: the result must be (K, M)"),
                    lambda: g.T @ a,
                ),
            ]
        )
        for key, why, make in wrong:
            try:
                s[key] = (why, make())
            except ValueError:
                pass
    if op == "pow":
        p = kw.get("p", 3.0)
        s["power_not_lowered"] = (
            _("keeps the exponent p: the derivative of a**p is p * a**(p - 1)"),
            g * p * a**p,
        )
        s["no_p"] = (_("forgot the factor p in front"), g * a ** (p - 1))
    if op == "exp":
        s["from_input"] = (
            _("multiplies g by the input a: the derivative of exp(a) is exp(a), the output"),
            g * a,
        )
    if op == "log":
        s["times_a"] = (_("multiplies g by a: the derivative of log(a) is 1 / a"), g * a)
        s["from_output"] = (
            _("uses the output log(a): the derivative of log(a) is 1 / a"),
            g * np.log(a),
        )
    if op == "relu":
        s["mask_inverted"] = (
            _("lets g through where a <= 0: the slope is 1 where a > 0"),
            np.where(a > 0, 0.0, g),
        )
        s["relu_of_g"] = (
            _("applies relu to g: the mask must come from the input a"),
            np.maximum(g, 0.0),
        )
    return s


def _numeric(op: str, args: list, kw: dict, g: np.ndarray) -> list[np.ndarray]:
    grads = []
    for i in range(len(args)):

        def f(v: np.ndarray, i: int = i) -> float:
            vals = list(args)
            vals[i] = v
            return float(np.sum(_NUMPY[op](*vals, **kw) * g))

        grads.append(numerical_gradient(f, np.array(args[i], dtype=np.float64)))
    return grads


def _label(case: dict) -> str:
    """How reports name one case: the shapes of its inputs and its keyword arguments."""
    shapes = _(" and ").join(str(np.shape(a)) for a in case["args"])
    return _(" (inputs of shape {shapes}{kw})").format(
        shapes=shapes, kw=", " + str(case["kw"]) if case["kw"] else ""
    )


def _parents_check(rec: dict) -> Check:
    ok = rec.get("parents") is True
    return Check(
        "parents",
        ok,
        _("the result's _parents are the input Tensors, in order")
        if ok
        else _(
            "the result's _parents should be the input Tensors themselves, in order: "
            "pass them to _make"
        ),
        None if ok else "parents",
    )


def _grad_checks(op: str, case: dict, rec: dict, names: list[str], label: str) -> list[Check]:
    """da (and db): what _backward(g) returned against numerical gradients of sum(f * g)."""
    grads = rec.get("grads")
    grads = grads if isinstance(grads, list) else []
    numeric = _numeric(op, case["args"], case["kw"], case["g"])
    checks = []
    for i, name in enumerate(names):
        if i >= len(grads):
            checks.append(
                Check(
                    name,
                    False,
                    _(
                        "backward returned {count} gradient(s); "
                        "it must return one per input ({inputs})"
                    ).format(count=len(grads), inputs=len(names)),
                    "missing",
                )
            )
            continue
        got, want = _arr(grads[i]), numeric[i]
        if got is not None and got.shape != want.shape and got.shape == np.shape(case["g"]):
            checks.append(
                Check(
                    name,
                    False,
                    _(
                        "has the shape of g {got}, not of its input "
                        "{expected}: the input was broadcast, so sum its gradient "
                        "back with sum_to(..., shape)"
                    ).format(got=got.shape, expected=want.shape)
                    + label,
                    "broadcast",
                )
            )
            continue
        c = diagnose(
            name,
            grads[i],
            want,
            dout=case["g"],
            suspects=_op_suspects(op, case["args"], case["kw"], case["g"], i),
        )
        checks.append(Check(name, c.ok, c.message + label, c.mistake, c.rel_error, c.threshold))
    return checks


def _tensor_check(rec: dict, names: list[str]) -> Check:
    tensors = rec.get("tensors")
    ok = (
        isinstance(tensors, list) and len(tensors) == len(names) and all(t is True for t in tensors)
    )
    return Check(
        "tensor",
        ok,
        _("backward returns Tensors, built with Tensor operations")
        if ok
        else _(
            "backward must return Tensors built with Tensor operations (g * b, not "
            "g.value * b.value), so that a tape can record the backward pass"
        ),
        None if ok else "not_tensor",
    )


def _unchanged_check(case: dict, rec: dict) -> Check:
    after = rec.get("args_after")
    same = (
        isinstance(after, list)
        and len(after) == len(case["args"])
        and all(
            np.array_equal(_arr(x), a)
            for x, a in zip(after, case["args"], strict=False)
            if _arr(x) is not None
        )
        and all(_arr(x) is not None for x in after)
    )
    g_same = _arr(rec.get("g_after")) is not None and np.array_equal(
        _arr(rec.get("g_after")), case["g"]
    )
    if same and g_same:
        return Check("unchanged", True, _("inputs and g unchanged"))
    if same:
        return Check(
            "unchanged",
            False,
            _("changed g in place: build new Tensors, do not write into g.value"),
            "mutated_dout",
        )
    return Check(
        "unchanged",
        False,
        _("changed an input's value in place: build new Tensors instead"),
        "mutated_input",
    )


def _case_checks(op: str, case: dict, rec: dict, names: list[str]) -> list[Check]:
    """Every check of one case, in the order of the report."""
    label = _label(case)
    err = rec.get("error")
    if isinstance(err, dict) and isinstance(err.get("raised"), Raised):
        return [
            raised_check(
                n,
                f"{op}: {err.get('step')}",
                err["raised"],
                _("run the operation by hand on the inputs shown"),
            )
            for n in ["out", "parents", *names, "tensor", "unchanged"]
        ]
    out = diagnose("out", rec.get("out"), _NUMPY[op](*case["args"], **case["kw"]))
    return [
        Check("out", out.ok, out.message + label, out.mistake),
        _parents_check(rec),
        *_grad_checks(op, case, rec, names, label),
        _tensor_check(rec, names),
        _unchanged_check(case, rec),
    ]


def _verify_op(inp: dict, obs: dict) -> LayerReport:
    """Each check once, with the first failure over the cases (else the first pass)."""
    op = inp["op"]
    names = ["da", "db"][: len(inp["cases"][0]["args"])]
    results: dict[str, Check | None] = {
        k: None for k in ["out", "parents", *names, "tensor", "unchanged"]
    }
    cases = obs.get("cases")
    cases = cases if isinstance(cases, list) else []
    for k, case in enumerate(inp["cases"]):
        rec = cases[k] if k < len(cases) and isinstance(cases[k], dict) else {}
        for check in _case_checks(op, case, rec, names):
            old = results[check.name]
            if old is None or (old.ok and not check.ok):
                results[check.name] = check
    report = LayerReport(op)
    for c in results.values():
        if c is not None:
            report.add(c)
    return report


check_autodiff_op = define(
    "autodiff_op",
    title="Tensor",
    inputs=_op_inputs,
    collect=_collect_op,
    verify=_verify_op,
    disable=lambda: (autodiff.Tensor, autodiff.GradientTape),
    doc="One Tensor operation (op='add', 'mul', 'matmul', 'pow', 'exp', 'log', 'relu', "
    "'sum'): its value, its _parents, and its local rule _backward(g) against numerical "
    "gradients, on two cases (the second broadcasts for add and mul).",
)
