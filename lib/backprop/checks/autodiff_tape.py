"""Checks for notebook 9's GradientTape: replay in reverse, accumulation, watch, persistent,
watch_accessed_variables and nested tapes (the protocol: :mod:`.autodiff_ops`).

``collect`` runs one scenario after another with the learner's tape, each on its own
Tensors; ``verify`` compares each answer with the gradient worked out by hand or by
central differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import autodiff
from ..gradcheck import Check, LayerReport, diagnose, numerical_gradient
from ..i18n import N_, _
from .autodiff_ops import _arr, _names
from .channel import Raised, snapshot
from .core import define
from .running import call, raised_check


def _tape_inputs(seed: int = 0, n: int = 3) -> dict:
    """Values for the tape's scenarios: vectors x, w, c of length n and a scalar s."""
    rng = np.random.default_rng([seed, 99])
    x, w, c = (rng.uniform(0.5, 1.5, size=n) * rng.choice([-1, 1], size=n) for _ in range(3))
    return {"x": x, "w": w, "c": c, "s": float(rng.uniform(1.0, 3.0))}


# --- the scenarios, run with the learner's Tape, Tensor and Variable --------------------------


def _values(grads: Any) -> list:
    return [None if g is None else g.value for g in grads]


def _replays(Tape: Any, Tensor: Any, inp: dict) -> dict[str, Callable[[], Any]]:
    """One watched tape around one function: the gradients of its inputs."""
    x, w, c, s = inp["x"], inp["w"], inp["c"], inp["s"]

    def grad_of(f: Callable, *values: Any) -> list:
        xs = [Tensor(v) for v in values]
        with Tape() as tape:
            tape.watch(*xs)
            y = f(*xs)
        return _values(tape.gradient(y, xs))

    return {
        "square": lambda: grad_of(lambda x: x**2, s),
        "chain": lambda: grad_of(lambda x, w: (x * w).exp().sum(), x, w),
        "fan_out": lambda: grad_of(lambda x: (x * x).sum(), x),
        "diamond": lambda: grad_of(lambda x, w: ((x * w) * (x * w) + x * w).sum(), x, w),
        "vector_target": lambda: grad_of(lambda x: x * Tensor(c), x),
        "derived": lambda: grad_of(lambda x, w: ((x - w) / Tensor(c) + -x).sum(), x, w),
        "skip": lambda: grad_of(lambda x: (x.exp() * 10.0, x**3)[1], s),
    }


def _once(Tape: Any, Tensor: Any, s: float) -> dict:
    t = Tensor(s)
    with Tape() as tape:
        tape.watch(t)
        y = t * t
    first = tape.gradient(y, t)
    _, err = call(lambda: tape.gradient(y, t))
    return {
        "first": None if first is None else first.value,
        "second_raised": err.type if err else None,
    }


def _persistent(Tape: Any, Tensor: Any, s: float) -> list:
    t = Tensor(s)
    with Tape(persistent=True) as tape:
        tape.watch(t)
        y = t * t
        z = y * y
    return _values([tape.gradient(z, t), tape.gradient(y, t), tape.gradient(z, t)])


def _unwatched(Tape: Any, Tensor: Any, x: np.ndarray, c: np.ndarray) -> dict:
    t, k = Tensor(x), Tensor(c)
    with Tape() as tape:
        tape.watch(t)
        y = (t * k + k * k).sum()
    got = tape.gradient(y, {"x": t, "c": k})
    return {n: None if g is None else g.value for n, g in got.items()}


def _variables(Tape: Any, Tensor: Any, Variable: Any, inp: dict, flag: bool) -> list:
    v, t = Variable(inp["w"]), Tensor(inp["x"])
    with Tape(watch_accessed_variables=flag) as tape:
        tape.watch(t)
        y = (v * t).sum()
    return _values(tape.gradient(y, [v, t]))


def _nested(Tape: Any, Tensor: Any, s: float) -> list:
    t = Tensor(s)
    with Tape() as outer:
        outer.watch(t)
        with Tape() as inner:
            inner.watch(t)
            y = t * t * t
        dy = inner.gradient(y, t)
    d2 = outer.gradient(dy, t)
    return [None if dy is None else dy.value, None if d2 is None else d2.value]


def _collect_tape(Tape: Any, inp: dict) -> dict:
    ns = _names(Tape)
    Tensor, Variable = ns.get("Tensor"), ns.get("Variable")
    s = inp["s"]
    scenarios = {
        **_replays(Tape, Tensor, inp),
        "not_persistent": lambda: _once(Tape, Tensor, s),
        "persistent": lambda: _persistent(Tape, Tensor, s),
        "unwatched": lambda: _unwatched(Tape, Tensor, inp["x"], inp["c"]),
        "variables_on": lambda: _variables(Tape, Tensor, Variable, inp, True),
        "variables_off": lambda: _variables(Tape, Tensor, Variable, inp, False),
        "second": lambda: _nested(Tape, Tensor, s),
    }
    obs: dict[str, Any] = {}
    for name, scenario in scenarios.items():
        result, err = call(scenario)
        obs[name] = err if err else snapshot(result)
    if Tensor is None or Variable is None:
        obs["missing_names"] = [
            n for n, v in (("Tensor", Tensor), ("Variable", Variable)) if v is None
        ]
    return obs


# --- the verdict -----------------------------------------------------------------------------


def _grad_check(name: str, got: Any, want: np.ndarray, suspects: dict, what: str) -> Check:
    if isinstance(got, Raised):
        return raised_check(name, what, got, _("run the scenario by hand and read the error"))
    if got is None:
        return Check(
            name,
            False,
            _(
                "{what}: no gradient reached the input (None). Replay the "
                "records from the last one back to the first, starting from the target"
            ).format(what=what),
            "order",
        )
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


def _first(obs: dict, key: str) -> Any:
    v = obs.get(key)
    return v[0] if isinstance(v, list) and v else v


_OVER = N_(
    "was overwritten instead of accumulated: a value used twice gets the SUM of the "
    "gradients from both uses (grads[x] = grads[x] + g)"
)


def _replay_checks(inp: dict, obs: dict) -> list[Check]:
    """The scenarios of _replays: the order of the replay, accumulation, skipped records."""
    x, w, c, s = (np.asarray(inp[k], dtype=np.float64) for k in "xwcs")
    num = lambda f, v: numerical_gradient(f, np.array(v, dtype=np.float64))  # noqa: E731
    checks = [
        _grad_check(
            "square",
            _first(obs, "square"),
            num(lambda v: float(v**2), s),
            {"overwrites": (_(_OVER), s)},
            _("y = x ** 2 at x = {x:.3g}").format(x=s),
        )
    ]
    ga, gb = _pair(obs, "chain")
    chain = _grad_check(
        "chain",
        ga,
        num(lambda v: float(np.exp(v * w).sum()), x),
        {
            "no_dout": (
                _(
                    "is what the local rules give with g = 1 everywhere: "
                    "pass each record's output gradient to its _backward"
                ),
                w,
            )
        },
        _("sum(exp(x * w)), gradient of x"),
    )
    if not isinstance(ga, Raised) and chain.ok:
        chain = _grad_check("chain", gb, x * np.exp(x * w), {}, _("sum(exp(x * w)), gradient of w"))
    checks.append(chain)
    checks.append(
        _grad_check(
            "fan_out", _first(obs, "fan_out"), 2 * x, {"overwrites": (_(_OVER), x)}, "sum(x * x)"
        )
    )
    da, _db = _pair(obs, "diamond")
    a = x * w
    checks.append(
        _grad_check(
            "diamond",
            da,
            (2 * a + 1) * w,
            {"overwrites": (_(_OVER), a * w), "overwrites_add": (_(_OVER), w)},
            _("a = x * w; sum(a * a + a), gradient of x"),
        )
    )
    checks.append(
        _grad_check(
            "vector_target",
            _first(obs, "vector_target"),
            c,
            {
                "zero_start": (
                    _("start the replay with ones shaped like the target"),
                    np.zeros_like(c),
                )
            },
            _("x * c (a target with several entries: its sum is differentiated)"),
        )
    )
    da, db = _pair(obs, "derived")
    derived = _grad_check(
        "derived",
        da,
        1 / c - 1,
        {},
        _(
            "sum((x - w) / c + -x), gradient of x "
            "(neg, sub and div, built from the basic operations)"
        ),
    )
    if derived.ok:
        derived = _grad_check(
            "derived",
            db,
            -1 / c,
            {"sign": (_("has the wrong sign: x - w is x + (-1) * w"), 1 / c)},
            _("sum((x - w) / c + -x), gradient of w"),
        )
    checks.append(derived)
    checks.append(
        _grad_check(
            "skip",
            _first(obs, "skip"),
            3 * s**2,
            {},
            _("a record that does not lead to the target must be skipped; y = x ** 3"),
        )
    )
    return checks


def _once_check(once: Any, s: float) -> Check:
    if isinstance(once, Raised):
        return raised_check("not_persistent", _("a non-persistent tape"), once)
    once = once if isinstance(once, dict) else {}
    first = _arr(once.get("first"))
    ok1 = first is not None and first.shape == () and abs(float(first) - 2 * s) < 1e-9
    ok2 = once.get("second_raised") == "RuntimeError"
    if ok1 and ok2:
        return Check("not_persistent", True, _("answers once, then raises RuntimeError"))
    if not ok1:
        return Check(
            "not_persistent",
            False,
            _("the first gradient of x * x is wrong or missing"),
            "mismatch",
        )
    return Check(
        "not_persistent",
        False,
        _(
            "a second call to gradient on a non-persistent tape "
            "must raise RuntimeError (keep a flag: has gradient been called?)"
        ),
        "not_refused",
    )


def _persistent_check(p: Any, s: float) -> Check:
    want = [4 * s**3, 2 * s, 4 * s**3]
    if isinstance(p, Raised):
        return raised_check(
            "persistent",
            _("a persistent tape asked three times"),
            p,
            _("a persistent tape keeps its records and answers again"),
        )
    got = p if isinstance(p, list) and len(p) == 3 else None
    ok = got is not None and all(
        _arr(g) is not None
        and _arr(g).shape == ()
        and abs(float(_arr(g)) - v) < 1e-7 * max(1, abs(v))
        for g, v in zip(got, want, strict=False)
    )
    return Check(
        "persistent",
        ok,
        _("answers dz/dx, dy/dx, dz/dx again")
        if ok
        else _(
            "y = x*x, z = y*y at x = {x:.3g}: expected dz/dx, dy/dx, dz/dx = "
            "{want}, got {got}: a persistent tape keeps its "
            "records and does not change them in gradient"
        ).format(x=s, want=[round(v, 4) for v in want], got=got),
        None if ok else "not_persistent",
    )


def _unwatched_check(u: Any, x: np.ndarray, c: np.ndarray) -> Check:
    if isinstance(u, Raised):
        return raised_check("unwatched", _("x watched, c not"), u)
    u = u if isinstance(u, dict) else {}
    gx = _arr(u.get("x")) if u.get("x") is not None else None
    ok = (
        gx is not None
        and gx.shape == x.shape
        and np.allclose(gx, c)
        and "c" in u
        and u.get("c") is None
    )
    return Check(
        "unwatched",
        ok,
        _("the unwatched c gets None, the watched x its gradient")
        if ok
        else _(
            "sum(x * c + c * c) with only x watched: x must get c and the "
            "unwatched c must get None (got {got})"
        ).format(got=u),
        None if ok else "unwatched",
    )


def _variables_check(key: str, v: Any, flag: bool, x: np.ndarray, w: np.ndarray) -> Check:
    if isinstance(v, Raised):
        return raised_check(key, f"watch_accessed_variables={flag}", v)
    gv, gt = (v + [None, None])[:2] if isinstance(v, list) else (None, None)
    ok_t = gt is not None and _arr(gt) is not None and np.allclose(_arr(gt), w)
    if flag:
        ok = ok_t and gv is not None and _arr(gv) is not None and np.allclose(_arr(gv), x)
        msg = _(
            "a Variable used inside the tape is watched automatically when "
            "watch_accessed_variables=True (the default): it must get its gradient"
        )
    else:
        ok = ok_t and gv is None
        msg = _(
            "with watch_accessed_variables=False only watched tensors get gradients: "
            "the Variable must get None"
        )
    return Check(key, ok, _("right") if ok else msg, None if ok else "accessed_variables")


def _verify_tape(inp: dict, obs: dict) -> LayerReport:
    x, w, c, s = (np.asarray(inp[k], dtype=np.float64) for k in "xwcs")
    r = LayerReport("GradientTape")
    r.checks += _replay_checks(inp, obs)
    r.add(_once_check(obs.get("not_persistent"), s))
    r.add(_persistent_check(obs.get("persistent"), s))
    r.add(_unwatched_check(obs.get("unwatched"), x, c))
    for key, flag in (("variables_on", True), ("variables_off", False)):
        r.add(_variables_check(key, obs.get(key), flag, x, w))
    _d1, d2 = _pair(obs, "second")
    r.add(
        _grad_check(
            "second",
            d2,
            np.asarray(6 * s),
            {"constant_rules": (_("the outer tape saw only constants"), np.asarray(0.0))},
            _("second derivative of x**3 at {x:.3g} by nested tapes (6x)").format(x=s),
        )
    )
    if "missing_names" in obs:
        r.add(
            Check(
                "names",
                False,
                _("not defined in the notebook: {names}").format(names=obs["missing_names"]),
                "missing",
            )
        )
    return r


check_autodiff_tape = define(
    "autodiff_tape",
    title="GradientTape",
    inputs=_tape_inputs,
    collect=_collect_tape,
    verify=_verify_tape,
    disable=lambda: (autodiff.Tensor, autodiff.GradientTape),
    doc="GradientTape: replay in reverse, accumulation, watch, persistent, "
    "watch_accessed_variables, nested tapes.",
)
