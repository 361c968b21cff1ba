"""What travels between the batch and its workers, and what the batch keeps per learner.

* :class:`Settings`: what every task of one batch shares (limits, folders, the cells);
* :class:`Task`: one learner's notebooks and the template course, as bytes: everything a
  worker on any machine needs (bundle.py);
* :class:`Result`: what a worker found (scores, comments, files, notes), always returned,
  whatever the submission did;
* :class:`Row`: one learner's line of ``grades.csv`` and ``mistakes.csv``, kept as JSON in
  ``<out>/.autograder/records/<assignment>/<learner>.json`` so that a re-run which skips
  unchanged learners writes the same files.

All are plain dataclasses of plain values: they pickle for a process pool or a cluster.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .notes import Mistake

Cells = dict[str, list[tuple[str, float]]]  # notebook -> [(grade_id, max_score)]

GRADED, PARTIAL, INVALID, MISSING, TIMEOUT, ERROR = (
    "graded",
    "partial",
    "invalid",
    "missing",
    "timeout",
    "error",
)


@dataclass(frozen=True)
class Settings:
    """What every task of a batch shares."""

    cells: Cells
    timeout: float = 900.0  # wall clock per learner, seconds
    cell_timeout: int | None = None  # per cell, seconds (None: the configuration's)
    memory_mb: int | None = None  # kernel address space (None: the configuration's)
    isolate_network: bool = True
    feedback: bool = True
    # Folders of the batch's machine, for the local pool (the batch removes them at the end);
    # None on a cluster: each worker uses its own temporary folder, removed after each task.
    scratch_base: str | None = None  # where scratch courses go (hidden from kernels)
    kernel_dir: str | None = None  # where kernels' private folders go
    language: str = "en"  # of reasons, verdicts and feedback: the assignment's (i18n)


@dataclass
class Task:
    learner: str  # the nbgrader student id (collect.student_id)
    assignment: str
    notebooks: dict[str, bytes | None]  # notebook id -> file contents (None: not handed in)
    timestamp: str | None
    template: bytes  # the template course, packed (bundle.pack)
    version: str  # the project's code it was made with (bundle.project_version)
    hide: list[str]  # folders no kernel may see
    settings: Settings
    notes: list[str] = field(default_factory=list)  # what collection noticed
    digest: str = ""  # of the notebooks: unchanged files are skipped
    secret: str | None = None  # nbgrader's submission_secret.txt (Found.secret)


@dataclass
class Grade:
    auto_score: float | None
    max_score: float
    needs_manual_grade: bool = False


def zero_grades(cells: Cells, notebook: str) -> dict[str, Grade]:
    return {gid: Grade(0.0, mx) for gid, mx in cells.get(notebook, [])}


@dataclass
class NotebookResult:
    submitted: bytes | None = None
    autograded: str | None = None
    feedback: str | None = None
    grades: dict[str, Grade] | None = None  # None: not graded (zero in the gradebook)
    comments: dict[str, str | None] = field(default_factory=dict)
    late_penalty: float | None = None
    mistakes: list[Mistake] = field(default_factory=list)


@dataclass
class Result:
    learner: str
    assignment: str
    status: str
    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    notebooks: dict[str, NotebookResult] = field(default_factory=dict)
    timestamp: str | None = None
    digest: str = ""
    seconds: float = 0.0
    sandbox: str | None = None
    secret: str | None = None


def failed(task: Task, status: str, reason: str, seconds: float = 0.0) -> Result:
    """The result for a learner the worker could not grade (timeout, error, refused)."""
    return Result(
        task.learner,
        task.assignment,
        status,
        list(task.notes) + [reason],
        timestamp=task.timestamp,
        digest=task.digest,
        seconds=seconds,
        secret=task.secret,
        notebooks={nb: NotebookResult(submitted=data) for nb, data in task.notebooks.items()},
    )


@dataclass
class Row:
    """One learner and assignment as grades.csv and mistakes.csv show them."""

    learner: str  # the name as handed in
    student_id: str  # the nbgrader id
    assignment: str
    score: float
    max_score: float
    scores: dict[str, float | None]  # test cell grade_id -> points
    status: str
    reason: str
    sandbox: str
    digest: str = ""
    seconds: float = 0.0
    mistakes: list[dict] = field(default_factory=list)  # notebook + asdict(Mistake)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.student_id}.json").write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> Row | None:
        """The row recorded at path; None if there is none, or it is unreadable or from an
        older version (then the learner is graded again)."""
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
