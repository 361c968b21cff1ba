"""What SUBMISSIONS holds: its files and folders as items, each read only on demand."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from backprop.i18n import _

from .limits import LIMITS, Limits, Refused
from .text import show

_JUNK = {"__MACOSX", "Thumbs.db", "desktop.ini"}
# Files beside a notebook that nbgrader's exchange (nbgrader submit, nbgrader collect) writes.
TIMESTAMP = "timestamp.txt"
SECRET = "submission_secret.txt"


def is_junk(name: str) -> bool:
    """Hidden files and folders, and what operating systems leave in archives."""
    return name.startswith(".") or name in _JUNK


def is_zip_name(name: str) -> bool:
    return name.lower().endswith(".zip") and len(name) > 4


def is_notebook(name: str) -> bool:
    return name.lower().endswith(".ipynb")


def wanted(name: str) -> bool:
    """Entries whose bytes collect may read."""
    return is_notebook(name) or is_zip_name(name) or name in (TIMESTAMP, SECRET)


@dataclass(eq=False)
class Item:
    """A file or folder in SUBMISSIONS (or in a .zip in it), by its path as handed in."""

    parts: tuple[str, ...]
    kind: str = "file"  # "file" or "dir"
    mtime: float = 0.0  # seconds since the epoch
    reader: Callable[[int], bytes] | None = None  # limit in bytes -> the contents
    limit: int = LIMITS.max_notebook  # bytes

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def where(self) -> str:
        return show("/".join(self.parts), 160)

    def read_bytes(self, limit: int | None = None) -> bytes:
        """The contents, at most limit bytes (the notebook limit by default); Refused says
        why not."""
        if self.reader is None:
            raise Refused(_("{where}: not a file").format(where=self.where))
        return self.reader(self.limit if limit is None else limit)


@dataclass
class Submissions:
    """What open_submissions found: items, problems (parts, why), archive-derived folders."""

    where: str
    items: list[Item] = field(default_factory=list)
    problems: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    zip_dirs: set[tuple[str, ...]] = field(default_factory=set)
    limits: Limits = LIMITS
    keep: list = field(default_factory=list)  # open archives and their files

    def problem(self, parts: tuple[str, ...], why: str) -> None:
        self.problems.append((parts, f"{show('/'.join(parts), 160)}: {why}"))

    def mark(self) -> tuple[int, int]:
        """Where items and problems end now, for undo()."""
        return len(self.items), len(self.problems)

    def undo(self, mark: tuple[int, int]) -> None:
        """Forget the items and problems added since mark."""
        del self.items[mark[0] :]
        del self.problems[mark[1] :]

    def close(self) -> None:
        for obj in self.keep:
            try:
                obj.close()
            except Exception:
                pass
        self.keep.clear()


class Budget:
    """What one archive tree (an archive and those inside it) may still take: sizes are
    reserved, from the headers, when an archive is listed; reads never exceed them."""

    def __init__(self, limits: Limits):
        self.bytes = limits.max_bytes
        self.entries = limits.max_entries


def _read_fd(fd: int, limit: int, where: str) -> bytes:
    """A regular file's bytes from an open descriptor, at most limit of them."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise Refused(_("{where}: not a regular file; not read").format(where=where))
    if st.st_size > limit:
        raise Refused(
            _("{where}: {size:,} bytes, more than the limit of {limit:,}; not read").format(
                where=where, size=st.st_size, limit=limit
            )
        )
    chunks, total = [], 0
    while True:
        chunk = os.read(fd, min(1 << 20, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise Refused(
                _(
                    "{where}: grew past the limit of {limit:,} bytes while being read; not read"
                ).format(where=where, limit=limit)
            )


def fs_reader(path: str, where: str) -> Callable[[int], bytes]:
    """A reader of the file at path that follows no link and opens no FIFO or device."""

    def read(limit: int) -> bytes:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            raise Refused(
                _("{where}: could not be opened ({why})").format(
                    where=where, why=exc.strerror or exc
                )
            ) from None
        try:
            return _read_fd(fd, limit, where)
        except OSError as exc:
            raise Refused(
                _("{where}: could not be read ({why})").format(where=where, why=exc.strerror or exc)
            ) from None
        finally:
            os.close(fd)

    return read
