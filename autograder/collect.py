"""Finding each learner's notebooks in what a learning platform exports.

``open_submissions(path, scratch)`` opens SUBMISSIONS (a folder, or a .zip of one) and lists
what it holds, opening the .zip files inside it too; ``collect(opened, notebooks)`` tells
whose each file is. Nothing is extracted onto disk and nothing is followed: files are read,
as bytes and within the limits below, only when a learner's notebook is graded.

Layouts
-------
* a folder per learner, the notebooks anywhere inside it: ``<learner>/<notebook>.ipynb``,
  ``<learner>/<anything>/<notebook>.ipynb``, or nbgrader's
  ``submitted/<learner>/<assignment>/<notebook>.ipynb`` (its ``timestamp.txt`` is used).
  A folder that holds one notebook, when the assignment has one, is taken to hold it under
  whatever name it was saved. A learner folder with no notebook still gets a row.
* one folder on top (``zip -r class.zip class/``), or several (``class/section-a/...``):
  a lone folder that holds two or more folders, or files named with a platform's
  decorations, and no notebook of its own, is the class, not a learner.
* nbgrader's own course folder (``source/``, ``release/``, ``submitted/``, ...): only
  ``submitted/`` is read, one learner per folder in it.
* flat files named by a platform (below), or ``<learner>_<anything>_<notebook>.ipynb`` /
  ``<learner>_<notebook>.ipynb``;
* a .zip per learner (``fay.zip``, or a platform-named one): read as the folder ``fay/``;
* any other naming, with ``--regexp`` (nbgrader's ``named_regexp``: the groups
  ``student_id`` and ``file_id``, optionally ``timestamp``); it is tried first.

Platform conventions recognised (the learner id kept is shown after the arrow)
-----------------------------------------------------------------------------
* **Canvas**, "Download Submissions" (``ContentZipper#get_filename`` and
  ``#add_upload_submission`` in instructure/canvas-lms ``lib/content_zipper.rb``):
  ``<name>[_LATE]_<user id>_<attachment id>_<file>``, the name being the sortable name in
  lower case without non-word characters; anonymous grading
  ``[LATE_]anon_<anonymous id>_<attachment id>_<file>``::

      smithjohn_12345_67890_01_computational_graphs.ipynb        -> smithjohn_12345
      smithjohn_LATE_12345_67891_01_computational_graphs-1.ipynb -> smithjohn_12345 (late noted)
      anon_x7Yq2_67892_01_computational_graphs.ipynb             -> anon_x7Yq2

* **Moodle**, "Download all submissions" (``mod/assign/classes/downloader.php``:
  ``clean_filename(<full name with '_' made ' '>_<participant id>)`` then
  ``_assignsubmission_<plugin>``), as flat files or, the default since Moodle 3.1, folders
  (some versions end the folder name with ``_``)::

      Ana López_1234567_assignsubmission_file_01_computational_graphs.ipynb -> Ana López_1234567
      Ana López_1234567_assignsubmission_file/01_computational_graphs.ipynb -> Ana López_1234567
      Participant_1234567_assignsubmission_file_/notebook.ipynb (blind)   -> Participant_1234567
      Ana López_1234567_assignsubmission_onlinetext_/onlinetext.html       -> Ana López_1234567

* **Blackboard Learn**, Grade Centre "Assignment File Download" (nbgrader's zip_collect
  documentation; vangef/BBGradebookOrganiser ``utils/organiser.py`` takes the last ``_`` part
  before ``_attempt_`` as the user name; the ``.txt`` beside each attempt is its receipt)::

      Homework 1_jsmith_attempt_2016-01-30-15-00-00_01_computational_graphs.ipynb -> jsmith
      ps1_hacker_attempt_2016-01-30-20-30-10_problem1.ipynb                       -> hacker

  The timestamp orders attempts (the latest is graded) and becomes nbgrader's timestamp.
  A user name with ``_`` in it is recovered from the common prefix when two users would
  otherwise look alike.
* A platform-named file that is not a notebook (a PDF, Moodle's online text, Blackboard's
  receipt) still names its learner, who then gets a row (for Canvas, when the export holds
  Canvas-named notebooks too).
* **Resubmission copies** of a notebook's name, stripped (repeatedly) when what is left names
  the assignment's notebook: Canvas's ``-1``..``-7`` and ``-<uuid>``
  (``Attachment.make_unique_filename``), browsers' ``notebook (2).ipynb``, Jupyter's
  ``notebook-Copy1.ipynb``, Windows' ``notebook - Copy (2).ipynb``, macOS's
  ``notebook copy.ipynb`` / ``notebook 2.ipynb``; ``.IPYNB`` counts as ``.ipynb``.

When one learner handed in the same notebook more than once, the latest counts (by the
timestamp in the name or nbgrader's timestamp.txt, else the file's time). Hidden files and
folders (a name starting with ``.``: ``.ipynb_checkpoints``, ``.DS_Store``, ``._*``) and
``__MACOSX`` are skipped.

Learner ids
-----------
The id kept (``Found.learner``, grades.csv) is the name as handed in, Unicode NFC
normalised: an NFD and an NFC spelling are one learner, any two other names are two
(``김민수`` and ``이영희`` stay apart). Names that are not UTF-8 keep their bytes as
``\\xNN``. ``student_id(learner)`` (``Found.folder``) is the id nbgrader sees, used as a
gradebook key (``Student.id``, String(128)), in folder names
(``submitted/<id>/<assignment>``) and as a file glob (``CourseDirectory.student_id``,
stripped of spaces): a name made of ``A-Za-z0-9_.@+-`` only, starting with a letter or digit,
at most 64 characters, is kept as it is; any other becomes an ASCII slug of it (at most 40
characters) plus ``--`` and 10 hex digits of its SHA-256 (``김민수`` -> ``learner--1a2b...``,
``Ana María`` -> ``Ana_Maria--...``). A kept name never ends like that, so the two kinds never
meet; two learners whose ids would still coincide, or differ only in case, get 32 hex digits.

Limits (``Limits``; defaults)
-----------------------------
* an archive, with every .zip inside it, may decompress at most ``max_bytes`` = 1 GiB of
  what is read (notebooks, .zip files, timestamp.txt) and hold at most ``max_entries`` =
  10,000 entries; .zip files nest at most ``max_depth`` = 3 deep (SUBMISSIONS.zip, or a
  .zip in the SUBMISSIONS folder, is depth 1; a .zip inside it 2);
* an entry that expands more than ``max_ratio`` = 100 times once past ``ratio_free`` =
  10 MiB is a zip bomb; a notebook may be at most ``max_notebook`` = 100,000 KiB (nbgrader's
  ``CourseDirectory.max_file_size``); folders are searched ``max_folder_depth`` = 32 deep.

Header sizes are checked before anything is read, and the bytes are counted again while
they stream; only deflated or stored entries are read. Never followed or read: symbolic
links (in a folder or as zip entries), FIFOs, devices, sockets, entries whose path leaves the
archive (``..``, absolute paths). Each of these, an unreadable file or folder, an archive over
a limit, a broken or encrypted .zip, becomes a note in its learner's reason; a learner whose
every file was refused is graded ``invalid``. Only a problem with SUBMISSIONS itself (missing,
not a folder or a .zip, unreadable, over the limits) raises ``CollectError``.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

_SAFE = re.compile(r"[^A-Za-z0-9_.@+-]+")


class CollectError(Exception):
    """SUBMISSIONS as a whole cannot be read (what is wrong in one learner's files never
    raises it out of open_submissions or collect)."""


class Refused(Exception):
    """One file is not read; the message, for the learner's reason, says why."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 1 << 30          # decompressed per archive, nested ones included
    max_entries: int = 10_000         # per archive, nested ones included
    max_depth: int = 3                # .zip nesting; SUBMISSIONS.zip is depth 1
    max_ratio: int = 100              # expansion allowed past ratio_free
    ratio_free: int = 10 << 20
    max_notebook: int = 100_000 * 1024  # nbgrader's CourseDirectory.max_file_size
    max_folder_depth: int = 32


LIMITS = Limits()


def safe_id(value: str) -> str:
    """The characters of value that are safe in a folder name ("unknown" if none). Not an
    id: different names can give the same result (student_id() is one)."""
    cleaned = _SAFE.sub("_", value.strip()).strip("._")
    return cleaned or "unknown"


# --- learner ids ------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
_HASHED = re.compile(r"--[0-9a-f]{10,}$")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
             *(f"LPT{i}" for i in range(10))}


def _hash(learner: str, n: int) -> str:
    return hashlib.sha256(learner.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def student_id(learner: str, digits: int = 10) -> str:
    """The nbgrader student id and folder name of a learner (see the module docstring)."""
    if digits == 10 and _PLAIN.fullmatch(learner) and not learner.endswith(".") \
            and not _HASHED.search(learner) and learner.split(".")[0].upper() not in _RESERVED:
        return learner
    folded = unicodedata.normalize("NFKD", learner).encode("ascii", "ignore").decode()
    slug = _SAFE.sub("_", folded).strip("._-")[:40].strip("._-")
    if not slug[:1].isalnum():
        slug = ("learner_" + slug)[:40].strip("._-")
    return f"{slug}--{_hash(learner, digits)}"


def _nfc(name: str) -> str:
    """A name from the file system or an archive as text: NFC, undecodable bytes as \\xNN."""
    if any("\udc80" <= c <= "\udcff" for c in name):
        name = os.fsencode(name).decode("utf-8", "backslashreplace")
    return unicodedata.normalize("NFC", name)


def _show(text: str, n: int = 100) -> str:
    """text for a reason: control characters escaped, at most n characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= n else text[: n - 1] + "…"


# --- what SUBMISSIONS holds -------------------------------------------------------------------

@dataclass(eq=False)
class Item:
    """A file or folder in SUBMISSIONS (or in a .zip in it), by its path as handed in."""
    parts: tuple[str, ...]
    kind: str = "file"                                  # "file" or "dir"
    mtime: float = 0.0
    reader: Callable[[int], bytes] | None = None
    limit: int = LIMITS.max_notebook

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def where(self) -> str:
        return _show("/".join(self.parts), 160)

    def read_bytes(self, limit: int | None = None) -> bytes:
        """The contents, at most limit bytes (the notebook limit by default); Refused says
        why not."""
        if self.reader is None:
            raise Refused(f"{self.where}: not a file")
        return self.reader(self.limit if limit is None else limit)


@dataclass
class Submissions:
    """What open_submissions found: items, problems (parts, why), archive-derived folders."""
    where: str
    items: list[Item] = field(default_factory=list)
    problems: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    zip_dirs: set[tuple[str, ...]] = field(default_factory=set)
    limits: Limits = LIMITS
    _keep: list = field(default_factory=list)   # open archives and their files

    def problem(self, parts: tuple[str, ...], why: str) -> None:
        self.problems.append((parts, f"{_show('/'.join(parts), 160)}: {why}"))

    def close(self) -> None:
        for obj in self._keep:
            try:
                obj.close()
            except Exception:
                pass
        self._keep.clear()


class _Budget:
    """What one archive tree (an archive and those inside it) may still take: sizes are
    reserved, from the headers, when an archive is listed; reads never exceed them."""

    def __init__(self, limits: Limits):
        self.bytes = limits.max_bytes
        self.entries = limits.max_entries


_JUNK = {"__MACOSX", "Thumbs.db", "desktop.ini"}


def _junk(name: str) -> bool:
    return name.startswith(".") or name in _JUNK


def _is_zip_name(name: str) -> bool:
    return name.lower().endswith(".zip") and len(name) > 4


def _is_notebook(name: str) -> bool:
    return name.lower().endswith(".ipynb")


def _wanted(name: str) -> bool:
    """Entries whose bytes collect may read."""
    return _is_notebook(name) or _is_zip_name(name) or name == "timestamp.txt"


def _fs_reader(path: str, where: str) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            raise Refused(f"{where}: could not be opened ({exc.strerror or exc})") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Refused(f"{where}: not a regular file; not read")
            if st.st_size > limit:
                raise Refused(f"{where}: {st.st_size:,} bytes, more than the limit of "
                              f"{limit:,}; not read")
            chunks, total = [], 0
            while True:
                chunk = os.read(fd, min(1 << 20, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise Refused(f"{where}: grew past the limit of {limit:,} bytes "
                                  "while being read; not read")
            return b"".join(chunks)
        except OSError as exc:
            raise Refused(f"{where}: could not be read ({exc.strerror or exc})") from None
        finally:
            os.close(fd)
    return read


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                limits: Limits) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        return b"".join(_zip_stream(zf, info, where, limits, limit))
    return read


def _zip_stream(zf, info, where, limits, limit):
    """The entry's bytes in chunks, refusing bombs before and while decompressing."""
    if info.flag_bits & 0x1:
        raise Refused(f"{where}: encrypted; not read")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Refused(f"{where}: compressed with method {info.compress_type}, which is "
                      "not read (only deflate or stored)")
    claimed = info.file_size
    if claimed > limit:
        raise Refused(f"{where}: {claimed:,} bytes uncompressed, more than the "
                      f"limit of {limit:,}; not read")
    allowed = limits.ratio_free + limits.max_ratio * max(info.compress_size, 1)
    if claimed > allowed:
        raise Refused(f"{where}: a zip bomb ({claimed:,} bytes from "
                      f"{info.compress_size:,}, more than {limits.max_ratio}x); not read")
    total = 0
    try:
        with zf.open(info) as src:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > claimed or total > allowed:
                    raise Refused(f"{where}: decompresses to more than its header says "
                                  f"({claimed:,} bytes): a zip bomb; not read")
                yield chunk
    except Refused:
        raise
    except Exception as exc:  # BadZipFile (CRC), zlib.error, OSError, EOFError, ...
        raise Refused(f"{where}: a broken archive entry ({_show(str(exc), 80)}); "
                      "not read") from None


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
        return None, "a NUL character in the path"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return None, "an absolute path; refused"
    parts = tuple(_nfc(p) for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        return None, "a path that leaves the archive; refused"
    return parts, ""


def _list_zip(sub: Submissions, zf: zipfile.ZipFile, prefix: tuple[str, ...], depth: int,
              budget: _Budget, scratch: Path | None, label: str) -> None:
    """Add a zip's entries under prefix; nested zips are opened (within the limits)."""
    limits = sub.limits
    infos = zf.infolist()
    if len(infos) > budget.entries:
        raise CollectError(f"{label}: {len(infos):,} entries, more than the limit of "
                           f"{limits.max_entries:,} (with the archives around it)")
    budget.entries -= len(infos)
    wanted = sum(i.file_size for i in infos
                 if _wanted(i.filename.replace("\\", "/").rsplit("/", 1)[-1]))
    if wanted > budget.bytes:
        raise CollectError(f"{label}: its notebooks and archives take {wanted:,} bytes "
                           f"uncompressed, more than the limit of {limits.max_bytes:,}"
                           " (with the archives around it)")
    budget.bytes -= wanted
    dirs: set[tuple[str, ...]] = set()
    for info in infos:
        rel, why = _entry_parts(info)
        if rel is None:
            sub.problem(prefix + (_nfc(info.filename.replace("\\", "/")),), why)
            continue
        if not rel or any(_junk(p) for p in rel):
            continue
        parts = prefix + rel
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode) if mode else 0
        for i in range(len(prefix) + 1, len(parts)):
            dirs.add(parts[:i])
        if info.is_dir() or kind == stat.S_IFDIR:
            dirs.add(parts)
            continue
        if kind == stat.S_IFLNK:
            target = ""
            if info.file_size <= 1024 and info.compress_type in (zipfile.ZIP_STORED,
                                                                 zipfile.ZIP_DEFLATED):
                try:
                    target = " to " + _show(zf.read(info).decode("utf-8", "replace"), 80)
                except Exception:
                    pass
            sub.problem(parts, f"a symbolic link{target} in the archive: not created, "
                               "not followed, not graded")
            continue
        if kind not in (0, stat.S_IFREG):
            sub.problem(parts, "not a regular file in the archive (a device, FIFO or "
                               "socket entry); not read")
            continue
        try:
            mtime = time.mktime(info.date_time + (0, 0, -1))
        except (OverflowError, ValueError):
            mtime = 0.0
        where = _show("/".join(parts), 160)
        if _is_zip_name(parts[-1]):
            _open_nested(sub, zf, info, parts, depth, budget, scratch, where)
            continue
        sub.items.append(Item(parts, "file", mtime, _zip_reader(zf, info, where, limits),
                              limits.max_notebook))
    sub.items += [Item(d, "dir") for d in sorted(dirs)]


def _open_nested(sub, zf, info, parts, depth, budget, scratch, where) -> None:
    folder = parts[:-1] + (parts[-1][:-4],)
    if depth + 1 > sub.limits.max_depth:
        sub.problem(parts, f"a .zip nested {depth + 1} deep, more than the limit of "
                           f"{sub.limits.max_depth}; not opened")
        return
    tmp = tempfile.TemporaryFile(dir=scratch)
    try:
        for chunk in _zip_stream(zf, info, where, sub.limits, sub.limits.max_bytes):
            tmp.write(chunk)
        tmp.seek(0)
        inner = zipfile.ZipFile(tmp)
    except Refused as exc:
        tmp.close()
        sub.problems.append((parts, str(exc) + " (the .zip was not opened)"))
        return
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        tmp.close()
        sub.problem(parts, f"not a readable .zip archive ({_show(str(exc), 80)}); not opened")
        return
    sub._keep += [inner, tmp]
    mark = len(sub.items), len(sub.problems), budget.bytes, budget.entries
    try:
        _list_zip(sub, inner, folder, depth + 1, budget, scratch, where)
    except CollectError as exc:  # this archive only: its owner gets the reason
        del sub.items[mark[0]:]
        del sub.problems[mark[1]:]
        budget.bytes, budget.entries = mark[2], mark[3]
        sub.problems.append((parts, str(exc) + "; not opened"))
        return
    sub.zip_dirs.add(folder)
    sub.items.append(Item(folder, "dir"))


def _walk(sub: Submissions, root: str, scratch: Path | None) -> None:
    """Add a folder's contents: never following a link, never opening anything but files."""
    limits = sub.limits
    stack: list[tuple[str, tuple[str, ...]]] = [(root, ())]
    while stack:
        path, parts = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as exc:
            if parts:
                sub.problem(parts, f"a folder that could not be read ({exc.strerror or exc})")
                continue
            raise CollectError(f"{path}: could not be read ({exc.strerror or exc})") from None
        for entry in entries:
            name = _nfc(entry.name)
            if _junk(name):
                continue
            here = parts + (name,)
            try:
                if entry.is_symlink():
                    try:
                        target = " to " + _show(_nfc(os.readlink(entry.path)), 80)
                    except OSError:
                        target = ""
                    sub.problem(here, f"a symbolic link{target}: not followed, not graded")
                elif entry.is_dir(follow_symlinks=False):
                    sub.items.append(Item(here, "dir"))
                    if len(here) >= limits.max_folder_depth:
                        sub.problem(here, f"folders nested more than {limits.max_folder_depth} "
                                          "deep; not searched")
                    else:
                        stack.append((entry.path, here))
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    where = _show("/".join(here), 160)
                    if _is_zip_name(name):
                        _open_folder_zip(sub, entry.path, here, scratch, where)
                    else:
                        sub.items.append(Item(here, "file", st.st_mtime,
                                              _fs_reader(entry.path, where), limits.max_notebook))
                elif _wanted(name):
                    sub.problem(here, "not a regular file (a FIFO, device or socket); not read")
            except OSError as exc:
                sub.problem(here, f"could not be examined ({exc.strerror or exc})")


def _open_folder_zip(sub, path, parts, scratch, where) -> None:
    folder = parts[:-1] + (parts[-1][:-4],)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        f = os.fdopen(fd, "rb")
    except OSError as exc:
        sub.problem(parts, f"could not be opened ({exc.strerror or exc})")
        return
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        f.close()
        sub.problem(parts, f"not a readable .zip archive ({_show(str(exc), 80)}); not opened")
        return
    sub._keep += [zf, f]
    mark = len(sub.items), len(sub.problems)
    try:
        _list_zip(sub, zf, folder, 1, _Budget(sub.limits), scratch, where)
    except CollectError as exc:
        del sub.items[mark[0]:]
        del sub.problems[mark[1]:]
        sub.problems.append((parts, str(exc) + "; not opened"))
        return
    sub.zip_dirs.add(folder)
    sub.items.append(Item(folder, "dir"))


def open_submissions(path: Path, scratch: Path | None = None,
                     limits: Limits | None = None) -> Submissions:
    """What SUBMISSIONS holds: a folder's contents, or a .zip's (nested ones opened too).

    Raises CollectError, with a message for the instructor, when SUBMISSIONS itself cannot
    be read; anything wrong inside it is a problem of the learner it belongs to."""
    limits = limits or LIMITS
    path = Path(path)
    if scratch is not None:
        scratch = Path(scratch)
        scratch.mkdir(parents=True, exist_ok=True)
    sub = Submissions(str(path), limits=limits)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CollectError(f"{path}: no such file or folder") from None
    except OSError as exc:
        raise CollectError(f"{path}: could not be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        _walk(sub, str(path), scratch)
        return sub
    if not stat.S_ISREG(st.st_mode):
        raise CollectError(f"{path}: not a folder or a .zip file")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise CollectError(f"{path}: could not be read ({exc.strerror or exc})") from None
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
        f.close()
        raise CollectError(f"{path}: not a folder or a readable .zip file "
                           f"({_show(str(exc), 80)})") from None
    sub._keep += [zf, f]
    _list_zip(sub, zf, (), 1, _Budget(limits), scratch, str(path))
    return sub


# --- whose is each file -------------------------------------------------------------------------

_COPY = re.compile(r"(\s*\(\d+\)|\s*-\s*Copy(\s*\(\d+\))?\d*|\s+copy\s*\d*|-\d{1,3}|\s+\d{1,3}"
                   r"|-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
                   re.IGNORECASE)
_MOODLE = re.compile(r"(?P<name>[^_]+?)(?:_(?P<uid>\d+))?_assign(?:submission|feedback)_"
                     r"(?P<plugin>[a-z]+)(?:_(?P<file>.*))?", re.S)
_CANVAS = re.compile(r"(?P<name>.+?)(?P<late>_late)?_(?P<uid>\d+)_(?P<aid>\d+)_(?P<file>.+)",
                     re.S | re.IGNORECASE)
_CANVAS_ANON = re.compile(r"(?P<late>late_)?(?P<name>anon_[A-Za-z0-9]+)_(?P<aid>\d+)_"
                          r"(?P<file>.+)", re.S | re.IGNORECASE)
_BLACKBOARD = re.compile(r"(?P<head>.+)_attempt_(?P<ts>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})"
                         r"(?:_(?P<file>.+))?", re.S)


@dataclass
class _Named:
    learner: str
    file: str | None         # the file's own name, decorations removed (None: none left)
    timestamp: str | None = None
    note: str | None = None
    head: str | None = None  # Blackboard: everything before _attempt_
    kind: str = ""           # "moodle", "blackboard", "canvas", "regexp", "generic"


def _platform(name: str) -> _Named | None:
    """The learner a platform's decorations name, if name has them."""
    m = _MOODLE.fullmatch(name)
    if m:
        learner = m["name"] + (f"_{m['uid']}" if m["uid"] else "")
        return _Named(learner, m["file"] or None, kind="moodle")
    m = _BLACKBOARD.fullmatch(name)
    if m:
        return _Named(m["head"].rsplit("_", 1)[-1], m["file"], _stamp(m["ts"]), head=m["head"],
                      kind="blackboard")
    m = _CANVAS_ANON.fullmatch(name) or _CANVAS.fullmatch(name)
    if m:
        uid = m.groupdict().get("uid")
        learner = m["name"] + (f"_{uid}" if uid else "")
        return _Named(learner, m["file"], None,
                      "handed in late (Canvas marked it LATE)" if m["late"] else None,
                      kind="canvas")
    return None


def _match(name: str, nb_set: set[str]) -> str | None:
    """The assignment notebook a file name is a copy of, if any."""
    stem = name[:-6] if _is_notebook(name) else name
    for _ in range(4):
        if stem in nb_set:
            return stem
        folded = {n.casefold(): n for n in nb_set}
        if stem.casefold() in folded:
            return folded[stem.casefold()]
        shorter = _COPY.sub("", stem)
        if shorter == stem or not shorter:
            return None
        stem = shorter
    return None


def _generic(name: str, nb_set: set[str]) -> _Named | None:
    """<learner>_<anything>_<notebook>.ipynb or <learner>_<notebook>.ipynb."""
    stem = name[:-6] if _is_notebook(name) else name
    for nb_id in sorted(nb_set, key=len, reverse=True):
        for cand in {stem, _COPY.sub("", stem)}:
            if cand.endswith("_" + nb_id) and len(cand) > len(nb_id) + 1:
                learner = cand[: -len(nb_id) - 1].split("_")[0]
                if learner:
                    return _Named(learner, nb_id + ".ipynb", kind="generic")
    return None


def _stamp(text: str | None) -> str | None:
    """A timestamp from a file name, as nbgrader reads them (Blackboard's
    2016-01-30-15-00-00 becomes 2016-01-30 15:00:00)."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[-_ T](\d{2})-(\d{2})-(\d{2})", text or "")
    return f"{m[1]} {m[2]}:{m[3]}:{m[4]}" if m else text


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        from nbgrader.utils import parse_utc
        return parse_utc(stamp).timestamp()
    except Exception:
        return None


@dataclass
class _Cand:
    item: Item
    key: float
    stamp: str | None


@dataclass
class Found:
    """One learner: what they handed in for each notebook, and what to say about it."""
    learner: str                                          # as handed in, NFC
    files: dict[str, Item] = field(default_factory=dict)  # notebook id -> the one graded
    times: dict[str, str] = field(default_factory=dict)   # notebook id -> its time
    notes: list[str] = field(default_factory=list)        # for the reason, problems included
    problems: list[str] = field(default_factory=list)     # what was refused
    folder: str = ""                                      # nbgrader student id (student_id())
    candidates: dict[str, list[_Cand]] = field(default_factory=dict)

    @property
    def timestamp(self) -> str | None:
        """nbgrader's timestamp for the submission: the latest one known, if any."""
        stamps = [c.stamp for nb, c in self._chosen() if c.stamp]
        return max(stamps, key=lambda s: _epoch(s) or 0.0) if stamps else None

    def _chosen(self):
        for nb, cands in self.candidates.items():
            if cands:
                yield nb, cands[0]

    def read(self, notebooks: list[str], limit: int | None = None) -> dict[str, bytes | None]:
        """notebook id -> its bytes (None: not handed in or refused; the note says why).
        When the latest copy cannot be read, the one before it is tried."""
        out: dict[str, bytes | None] = {}
        for nb in notebooks:
            out[nb] = None
            for i, cand in enumerate(self.candidates.get(nb, [])):
                try:
                    out[nb] = cand.item.read_bytes(limit)
                except Refused as exc:
                    self._problem(str(exc))
                    continue
                if i:
                    self.notes.append(f"{nb}: graded {cand.item.where} instead")
                    self.files[nb] = cand.item
                break
            else:
                self.files.pop(nb, None)
        return out

    def refused(self, notebooks: dict[str, bytes | None]) -> bool:
        """Nothing to grade, and something was handed in and refused."""
        return all(v is None for v in notebooks.values()) and bool(self.problems)

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)
            self.notes.append(text)


_NBGRADER_SIBLINGS = {"source", "release", "autograded", "feedback", "gradebook.db",
                      "nbgrader_config.py"}


def _class_root(sub: Submissions, nb_set: set[str]) -> tuple[str, ...]:
    """The folder whose entries are the learners (see "Layouts" above)."""
    paths = [it.parts for it in sub.items] + [p for p, _ in sub.problems]
    kinds = {it.parts: it.kind for it in sub.items}

    def level(prefix: tuple[str, ...], depth: int) -> tuple[str, ...]:
        n = len(prefix)
        below = [p for p in paths if len(p) > n and p[:n] == prefix]
        names = {p[n] for p in below}
        if depth > 8:
            return prefix
        if "submitted" in names and kinds.get(prefix + ("submitted",)) == "dir" \
                and (names & _NBGRADER_SIBLINGS or names == {"submitted"}):
            return level(prefix + ("submitted",), depth + 1)    # nbgrader's course folder
        if len(names) != 1:
            return prefix
        (top,) = names
        here = prefix + (top,)
        if kinds.get(here) != "dir":
            return prefix
        inside = [p for p in below if len(p) > n + 1]
        direct = [p[n + 1] for p in inside if len(p) == n + 2 and kinds.get(p) == "file"]
        subdirs = {p[n + 1] for p in inside if len(p) > n + 2 or kinds.get(p) == "dir"}
        generic = {g.learner for d in direct if (g := _generic(d, nb_set))}
        if any(_platform(d) for d in direct) or len(generic) > 1:
            return level(here, depth + 1)       # a folder of platform-named files
        if any(_is_notebook(d) for d in direct) or any(_match(s, nb_set) for s in subdirs):
            return prefix                       # a learner's folder (or <learner>/<assignment>/)
        if "submitted" in subdirs or len(subdirs) > 1 or any(_platform(s) for s in subdirs):
            return level(here, depth + 1)       # a folder of learner folders
        if len(subdirs) == 1 and not direct:    # class/section/...: only if a class is below
            deeper = level(here, depth + 1)
            return deeper if len(deeper) > len(here) else prefix
        return prefix

    return level((), 0)


def collect(root, notebooks: list[str],
            regexp: str | None = None) -> tuple[dict[str, Found], list[str]]:
    """Learner id -> their notebooks, from what open_submissions found (or from a folder),
    and notes on what could be given to no learner."""
    sub = root if isinstance(root, Submissions) else open_submissions(Path(root))
    nb_set = set(notebooks)
    try:
        user = re.compile(regexp, re.S) if regexp else None
    except re.error as exc:
        raise CollectError(f"--regexp {regexp!r}: not a regular expression ({exc})") from None
    prefix = _class_root(sub, nb_set)
    n = len(prefix)
    index = {it.parts: it for it in sub.items}
    found: dict[str, Found] = {}
    unmatched: list[str] = []
    owned: dict[str, list[tuple[Item, _Named | None]]] = {}
    blackboard: list[tuple[Item, _Named]] = []
    canvas_others: list[_Named] = []
    canvas_seen = False

    def entry(learner: str) -> Found:
        learner = _nfc(learner)
        return found.setdefault(learner, Found(learner))

    def note(learner: str, text: str) -> None:
        e = entry(learner)
        if text not in e.notes:
            e.notes.append(text)

    def own(learner: str, it: Item, named: _Named | None) -> None:
        owned.setdefault(entry(learner).learner, []).append((it, named))

    def folder_learner(name: str, parts: tuple[str, ...]) -> str:
        named = _platform(name)
        if named and (named.file is None or parts in sub.zip_dirs):
            return named.learner             # Moodle's folders; a platform-named .zip
        if parts in sub.zip_dirs:
            generic = _generic(name, nb_set)
            if generic:
                return generic.learner
        return name

    for it in sub.items:
        if len(it.parts) <= n or it.parts[:n] != prefix:
            continue
        rel = it.parts[n:]
        if it.kind == "dir":
            if len(rel) == 1:
                entry(folder_learner(rel[0], it.parts))
            continue
        if user and _is_notebook(it.name):
            m = user.match("/".join(rel)) or user.match(it.name)
            gd = m.groupdict() if m else {}
            if gd.get("student_id") and gd.get("file_id") is not None:
                own(gd["student_id"], it, _Named(gd["student_id"], gd["file_id"],
                                                 _stamp(gd.get("timestamp")), kind="regexp"))
                continue
        if len(rel) == 1:                    # a file at the class root: named by a platform
            named = _platform(it.name)
            if named is None and _is_notebook(it.name):
                named = _generic(it.name, nb_set)
            if named is None:
                if _is_notebook(it.name):
                    unmatched.append(f"{it.where}: no learner id in the file name")
                continue
            if named.kind == "blackboard":
                blackboard.append((it, named))
                continue
            if named.kind == "canvas" and not _is_notebook(it.name):
                canvas_others.append(named)  # a learner only if this is a Canvas export
                continue
            canvas_seen |= named.kind == "canvas"
            if named.note:
                note(named.learner, named.note)
            if _is_notebook(it.name):
                own(named.learner, it, named)
            else:
                entry(named.learner)         # handed in something else (Moodle)
            continue
        learner = folder_learner(rel[0], it.parts[: n + 1])
        entry(learner)
        if _is_notebook(it.name):
            own(learner, it, _platform(it.name))
    if canvas_seen:
        for named in canvas_others:
            entry(named.learner)
            if named.note:
                note(named.learner, named.note)

    # Blackboard: the user name is the last part before _attempt_, unless two users' would
    # end alike; then what follows the prefix every file shares (the assignment's name).
    heads = {named.head for _, named in blackboard}
    lasts: dict[str, set[str]] = {}
    for h in heads:
        lasts.setdefault(h.rsplit("_", 1)[-1], set()).add(h)
    common = os.path.commonprefix(sorted(heads)) if len(heads) > 1 else ""
    cut = common.rfind("_") + 1

    def bb_learner(head: str) -> str:
        last = head.rsplit("_", 1)[-1]
        return (head[cut:] or head) if len(lasts.get(last, ())) > 1 else last

    for it, named in blackboard:
        learner = bb_learner(named.head)
        if _is_notebook(it.name):
            own(learner, it, named)
        else:
            entry(learner)                   # the attempt's receipt (.txt)

    def time_of(it: Item, named: _Named | None) -> tuple[float, str | None]:
        stamp = named.timestamp if named and _epoch(named.timestamp) is not None else None
        if not stamp:                        # nbgrader's timestamp.txt beside it or above
            for d in (it.parts[:-1], it.parts[:-2]):
                ts = index.get(d + ("timestamp.txt",))
                if ts is None or len(d) <= n:
                    continue
                try:
                    text = ts.read_bytes(1024).decode("utf-8", "replace").strip()
                except Refused:
                    continue
                if _epoch(text) is not None:
                    stamp = text
                    break
        return (_epoch(stamp) if stamp else it.mtime), stamp

    def add(learner: str, nb: str, it: Item, named: _Named | None) -> None:
        e = entry(learner)
        key, stamp = time_of(it, named)
        cands = e.candidates.setdefault(nb, [])
        if cands:
            note(learner, f"{nb} handed in more than once; the latest was graded")
        cands.append(_Cand(it, key, stamp))
        cands.sort(key=lambda c: -c.key)
        e.files[nb] = cands[0].item
        e.times[nb] = cands[0].stamp or f"{cands[0].item.mtime:020.6f}"

    for learner, items in owned.items():
        named_, others = [], []
        for it, nm in items:
            nb = _match(nm.file if nm and nm.file else it.name, nb_set)
            (named_ if nb else others).append((it, nb, nm))
        for it, nb, nm in named_:
            add(learner, nb, it, nm)
        if len(nb_set) == 1 and not named_ and others:
            nb = notebooks[0]
            if len(others) == 1:
                it, _, nm = others[0]
                add(learner, nb, it, nm)
                note(learner, f"notebook saved as {_show(it.name)}; graded as {nb}.ipynb")
            else:
                it, _, nm = max(others, key=lambda o: time_of(o[0], o[2])[0])
                add(learner, nb, it, nm)
                note(learner, f"{len(others)} notebooks, none named {nb}.ipynb; graded the "
                              f"latest, {_show(it.name)}")

    # What was refused goes to the learner it belongs to.
    for parts, why in sub.problems:
        if len(parts) <= n or parts[:n] != prefix:
            unmatched.append(why)
            continue
        rel = parts[n:]
        name = rel[0]
        learner = None
        if len(rel) > 1:
            learner = folder_learner(name, parts[: n + 1])
        else:
            named = _platform(name[:-4] if _is_zip_name(name) else name)
            if named is None and (_is_notebook(name) or _is_zip_name(name)):
                named = _generic(name[:-4] if _is_zip_name(name) else name, nb_set)
            if named is not None:
                learner = bb_learner(named.head) if named.head else named.learner
            elif _is_zip_name(name):
                learner = name[:-4]          # a learner's .zip that could not be opened
            elif "." not in name:
                learner = name               # a learner's folder that is a link, or unreadable
        if learner:
            entry(learner)._problem(why)
        else:
            unmatched.append(why)

    for e in found.values():
        if not e.candidates and not e.problems and "no notebook handed in" not in e.notes:
            e.notes.append("no notebook handed in")
    _assign_folders(found)
    return found, unmatched


def _assign_folders(found: dict[str, Found]) -> None:
    """Each learner's student_id(); never one id, or one up to case, for two learners."""
    ids = {learner: student_id(learner) for learner in found}
    groups: dict[str, list[str]] = {}
    for learner, sid in ids.items():
        groups.setdefault(sid.casefold(), []).append(learner)
    for group in groups.values():
        if len(group) > 1:
            for learner in group:
                ids[learner] = student_id(learner, digits=32)
    for learner, e in found.items():
        e.folder = ids[learner]
