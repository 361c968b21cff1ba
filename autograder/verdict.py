"""The trusted side of the checks: a test cell's verdict, reached in the grader's process.

Under grading the learner's kernel only *collects*: each ``check_*(...).assert_ok(...)`` in a
test cell publishes a record of what the learner's code returned (``backprop.checks``,
:data:`~backprop.checks.RECORD_MIME`) and raises nothing. After the cell has run,
:func:`judge` reads the cell's source, which the sanitising preprocessors have restored
from the gradebook, so it is the instructor's (hidden tests included), makes each check's
inputs again from its literal arguments, verifies the matching record with the same
``verify`` a learner's own notebook uses, and replaces the cell's outputs with the verdict:

* the checks that passed, as printed text;
* an ``AssertionError`` output naming every failure, when any check failed, which is what
  nbgrader scores as a failed test cell;
* any error the kernel itself raised in the cell (a ``NameError`` for a class never
  defined, a timeout, a dead kernel), kept as it was.

Nothing the kernel prints can pass a cell: text, fake "Success!" lines and records that do
not carry the right numbers for the grader's own inputs are dropped or fail. This module
runs no learner code; it only decodes data (see ``backprop.checks.channel``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backprop.checks import RECORD_MIME, PlanError, verify_cell
from backprop.i18n import _
from nbformat.v4 import new_output

from . import notes

# A kernel error's name -> the mistake key it stands for (anything else: notes.ERROR).
_ERROR_KEYS = {
    "CellTimeoutError": notes.TIMEOUT,
    "KernelDied": notes.KERNEL_DIED,
    "GradingGuardError": notes.GUARD,
}


@dataclass
class CellVerdict:
    """What :func:`judge` decided for one test cell."""

    outputs: list
    mistakes: list[notes.Mistake] = field(default_factory=list)
    problem: str | None = None  # a course error: a test cell the grader cannot verify

    @property
    def keys(self) -> list[str]:
        """The mistake keys named, in order (``transpose``, ``no_dout``, ``error``, ...)."""
        return [m.mistake for m in self.mistakes if m.mistake]


def error_output(ename: str, evalue: str) -> dict:
    """An error output as the kernel would publish it (what nbgrader scores as a failure)."""
    return new_output(
        "error", ename=ename, evalue=evalue, traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"]
    )


def kernel_mistakes(cell: str, outputs: list) -> list[notes.Mistake]:
    """One mistake per error the kernel itself raised in a test cell."""
    return [
        notes.Mistake(
            cell,
            _("the test cell"),
            _ERROR_KEYS.get(o.get("ename"), notes.ERROR),
            f"{o.get('ename')}: {o.get('evalue')}",
        )
        for o in outputs
        if o.get("output_type") == "error"
    ]


def judge(source: str, outputs: list, cell: str = "") -> CellVerdict:
    """The verdict for a test cell (grade_id ``cell``) from its trusted source and what its
    kernel published."""
    kernel_errors = [o for o in outputs if o.get("output_type") == "error"]
    found = kernel_mistakes(cell, kernel_errors)
    try:
        verdict = verify_cell(source, outputs)
    except PlanError as exc:
        problem = _("this test cell cannot be verified by the grader: {why}").format(why=exc)
        found.append(notes.Mistake(cell, _("the test cell"), "not_run", problem))
        return CellVerdict(
            kernel_errors + [error_output("UnverifiableTest", problem)], found, problem
        )
    found += [
        notes.Mistake(cell, f"{target}: {check.name}", check.mistake or "", check.message)
        for target, check in verdict.failures
    ]
    new = []
    if verdict.passed:
        new.append(new_output("stream", name="stdout", text="\n".join(verdict.passed) + "\n"))
    if not verdict.ok and not kernel_errors:
        new.append(error_output("AssertionError", verdict.failure_text))
    elif not verdict.ok:  # the kernel's own error says why; the checks add what was missed
        new.append(new_output("stream", name="stdout", text=verdict.failure_text + "\n"))
    return CellVerdict(new + kernel_errors, found)


def is_record(content: dict) -> bool:
    """Whether an output message's content is a check's record (kept outside the output cap)."""
    return RECORD_MIME in (content.get("data") or {})
