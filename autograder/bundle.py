"""What makes a task self-contained: the template course packed into it, and the version
of the project it expects.

A worker may be a process of the local pool or of a Dask cluster on another machine, which
sees none of the batch's folders. So each :class:`~records.Task` carries the template course
itself (its ``source/`` folder and gradebook, about 25 KB compressed), unpacked by the worker
into the learner's scratch course; and the digest of the project's code, which the worker
compares with its own before grading: a worker with another version of the checks would
grade differently, and says so instead.
"""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
from pathlib import Path

from . import config

_VERSION: dict[str, str] = {}

# What grading depends on: the grader, the course package (the checks), the course settings.
CODE = [("autograder", "*.py"), ("autograder", "*.j2"), ("lib/backprop", "*.py")]


def pack(template: Path) -> bytes:
    """The template course's ``source/`` and ``gradebook.db`` as a gzipped tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        tar.add(template / "source", arcname="source")
        tar.add(template / "gradebook.db", arcname="gradebook.db")
    return buf.getvalue()


def unpack(data: bytes, dest: Path) -> None:
    """Unpack :func:`pack`'s bytes into dest (``dest/source``, ``dest/gradebook.db``)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def project_version() -> str:
    """A digest of the code grading runs (autograder/, lib/backprop/, nbgrader_config.py)."""
    if "digest" not in _VERSION:
        h = hashlib.sha256()
        files = [p for folder, pattern in CODE for p in (config.ROOT / folder).rglob(pattern)]
        for path in sorted(set(files)) + [config.ROOT / "nbgrader_config.py"]:
            if "__pycache__" not in path.parts:
                h.update(str(path.relative_to(config.ROOT)).encode())
                h.update(path.read_bytes())
        _VERSION["digest"] = h.hexdigest()[:16]
    return _VERSION["digest"]


def version_mismatch(expected: str) -> str | None:
    """Why this process must not grade a task made for version expected (None: it may)."""
    mine = project_version()
    if mine == expected:
        return None
    return (
        f"the worker on {socket.gethostname()} runs another version of the project "
        f"(code {mine}, the batch's {expected}) at {config.ROOT}: install the batch's "
        "version on every worker"
    )
