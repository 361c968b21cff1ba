"""Checks in two halves: *collect* runs the learner's code, *verify* judges what came out.

Every check of the course is defined once, with :func:`define`, as three functions:

``inputs(**args)``
    the data the check feeds the learner's code, made from its arguments alone
    (seeds, shapes): pure and deterministic, so the grader can make it again;
``collect(target, inputs)``
    runs the learner's class or function on those inputs and returns what came out
    (outputs, gradients, the inputs as they were afterwards, exceptions), as plain data;
``verify(inputs, observed)``
    compares that with the reference and with numerical gradients and returns a
    :class:`~backprop.gradcheck.LayerReport`. It runs no learner code.

A test cell reads ``check_affine(Affine, seed=0).assert_ok("dx")``. In a learner's notebook
the check collects and verifies right there, and ``assert_ok`` prints what passed and raises
``AssertionError`` naming what failed. Under grading (the grader starts the kernel with
``BACKPROP_CHECKS=collect``) the kernel only collects: ``assert_ok`` publishes the record
(:data:`RECORD_MIME`) and returns. The grader, in its own process, reads the test cell's
trusted source (:func:`plan`), makes the inputs again, verifies each record
(:func:`verify_cell`) and writes the verdict into the graded notebook. The same
``verify`` produces both verdicts, so the messages are the same; forging a record means
producing the right numbers for the grader's own inputs.

How the learner's code is run, and the reference switched off meanwhile: :mod:`.running`.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..gradcheck import Check, LayerReport
from ..i18n import _
from . import channel
from .running import grading, reference_disabled

RECORD_MIME = "application/vnd.backprop.record+json"


# --- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One check: how to make its inputs, run the learner's code, and judge the outcome."""

    name: str
    inputs: Callable[..., dict]
    collect: Callable[[Any, dict], dict]
    verify: Callable[[dict, dict], LayerReport]
    disable: Callable[[], tuple]  # the reference objects switched off while collecting
    title: str  # how reports name the learner's object, e.g. "Affine"


SPECS: dict[str, Spec] = {}


def define(
    name: str,
    *,
    inputs: Callable[..., dict],
    collect: Callable[[Any, dict], dict],
    verify: Callable[[dict, dict], LayerReport],
    disable: Callable[[], tuple] = tuple,
    title: str | None = None,
    doc: str = "",
) -> Callable[..., LayerReport]:
    """Register a check and return its test function ``check_<name>(target, **args)``."""
    if name in SPECS:
        raise ValueError(f"a check named {name!r} exists already")
    spec = Spec(name, inputs, collect, verify, disable, title or name)
    SPECS[name] = spec

    def check(target: Any, **args: Any) -> LayerReport:
        return run(spec, target, args)

    check.__name__ = check.__qualname__ = f"check_{name}"
    check.__doc__ = doc or inputs.__doc__
    check.spec = spec  # type: ignore[attr-defined]
    return check


def _canonical(args: Mapping[str, Any]) -> str:
    return json.dumps(args, sort_keys=True, default=list)


def run(spec: Spec, target: Any, args: dict[str, Any]) -> LayerReport:
    """Collect with the learner's target; verify here, or hand the record over if grading."""
    _canonical(args)  # arguments must be plain literals: the grader reads them from source
    made = spec.inputs(**args)
    with reference_disabled(*spec.disable()):
        observed = spec.collect(target, copy.deepcopy(made))
    text = channel.encode(observed)
    if grading():
        return Pending(spec.name, dict(args), text)
    report = judge_observed(spec, made, channel.decode(text))
    report.layer = _title(spec, target)
    return report


def judge_observed(spec: Spec, made: dict, observed: Any) -> LayerReport:
    """spec.verify, with a failed report (never an exception) for observations it cannot use."""
    if not isinstance(observed, dict):
        observed = {}
    try:
        return spec.verify(made, observed)
    except Exception as exc:  # a forged or freak record must cost points, not the batch
        return LayerReport(
            spec.title,
            [
                Check(
                    "collected",
                    False,
                    _("what your code produced could not be judged ({error_type}: {error})").format(
                        error_type=type(exc).__name__, error=exc
                    ),
                    "malformed",
                )
            ],
        )


def _title(spec: Spec, target: Any) -> str:
    return getattr(target, "__name__", None) or spec.title


class Pending(LayerReport):
    """What a check returns in a grading kernel: the record, with no verdict in it."""

    def __init__(self, name: str, args: dict, observed: str) -> None:
        super().__init__(name)
        self._record = {"check": name, "args": args, "observed": observed}

    @property
    def ok(self) -> bool:
        raise RuntimeError(_("under grading the verdict is reached by the grader, not here"))

    def assert_ok(self, *names: str) -> None:
        from IPython.display import display

        record = {**self._record, "names": list(names)}
        display(
            {
                RECORD_MIME: json.dumps(record, default=list),
                "text/plain": _("collected for grading: {check}").format(
                    check=f"check_{record['check']}"
                ),
            },
            raw=True,
        )


# --- the grader's side ----------------------------------------------------------------------


class PlanError(ValueError):
    """A test cell that is not made of checks the grader can verify."""


@dataclass(frozen=True)
class Planned:
    """One ``check_<name>(Target, **args).assert_ok(*names)`` of a test cell."""

    check: str
    target: str
    args: dict
    names: tuple[str, ...]

    def header(self) -> tuple[str, str, tuple[str, ...]]:
        return self.check, _canonical(self.args), self.names


def plan(source: str) -> list[Planned]:
    """The checks a test cell's trusted source makes, in order; PlanError if not only checks.

    Allowed statements: imports, and ``check_<name>(Target, key=literal, ...).assert_ok(
    "name", ...)`` with a registered check.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise PlanError(_("not Python: {error}").format(error=exc)) from exc
    planned = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        where = _("line {lineno}").format(lineno=node.lineno)
        call_ = node.value if isinstance(node, ast.Expr) else None
        if not (
            isinstance(call_, ast.Call)
            and isinstance(call_.func, ast.Attribute)
            and call_.func.attr == "assert_ok"
            and not call_.keywords
            and isinstance(call_.func.value, ast.Call)
        ):
            raise PlanError(
                _(
                    "{where}: only check_<name>(...).assert_ok(...) calls and imports "
                    "can be verified by the grader"
                ).format(where=where)
            )
        inner = call_.func.value
        if not (
            isinstance(inner.func, ast.Name)
            and inner.func.id.startswith("check_")
            and len(inner.args) == 1
            and isinstance(inner.args[0], ast.Name)
        ):
            raise PlanError(
                _("{where}: a check is called as check_<name>(Target, key=value...)").format(
                    where=where
                )
            )
        name = inner.func.id[len("check_") :]
        if name not in SPECS:
            raise PlanError(
                _("{where}: no check named {check}").format(where=where, check=inner.func.id)
            )
        try:
            args = {k.arg: ast.literal_eval(k.value) for k in inner.keywords}
            names = tuple(ast.literal_eval(a) for a in call_.args)
        except ValueError as exc:
            raise PlanError(
                _("{where}: arguments must be literals ({error})").format(where=where, error=exc)
            ) from exc
        if None in args or not all(isinstance(n, str) for n in names):
            raise PlanError(
                _("{where}: arguments must be key=literal, names strings").format(where=where)
            )
        planned.append(Planned(name, inner.args[0].id, args, names))
    return planned


def records(outputs: list[Mapping[str, Any]]) -> list[dict]:
    """The records a cell published, in order (anything unreadable is skipped)."""
    found = []
    for out in outputs:
        if out.get("output_type") not in ("display_data", "execute_result"):
            continue
        text = out.get("data", {}).get(RECORD_MIME)
        if not isinstance(text, str) or len(text) > channel.MAX_BYTES:
            continue
        try:
            rec = json.loads(text)
        except ValueError:
            continue
        if (
            isinstance(rec, dict)
            and isinstance(rec.get("check"), str)
            and isinstance(rec.get("args"), dict)
            and isinstance(rec.get("names"), list)
            and isinstance(rec.get("observed"), str)
        ):
            found.append(rec)
    return found


@dataclass
class Verdict:
    """The grader's judgement of one test cell: what passed, and what failed (layer, check)."""

    passed: list[str]
    failures: list[tuple[str, Check]]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failure_text(self) -> str:
        """The AssertionError message a learner's own notebook would show."""
        return "\n".join(f"{layer}: {c}" for layer, c in self.failures)

    @property
    def mistakes(self) -> list[str]:
        """The mistake keys named among the failures (``transpose``, ``no_dout``, ...)."""
        return [c.mistake for _, c in self.failures if c.mistake]


def verify_record(item: Planned, rec: dict | None) -> LayerReport:
    """The report for one planned check from its record (None: it never arrived)."""
    spec = SPECS[item.check]
    if rec is None:
        return LayerReport(
            item.target,
            [
                Check(
                    "collected", False, _("was not run: the test cell stopped before it"), "not_run"
                )
            ],
        )
    try:
        observed = channel.decode(rec["observed"])
        if not isinstance(observed, dict):
            raise channel.ChannelError(_("not a record"))
        report = judge_observed(spec, spec.inputs(**copy.deepcopy(item.args)), observed)
    except channel.ChannelError as exc:
        report = LayerReport(
            item.target,
            [
                Check(
                    "collected",
                    False,
                    _("what the kernel sent could not be read ({error})").format(error=exc),
                    "tampered",
                )
            ],
        )
    report.layer = item.target
    return report


def verify_cell(source: str, outputs: list[Mapping[str, Any]]) -> Verdict:
    """Judge a test cell from its trusted source and the records its kernel published.

    Each planned check takes the first record with its name, arguments and names; a check
    with no record fails. Runs no learner code: only decoding and the checks' verify.
    """
    pending = records(outputs)
    verdict = Verdict([], [])
    for item in plan(source):
        rec = next(
            (
                r
                for r in pending
                if (r["check"], _canonical(r["args"]), tuple(r["names"])) == item.header()
            ),
            None,
        )
        if rec is not None:
            pending.remove(rec)
        report = verify_record(item, rec)
        passed, failed = report.judge(*item.names)
        verdict.passed += [f"{report.layer}: {c}" for c in passed]
        verdict.failures += [(report.layer, c) for c in failed]
    return verdict
