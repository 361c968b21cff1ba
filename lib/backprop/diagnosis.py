"""Check, LayerReport, rel_error and diagnose: what a gradient check found, in words.

``rel_error(a, b)`` compares two arrays; ``diagnose(name, got, expected, ...)`` compares
an analytic gradient with a numerical one and, when they disagree, names the most likely
mistake (a missing division by the batch size, a transpose, a sign, ...) as a
:class:`Check`; a :class:`LayerReport` holds the checks of one layer. Imported from
:mod:`backprop.gradcheck` as well, where the numerical gradients and ``check_layer`` are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .i18n import _

# What counts as "the same" when testing a suspected mistake: looser than the
# pass threshold, because a wrong gradient can still carry rounding noise.
_CLOSE = 1e-5


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
    rel_error and threshold: the relative error measured and the largest that passes,
    for a comparison of numbers (None for a rule, or when the shapes already differed).
    """

    name: str
    ok: bool
    message: str
    mistake: str | None = None
    rel_error: float | None = None
    threshold: float | None = None

    def __str__(self) -> str:
        verdict = _("ok") if self.ok else _("FAIL")
        return f"{verdict:<4} {self.name}: {self.message}"


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
        """The checks that failed, in order."""
        return [c for c in self.checks if not c.ok]

    @property
    def mistakes(self) -> list[str]:
        """The keys of the named mistakes among the failures."""
        return [c.mistake for c in self.failures if c.mistake]

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(
            _("no check named {name}; there are {names}").format(
                name=repr(name), names=[c.name for c in self.checks]
            )
        )

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
            bad += stop or [
                Check(n, False, _("could not be checked"), "not_run")
                for n in names
                if n not in self
            ]
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


def diagnose(
    name: str,
    got: Any,
    expected: np.ndarray,
    *,
    threshold: float = 1e-7,
    batch_size: int | None = None,
    dout: Any = None,
    suspects: Mapping[str, tuple[str, np.ndarray]] | None = None,
) -> Check:
    """Compare an analytic gradient with the numerical one and name the likely mistake.

    name: what is compared, e.g. ``"dx"``. got: the analytic gradient (anything
    array-like, or None). expected: the numerical gradient. threshold: the largest
    relative error (see :func:`rel_error`) that passes. batch_size: N, to
    recognise a missing or extra division by N. dout: the upstream gradient, to
    recognise a gradient that was passed through unchanged. suspects: further
    known mistakes, ``{key: (explanation, what that mistake gives)}``.
    """
    expected = np.asarray(expected, dtype=np.float64)
    if got is None:
        return Check(
            name, False, _("is None: did backward forget to return it or set it?"), "missing"
        )
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return Check(
            name, False, _("is not an array of numbers ({error})").format(error=exc), "not_numeric"
        )
    if got.shape != expected.shape:
        return _wrong_shape(name, got.shape, expected.shape)
    if not np.all(np.isfinite(got)):
        return Check(
            name,
            False,
            _("contains nan or inf: an overflow (exp of a large number?) or log of 0 somewhere"),
            "nonfinite",
        )
    err = rel_error(got, expected)
    if err <= threshold:
        return Check(
            name,
            True,
            _("relative error {err:.1e} (threshold {threshold:.0e})").format(
                err=err, threshold=threshold
            ),
            None,
            err,
            threshold,
        )
    causes = _causes(got, expected, batch_size, dout, suspects or {})
    where = _("relative error {err:.1e}, threshold {threshold:.0e}").format(
        err=err, threshold=threshold
    )
    if causes:
        key, explanation = causes[0]
        text = _("{explanation} ({where})").format(explanation=explanation, where=where)
        return Check(name, False, text, key, err, threshold)
    if name == "out":
        text = _("does not match the expected value ({where})").format(where=where)
    else:
        text = _("does not match the numerical gradient ({where})").format(where=where)
    return Check(name, False, text, "mismatch", err, threshold)


def _wrong_shape(name: str, got: tuple[int, ...], expected: tuple[int, ...]) -> Check:
    """The failed check for a gradient of shape got where expected was due, with a guess."""
    says = _("has shape {got} but should have {expected}").format(got=got, expected=expected)
    if len(got) == 2 and got == expected[::-1]:
        hint = _("transposed? Check the order in the matrix product")
        return Check(name, False, f"{says}: {hint}", "transpose")
    if len(got) == len(expected) + 1 and got[1:] == expected:
        hint = _("sum over the batch axis (axis=0)")
        return Check(name, False, f"{says}: {hint}", "not_summed")
    if math.prod(got) == math.prod(expected):
        hint = _(
            "right number of entries, wrong arrangement "
            "(reshape to {expected}, or check the order of a product)"
        ).format(expected=expected)
        return Check(name, False, f"{says}: {hint}", "shape")
    return Check(name, False, says, "shape")


def _causes(
    got: np.ndarray,
    expected: np.ndarray,
    batch_size: int | None,
    dout: Any,
    suspects: Mapping[str, tuple[str, np.ndarray]],
) -> list[tuple[str, str]]:
    """Every known mistake that explains got (same shape as expected, but wrong), as
    (key, explanation), most specific first: the suspects, then the general ones."""

    def close(candidate: Any) -> bool:
        candidate = np.asarray(candidate, dtype=np.float64)
        return candidate.shape == got.shape and rel_error(got, candidate) <= _CLOSE

    causes = [(key, explanation) for key, (explanation, wrong) in suspects.items() if close(wrong)]
    n = batch_size or 1
    if n > 1 and close(expected * n):
        causes.append(
            (
                "batch_size",
                _(
                    "too large by a factor of exactly N = {n}, the batch "
                    "size: did you forget to divide by N?"
                ).format(n=n),
            )
        )
    if n > 1 and close(expected / n):
        causes.append(
            (
                "batch_size_twice",
                _(
                    "too small by a factor of exactly N = {n}, the "
                    "batch size: divided by N where it was not needed, or twice?"
                ).format(n=n),
            )
        )
    if close(-expected):
        causes.append(("sign", _("has the wrong sign: check a minus sign")))
    if got.ndim == 2 and got.shape[0] == got.shape[1] and close(expected.T):
        causes.append(
            (
                "transpose",
                _(
                    "is the transpose of the right answer (the shapes only "
                    "agree because the matrix is square): check the order in the product"
                ),
            )
        )
    if dout is not None and np.shape(dout) == got.shape and close(dout) and not close(expected):
        causes.append(
            (
                "passthrough",
                _("equals the upstream gradient dout: multiply it by the local gradient"),
            )
        )
    if not np.any(got) and np.any(expected):
        causes.append(("zero", _("is all zeros: is it ever computed?")))
    return causes
