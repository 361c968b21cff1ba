"""The output course: each result merged into its gradebook and folders; the CSV files.

Why merge through nbgrader's Gradebook API rather than copy databases: a learner's
submission is a small set of rows (a SubmittedAssignment, a SubmittedNotebook per notebook,
a Grade and a Comment per cell) that ``update_or_create_submission`` creates exactly as
nbgrader's autograde does; the merge then sets the fields nbgrader's SaveAutoGrades and
AssignLatePenalties set (``auto_score``, ``needs_manual_grade``, ``auto_comment``,
``late_submission_penalty``), and leaves any manual grading already there alone. The
mistakes the checks named go into the auto comments of the answer cells that define
what was checked as well, so they survive
in the gradebook whatever happens to the CSV files.
"""

from __future__ import annotations

import contextlib
import csv
import os
import random
import shutil
import time
import warnings
from dataclasses import asdict
from pathlib import Path

from backprop.i18n import _
from sqlalchemy.engine import make_url

from . import config
from .records import GRADED, Cells, Grade, Result, Row, zero_grades
from .template import generate

SETUP_LOCK = 0x6E62_6772  # PostgreSQL advisory lock key: setting up a gradebook
ATTEMPTS = 6  # a merge that meets another batch's writes (PostgreSQL) is tried again

MISTAKE_FIELDS = [
    "learner",
    "student_id",
    "assignment",
    "notebook",
    "cell",
    "check",
    "mistake",
    "message",
]


def _write(path: Path, data: bytes | str | None) -> None:
    if data is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.chmod(path, 0o644)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


def _same_assignment(url: str, template_url: str, assignment: str) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    with (
        Gradebook(url, config.course_id()) as gb,
        Gradebook(template_url, config.course_id()) as tg,
    ):
        want = {
            (nb.name, c.name, c.checksum)
            for nb in tg.find_assignment(assignment).notebooks
            for c in nb.source_cells
        }
        try:
            have = {
                (nb.name, c.name, c.checksum)
                for nb in gb.find_assignment(assignment).notebooks
                for c in nb.source_cells
            }
        except MissingEntry:
            have = set()
    return want == have


def ensure_output_course(out: Path, assignment: str, tmpl: Path, db_url: str | None = None) -> str:
    """The output folder as an nbgrader course whose gradebook knows the assignment; the
    gradebook's URL. db_url: another database than ``out/gradebook.db`` (``--db``), which
    several batches may share at once (PostgreSQL)."""
    out.mkdir(parents=True, exist_ok=True)
    _same_gradebook(out, db_url)
    _write_course_config(out, db_url)
    db = out / "gradebook.db"
    url = db_url or config.sqlite_url(db)
    if db_url is None and not db.exists():
        shutil.copyfile(tmpl / "gradebook.db", db)
        return url
    with _setup_lock(url), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbgrader 0.9's models and SQLAlchemy 2: harmless
        if not _same_assignment(url, config.sqlite_url(tmpl / "gradebook.db"), assignment):
            try:  # nbgrader's own bookkeeping brings the gradebook up to date
                generate(assignment, out, url)
            except RuntimeError as exc:
                raise SystemExit(
                    f"the gradebook {config.shown_url(url)} holds another version of "
                    f"{assignment} with submissions graded against it; grade into a new "
                    f"--out folder and database.\n{exc}"
                ) from None
    return url


def _write_course_config(out: Path, db_url: str | None) -> None:
    """out/nbgrader_config.py for nbgrader's own commands there (export, formgrader), unless
    the folder has one that python -m autograder did not write: an instructor's course
    folder keeps its own (its exchange, its database)."""
    path = out / "nbgrader_config.py"
    if path.exists() and not path.read_text().startswith(config.CONFIG_HEADER):
        return
    # nbgrader export writes beside, not over, our grades.csv
    config.write_config_file(out, db_url, {"ExportPlugin.to": "nbgrader_export.csv"})
    if db_url and make_url(db_url).password:
        os.chmod(path, 0o600)


def _same_gradebook(out: Path, db_url: str | None) -> None:
    """Refuse a gradebook other than the one out's recorded learners were merged into (they
    would be skipped as graded, and missing from the new one)."""
    state = out / ".autograder" / "gradebook.txt"
    want = config.shown_url(db_url) if db_url else "gradebook.db"
    if state.exists():
        had = state.read_text().strip()
    else:
        had = "gradebook.db" if (out / "gradebook.db").exists() else want
    if had != want:
        raise SystemExit(
            f"{out} holds grades merged into {had}; this run asks for {want}. Grade into a new "
            f"--out folder, or give the same --db as before."
        )
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(want + "\n")


@contextlib.contextmanager
def _setup_lock(url: str):
    """While held, no other batch sets up the same PostgreSQL gradebook (nbgrader's table
    creation and generate_assignment are not safe to run twice at once)."""
    if make_url(url).get_backend_name() != "postgresql":
        yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": SETUP_LOCK})
            yield
    finally:
        engine.dispose()  # the session's lock goes with its connection


def _write_files(out: Path, result: Result) -> None:
    base = Path(result.learner) / result.assignment
    for nb_id, entry in result.notebooks.items():
        _write(out / "submitted" / base / f"{nb_id}.ipynb", entry.submitted)
        _write(out / "autograded" / base / f"{nb_id}.ipynb", entry.autograded)
        _write(out / "feedback" / base / f"{nb_id}.html", entry.feedback)
    if result.timestamp:
        _write(out / "submitted" / base / "timestamp.txt", result.timestamp)
    _write(out / "submitted" / base / "submission_secret.txt", result.secret)
    if (out / "feedback" / base).is_dir():  # what nbgrader release_feedback reads there
        _write(out / "feedback" / base / "timestamp.txt", result.timestamp)
        _write(out / "feedback" / base / "submission_secret.txt", result.secret)


def mistakes_comment(result: Result, nb_id: str, source: str) -> str | None:
    """The auto comment for the answer cell whose (gradebook) source is ``source``: the
    mistakes the checks named for what that cell defines; None if none."""
    from .preprocessors.cells import defined_names, parse

    names = defined_names(parse(source), imports=False)
    entry = result.notebooks.get(nb_id)
    found = [m for m in (entry.mistakes if entry else []) if m.mistake
             and m.check.split(":")[0].strip() in names]  # fmt: skip
    if not found:
        return None
    return "Mistakes named by the checks: " + "; ".join(
        dict.fromkeys(f"{m.check} ({m.cell}): {m.mistake}" for m in found)
    )


def _save_comments(gb, result: Result, nb_id: str, snb) -> None:
    """nbgrader's auto comments of the answer cells, and the mistakes named for each."""
    from nbgrader.api import MissingEntry

    entry = result.notebooks.get(nb_id)
    comments = entry.comments if entry else {}
    for comment in snb.comments:
        try:
            source = gb.find_source_cell(comment.name, nb_id, result.assignment).source
        except MissingEntry:
            source = ""
        text = mistakes_comment(result, nb_id, source)
        if comment.name in comments or text:
            comment.auto_comment = "\n".join(t for t in (comments.get(comment.name), text) if t)


def _save_notebook(gb, result: Result, nb_id: str, cells: Cells, scores: dict) -> float:
    """One notebook's grades and comments into the gradebook; its points after penalty."""
    entry = result.notebooks.get(nb_id)
    got: dict[str, Grade] = entry.grades if entry and entry.grades else zero_grades(cells, nb_id)
    snb = gb.find_submission_notebook(nb_id, result.assignment, result.learner)
    snb.flagged = result.status != GRADED or bool(result.flags)
    snb.late_submission_penalty = entry.late_penalty if entry else None
    total = 0.0
    by_name = {g.name: g for g in snb.grades}
    order = [gid for gid, _ in cells.get(nb_id, []) if gid in by_name]
    for grade in [by_name[gid] for gid in order] + [g for g in snb.grades if g.name not in order]:
        g = got.get(grade.name) or Grade(0.0, float(grade.max_score))
        grade.auto_score = g.auto_score
        grade.needs_manual_grade = g.needs_manual_grade or grade.manual_score is not None
        score = grade.manual_score if grade.manual_score is not None else grade.auto_score
        scores[grade.name] = (score, float(grade.max_score))
        total += score or 0.0
    _save_comments(gb, result, nb_id, snb)
    return total - ((entry.late_penalty if entry else None) or 0.0)


def _save_grades(url: str, result: Result, cells: Cells) -> dict:
    """The result's grades into the gradebook; grade_id -> (points, max points). Two
    batches sharing a database may create the same student at once: the one that loses
    rolls back and tries again."""
    from sqlalchemy.exc import DBAPIError

    for attempt in range(ATTEMPTS):
        try:
            return _save_grades_once(url, result, cells)
        except DBAPIError:
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.05, 0.25) * (attempt + 1))
    raise AssertionError("unreachable")


def _save_grades_once(url: str, result: Result, cells: Cells) -> dict:
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    scores: dict = {}
    with Gradebook(url, config.course_id()) as gb, warnings.catch_warnings():
        # nbgrader 0.9's models make SQLAlchemy 2 warn about autoflush; harmless
        warnings.simplefilter("ignore")
        gb.update_or_create_student(result.learner)
        kwargs = {}
        if result.timestamp:
            try:
                kwargs["timestamp"] = parse_utc(result.timestamp)
            except Exception:
                pass
        gb.update_or_create_submission(result.assignment, result.learner, **kwargs)
        scores["_total"] = sum(_save_notebook(gb, result, nb_id, cells, scores) for nb_id in cells)
        gb.db.commit()
    return scores


def merge(url: str, out: Path, result: Result, cells: Cells, name: str) -> Row:
    """Write one learner's result into the gradebook and the course folders; its Row.
    name: the learner as handed in (result.learner is the nbgrader id)."""
    _write_files(out, result)
    scores = _save_grades(url, result, cells)
    total = scores.pop("_total")
    reasons = list(dict.fromkeys(result.reasons))
    if result.flags:
        reasons.append(_("flagged for review: {flags}").format(flags=", ".join(result.flags)))
    mistakes = list(
        {
            (nb_id, m.cell, m.check, m.mistake): {"notebook": nb_id, **asdict(m)}
            for nb_id, entry in result.notebooks.items()
            for m in reversed(entry.mistakes)
        }.values()
    )[::-1]  # the first of each
    return Row(
        learner=name,
        student_id=result.learner,
        assignment=result.assignment,
        score=round(total, 6),
        max_score=sum(mx for _, mx in scores.values()),
        scores={gid: pts for gid, (pts, _) in scores.items()},
        status=result.status,
        reason="; ".join(reasons),
        sandbox=result.sandbox or sandbox_status(),
        digest=result.digest,
        seconds=round(result.seconds, 1),
        mistakes=mistakes,
    )


def sandbox_status() -> str:
    """What grading kernels run in here: "bwrap", or "none (why not)" (kernel/jail.py)."""
    from .kernel import jail

    return jail.status(os.environ.get("AUTOGRADER_BWRAP", "bwrap"))[1]


def recorded_rows(records: Path) -> list[Row]:
    """Every row recorded under records/<assignment>/, by assignment and learner."""
    rows = [r for r in map(Row.load, sorted(records.glob("*/*.json"))) if r is not None]
    return sorted(rows, key=lambda r: (r.assignment, r.learner, r.student_id))


@contextlib.contextmanager
def _replacing(path: Path):
    """A file to write that replaces path whole when done (a reader never sees half)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        yield f
    os.replace(tmp, path)


def write_grades(out: Path, rows: list[Row]) -> Path:
    """grades.csv: one line per learner and assignment, a column per test cell."""
    path = out / "grades.csv"
    columns = list(dict.fromkeys(gid for row in rows for gid in row.scores))
    fields = [
        "learner",
        "student_id",
        "assignment",
        "score",
        "max_score",
        *columns,
        "status",
        "reason",
        "sandbox",
    ]
    with _replacing(path) as f:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({**asdict(row), **row.scores})
    return path


def write_mistakes(out: Path, rows: list[Row]) -> Path:
    """mistakes.csv: one line per failed check of a test cell of a learner."""
    path = out / "mistakes.csv"
    with _replacing(path) as f:
        w = csv.DictWriter(f, MISTAKE_FIELDS)
        w.writeheader()
        for row in rows:
            for m in row.mistakes:
                w.writerow(
                    {
                        "learner": row.learner,
                        "student_id": row.student_id,
                        "assignment": row.assignment,
                        **m,
                    }
                )
    return path
