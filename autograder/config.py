"""The one writer of nbgrader configuration: for the batch, the tests and the benchmark.

Every nbgrader course the autograder makes (the template course, each learner's scratch
course, the output folder, and the courses tests and benchmarks build) takes the course's
settings (``nbgrader_config.py`` at the repository root, which loads
``autograder/nbgrader_config.py``) and changes only where things are: the course root, the
source folder (``solutions/``), the gradebook's database URL, and a few named overrides.
Two forms, one rule:

* :func:`settings` gives a traitlets ``Config`` for nbgrader's Python API (``NbGraderAPI``);
* :func:`config_file` gives the text of an ``nbgrader_config.py`` for nbgrader's own
  commands run in a folder (``nbgrader autograde``, ``nbgrader export``, formgrader).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GRADING_CONFIG = ROOT / "autograder" / "nbgrader_config.py"

_CACHE: dict = {}
CONFIG_HEADER = "# nbgrader configuration (written by python -m autograder):"


def course_config():
    """The course's own nbgrader configuration (a copy: callers may change it)."""
    if "repo" not in _CACHE:
        from traitlets.config.loader import PyFileConfigLoader

        _CACHE["repo"] = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    return copy.deepcopy(_CACHE["repo"])


def course_id() -> str:
    return course_config().CourseDirectory.get("course_id", "default_course")


def source_dir() -> Path:
    """Where the assignments' source notebooks are (``solutions/``)."""
    cfg = course_config()
    root = Path(cfg.CourseDirectory.get("root", str(ROOT)))
    return (root / cfg.CourseDirectory.get("source_directory", "source")).resolve()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def gradebook_url(url: str) -> str:
    """A gradebook URL given on the command line (``--db``), as SQLAlchemy takes it.

    ``postgresql://user@host/db`` means the psycopg (3) driver, the project's optional
    ``postgresql`` extra, unless a driver is named (``postgresql+psycopg2://``). Exits 2,
    saying what to install, when the driver is missing or the URL is not one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError) as exc:
        raise SystemExit(f"--db {url!r} is not a database URL SQLAlchemy knows: {exc}") from None
    except ImportError as exc:
        raise SystemExit(
            f"--db {shown_url(url)}: its database driver is not installed ({exc}); for "
            "PostgreSQL: pip install -e '.[postgresql]'"
        ) from None
    return parsed.render_as_string(hide_password=False)


def shown_url(url: str) -> str:
    """url with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<a database URL>"


def settings(
    root: Path,
    db_url: str,
    *,
    source: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
):
    """The course's Config with ``root`` as course root and ``db_url`` as gradebook.

    source: the source folder (default: the course's ``solutions/``; a relative path is
    taken inside root). overrides: ``{"Section.trait": value}``, e.g.
    ``{"Execute.timeout": 60, "GuardedExecute.memory_limit_mb": 2048}``.
    """
    cfg = course_config()
    cfg.CourseDirectory.root = str(root)
    cfg.CourseDirectory.source_directory = str(source if source is not None else source_dir())
    for folder in ("release", "submitted", "autograded", "feedback"):
        setattr(cfg.CourseDirectory, f"{folder}_directory", folder)
    cfg.CourseDirectory.db_url = db_url
    for key, value in (overrides or {}).items():
        section, trait = key.split(".")
        setattr(cfg[section], trait, value)
    return cfg


def config_file(
    root: Path | None = None, db_url: str | None = None, overrides: Mapping[str, Any] | None = None
) -> str:
    """The text of an nbgrader_config.py for a course folder.

    root: the course root (None: the folder the file lies in, so the folder may move);
    db_url: the gradebook (None: ``gradebook.db`` beside the file); overrides as in
    :func:`settings`.
    """
    lines = [
        CONFIG_HEADER + " the course's settings,",
        "# with this folder as the course root. nbgrader's own commands work here.",
        "from pathlib import Path",
        f"load_subconfig({str(GRADING_CONFIG)!r})  # noqa: F821",
        "c = get_config()  # noqa: F821",
        "HERE = Path(__file__).resolve().parent",
        f"c.CourseDirectory.root = {str(root)!r}" if root else "c.CourseDirectory.root = str(HERE)",
        f"c.CourseDirectory.source_directory = {str(source_dir())!r}",
        "c.CourseDirectory.release_directory = 'release'",
        f"c.CourseDirectory.db_url = {db_url!r}"
        if db_url
        else "c.CourseDirectory.db_url = f\"sqlite:///{HERE / 'gradebook.db'}\"",
    ]
    lines += [f"c.{key} = {value!r}" for key, value in (overrides or {}).items()]
    return "\n".join(lines) + "\n"


def write_config_file(
    folder: Path, db_url: str | None = None, overrides: Mapping[str, Any] | None = None
) -> Path:
    """Write :func:`config_file` (root: folder itself) as folder/nbgrader_config.py."""
    path = Path(folder) / "nbgrader_config.py"
    path.write_text(config_file(None, db_url, overrides))
    return path
