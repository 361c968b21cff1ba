"""Numerical gradients, relative error, and a checker that names likely mistakes.

``numerical_gradient(f, x)`` estimates df/dx by central differences;
``rel_error(a, b)`` compares two arrays and ``diagnose`` names what is wrong with one
gradient (both from :mod:`backprop.diagnosis`, with ``Check`` and ``LayerReport``);
``check_layer`` runs a layer forward
and backward, compares every analytic gradient with a numerical one, and says
in words what is most likely wrong when they disagree::

    >>> report = check_layer(MyAffine(W, b), {"x": x}, params={"W": "dW", "b": "db"})
    >>> print(report)
    MyAffine
      ok   forward: runs
      ok   dx: relative error 9.8e-12 (threshold 1e-07)
      FAIL dW: too large by a factor of exactly N = 4, the batch size: did you forget ...
      ok   db: relative error 2.6e-11 (threshold 1e-07)
    >>> report.assert_ok()   # prints the passed checks, raises AssertionError naming dW

All checks run in float64: in float32 a step of 1e-5 drowns in rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .diagnosis import Check, LayerReport, diagnose, rel_error
from .i18n import _

__all__ = [
    "Check",
    "LayerReport",
    "MistakeModel",
    "check_layer",
    "diagnose",
    "numerical_diff",
    "numerical_gradient",
    "rel_error",
]

# A known mistake, specific to one layer: a function of (inputs, out, dout)
# returning what that mistake would produce for some gradients, by name.
MistakeModel = Callable[[Mapping[str, np.ndarray], Any, Any], Mapping[str, np.ndarray]]


def numerical_diff(f: Callable[[float], float], x: float, h: float = 1e-4) -> float:
    """Slope of f at x by the central difference (f(x + h) - f(x - h)) / 2h.

    Its error shrinks like h**2, against h for the one-sided (f(x + h) - f(x)) / h.
    """
    return (f(x + h) - f(x - h)) / (2 * h)


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Gradient of the scalar f at x by central differences, one entry at a time.

    f: called as f(x) and returning a number (it may ignore its argument and
    read x through a closure: x is changed in place during the call).
    x: float64 array of any shape (0-d too); restored exactly afterwards, even
    if f raises. Returns a new float64 array shaped like x.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(
            _(
                "numerical_gradient needs a float64 numpy array, got {got}: "
                "in lower precision a step of h = 1e-5 is lost to rounding"
            ).format(got=got)
        )
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError(
            _(
                "numerical_gradient needs an array it can change in place "
                "(a contiguous one, not a strided view)"
            )
        )
    for i in range(flat_x.size):
        original = flat_x[i]
        try:
            flat_x[i] = original + h
            f_plus = float(f(x))
            flat_x[i] = original - h
            f_minus = float(f(x))
        finally:
            flat_x[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


# ----- check_layer, in three phases: forward, backward, numerical gradients ------------------


@dataclass(frozen=True)
class _Run:
    """What every phase of one ``check_layer`` call needs to know."""

    layer: Any
    originals: Mapping[str, Any]  # copies of the inputs, never handed to the layer
    wrt: tuple[str, ...]  # the inputs backward returns gradients for, in its order
    params: Mapping[str, str]  # parameter attribute -> gradient attribute
    threshold: float
    batch_size: int | None  # N for the diagnosis: the first axis of the first input


def _copy_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in inputs.items()
    }


def _unchanged(before: Any, after: Any) -> bool:
    return np.array_equal(np.asarray(before), np.asarray(after), equal_nan=True)


def _snapshot(value: Any) -> Any:
    """A float64 copy of a gradient, so that running forward again cannot change it; a
    value that is not an array of numbers is kept as it is, for diagnose to name."""
    if value is None:
        return None
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        return value


def check_layer(
    layer: Any,
    inputs: Mapping[str, Any],
    *,
    wrt: Sequence[str] | None = None,
    params: Mapping[str, str] | None = None,
    dout: Any = None,
    threshold: float = 1e-7,
    seed: int = 0,
    mistakes: Mapping[str, tuple[str, MistakeModel]] | None = None,
    expected_out: Any = None,
    name: str | None = None,
) -> LayerReport:
    """Run ``layer`` forward and backward and check everything it computes.

    layer: an object with ``forward(*inputs)`` and ``backward(dout)``.
    inputs: the forward arguments by name, in order, e.g. ``{"x": x, "t": t}``;
        arrays should be float64. The layer only ever sees copies.
    wrt: names of the inputs whose gradients ``backward`` returns, in its order
        (default: all inputs). One name: backward returns one array; several: a tuple;
        none (``wrt=[]``): what backward returns is not looked at.
    params: parameter attribute -> gradient attribute, e.g. ``{"W": "dW", "b": "db"}``;
        each parameter must be a float64 array the checker may perturb in place.
    dout: the upstream gradient; by default random (drawn from ``seed``), shaped like
        the output (1.0 for a scalar output such as a loss).
    threshold: the largest relative error that passes (see :func:`rel_error`).
    seed: seeds the default dout (a stream of its own, apart from the caller's inputs).
    mistakes: layer-specific suspects, ``{key: (explanation, model)}`` where
        model(inputs, out, dout) returns what that mistake gives, by gradient name.
    expected_out: if given, the output forward should return (check ``out``).
    name: the report's title (default: the layer's class name).

    Checks, each by name: ``forward`` (runs), ``out`` (if expected_out), ``<input>
    unchanged`` (only when it failed), ``backward`` (only when it failed), ``dout
    unchanged`` (only when it failed), then ``d<input>`` for each of wrt and ``d<param>``
    for each param. The first failure that leaves nothing to compare ends the report.
    """
    names = list(inputs)
    first = np.asarray(inputs[names[0]])
    run = _Run(
        layer,
        _copy_inputs(inputs),
        tuple(names if wrt is None else wrt),
        dict(params or {}),
        threshold,
        first.shape[0] if first.ndim >= 2 else None,
    )
    report = LayerReport(name or type(layer).__name__)
    given = _copy_inputs(inputs)
    out = _forward_phase(run, given, expected_out, report)
    if out is None:
        return report
    if dout is None:
        dout = _default_dout(out, seed)
    dout_before = np.array(dout, copy=True)
    analytic = _backward_phase(run, given, dout, dout_before, report)
    if analytic is not None:
        _numerical_phase(run, analytic, out, dout_before, mistakes or {}, report)
    return report


def _default_dout(out: Any, seed: int) -> Any:
    """1.0 for a scalar output, else standard normal numbers shaped like it."""
    # A stream of its own: callers often draw their inputs from `seed` too, and
    # dout == x would make x.T @ dout symmetric, hiding a transpose.
    rng = np.random.default_rng([seed, 0xD0])
    return 1.0 if np.ndim(out) == 0 else rng.standard_normal(np.shape(out))


def _forward_phase(run: _Run, given: dict[str, Any], expected_out: Any, report: LayerReport) -> Any:
    """Forward once on ``given`` (copies of the inputs), then see that they survived it.

    Adds ``forward``, ``out`` (if expected_out is given) and a failed ``<input>
    unchanged`` for each input forward wrote into. Returns the output, or None when
    forward raised or returned None (then there is nothing more to check).
    """
    try:
        out = run.layer.forward(*given.values())
    except Exception as exc:  # a learner's layer can fail in any way
        text = _("raised {error_type}: {error}").format(error_type=type(exc).__name__, error=exc)
        report.add(Check("forward", False, text, "error"))
        return None
    if out is None:
        report.add(
            Check("forward", False, _("returned None: did you forget to return?"), "missing")
        )
        return None
    report.add(Check("forward", True, _("runs")))
    if expected_out is not None:
        report.add(
            diagnose("out", out, expected_out, threshold=run.threshold, batch_size=run.batch_size)
        )
    for k, original in run.originals.items():
        if not _unchanged(original, given[k]):
            report.add(
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
    return out


def _backward_phase(
    run: _Run, given: dict[str, Any], dout: Any, dout_before: np.ndarray, report: LayerReport
) -> dict[str, Any] | None:
    """Backward once, on a copy of dout (dout_before is another, kept for comparison).

    Adds a failed ``backward`` (raised, or returned the wrong number of gradients), ``dout
    unchanged`` or ``<input> unchanged`` when backward wrote into them. Returns the
    analytic gradients by name, ``d<input>`` for wrt then ``d<param>``, or None.
    """
    handed = np.array(dout, copy=True) if isinstance(dout, np.ndarray) else dout
    try:
        grads = run.layer.backward(handed)
    except Exception as exc:
        text = _("raised {error_type}: {error}").format(error_type=type(exc).__name__, error=exc)
        report.add(Check("backward", False, text, "error"))
        return None
    if not _unchanged(dout_before, handed):
        report.add(
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
        )
    for k, original in run.originals.items():
        if not _unchanged(original, given[k]) and f"{k} unchanged" not in report:
            report.add(
                Check(
                    f"{k} unchanged",
                    False,
                    _("backward changed the input {name} in place").format(name=k),
                    "mutated_input",
                )
            )
    if len(run.wrt) == 1 and not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if not run.wrt:  # no input gradients asked for (a first layer's dx): ignore the return
        grads = ()
    if not isinstance(grads, (tuple, list)) or len(grads) != len(run.wrt):
        want = ", ".join("d" + k for k in run.wrt)
        report.add(
            Check(
                "backward",
                False,
                _("should return ({want}), got {got:.80}").format(want=want, got=repr(grads)),
                "missing" if grads is None else "return_value",
            )
        )
        return None
    analytic = {"d" + k: _snapshot(g) for k, g in zip(run.wrt, grads, strict=True)}
    for p, g in run.params.items():
        analytic["d" + p] = _snapshot(getattr(run.layer, g, None))
    return analytic


def _numerical_phase(
    run: _Run,
    analytic: Mapping[str, Any],
    out: Any,
    dout: np.ndarray,
    mistakes: Mapping[str, tuple[str, MistakeModel]],
    report: LayerReport,
) -> None:
    """Compare each analytic gradient with a numerical one (float64, central differences
    of f = sum(forward(...) * dout)) and name the mistake; adds ``d<input>`` and
    ``d<param>``, or a failed ``forward`` if forward raised when run again."""
    try:
        numeric = _numerical_gradients(run, dout)
    except Exception as exc:
        report.add(
            Check(
                "forward",
                False,
                _("raised {error_type} when run again: {error}").format(
                    error_type=type(exc).__name__, error=exc
                ),
                "error",
            )
        )
        return
    suspects: dict[str, dict[str, tuple[str, np.ndarray]]] = {}
    for key, (explanation, model) in mistakes.items():
        try:
            wrong = model(run.originals, out, dout)
        except Exception:  # a model that does not apply to these inputs suspects nothing
            continue
        for gname, value in wrong.items():
            suspects.setdefault(gname, {})[key] = (explanation, value)
    for gname, expected in numeric.items():
        report.add(
            diagnose(
                gname,
                analytic[gname],
                expected,
                threshold=run.threshold,
                batch_size=run.batch_size,
                dout=dout,
                suspects=suspects.get(gname),
            )
        )


def _numerical_gradients(run: _Run, dout: np.ndarray) -> dict[str, np.ndarray]:
    """d<input> for each of wrt and d<param> for each param, by numerical_gradient."""

    def objective(varying: str | None) -> Callable[[np.ndarray], float]:
        def f(value: np.ndarray) -> float:
            args = _copy_inputs(run.originals)  # fresh copies each time
            if varying is not None:  # a copy: a forward that writes into its input
                args[varying] = value.copy()  # must not corrupt the array being perturbed
            return float(np.sum(np.asarray(run.layer.forward(*args.values())) * dout))

        return f

    numeric = {}
    for k in run.wrt:
        x = np.array(run.originals[k], dtype=np.float64, copy=True)
        numeric["d" + k] = numerical_gradient(objective(k), x)
    for p in run.params:  # the layer reads its parameter itself: perturb it in place
        numeric["d" + p] = numerical_gradient(objective(None), getattr(run.layer, p))
    return numeric
