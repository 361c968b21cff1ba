"""Reading what a learner handed in: any bytes in, a valid nbformat 4 notebook or a reason out.

A learning platform hands back whatever was uploaded: a notebook, a notebook saved by an
old Jupyter (nbformat 3), one edited in a text editor (a cell without ``outputs``, a list
where a string belongs, a broken ``nbgrader`` entry), or something that is not JSON at all.
:func:`read_submission` repairs what can be repaired without guessing at the learner's
code, says what it changed, and otherwise says why the file cannot be graded. Metadata
is not the learner's to set: the notebook's keeps only its kernel and language (hints that
RestoreCells replaces from the gradebook).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

import nbformat
from backprop.i18n import _

from . import notes

_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")
#: Notebook-level metadata kept from a submission (the grader rebuilds all of it anyway).
NOTEBOOK_METADATA_READ = frozenset({"kernelspec", "language_info"})


@dataclass
class Submission:
    nb: nbformat.NotebookNode | None
    repairs: list[str] = field(default_factory=list)
    error: str | None = None


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v if isinstance(v, str) else str(v) for v in value)
    return "" if value is None else str(value)


class _Unreadable(Exception):
    """Why a file cannot be graded (its message is the reason shown)."""


def _parse(data: bytes) -> dict:
    if not data.strip():
        raise _Unreadable(_("the file is empty"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Unreadable(
            _("not a notebook: not UTF-8 text ({why} at byte {at})").format(
                why=exc.reason, at=exc.start
            )
        ) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Unreadable(
            _("not a notebook: invalid JSON ({why} at line {line}, column {column})").format(
                why=exc.msg, line=exc.lineno, column=exc.colno
            )
        ) from None
    if not isinstance(raw, dict):
        raise _Unreadable(_("not a notebook: the JSON is not an object"))
    return raw


def _as_version_4(raw: dict, repairs: list[str]) -> dict:
    major = raw.get("nbformat")
    if not isinstance(major, int):
        if isinstance(raw.get("cells"), list):
            major = 4
            repairs.append(_("nbformat version missing; read as version 4"))
        elif isinstance(raw.get("worksheets"), list):
            major = 3
        else:
            raise _Unreadable(_("not a notebook: no cells"))
        raw["nbformat"] = major
        raw.setdefault("nbformat_minor", 0)
    if major > 4:
        raise _Unreadable(
            _("not a notebook this Jupyter can read (nbformat {major})").format(major=major)
        )
    if major < 4:
        try:
            nb = nbformat.reads(json.dumps(raw), as_version=4)
        except Exception as exc:
            raise _Unreadable(
                _("an old notebook (nbformat {major}) that could not be converted: {why}").format(
                    major=major, why=exc
                )
            ) from None
        repairs.append(_("converted from nbformat {major} to 4").format(major=major))
        raw = json.loads(nbformat.writes(nb))
    if not isinstance(raw.get("nbformat_minor"), int):
        raw["nbformat_minor"] = 4
    return raw


def _metadata(raw: dict, repairs: list[str]) -> dict:
    """The notebook's metadata is the grader's to write (RestoreCells makes it anew from the
    gradebook); of the learner's, only the kernel and language are read, as hints."""
    meta = raw.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        repairs.append(_("notebook metadata replaced"))
    if notes.KEY in meta:
        repairs.append(
            _("the notebook's metadata held the grader's own entry ({key}); ignored").format(
                key=repr(notes.KEY)
            )
        )
    return {k: v for k, v in meta.items() if k in NOTEBOOK_METADATA_READ and isinstance(v, dict)}


def _cell(cell: dict, minor: int, seen_ids: set, repairs: list[str]) -> dict:
    kind = cell.get("cell_type")
    if kind not in ("code", "markdown", "raw"):
        repairs.append(_("a cell of type {kind} read as a raw cell").format(kind=repr(kind)))
        kind = "raw"
    meta = cell.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    nbg = meta.get("nbgrader")
    if nbg is not None and not (isinstance(nbg, dict) and isinstance(nbg.get("grade_id"), str)):
        del meta["nbgrader"]
        repairs.append(_("a cell's broken nbgrader metadata removed"))
    new = {"cell_type": kind, "metadata": meta, "source": _text(cell.get("source"))}
    if kind == "code":
        new["outputs"] = []  # outputs are cleared before grading anyway
        new["execution_count"] = None
    elif isinstance(cell.get("attachments"), dict):
        new["attachments"] = cell["attachments"]
    if minor >= 5:
        cid = cell.get("id")
        if not isinstance(cid, str) or not _ID.match(cid) or cid in seen_ids:
            cid = uuid.uuid4().hex[:8]
        seen_ids.add(cid)
        new["id"] = cid
    return new


def _cells(raw: dict, repairs: list[str]) -> list[dict]:
    cells = raw.get("cells")
    if not isinstance(cells, list):
        raise _Unreadable(_("not a notebook: 'cells' is not a list"))
    seen_ids: set = set()
    fixed = [
        _cell(c, raw["nbformat_minor"], seen_ids, repairs) for c in cells if isinstance(c, dict)
    ]
    if len(fixed) < len(cells):
        repairs.append(
            _("{n} entries of 'cells' that were not cells dropped").format(
                n=len(cells) - len(fixed)
            )
        )
    return fixed


def read_submission(data: bytes) -> Submission:
    """Parse and repair; ``Submission.error`` says why not when the file cannot be graded."""
    repairs: list[str] = []
    try:
        raw = _as_version_4(_parse(data), repairs)
        raw["metadata"] = _metadata(raw, repairs)
        raw["cells"] = _cells(raw, repairs)
    except _Unreadable as exc:
        return Submission(None, error=str(exc))
    raw = {k: raw[k] for k in ("cells", "metadata", "nbformat", "nbformat_minor")}
    try:
        nb = nbformat.from_dict(raw)
        nbformat.validate(nb)
    except Exception as exc:
        return Submission(
            None,
            error=_("not a valid notebook even after repair: {why}").format(
                why=str(exc).splitlines()[0]
            ),
        )
    return Submission(nb, repairs)
