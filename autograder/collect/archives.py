"""Reading .zip archives without extracting them: entries listed as items, read within
the limits (limits.py), nested archives opened up to ``Limits.max_depth``."""

from __future__ import annotations

import re
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from backprop.i18n import _

from .items import Budget, Item, Submissions, is_junk, is_zip_name, wanted
from .limits import CollectError, Limits, Refused
from .text import nfc, show

# What zipfile raises for a file that is not a readable archive.
NOT_A_ZIP = (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError)


def zip_stream(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, limits: Limits, limit: int
) -> Iterator[bytes]:
    """The entry's bytes in chunks, refusing bombs before and while decompressing."""
    if info.flag_bits & 0x1:
        raise Refused(_("{where}: encrypted; not read").format(where=where))
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Refused(
            _(
                "{where}: compressed with method {method}, which is not read (only deflate or stored)"
            ).format(where=where, method=info.compress_type)
        )
    claimed = info.file_size
    if claimed > limit:
        raise Refused(
            _(
                "{where}: {size:,} bytes uncompressed, more than the limit of {limit:,}; not read"
            ).format(where=where, size=claimed, limit=limit)
        )
    allowed = limits.ratio_free + limits.max_ratio * max(info.compress_size, 1)
    if claimed > allowed:
        raise Refused(
            _(
                "{where}: a zip bomb ({size:,} bytes from {packed:,}, more than {ratio}x); not read"
            ).format(where=where, size=claimed, packed=info.compress_size, ratio=limits.max_ratio)
        )
    total = 0
    try:
        with zf.open(info) as src:
            while chunk := src.read(1 << 20):
                total += len(chunk)
                if total > claimed or total > allowed:
                    raise Refused(
                        _(
                            "{where}: decompresses to more than its header says ({size:,} "
                            "bytes): a zip bomb; not read"
                        ).format(where=where, size=claimed)
                    )
                yield chunk
    except Refused:
        raise
    except Exception as exc:  # BadZipFile (CRC), zlib.error, OSError, EOFError, ...
        raise Refused(
            _("{where}: a broken archive entry ({why}); not read").format(
                where=where, why=show(str(exc), 80)
            )
        ) from None


def _zip_reader(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, limits: Limits
) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        return b"".join(zip_stream(zf, info, where, limits, limit))

    return read


def _entry_parts(info: zipfile.ZipInfo) -> tuple[tuple[str, ...] | None, str]:
    """An entry's path as parts, or None and why it is refused."""
    name = info.filename
    if not info.flag_bits & 0x800:  # not flagged UTF-8: zipfile decoded it as cp437
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    name = name.replace("\\", "/")
    if "\x00" in name:
        return None, _("a NUL character in the path")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return None, _("an absolute path; refused")
    parts = tuple(nfc(p) for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        return None, _("a path that leaves the archive; refused")
    return parts, ""


def _reserve(zf: zipfile.ZipFile, budget: Budget, limits: Limits, label: str) -> None:
    """Take the archive's entries and the sizes of what may be read from the budget."""
    infos = zf.infolist()
    if len(infos) > budget.entries:
        raise CollectError(
            _(
                "{where}: {n:,} entries, more than the limit of {limit:,} (with the archives "
                "around it)"
            ).format(where=label, n=len(infos), limit=limits.max_entries)
        )
    budget.entries -= len(infos)
    size = sum(
        i.file_size for i in infos if wanted(i.filename.replace("\\", "/").rsplit("/", 1)[-1])
    )
    if size > budget.bytes:
        raise CollectError(
            _(
                "{where}: its notebooks and archives take {size:,} bytes uncompressed, more "
                "than the limit of {limit:,} (with the archives around it)"
            ).format(where=label, size=size, limit=limits.max_bytes)
        )
    budget.bytes -= size


def _link_target(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """' to <target>' for a symbolic link entry, when it can be read cheaply."""
    if info.file_size <= 1024 and info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        try:
            return _(" to {target}").format(
                target=show(zf.read(info).decode("utf-8", "replace"), 80)
            )
        except Exception:
            pass
    return ""


def _add_file(sub: Submissions, zf, info, parts, depth, budget, scratch) -> None:
    """One entry that is not a folder: a link or device refused, a .zip opened, else an item."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode) if mode else 0
    if kind == stat.S_IFLNK:
        sub.problem(
            parts,
            _("a symbolic link{to} in the archive: not created, not followed, not graded").format(
                to=_link_target(zf, info)
            ),
        )
        return
    if kind not in (0, stat.S_IFREG):
        sub.problem(
            parts, _("not a regular file in the archive (a device, FIFO or socket entry); not read")
        )
        return
    try:
        mtime = time.mktime(info.date_time + (0, 0, -1))
    except (OverflowError, ValueError):
        mtime = 0.0
    where = show("/".join(parts), 160)
    if is_zip_name(parts[-1]):
        _open_nested(sub, zf, info, parts, depth, budget, scratch, where)
        return
    reader = _zip_reader(zf, info, where, sub.limits)
    sub.items.append(Item(parts, "file", mtime, reader, sub.limits.max_notebook))


def list_zip(
    sub: Submissions,
    zf: zipfile.ZipFile,
    prefix: tuple[str, ...],
    depth: int,
    budget: Budget,
    scratch: Path | None,
    label: str,
) -> None:
    """Add a zip's entries under prefix; nested zips are opened (within the limits)."""
    _reserve(zf, budget, sub.limits, label)
    dirs: set[tuple[str, ...]] = set()
    for info in zf.infolist():
        rel, why = _entry_parts(info)
        if rel is None:
            sub.problem(prefix + (nfc(info.filename.replace("\\", "/")),), why)
            continue
        if not rel or any(is_junk(p) for p in rel):
            continue
        parts = prefix + rel
        for i in range(len(prefix) + 1, len(parts)):
            dirs.add(parts[:i])
        mode = info.external_attr >> 16
        if info.is_dir() or (mode and stat.S_IFMT(mode) == stat.S_IFDIR):
            dirs.add(parts)
        else:
            _add_file(sub, zf, info, parts, depth, budget, scratch)
    sub.items += [Item(d, "dir") for d in sorted(dirs)]


def list_as_folder(
    sub: Submissions,
    zf: zipfile.ZipFile,
    parts: tuple[str, ...],
    depth: int,
    budget: Budget,
    scratch: Path | None,
    where: str,
) -> None:
    """The archive at parts read as the folder of its name without .zip; an archive over
    a limit becomes its owner's problem, with nothing of it kept."""
    folder = parts[:-1] + (parts[-1][:-4],)
    mark, left = sub.mark(), (budget.bytes, budget.entries)
    try:
        list_zip(sub, zf, folder, depth, budget, scratch, where)
    except CollectError as exc:  # this archive only: its owner gets the reason
        sub.undo(mark)
        budget.bytes, budget.entries = left
        sub.problems.append((parts, _("{why}; not opened").format(why=exc)))
        return
    sub.zip_dirs.add(folder)
    sub.items.append(Item(folder, "dir"))


def _open_nested(sub: Submissions, zf, info, parts, depth, budget, scratch, where) -> None:
    """A .zip inside an archive, copied to a scratch file and listed as a folder."""
    if depth + 1 > sub.limits.max_depth:
        sub.problem(
            parts,
            _("a .zip nested {depth} deep, more than the limit of {limit}; not opened").format(
                depth=depth + 1, limit=sub.limits.max_depth
            ),
        )
        return
    tmp = tempfile.TemporaryFile(dir=scratch)
    try:
        for chunk in zip_stream(zf, info, where, sub.limits, sub.limits.max_bytes):
            tmp.write(chunk)
        tmp.seek(0)
        inner = zipfile.ZipFile(tmp)
    except Refused as exc:
        tmp.close()
        sub.problems.append((parts, _("{why} (the .zip was not opened)").format(why=exc)))
        return
    except NOT_A_ZIP as exc:
        tmp.close()
        sub.problem(
            parts,
            _("not a readable .zip archive ({why}); not opened").format(why=show(str(exc), 80)),
        )
        return
    sub.keep += [inner, tmp]
    list_as_folder(sub, inner, parts, depth + 1, budget, scratch, where)
