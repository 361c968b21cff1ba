"""Finding each learner's notebooks in what a learning platform exports.

Accepted, as a folder or a .zip of one (nested .zip files are opened too):

* a folder per learner, the notebooks anywhere inside it, as nbgrader's own
  ``submitted/<learner>/<assignment>/<notebook>.ipynb`` or a platform's
  ``<learner>/<anything>/<notebook>.ipynb``; a folder that holds one notebook when the
  assignment has one is taken to hold it under whatever name it was saved;
* flat files named as nbgrader's ``zip_collect`` documents for its
  FileNameCollectorPlugin: ``<anything>_<learner>_attempt_<timestamp>_<notebook>.ipynb``;
* flat files ``<learner>_<anything>_<notebook>.ipynb`` or ``<learner>_<notebook>.ipynb``;
* any other naming, with ``--regexp`` (nbgrader's ``named_regexp``: the groups
  ``student_id`` and ``file_id``, optionally ``timestamp``).

When one learner handed in the same notebook more than once, the latest counts (by the
``timestamp`` in the name or nbgrader's timestamp.txt, else the file's time).
"""
from __future__ import annotations

import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

# nbgrader's documented FileNameCollectorPlugin example (Blackboard's naming).
ATTEMPT_REGEXP = r".*_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>\w+)"
_SAFE = re.compile(r"[^A-Za-z0-9_.@+-]+")
_COPY = re.compile(r"(\s*\(\d+\)|\s*-\s*Copy\d*|\s*copy\d*)$", re.IGNORECASE)


def safe_id(value: str) -> str:
    """A learner id usable as a folder name and an nbgrader student id."""
    cleaned = _SAFE.sub("_", value.strip()).strip("._")
    return cleaned or "unknown"


@dataclass
class Found:
    learner: str
    files: dict[str, Path] = field(default_factory=dict)  # notebook id -> file
    times: dict[str, str] = field(default_factory=dict)   # notebook id -> sortable time
    notes: list[str] = field(default_factory=list)


def extract(archive: Path, dest: Path) -> Path:
    """Unzip (nested zips too) refusing paths that leave dest; returns dest."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename.replace("\\", "/")
            if name.startswith("/") or ".." in Path(name).parts or name.startswith("__MACOSX"):
                continue
            target = dest / name
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            if target.suffix.lower() == ".zip":
                try:
                    extract(target, target.with_suffix(""))
                    target.unlink()
                except zipfile.BadZipFile:
                    pass
    return dest


def _stem(name: str) -> str:
    return _COPY.sub("", Path(name).stem)


def _time_of(path: Path, named: str | None) -> str:
    if named:
        m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[-_ T](\d{2})-(\d{2})-(\d{2})", named)
        return f"{m[1]} {m[2]}:{m[3]}:{m[4]}" if m else named  # Blackboard's 2016-01-30-15-00-00
    for parent in (path.parent, path.parent.parent):
        ts = parent / "timestamp.txt"
        if ts.is_file():
            try:
                return ts.read_text().strip()
            except OSError:
                pass
    return f"{path.stat().st_mtime:020.6f}"


def collect(root: Path, notebooks: list[str],
            regexp: str | None = None) -> tuple[dict[str, Found], list[str]]:
    """Learner id -> their notebook files, from a folder laid out as described above,
    and the files that could not be given to any learner."""
    found: dict[str, Found] = {}
    nb_set = set(notebooks)
    patterns = [re.compile(regexp)] if regexp else []
    patterns.append(re.compile(ATTEMPT_REGEXP))

    def add(learner: str, nb_id: str, path: Path, when: str | None = None) -> None:
        learner = safe_id(learner)
        entry = found.setdefault(learner, Found(learner))
        t = _time_of(path, when)
        if nb_id in entry.files:
            entry.notes.append(f"{nb_id} handed in more than once; the latest was graded")
            if t < entry.times[nb_id]:
                return
        entry.files[nb_id] = path
        entry.times[nb_id] = t

    ipynbs = sorted(p for p in root.rglob("*.ipynb")
                    if ".ipynb_checkpoints" not in p.parts and p.is_file())
    loose: list[Path] = []
    for path in ipynbs:
        rel = path.relative_to(root)
        full = str(rel)
        matched = False
        for pat in patterns:
            m = pat.match(full) or pat.match(path.name)
            if m and "student_id" in m.groupdict() and "file_id" in m.groupdict():
                file_id = _stem(m.group("file_id") + ".ipynb")
                if file_id in nb_set or len(nb_set) == 1:
                    add(m.group("student_id"), file_id if file_id in nb_set else notebooks[0],
                        path, m.groupdict().get("timestamp"))
                    matched = True
                    break
        if matched:
            continue
        if len(rel.parts) == 1:
            stem = _stem(path.name)
            for nb_id in sorted(nb_set, key=len, reverse=True):
                if stem.endswith("_" + nb_id) and len(stem) > len(nb_id) + 1:
                    learner = stem[: -len(nb_id) - 1].split("_")[0]
                    add(learner, nb_id, path)
                    matched = True
                    break
            if not matched:
                found.setdefault("_unmatched", Found("_unmatched")).notes.append(
                    f"{rel}: no learner id in the file name")
            continue
        loose.append(path)

    # A folder per learner: the first folder below the root names the learner.
    by_learner: dict[str, list[Path]] = {}
    for path in loose:
        by_learner.setdefault(path.relative_to(root).parts[0], []).append(path)
    for learner, paths in by_learner.items():
        named = [p for p in paths if _stem(p.name) in nb_set]
        for p in named:
            add(learner, _stem(p.name), p)
        others = [p for p in paths if p not in named]
        if len(nb_set) == 1 and not named and others:
            if len(others) == 1:
                add(learner, notebooks[0], others[0])
                found[safe_id(learner)].notes.append(
                    f"notebook saved as {others[0].name}; graded as {notebooks[0]}.ipynb")
            else:
                latest = max(others, key=lambda p: p.stat().st_mtime)
                add(learner, notebooks[0], latest)
                found[safe_id(learner)].notes.append(
                    f"{len(others)} notebooks, none named {notebooks[0]}.ipynb; graded the "
                    f"latest, {latest.name}")
    # Learner folders with no notebook at all still count: they get a row.
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith((".", "__MACOSX")) \
                and safe_id(child.name) not in found and not any(child.rglob("*.ipynb")):
            found.setdefault(safe_id(child.name), Found(safe_id(child.name))).notes.append(
                "no notebook handed in")
    unmatched = found.pop("_unmatched", None)
    return found, (unmatched.notes if unmatched else [])


def open_submissions(path: Path, scratch: Path) -> Path:
    """A folder to collect from: path itself, or where the .zip was extracted."""
    if path.is_file() and zipfile.is_zipfile(path):
        return extract(path, scratch / "extracted")
    if path.is_dir():
        # zips inside the folder (one per learner, as some platforms export) are opened
        zips = [p for p in path.rglob("*.zip") if p.is_file()]
        if not zips:
            return path
        dest = scratch / "extracted"
        shutil.copytree(path, dest, ignore=shutil.ignore_patterns("*.zip"), dirs_exist_ok=True)
        for z in zips:
            rel = z.relative_to(path)
            try:
                extract(z, dest / rel.with_suffix(""))
            except zipfile.BadZipFile:
                pass
        return dest
    raise FileNotFoundError(f"{path}: not a folder or a .zip file")
