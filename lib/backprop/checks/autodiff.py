"""Checks for the autodiff engine the learner writes (notebook 9): a Tensor's operations
and their local rules, the GradientTape's bookkeeping, the seed examples, and a network's
gradients by the tape.

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
from .channel import Raised, snapshot
from .core import call, define, raised_check

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
    "add": lambda a, b, **k: a + b, "mul": lambda a, b, **k: a * b,
    "matmul": lambda a, b, **k: a @ b, "pow": lambda a, p=3.0, **k: a ** p,
    "exp": lambda a, **k: a.exp(), "log": lambda a, **k: a.log(),
    "relu": lambda a, **k: a.relu(),
    "sum": lambda a, axis=None, keepdims=False, **k: a.sum(axis=axis, keepdims=keepdims)}
_NUMPY = {
    "add": lambda a, b, **k: a + b, "mul": lambda a, b, **k: a * b,
    "matmul": lambda a, b, **k: a @ b, "pow": lambda a, p=3.0, **k: a ** p,
    "exp": lambda a, **k: np.exp(a), "log": lambda a, **k: np.log(a),
    "relu": lambda a, **k: np.maximum(a, 0.0),
    "sum": lambda a, axis=None, keepdims=False, **k: np.sum(a, axis=axis, keepdims=keepdims)}


def _op_inputs(op: str = "mul", seed: int = 0) -> dict:
    """Two cases for one operation: inputs, keyword arguments and an upstream gradient g."""
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}")
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
        out, err = call(lambda: _CALL[inp["op"]](*ts, **case["kw"]))
        if err:
            rec["error"] = {"step": "forward", "raised": err}
            continue
        rec["out"] = _value(out)
        parents = getattr(out, "_parents", None)
        rec["parents"] = (isinstance(parents, (tuple, list)) and len(parents) == len(ts)
                          and all(p is t for p, t in zip(parents, ts)))
        g, err = call(Tensor, np.array(case["g"]))
        if err:
            rec["error"] = {"step": "Tensor(g)", "raised": err}
            continue
        grads, err = call(lambda: out._backward(g))
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
    s = {"no_dout": ("is the local gradient alone: multiply it by g, the gradient that "
                     "comes from above (the chain rule)", local)}
    a = args[0]
    if op == "mul":
        s["not_swapped"] = (f"uses {'ab'[i]} itself: the gradient of one factor is g times the "
                            "OTHER factor", g * args[i])
    if op == "matmul":
        b = args[1]
        wrong = ([("transpose", "is missing a transpose: match the shapes, g (N, M) and b (K, M) "
                   "must give (N, K)", lambda: g @ b),
                  ("order", "has the product in the wrong order: the result must be (N, K)",
                   lambda: b.T @ g)] if i == 0 else
                 [("transpose", "is missing a transpose: match the shapes, a (N, K) and g "
                   "(N, M) must give (K, M)", lambda: a @ g),
                  ("order", "has the product in the wrong order: the result must be (K, M)",
                   lambda: g.T @ a)])
        for key, why, make in wrong:
            try:
                s[key] = (why, make())
            except ValueError:
                pass
    if op == "pow":
        p = kw.get("p", 3.0)
        s["power_not_lowered"] = ("keeps the exponent p: the derivative of a**p is "
                                  "p * a**(p - 1)", g * p * a ** p)
        s["no_p"] = ("forgot the factor p in front", g * a ** (p - 1))
    if op == "exp":
        s["from_input"] = ("multiplies g by the input a: the derivative of exp(a) is exp(a), "
                           "the output", g * a)
    if op == "log":
        s["times_a"] = ("multiplies g by a: the derivative of log(a) is 1 / a", g * a)
        s["from_output"] = ("uses the output log(a): the derivative of log(a) is 1 / a",
                            g * np.log(a))
    if op == "relu":
        s["mask_inverted"] = ("lets g through where a <= 0: the slope is 1 where a > 0",
                              np.where(a > 0, 0.0, g))
        s["relu_of_g"] = ("applies relu to g: the mask must come from the input a",
                          np.maximum(g, 0.0))
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


def _verify_op(inp: dict, obs: dict) -> LayerReport:
    op = inp["op"]
    report = LayerReport(op)
    names = ["da", "db"][:len(inp["cases"][0]["args"])]
    results: dict[str, Check | None] = {k: None for k in ["out", "parents", *names, "tensor",
                                                          "unchanged"]}
    cases = obs.get("cases")
    cases = cases if isinstance(cases, list) else []

    def note(name: str, check: Check) -> None:
        if results[name] is None or (results[name].ok and not check.ok):
            results[name] = check

    for k, case in enumerate(inp["cases"]):
        rec = cases[k] if k < len(cases) and isinstance(cases[k], dict) else {}
        shapes = " and ".join(str(np.shape(a)) for a in case["args"])
        label = f" (inputs of shape {shapes}{', ' + str(case['kw']) if case['kw'] else ''})"
        err = rec.get("error")
        if isinstance(err, dict) and isinstance(err.get("raised"), Raised):
            for n in results:
                note(n, raised_check(n, f"{op}: {err.get('step')}", err["raised"],
                                     "run the operation by hand on the inputs shown"))
            continue
        expected = _NUMPY[op](*case["args"], **case["kw"])
        out = diagnose("out", rec.get("out"), expected)
        note("out", Check("out", out.ok, out.message + label, out.mistake))
        note("parents", Check("parents", rec.get("parents") is True,
                              "the result's _parents are the input Tensors, in order" if
                              rec.get("parents") is True else "the result's _parents should "
                              "be the input Tensors themselves, in order: pass them to _make",
                              None if rec.get("parents") is True else "parents"))
        grads = rec.get("grads")
        grads = grads if isinstance(grads, list) else []
        numeric = _numeric(op, case["args"], case["kw"], case["g"])
        for i, name in enumerate(names):
            if i >= len(grads):
                note(name, Check(name, False, f"backward returned {len(grads)} gradient(s); "
                                 f"it must return one per input ({len(names)})", "missing"))
                continue
            got, want = _arr(grads[i]), numeric[i]
            if got is not None and got.shape != want.shape and got.shape == np.shape(case["g"]):
                note(name, Check(name, False, f"has the shape of g {got.shape}, not of its input "
                                 f"{want.shape}: the input was broadcast, so sum its gradient "
                                 "back with sum_to(..., shape)" + label, "broadcast"))
                continue
            c = diagnose(name, grads[i], want, dout=case["g"],
                         suspects=_op_suspects(op, case["args"], case["kw"], case["g"], i))
            note(name, Check(name, c.ok, c.message + label, c.mistake, c.rel_error, c.threshold))
        tensors = rec.get("tensors")
        ok = isinstance(tensors, list) and len(tensors) == len(names) and all(
            t is True for t in tensors)
        note("tensor", Check("tensor", ok, "backward returns Tensors, built with Tensor "
                             "operations" if ok else "backward must return Tensors built with "
                             "Tensor operations (g * b, not g.value * b.value), so that a tape "
                             "can record the backward pass", None if ok else "not_tensor"))
        after = rec.get("args_after")
        same = isinstance(after, list) and len(after) == len(case["args"]) and all(
            np.array_equal(_arr(x), a) for x, a in zip(after, case["args"])
            if _arr(x) is not None) and all(_arr(x) is not None for x in after)
        g_same = _arr(rec.get("g_after")) is not None and np.array_equal(
            _arr(rec.get("g_after")), case["g"])
        note("unchanged", Check("unchanged", same and g_same, "inputs and g unchanged" if
                                same and g_same else ("changed g in place: build new Tensors, do not "
                                                      "write into g.value" if same else
                                                      "changed an input's value in place: build "
                                                      "new Tensors instead"),
                                None if same and g_same else
                                ("mutated_input" if not same else "mutated_dout")))
    for c in results.values():
        if c is not None:
            report.add(c)
    return report


check_autodiff_op = define(
    "autodiff_op", title="Tensor", inputs=_op_inputs, collect=_collect_op, verify=_verify_op,
    disable=lambda: (autodiff.Tensor, autodiff.GradientTape),
    doc="One Tensor operation (op='add', 'mul', 'matmul', 'pow', 'exp', 'log', 'relu', "
        "'sum'): its value, its _parents, and its local rule _backward(g) against numerical "
        "gradients, on two cases (the second broadcasts for add and mul).")


# --- the tape ------------------------------------------------------------------------------

def _tape_inputs(seed: int = 0, n: int = 3) -> dict:
    """Values for the tape's scenarios: vectors x, w, c of length n and a scalar s."""
    rng = np.random.default_rng([seed, 99])
    x, w, c = (rng.uniform(0.5, 1.5, size=n) * rng.choice([-1, 1], size=n) for _ in range(3))
    return {"x": x, "w": w, "c": c, "s": float(rng.uniform(1.0, 3.0))}


def _collect_tape(Tape: Any, inp: dict) -> dict:
    ns = _names(Tape)
    Tensor, Variable = ns.get("Tensor"), ns.get("Variable")
    obs: dict[str, Any] = {}

    def run(name: str, fn) -> None:
        result, err = call(fn)
        obs[name] = err if err else snapshot(result)

    def grad_of(f, *values, sources=None, **opts):
        xs = [Tensor(v) for v in values]
        with Tape(**opts) as tape:
            tape.watch(*xs)
            y = f(*xs)
        got = tape.gradient(y, xs if sources is None else sources(xs))
        return [None if g is None else g.value for g in got]

    x, w, c, s = inp["x"], inp["w"], inp["c"], inp["s"]
    run("square", lambda: grad_of(lambda x: x ** 2, s))
    run("chain", lambda: grad_of(lambda x, w: (x * w).exp().sum(), x, w))
    run("fan_out", lambda: grad_of(lambda x: (x * x).sum(), x))
    run("diamond", lambda: grad_of(lambda x, w: ((x * w) * (x * w) + x * w).sum(), x, w))
    run("vector_target", lambda: grad_of(lambda x: x * Tensor(c), x))
    run("derived", lambda: grad_of(lambda x, w: ((x - w) / Tensor(c) + -x).sum(), x, w))

    def skip():
        return grad_of(lambda x: (x.exp() * 10.0, x ** 3)[1], s)
    run("skip", skip)

    def once():
        t = Tensor(s)
        with Tape() as tape:
            tape.watch(t)
            y = t * t
        first = tape.gradient(y, t)
        _, err = call(lambda: tape.gradient(y, t))
        return {"first": None if first is None else first.value,
                "second_raised": err.type if err else None}
    run("not_persistent", once)

    def persistent():
        t = Tensor(s)
        with Tape(persistent=True) as tape:
            tape.watch(t)
            y = t * t
            z = y * y
        got = [tape.gradient(z, t), tape.gradient(y, t), tape.gradient(z, t)]
        return [None if g is None else g.value for g in got]
    run("persistent", persistent)

    def unwatched():
        t, k = Tensor(x), Tensor(c)
        with Tape() as tape:
            tape.watch(t)
            y = (t * k + k * k).sum()
        got = tape.gradient(y, {"x": t, "c": k})
        return {n: None if g is None else g.value for n, g in got.items()}
    run("unwatched", unwatched)

    def variables(flag):
        def go():
            v, t = Variable(w), Tensor(x)
            with Tape(watch_accessed_variables=flag) as tape:
                tape.watch(t)
                y = (v * t).sum()
            return [None if g is None else g.value for g in tape.gradient(y, [v, t])]
        return go
    run("variables_on", variables(True))
    run("variables_off", variables(False))

    def nested():
        t = Tensor(s)
        with Tape() as outer:
            outer.watch(t)
            with Tape() as inner:
                inner.watch(t)
                y = t * t * t
            dy = inner.gradient(y, t)
        d2 = outer.gradient(dy, t)
        return [None if dy is None else dy.value, None if d2 is None else d2.value]
    run("second", nested)
    if Tensor is None or Variable is None:
        obs["missing_names"] = [n for n, v in (("Tensor", Tensor), ("Variable", Variable))
                                if v is None]
    return obs


def _grad_check(name: str, got: Any, want: np.ndarray, suspects: dict, what: str) -> Check:
    if isinstance(got, Raised):
        return raised_check(name, what, got, "run the scenario by hand and read the error")
    if got is None:
        return Check(name, False, f"{what}: no gradient reached the input (None). Replay the "
                     "records from the last one back to the first, starting from the target",
                     "order")
    c = diagnose(name, got, want, suspects=suspects)
    return Check(name, c.ok, f"{what}: {c.message}", c.mistake, c.rel_error, c.threshold)


def _pair(obs: dict, key: str) -> tuple[Any, Any]:
    v = obs.get(key)
    if isinstance(v, Raised):
        return v, v
    if isinstance(v, list) and len(v) == 2:
        return v[0], v[1]
    if isinstance(v, list) and len(v) == 1:
        return v[0], None
    return None, None


def _verify_tape(inp: dict, obs: dict) -> LayerReport:
    x, w, c, s = (np.asarray(inp[k], dtype=np.float64) for k in "xwcs")
    r = LayerReport("GradientTape")
    num = lambda f, v: numerical_gradient(f, np.array(v, dtype=np.float64))  # noqa: E731
    over = ("was overwritten instead of accumulated: a value used twice gets the SUM of the "
            "gradients from both uses (grads[x] = grads[x] + g)")
    sq = obs.get("square")
    r.add(_grad_check("square", sq[0] if isinstance(sq, list) and sq else sq,
                      num(lambda v: float(v ** 2), s), {"overwrites": (over, s)},
                      f"y = x ** 2 at x = {s:.3g}"))
    ga, gb = _pair(obs, "chain")
    e = np.exp(x * w)
    r.add(_grad_check("chain", ga, num(lambda v: float(np.exp(v * w).sum()), x),
                      {"no_dout": ("is what the local rules give with g = 1 everywhere: "
                                   "pass each record's output gradient to its _backward", w)},
                      "sum(exp(x * w)), gradient of x"))
    if not isinstance(ga, Raised):
        r.checks[-1] = r.checks[-1] if not r.checks[-1].ok else _grad_check(
            "chain", gb, x * e, {}, "sum(exp(x * w)), gradient of w")
    fo = obs.get("fan_out")
    r.add(_grad_check("fan_out", fo[0] if isinstance(fo, list) and fo else fo, 2 * x,
                      {"overwrites": (over, x)}, "sum(x * x)"))
    da, db = _pair(obs, "diamond")
    a = x * w
    r.add(_grad_check("diamond", da, (2 * a + 1) * w,
                      {"overwrites": (over, a * w), "overwrites_add": (over, w)},
                      "a = x * w; sum(a * a + a), gradient of x"))
    vt = obs.get("vector_target")
    r.add(_grad_check("vector_target", vt[0] if isinstance(vt, list) and vt else vt, c,
                      {"zero_start": ("start the replay with ones shaped like the target",
                                      np.zeros_like(c))},
                      "x * c (a target with several entries: its sum is differentiated)"))
    da, db = _pair(obs, "derived")
    name = "derived"
    check = _grad_check(name, da, 1 / c - 1, {}, "sum((x - w) / c + -x), gradient of x "
                        "(neg, sub and div, built from the basic operations)")
    if check.ok:
        check = _grad_check(name, db, -1 / c, {"sign": ("has the wrong sign: x - w is "
                                                        "x + (-1) * w", 1 / c)},
                            "sum((x - w) / c + -x), gradient of w")
    r.add(check)
    sk = obs.get("skip")
    r.add(_grad_check("skip", sk[0] if isinstance(sk, list) and sk else sk, 3 * s ** 2, {},
                      "a record that does not lead to the target must be skipped; y = x ** 3"))
    once = obs.get("not_persistent")
    if isinstance(once, Raised):
        r.add(raised_check("not_persistent", "a non-persistent tape", once))
    else:
        once = once if isinstance(once, dict) else {}
        first = _arr(once.get("first"))
        ok1 = first is not None and first.shape == () and abs(float(first) - 2 * s) < 1e-9
        ok2 = once.get("second_raised") == "RuntimeError"
        r.add(Check("not_persistent", ok1 and ok2, "answers once, then raises RuntimeError"
                    if ok1 and ok2 else ("the first gradient of x * x is wrong or missing"
                                         if not ok1 else "a second call to gradient on a "
                                         "non-persistent tape must raise RuntimeError (keep "
                                         "a flag: has gradient been called?)"),
                    None if ok1 and ok2 else ("mismatch" if not ok1 else "not_refused")))
    p = obs.get("persistent")
    want = [4 * s ** 3, 2 * s, 4 * s ** 3]
    if isinstance(p, Raised):
        r.add(raised_check("persistent", "a persistent tape asked three times", p,
                           "a persistent tape keeps its records and answers again"))
    else:
        got = p if isinstance(p, list) and len(p) == 3 else None
        ok = got is not None and all(_arr(g) is not None and _arr(g).shape == () and
                                     abs(float(_arr(g)) - v) < 1e-7 * max(1, abs(v))
                                     for g, v in zip(got, want))
        r.add(Check("persistent", ok, "answers dz/dx, dy/dx, dz/dx again" if ok else
                    f"y = x*x, z = y*y at x = {s:.3g}: expected dz/dx, dy/dx, dz/dx = "
                    f"{[round(v, 4) for v in want]}, got {got}: a persistent tape keeps its "
                    "records and does not change them in gradient", None if ok else
                    "not_persistent"))
    u = obs.get("unwatched")
    if isinstance(u, Raised):
        r.add(raised_check("unwatched", "x watched, c not", u))
    else:
        u = u if isinstance(u, dict) else {}
        gx = _arr(u.get("x")) if u.get("x") is not None else None
        ok = gx is not None and gx.shape == x.shape and np.allclose(gx, c) and \
            "c" in u and u.get("c") is None
        r.add(Check("unwatched", ok, "the unwatched c gets None, the watched x its gradient"
                    if ok else "sum(x * c + c * c) with only x watched: x must get c and the "
                    f"unwatched c must get None (got {u})", None if ok else "unwatched"))
    for key, flag in (("variables_on", True), ("variables_off", False)):
        v = obs.get(key)
        if isinstance(v, Raised):
            r.add(raised_check(key, f"watch_accessed_variables={flag}", v))
            continue
        gv, gt = (v + [None, None])[:2] if isinstance(v, list) else (None, None)
        ok_t = gt is not None and _arr(gt) is not None and np.allclose(_arr(gt), w)
        if flag:
            ok = ok_t and gv is not None and _arr(gv) is not None and np.allclose(_arr(gv), x)
            msg = ("a Variable used inside the tape is watched automatically when "
                   "watch_accessed_variables=True (the default): it must get its gradient")
        else:
            ok = ok_t and gv is None
            msg = ("with watch_accessed_variables=False only watched tensors get gradients: "
                   "the Variable must get None")
        r.add(Check(key, ok, "right" if ok else msg, None if ok else "accessed_variables"))
    d1, d2 = _pair(obs, "second")
    r.add(_grad_check("second", d2, np.asarray(6 * s),
                      {"constant_rules": ("the outer tape saw only constants", np.asarray(0.0))},
                      f"second derivative of x**3 at {s:.3g} by nested tapes (6x)"))
    if "missing_names" in obs:
        r.add(Check("names", False, f"not defined in the notebook: {obs['missing_names']}",
                    "missing"))
    return r


check_autodiff_tape = define(
    "autodiff_tape", title="GradientTape", inputs=_tape_inputs, collect=_collect_tape,
    verify=_verify_tape, disable=lambda: (autodiff.Tensor, autodiff.GradientTape),
    doc="GradientTape: replay in reverse, accumulation, watch, persistent, "
        "watch_accessed_variables, nested tapes.")


# --- the seed examples ---------------------------------------------------------------------

def _seed_inputs(at: float = 5.0, shape: tuple = (2, 2)) -> dict:
    """x = at for the scalar examples, a `shape` of ones for z = (sum x)**2."""
    return {"at": float(at), "shape": [int(n) for n in shape]}


def _collect_seeds(Tape: Any, inp: dict) -> dict:
    ns = _names(Tape)
    Tensor = ns.get("Tensor")
    obs: dict[str, Any] = {}

    def nested(f):
        def go():
            x = Tensor(inp["at"])
            with Tape() as outer:
                outer.watch(x)
                with Tape() as inner:
                    inner.watch(x)
                    y = f(x)
                dy = inner.gradient(y, x)
            d2 = outer.gradient(dy, x)
            return [None if dy is None else dy.value, None if d2 is None else d2.value]
        return go

    for name, f in (("x2", lambda x: x ** 2), ("x5", lambda x: x ** 5)):
        got, err = call(nested(f))
        obs[name] = err if err else snapshot(got)

    def chain():
        x = Tensor(inp["at"])
        with Tape(persistent=True) as tape:
            tape.watch(x)
            y = x * x
            z = y * y
            w = z * z
        return [None if g is None else g.value for g in (tape.gradient(t, x) for t in (w, z, y))]
    got, err = call(chain)
    obs["w"] = err if err else snapshot(got)

    def sum_squared():
        x = Tensor(np.ones(inp["shape"]))
        with Tape() as tape:
            tape.watch(x)
            z = x.sum() ** 2
        return tape.gradient(z, x).value
    got, err = call(sum_squared)
    obs["sum_squared"] = err if err else snapshot(got)
    return obs


def _verify_seeds(inp: dict, obs: dict) -> LayerReport:
    a = inp["at"]
    r = LayerReport("GradientTape")
    for name, first, second, label in (("x2", 2 * a, 2.0, "y = x**2"),
                                       ("x5", 5 * a ** 4, 20 * a ** 3, "y = x**5")):
        d1, d2 = _pair(obs, name)
        r.add(_grad_check(name, d1, np.asarray(first), {}, f"{label} at {a:g}, dy/dx"))
        r.add(_grad_check(name + "_second", d2, np.asarray(second),
                          {"constant_rules": ("the outer tape saw only constants: build the "
                                              "local rules from Tensor operations",
                                              np.asarray(0.0))},
                          f"{label} at {a:g}, second derivative"))
    w = obs.get("w")
    want = [8 * a ** 7, 4 * a ** 3, 2 * a]
    for i, name in enumerate(("w", "z", "y")):
        got = w if isinstance(w, Raised) else (w[i] if isinstance(w, list) and len(w) == 3
                                                else None)
        r.add(_grad_check(f"d{name}", got, np.asarray(want[i]), {},
                          f"persistent tape, d{name}/dx at {a:g} for y = x*x, z = y*y, w = z*z"))
    shape = tuple(inp["shape"])
    n = float(np.prod(shape))
    r.add(_grad_check("sum_squared", obs.get("sum_squared"), np.full(shape, 2 * n), {},
                      f"z = (sum x)**2 for x = ones{shape}"))
    return r


check_autodiff_seeds = define(
    "autodiff_seeds", title="GradientTape", inputs=_seed_inputs, collect=_collect_seeds,
    verify=_verify_seeds, disable=lambda: (autodiff.Tensor, autodiff.GradientTape),
    doc="The worked examples: x**2 and x**5 with their second derivatives, w = ((x^2)^2)^2 "
        "with a persistent tape, z = (sum x)**2.")


# --- a network's gradients by the tape -------------------------------------------------------

def _net_inputs(seed: int = 0, n: int = 4, d: int = 5, h: int = 6, c: int = 3) -> dict:
    """A two-layer net's parameters W1 (d, h), b1 (h,), W2 (h, c), b2 (c,), x (n, d), t (n,)."""
    rng = np.random.default_rng([seed, 5])
    params = {"W1": rng.standard_normal((d, h)), "b1": rng.standard_normal(h) * 0.1,
              "W2": rng.standard_normal((h, c)), "b2": rng.standard_normal(c) * 0.1}
    return {"params": params, "x": rng.standard_normal((n, d)),
            "t": rng.integers(0, c, size=n)}


def _net_loss(params: dict, x: np.ndarray, t: np.ndarray) -> float:
    hid = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    s = hid @ params["W2"] + params["b2"]
    s = s - s.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(t)), t].mean())


def _collect_net(fn: Any, inp: dict) -> dict:
    got, err = call(fn, {k: v.copy() for k, v in inp["params"].items()}, inp["x"].copy(),
                    inp["t"].copy())
    return {"grads": err if err else snapshot(got)}


def _verify_net(inp: dict, obs: dict) -> LayerReport:
    r = LayerReport("tape_gradient")
    grads = obs.get("grads")
    if isinstance(grads, Raised):
        r.add(raised_check("grads", "tape_gradient", grads))
        return r
    grads = grads if isinstance(grads, dict) else {}
    n = len(inp["t"])
    for name, value in inp["params"].items():
        def f(v: np.ndarray, name: str = name) -> float:
            return _net_loss({**inp["params"], name: v}, inp["x"], inp["t"])
        want = numerical_gradient(f, value.copy())
        r.add(diagnose("d" + name, grads.get(name), want, batch_size=n))
    return r


check_autodiff_net = define(
    "autodiff_net", title="tape_gradient", inputs=_net_inputs, collect=_collect_net,
    verify=_verify_net, disable=lambda: (autodiff.Tensor, autodiff.GradientTape),
    doc="tape_gradient(params, x, t) -> {name: numpy gradient} of the two-layer net's mean "
        "softmax cross-entropy, by the learner's tape.")
