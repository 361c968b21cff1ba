"""The grader's notes on one graded notebook: the channel from nbgrader's side to the batch.

The preprocessors run inside nbgrader's ``autograde``, and the graded notebook is all that
leaves it. So they write what the batch must know into one entry of that notebook's
metadata, ``metadata.autograder``, and the worker (worker.py) reads it back after
``autograde``; nothing else reads or writes it. A learner's own copy of the entry is
dropped when the submission is read (notebooks.py) and again by ``RestoreCells``: only the
grader writes it.

=========  ===================  ============================================================
key        written by           what
=========  ===================  ============================================================
cells      RestoreCells         what was repaired: cells put back, metadata rebuilt
problems   GuardedExecute       cells that hung, crashed the kernel or could not be verified
sandbox    GuardedExecute       what the kernel ran in: ``bwrap`` or ``none (why not)``
mistakes   GuardedExecute       one :class:`Mistake` per failed check of a test cell
=========  ===================  ============================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

KEY = "autograder"

# Mistake keys for what went wrong around the checks rather than in them.
ERROR = "error"  # the kernel raised in the test cell (NameError, ...)
TIMEOUT = "timeout"  # the cell ran past its time limit
KERNEL_DIED = "kernel_died"  # the kernel died while running the cell
GUARD = "guard"  # the grading guard could not run before the cell


@dataclass(frozen=True)
class Mistake:
    """One failed check of one test cell: ``check`` names target and check ("MulLayer: dx");
    ``mistake`` is the key the checker named (``transpose``, ``no_dout``, ...), empty when
    the check failed without naming one; ``message`` is what the learner was told."""

    cell: str
    check: str
    mistake: str
    message: str


@dataclass
class Notes:
    """Everything :data:`KEY` holds, read back from a graded notebook."""

    cells: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    sandbox: str | None = None
    mistakes: list[Mistake] = field(default_factory=list)


def _entry(nb) -> dict:
    return nb.metadata.setdefault(KEY, {})


def add_repairs(nb, texts: list[str]) -> None:
    _entry(nb).setdefault("cells", []).extend(texts)


def add_problems(nb, texts: list[str]) -> None:
    _entry(nb).setdefault("problems", []).extend(texts)


def set_sandbox(nb, status: str) -> None:
    _entry(nb)["sandbox"] = status


def add_mistakes(nb, mistakes: list[Mistake]) -> None:
    _entry(nb).setdefault("mistakes", []).extend(asdict(m) for m in mistakes)


def read(metadata: dict) -> Notes:
    """The notes in a graded notebook's metadata (a plain dict, as JSON has it)."""
    raw = metadata.get(KEY) or {}
    return Notes(
        cells=[str(t) for t in raw.get("cells", [])],
        problems=[str(t) for t in raw.get("problems", [])],
        sandbox=raw.get("sandbox"),
        mistakes=[
            Mistake(**{k: str(m.get(k, "")) for k in ("cell", "check", "mistake", "message")})
            for m in raw.get("mistakes", [])
        ],
    )
