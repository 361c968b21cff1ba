"""Opening SUBMISSIONS: a folder walked, or a .zip listed, never following a link.

``open_submissions(path, scratch)`` lists what SUBMISSIONS holds, opening the .zip files
inside it too. Nothing is extracted onto disk and nothing is followed: files are read, as
bytes and within the limits (limits.py), only when a learner's notebook is graded.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

from backprop.i18n import _

from .archives import NOT_A_ZIP, list_as_folder, list_zip
from .items import Budget, Item, Submissions, fs_reader, is_junk, is_zip_name, wanted
from .limits import LIMITS, CollectError, Limits
from .text import nfc, show


def _open_folder_zip(sub: Submissions, path: str, parts: tuple[str, ...], scratch, where) -> None:
    """A .zip in the SUBMISSIONS folder, listed as the folder of its name."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        f = os.fdopen(fd, "rb")
    except OSError as exc:
        sub.problem(parts, _("could not be opened ({why})").format(why=exc.strerror or exc))
        return
    try:
        zf = zipfile.ZipFile(f)
    except NOT_A_ZIP as exc:
        f.close()
        sub.problem(
            parts,
            _("not a readable .zip archive ({why}); not opened").format(why=show(str(exc), 80)),
        )
        return
    sub.keep += [zf, f]
    list_as_folder(sub, zf, parts, 1, Budget(sub.limits), scratch, where)


def _link_target(path: str) -> str:
    try:
        return _(" to {target}").format(target=show(nfc(os.readlink(path)), 80))
    except OSError:
        return ""


def _add_entry(
    sub: Submissions, entry: os.DirEntry, here: tuple[str, ...], scratch, stack: list
) -> None:
    """One folder entry: a link refused, a folder queued, a file listed, a .zip opened."""
    limits = sub.limits
    if entry.is_symlink():
        sub.problem(
            here,
            _("a symbolic link{to}: not followed, not graded").format(to=_link_target(entry.path)),
        )
    elif entry.is_dir(follow_symlinks=False):
        sub.items.append(Item(here, "dir"))
        if len(here) >= limits.max_folder_depth:
            sub.problem(
                here,
                _("folders nested more than {depth} deep; not searched").format(
                    depth=limits.max_folder_depth
                ),
            )
        else:
            stack.append((entry.path, here))
    elif entry.is_file(follow_symlinks=False):
        st = entry.stat(follow_symlinks=False)
        where = show("/".join(here), 160)
        if is_zip_name(here[-1]):
            _open_folder_zip(sub, entry.path, here, scratch, where)
        else:
            reader = fs_reader(entry.path, where)
            sub.items.append(Item(here, "file", st.st_mtime, reader, limits.max_notebook))
    elif wanted(here[-1]):
        sub.problem(here, _("not a regular file (a FIFO, device or socket); not read"))


def _walk(sub: Submissions, root: str, scratch: Path | None) -> None:
    """Add a folder's contents: never following a link, never opening anything but files."""
    stack: list[tuple[str, tuple[str, ...]]] = [(root, ())]
    while stack:
        path, parts = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as exc:
            if parts:
                sub.problem(
                    parts,
                    _("a folder that could not be read ({why})").format(why=exc.strerror or exc),
                )
                continue
            raise CollectError(f"{path}: could not be read ({exc.strerror or exc})") from None
        for entry in entries:
            name = nfc(entry.name)
            if is_junk(name):
                continue
            try:
                _add_entry(sub, entry, parts + (name,), scratch, stack)
            except OSError as exc:
                sub.problem(
                    parts + (name,),
                    _("could not be examined ({why})").format(why=exc.strerror or exc),
                )


def _list_archive(sub: Submissions, path: Path, scratch: Path | None) -> None:
    """SUBMISSIONS as a .zip."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise CollectError(f"{path}: could not be read ({exc.strerror or exc})") from None
    try:
        zf = zipfile.ZipFile(f)
    except NOT_A_ZIP as exc:
        f.close()
        raise CollectError(
            f"{path}: not a folder or a readable .zip file ({show(str(exc), 80)})"
        ) from None
    sub.keep += [zf, f]
    list_zip(sub, zf, (), 1, Budget(sub.limits), scratch, str(path))


def open_submissions(
    path: Path, scratch: Path | None = None, limits: Limits | None = None
) -> Submissions:
    """What SUBMISSIONS holds: a folder's contents, or a .zip's (nested ones opened too);
    scratch: a folder for nested archives copied out of their archive.

    Raises CollectError, with a message for the instructor, when SUBMISSIONS itself cannot
    be read; anything wrong inside it is a problem of the learner it belongs to."""
    path = Path(path)
    if scratch is not None:
        scratch = Path(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
    sub = Submissions(str(path), limits=limits or LIMITS)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CollectError(f"{path}: no such file or folder") from None
    except OSError as exc:
        raise CollectError(f"{path}: could not be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        _walk(sub, str(path), scratch)
    elif stat.S_ISREG(st.st_mode):
        _list_archive(sub, path, scratch)
    else:
        raise CollectError(f"{path}: not a folder or a .zip file")
    return sub
