"""Numerical gradients, relative error, and a checker that names likely mistakes.

``numerical_gradient(f, x)`` estimates df/dx by central differences;
``rel_error(a, b)`` compares two arrays; ``check_layer`` runs a layer forward
and backward, compares every analytic gradient with a numerical one, and says
in words what is most likely wrong when they disagree::

    >>> report = check_layer(Affine(W, b), {"x": x}, params={"W": "dW", "b": "db"})
    >>> print(report)
    Affine
      ok   dx  relative error 3.1e-11
      FAIL dW  too large by a factor of exactly N = 4, the batch size: ...
    >>> report.assert_ok()          # raises AssertionError with those messages

All checks run in float64: in float32 a step of 1e-5 drowns in rounding.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# What counts as "the same" when testing a suspected mistake: looser than the
# pass threshold, because a wrong gradient can still carry rounding noise.
_CLOSE = 1e-5

# A known mistake, specific to one layer: a function of (inputs, out, dout)
# returning what that mistake would produce for some gradients, by name.
MistakeModel = Callable[[Mapping[str, np.ndarray], Any, Any], Mapping[str, np.ndarray]]


def numerical_diff(f: Callable[[float], float], x: float, h: float = 1e-4) -> float:
    """Slope of f at x by the central difference (f(x + h) - f(x - h)) / 2h.

    Its error shrinks like h**2, against h for the one-sided (f(x + h) - f(x)) / h.
    """
    return (f(x + h) - f(x - h)) / (2 * h)


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray,
                       h: float = 1e-5) -> np.ndarray:
    """Gradient of the scalar f at x by central differences, one entry at a time.

    f: called as f(x) and returning a number (it may ignore its argument and
    read x through a closure: x is changed in place during the call).
    x: float64 array of any shape (0-d too); restored exactly afterwards, even
    if f raises. Returns a new float64 array shaped like x.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"numerical_gradient needs a float64 numpy array, got {got}: "
                        "in lower precision a step of h = 1e-5 is lost to rounding")
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient needs an array it can change in place "
                         "(a contiguous one, not a strided view)")
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


def rel_error(a: Any, b: Any) -> float:
    """Largest absolute difference over the largest magnitude, in [0, 1].

    0 means identical. For gradient checks in float64: below 1e-7 the analytic
    gradient is right; around 1e-4 suspicious; above 1e-2 it is wrong. Scaling
    by the largest entries (not entry by entry) keeps entries that are nearly
    zero from turning rounding noise into a false alarm.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a), initial=0.0) + np.max(np.abs(b), initial=0.0), 1e-8)
    return float(np.max(np.abs(a - b), initial=0.0) / scale)


@dataclass
class Check:
    """The outcome of one check: one gradient, or one rule such as 'x unchanged'.

    mistake is a short key (``"batch_size"``, ``"transpose"``, ...) when the
    check failed and the cause could be named, ``"mismatch"`` when it could not.
    """

    name: str
    ok: bool
    message: str
    mistake: str | None = None
    rel_error: float | None = None
    threshold: float | None = None

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.message}"


@dataclass
class LayerReport:
    """Every check of one layer, in order. ``report['dx']`` picks one by name."""

    layer: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every check passed (and there was at least one)."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def mistakes(self) -> list[str]:
        """The keys of the named mistakes among the failures."""
        return [c.mistake for c in self.failures if c.mistake]

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; there are {[c.name for c in self.checks]}")

    def __contains__(self, name: str) -> bool:
        return any(c.name == name for c in self.checks)

    def add(self, check: Check) -> None:
        self.checks.append(check)

    def judge(self, *names: str) -> tuple[list[Check], list[Check]]:
        """The checks that passed and those that failed, among names (all if none given).

        A name with no check (it could not run) fails with whatever stopped it.
        """
        chosen = [c for c in self.checks if c.name in names] if names else list(self.checks)
        bad = [c for c in chosen if not c.ok]
        if any(n not in self for n in names):
            stop = [c for c in self.failures if c not in bad]
            bad += stop or [Check(n, False, "could not be checked", "not_run")
                            for n in names if n not in self]
        return [c for c in chosen if c.ok], bad

    def assert_ok(self, *names: str) -> None:
        """Raise AssertionError naming every failed check (only those in names, if given).

        Prints the passed checks first, so a learner sees what already works.
        """
        passed, bad = self.judge(*names)
        for c in passed:
            print(f"{self.layer}: {c}")
        if bad:
            raise AssertionError("\n".join(f"{self.layer}: {c}" for c in bad))

    def __str__(self) -> str:
        return "\n".join([self.layer] + [f"  {c}" for c in self.checks])


def diagnose(name: str, got: Any, expected: np.ndarray, *, threshold: float = 1e-7,
             batch_size: int | None = None, dout: Any = None,
             suspects: Mapping[str, tuple[str, np.ndarray]] | None = None) -> Check:
    """Compare an analytic gradient with the numerical one and name the likely mistake.

    name: what is compared, e.g. ``"dx"``. got: the analytic gradient (anything
    array-like, or None). expected: the numerical gradient. batch_size: N, to
    recognise a missing or extra division by N. dout: the upstream gradient, to
    recognise a gradient that was passed through unchanged. suspects: further
    known mistakes, ``{key: (explanation, what that mistake gives)}``.
    """
    expected = np.asarray(expected, dtype=np.float64)
    if got is None:
        return Check(name, False, "is None: did backward forget to return it or set it?",
                     "missing")
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return Check(name, False, f"is not an array of numbers ({exc})", "not_numeric")
    if got.shape != expected.shape:
        if got.ndim == 2 and got.shape == expected.shape[::-1]:
            return Check(name, False, f"has shape {got.shape} but should have {expected.shape}: "
                         "transposed? Check the order in the matrix product", "transpose")
        if got.ndim == expected.ndim + 1 and got.shape[1:] == expected.shape:
            return Check(name, False, f"has shape {got.shape} but should have {expected.shape}: "
                         "sum over the batch axis (axis=0)", "not_summed")
        if got.size == expected.size:
            return Check(name, False, f"has shape {got.shape} but should have {expected.shape}: "
                         f"right number of entries, wrong arrangement (reshape to "
                         f"{expected.shape}, or check the order of a product)", "shape")
        return Check(name, False, f"has shape {got.shape} but should have {expected.shape}",
                     "shape")
    if not np.all(np.isfinite(got)):
        return Check(name, False, "contains nan or inf: an overflow (exp of a large number?) "
                     "or log of 0 somewhere", "nonfinite")
    err = rel_error(got, expected)
    if err <= threshold:
        return Check(name, True, f"relative error {err:.1e} (threshold {threshold:.0e})",
                     None, err, threshold)

    def close(candidate: Any) -> bool:
        candidate = np.asarray(candidate, dtype=np.float64)
        return candidate.shape == got.shape and rel_error(got, candidate) <= _CLOSE

    causes: list[tuple[str, str]] = []
    for key, (explanation, wrong) in (suspects or {}).items():
        if close(wrong):
            causes.append((key, explanation))
    n = batch_size or 1
    if n > 1 and close(expected * n):
        causes.append(("batch_size", f"too large by a factor of exactly N = {n}, the batch "
                       "size: did you forget to divide by N?"))
    if n > 1 and close(expected / n):
        causes.append(("batch_size_twice", f"too small by a factor of exactly N = {n}, the "
                       "batch size: divided by N where it was not needed, or twice?"))
    if close(-expected):
        causes.append(("sign", "has the wrong sign: check a minus sign"))
    if got.ndim == 2 and got.shape[0] == got.shape[1] and close(expected.T):
        causes.append(("transpose", "is the transpose of the right answer (the shapes only "
                       "agree because the matrix is square): check the order in the product"))
    if dout is not None and np.shape(dout) == got.shape and close(dout) and not close(expected):
        causes.append(("passthrough", "equals the upstream gradient dout: multiply it by "
                       "the local gradient"))
    if not np.any(got) and np.any(expected):
        causes.append(("zero", "is all zeros: is it ever computed?"))
    where = f"relative error {err:.1e}, threshold {threshold:.0e}"
    if causes:
        key, explanation = causes[0]
        return Check(name, False, f"{explanation} ({where})", key, err, threshold)
    target = "the expected value" if name == "out" else "the numerical gradient"
    return Check(name, False, f"does not match {target} ({where})", "mismatch", err, threshold)


def _copy_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
            for k, v in inputs.items()}


def _unchanged(before: Any, after: Any) -> bool:
    return np.array_equal(np.asarray(before), np.asarray(after), equal_nan=True)


def check_layer(layer: Any, inputs: Mapping[str, Any], *, wrt: Sequence[str] | None = None,
                params: Mapping[str, str] | None = None, dout: Any = None,
                threshold: float = 1e-7, seed: int = 0,
                mistakes: Mapping[str, tuple[str, MistakeModel]] | None = None,
             expected_out: Any = None, name: str | None = None) -> LayerReport:
    """Run ``layer`` forward and backward and check everything it computes.

    layer: an object with ``forward(*inputs)`` and ``backward(dout)``.
    inputs: the forward arguments by name, in order, e.g. ``{"x": x, "t": t}``;
        arrays should be float64.
    wrt: names of the inputs whose gradients ``backward`` returns, in its order
        (default: all inputs). One name: backward returns one array; several: a tuple.
    params: parameter attribute -> gradient attribute, e.g. ``{"W": "dW", "b": "db"}``;
        each parameter must be a float64 array the checker may perturb in place.
    dout: the upstream gradient; by default random, shaped like the output
        (1.0 for a scalar output such as a loss).
    expected_out: if given, the output forward should return (check ``out``).
    mistakes: layer-specific suspects, ``{key: (explanation, model)}`` where
        model(inputs, out, dout) returns what that mistake gives, by gradient name.

    Checks, each by name: ``forward`` (runs), ``out`` (if expected_out), ``dout unchanged``, ``<input>
    unchanged``, then ``d<input>`` for each of wrt and ``d<param>`` for each param.
    The batch size N for the diagnosis is the first axis of the first input.
    """
    names = list(inputs)
    wrt = list(names if wrt is None else wrt)
    params = dict(params or {})
    report = LayerReport(name or type(layer).__name__)
    # A stream of its own for dout: callers often draw their inputs from `seed` too,
    # and dout == x would make x.T @ dout symmetric, hiding a transpose.
    rng = np.random.default_rng([seed, 0xD0])
    originals = _copy_inputs(inputs)
    first = np.asarray(inputs[names[0]])
    batch_size = first.shape[0] if first.ndim >= 2 else None

    # Forward once, on copies, and see that the inputs survive it.
    given = _copy_inputs(inputs)
    try:
        out = layer.forward(*given.values())
    except Exception as exc:  # a learner's layer can fail in any way
        report.add(Check("forward", False, f"raised {type(exc).__name__}: {exc}", "error"))
        return report
    if out is None:
        report.add(Check("forward", False, "returned None: did you forget to return?", "missing"))
        return report
    report.add(Check("forward", True, "runs"))
    if expected_out is not None:
        report.add(diagnose("out", out, expected_out, threshold=threshold,
                            batch_size=batch_size))
    for k in names:
        if not _unchanged(originals[k], given[k]):
            report.add(Check(f"{k} unchanged", False, f"forward changed its input {k} in place: "
                             "compute into a new array instead", "mutated_input"))

    if dout is None:
        dout = 1.0 if np.ndim(out) == 0 else rng.standard_normal(np.shape(out))
    dout_before = np.array(dout, copy=True)
    dout_given = np.array(dout, copy=True) if isinstance(dout, np.ndarray) else dout
    try:
        grads = layer.backward(dout_given)
    except Exception as exc:
        report.add(Check("backward", False, f"raised {type(exc).__name__}: {exc}", "error"))
        return report
    if not _unchanged(dout_before, dout_given):
        report.add(Check("dout unchanged", False, "backward changed the upstream gradient "
                         "dout in place: the layer before may still need it; compute into a "
                         "new array", "mutated_dout"))
    for k in names:
        if not _unchanged(originals[k], given[k]) and f"{k} unchanged" not in report:
            report.add(Check(f"{k} unchanged", False, f"backward changed the input {k} in "
                             "place", "mutated_input"))
    if len(wrt) == 1 and not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if grads is None or len(wrt) and (not isinstance(grads, (tuple, list)) or len(grads) != len(wrt)):
        want = ", ".join("d" + k for k in wrt)
        report.add(Check("backward", False, f"should return ({want}), got {grads!r:.80}",
                         "missing" if grads is None else "return_value"))
        return report
    analytic = {"d" + k: g for k, g in zip(wrt, grads)}
    for p, g in params.items():
        value = getattr(layer, g, None)
        analytic["d" + p] = None if value is None else np.array(value, dtype=np.float64)

    # Numerical gradients: f = sum(forward(...) * dout), on fresh copies each time.
    def objective(varying: str) -> Callable[[np.ndarray], float]:
        def f(value: np.ndarray) -> float:
            args = _copy_inputs(originals)
            if varying:  # a copy: a forward that writes into its input must not
                args[varying] = value.copy()  # corrupt the array being perturbed
            return float(np.sum(np.asarray(layer.forward(*args.values())) * dout_before))
        return f

    numeric: dict[str, np.ndarray] = {}
    try:
        for k in wrt:
            x = np.array(originals[k], dtype=np.float64, copy=True)
            numeric["d" + k] = numerical_gradient(objective(k), x)
        for p in params:
            numeric["d" + p] = numerical_gradient(objective(""), getattr(layer, p))
    except Exception as exc:
        report.add(Check("forward", False, f"raised {type(exc).__name__} when run again: {exc}",
                         "error"))
        return report

    suspects: dict[str, dict[str, tuple[str, np.ndarray]]] = {}
    for key, (explanation, model) in (mistakes or {}).items():
        try:
            wrong = model(originals, out, dout_before)
        except Exception:
            continue
        for gname, value in wrong.items():
            suspects.setdefault(gname, {})[key] = (explanation, value)
    for gname, expected in numeric.items():
        report.add(diagnose(gname, analytic[gname], expected, threshold=threshold,
                            batch_size=batch_size, dout=dout_before,
                            suspects=suspects.get(gname)))
    return report
