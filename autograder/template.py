"""The template course: an assignment generated once per version of its source notebooks.

``generate_assignment`` run into a gradebook of its own gives a course that holds the
assignment, its notebooks and every grade, solution and source cell, and no learner. Each
learner's scratch course starts as a copy of it (worker.py); the output course's gradebook
is made from it (merge.py). Its folder name carries a digest of the sources and of the
grading configuration, so a changed notebook or setting makes a new template.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from . import config

SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION")


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and ".ipynb_checkpoints" not in p.parts:
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    for path in (config.ROOT / "nbgrader_config.py", config.GRADING_CONFIG):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _copy_other_files(src: Path, dest: Path) -> None:
    """The assignment's files other than notebooks (kernels need those)."""
    for p in src.rglob("*"):
        if p.is_file() and p.suffix != ".ipynb" and ".ipynb_checkpoints" not in p.parts:
            target = dest / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)


def generate(assignment: str, root: Path, db_url: str) -> None:
    """nbgrader's generate_assignment from the course's sources into the course at root."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    cfg = config.settings(root, db_url)
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    res = api.generate_assignment(assignment, force=True, create=True)
    if not res["success"]:
        raise RuntimeError(
            f"nbgrader generate_assignment {assignment} failed:\n"
            f"{res.get('error') or res.get('log')}"
        )


def make_template(assignment: str, state: Path) -> Path:
    """The template course of assignment under state/templates/ (made if missing)."""
    src = config.source_dir() / assignment
    if not src.is_dir():
        raise SystemExit(f"no assignment {assignment!r}: {src} does not exist")
    key = _digest(src)
    tmpl = state / "templates" / f"{assignment}-{key}"
    if (tmpl / "ready").exists():
        return tmpl
    shutil.rmtree(tmpl, ignore_errors=True)
    (tmpl / "source" / assignment).mkdir(parents=True)
    _copy_other_files(src, tmpl / "source" / assignment)
    try:
        generate(assignment, tmpl, config.sqlite_url(tmpl / "gradebook.db"))
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    (tmpl / "ready").write_text(key)
    return tmpl


def assignment_language(assignment: str) -> str:
    """The language the assignment's source notebooks declare (backprop.i18n), "en" if none
    or no such assignment: the language of its reasons, verdicts and feedback."""
    import nbformat
    from backprop.i18n import notebook_language

    found = {
        notebook_language(nbformat.read(p, as_version=4).metadata)
        for p in sorted((config.source_dir() / assignment).glob("*.ipynb"))
    }
    return found.pop() if len(found) == 1 else "en"


def assignment_cells(db_url: str, assignment: str) -> dict[str, list[tuple[str, float]]]:
    """notebook -> [(grade_id, max_score)] in notebook order, from a gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(db_url, config.course_id()) as gb:
        for nb in gb.find_assignment(assignment).notebooks:
            order = [c.name for c in nb.source_cells]
            cells = sorted(
                nb.grade_cells, key=lambda c: order.index(c.name) if c.name in order else len(order)
            )
            out[nb.name] = [(c.name, float(c.max_score)) for c in cells]
    return out


def strip_markers(source: str) -> str:
    """An answer cell's reference code without its BEGIN/END SOLUTION lines."""
    return "\n".join(
        line for line in source.split("\n") if not any(m in line for m in SOLUTION_MARKERS)
    )


def solution_sources(assignment: str, notebook: str | None = None) -> dict[str, str]:
    """grade_id -> the reference code of each answer cell of a source notebook."""
    import nbformat

    path = config.source_dir() / assignment / f"{notebook or assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    return {
        c.metadata.nbgrader["grade_id"]: strip_markers(c.source)
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
