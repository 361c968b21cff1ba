"""Judging what :func:`~backprop.checks.layer.collect_layer` recorded (the protocol:
:mod:`.layer`): one batch at a time (a *round*: "" for the first batch, "2" for the second),
``backward twice`` and ``second call``. Runs no learner code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..gradcheck import Check, LayerReport, diagnose, numerical_gradient
from ..i18n import _
from .running import raised_check

Suspects = Callable[[dict, str], Mapping[str, Mapping[str, tuple[str, Any]]]]


def numerical_grads(
    reference: Callable[..., Any], values: Mapping[str, Any], dout: Any, names: Sequence[str]
) -> dict[str, np.ndarray]:
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
        return np.array_equal(
            np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), equal_nan=True
        )
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class _Round:
    """One batch of a layer check: what verify_layer was given, and the batch's values."""

    inp: dict
    obs: Mapping[str, Any]
    r: str  # "" (the first batch) or "2"
    reference: Callable[..., Any]
    wrt: Sequence[str]
    params: Mapping[str, str]
    suspects: Suspects | None
    threshold: float

    @property
    def forward(self) -> dict:
        return self.inp["forward" + self.r]

    @property
    def dout(self) -> Any:
        return self.inp["dout" + self.r]

    @property
    def values(self) -> dict:
        """Constructor and forward arguments; in round "2" after the in-place update."""
        init = dict(self.inp["init"])
        if self.r:
            update = self.inp.get("update") or {}
            init = {k: (v + update[k] if k in update else v) for k, v in init.items()}
        return {**init, **self.forward}

    @property
    def batch(self) -> int | None:
        first = next(iter(self.forward.values()))
        return np.shape(first)[0] if np.ndim(first) >= 2 else None


def _forward_checks(b: _Round) -> list[Check]:
    """forward ran and returned the reference's output; its inputs were left alone."""
    obs, r = b.obs, b.r
    out = obs["out" + r]
    if out is None:
        checks = [Check("forward", False, _("returned None: did you forget to return?"), "missing")]
    else:
        checks = [
            Check("forward", True, _("runs")),
            diagnose(
                "out",
                out,
                np.asarray(b.reference(**b.values)),
                threshold=b.threshold,
                batch_size=b.batch,
            ),
        ]
    for k, v in b.forward.items():
        if not _same(_d(obs, "after_forward" + r).get(k), v):
            checks.append(
                Check(
                    f"{k} unchanged",
                    False,
                    _(
                        "forward changed its input {name} in place: compute into a new array "
                        "instead"
                    ).format(name=k),
                    "mutated_input",
                )
            )
        elif "after_backward" + r in obs and not _same(_d(obs, "after_backward" + r).get(k), v):
            checks.append(
                Check(
                    f"{k} unchanged",
                    False,
                    _(
                        "backward changed the input {name} in place (through what forward kept "
                        "of it)"
                    ).format(name=k),
                    "mutated_input",
                )
            )
        elif "after_backward" + r in obs:
            checks.append(Check(f"{k} unchanged", True, _("forward and backward leave it alone")))
    return checks


def _gradient_checks(b: _Round, grads: list) -> list[Check]:
    """Each gradient against central differences, with the layer's suspects named."""
    analytic = {"d" + k: g for k, g in zip(b.wrt, grads, strict=False)}
    for p, g in b.params.items():
        analytic["d" + p] = _d(b.obs, "param_grads" + b.r).get(g)
    values, dout, names = b.values, b.dout, [*b.wrt, *b.params]
    numeric = numerical_grads(b.reference, values, dout, names)
    ones = 1.0 if np.ndim(dout) == 0 else np.ones_like(dout)
    local = numerical_grads(b.reference, values, ones, names) if not _same(dout, ones) else {}
    extra = b.suspects(b.inp, b.r) if b.suspects else {}
    checks = []
    for gname, expected in numeric.items():
        named = dict(extra.get(gname, {}))
        if gname in local:
            named.setdefault(
                "no_dout",
                (
                    _(
                        "is the local gradient alone: multiply it by the upstream gradient dout "
                        "(the chain rule)"
                    ),
                    local[gname],
                ),
            )
        checks.append(
            diagnose(
                gname,
                analytic[gname],
                expected,
                threshold=b.threshold,
                batch_size=b.batch,
                dout=dout,
                suspects=named,
            )
        )
    return checks


def _backward_checks(b: _Round) -> list[Check]:
    """dout left alone, backward returned one gradient per input, and the gradients."""
    obs, r = b.obs, b.r
    if not _same(obs.get("dout_after" + r), b.dout):
        checks = [
            Check(
                "dout unchanged",
                False,
                _(
                    "backward changed the upstream gradient "
                    "dout in place: the layer before may still need it; compute into a "
                    "new array"
                ),
                "mutated_dout",
            )
        ]
    else:
        checks = [Check("dout unchanged", True, _("backward leaves it alone"))]
    grads = _as_list(obs["grads" + r], len(b.wrt))
    if grads is None:
        want = ", ".join("d" + k for k in b.wrt)
        got = _describe(obs["grads" + r])
        if len(b.wrt) > 1:
            text = _("should return {want} as a tuple, got {got}").format(want=want, got=got)
        else:
            text = _("should return {want}, got {got}").format(want=want, got=got)
        checks.append(
            Check(
                "backward", False, text, "missing" if obs["grads" + r] is None else "return_value"
            )
        )
        return checks
    return checks + [Check("backward", True, _("runs")), *_gradient_checks(b, grads)]


def _round(
    report: LayerReport,
    inp: dict,
    obs: Mapping[str, Any],
    r: str,
    reference: Callable[..., Any],
    wrt: Sequence[str],
    params: Mapping[str, str],
    suspects: Suspects | None,
    threshold: float,
    record: bool = True,
) -> list[Check] | None:
    """Checks of one batch (r = "" or "2"), None if it never ran; record=False returns them
    without adding them to report."""
    if "out" + r not in obs:
        return None
    b = _Round(inp, obs, r, reference, wrt, params, suspects, threshold)
    checks = _forward_checks(b)
    if "grads" + r in obs:
        checks += _backward_checks(b)
    if record:
        report.checks += checks
    return checks


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return _("{count} values").format(count=len(value))
    if isinstance(value, np.ndarray):
        return _("one array of shape {shape}").format(shape=value.shape)
    return repr(value)[:80]


def _twice(
    report: LayerReport,
    obs: Mapping[str, Any],
    wrt: Sequence[str],
    params: Mapping[str, str],
    stopped: str | None,
    raised: Any,
) -> None:
    if stopped == "backward_again":
        report.add(
            raised_check(
                "backward twice",
                _("a second call to backward"),
                raised,
                _("backward must not depend on having been called before"),
            )
        )
        return
    if "grads_again" not in obs:
        return
    for g in params.values():
        first, again = _d(obs, "param_grads").get(g), _d(obs, "param_grads_again").get(g)
        if _same(first, again):
            continue
        doubled = (
            _same(np.asarray(first, dtype=np.float64) * 2, again) if first is not None else False
        )
        report.add(
            Check(
                "backward twice",
                False,
                _(
                    "{name} doubled on a second backward with the same dout: you add to {name} "
                    "(+=); set it ({name} = ...)"
                ).format(name=g)
                if doubled
                else _("a second backward with the same dout gave a different {name}").format(
                    name=g
                ),
                "accumulates" if doubled else "state_changed",
            )
        )
        return
    first, again = _as_list(obs["grads"], len(wrt)), _as_list(obs["grads_again"], len(wrt))
    if (
        first is None
        or again is None
        or not all(_same(a, b) for a, b in zip(first, again, strict=False))
    ):
        report.add(
            Check(
                "backward twice",
                False,
                _(
                    "a second backward with the same dout gave "
                    "different gradients: backward changes what forward stored (for "
                    "example self.y -= self.t): compute into a new array instead"
                ),
                "state_changed",
            )
        )
        return
    report.add(Check("backward twice", True, _("the same dout gives the same gradients")))


def _subsets(names: list[str]) -> list[list[str]]:
    """The non-empty subsets of names, largest first."""
    found = [
        [n for i, n in enumerate(names) if mask >> i & 1] for mask in range(1, 2 ** len(names))
    ]
    return sorted(found, key=len, reverse=True)


def _second(
    report: LayerReport,
    inp: dict,
    obs: Mapping[str, Any],
    reference: Callable[..., Any],
    wrt: Sequence[str],
    params: Mapping[str, str],
    suspects: Suspects | None,
    threshold: float,
    stopped: str | None,
    raised: Any,
) -> None:
    if stopped in ("forward2", "backward2"):
        report.add(
            raised_check(
                "second call",
                _("{step} on a second batch").format(step=stopped[:-1]),
                raised,
                _("every call must work on its own inputs"),
            )
        )
        return
    checks = _round(
        report, inp, obs, "2", reference, wrt, params, suspects, threshold, record=False
    )
    if checks is None:
        return
    # only what went right on the first batch and wrong on the second is this check's business
    bad = [c for c in checks if not c.ok and (c.name not in report or report[c.name].ok)]
    if not bad:
        report.add(Check("second call", True, _("a second batch gives right results too")))
        return
    update = inp.get("update") or {}
    for stale in _subsets(list(update)):  # which parameters the layer kept copies of
        values = {k: (v if k in stale else v + update.get(k, 0)) for k, v in inp["init"].items()}
        guess = diagnose(
            "out",
            obs.get("out2"),
            np.asarray(reference(**values, **inp["forward2"])),
            threshold=threshold,
        )
        if guess.ok:
            if len(stale) == 1:
                text = _(
                    "after {names} was changed in place (as an optimiser does), forward still "
                    "used the old values: keep the arrays themselves (self.W = W), not copies"
                )
            else:
                text = _(
                    "after {names} were changed in place (as an optimiser does), forward still "
                    "used the old values: keep the arrays themselves (self.W = W), not copies"
                )
            names = _(" and ").join(stale)
            report.add(Check("second call", False, text.format(names=names), "copied_params"))
            return
    first = bad[0]
    report.add(
        Check(
            "second call",
            False,
            _(
                "on a second call with new inputs: "
                "{name} {message}. The first call was right: is something "
                "kept from the first call, or computed only once (if self.mask is None)?"
            ).format(name=first.name, message=first.message),
            "stale_state",
        )
    )
