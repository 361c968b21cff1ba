"""Learner ids: the name kept for grades.csv, and the id nbgrader sees.

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
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

SAFE = re.compile(r"[^A-Za-z0-9_.@+-]+")
PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")  # kept as it is
HASHED_ID = re.compile(r"--[0-9a-f]{10,}$")  # how a made id ends
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"{d}{i}" for d in ("COM", "LPT") for i in range(10))}


def safe_id(value: str) -> str:
    """The characters of value that are safe in a folder name ("unknown" if none). Not an
    id: different names can give the same result (student_id() is one)."""
    cleaned = SAFE.sub("_", value.strip()).strip("._")
    return cleaned or "unknown"


def _hash(learner: str, n: int) -> str:
    return hashlib.sha256(learner.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def _kept(learner: str) -> bool:
    """A name nbgrader can use as it is."""
    return (
        bool(PLAIN_ID.fullmatch(learner))
        and not learner.endswith(".")
        and not HASHED_ID.search(learner)
        and learner.split(".")[0].upper() not in _RESERVED
    )


def student_id(learner: str, digits: int = 10) -> str:
    """The nbgrader student id and folder name of a learner (see the module docstring);
    digits: how many hex digits of the hash a made id ends with."""
    if digits == 10 and _kept(learner):
        return learner
    folded = unicodedata.normalize("NFKD", learner).encode("ascii", "ignore").decode()
    slug = SAFE.sub("_", folded).strip("._-")[:40].strip("._-")
    if not slug[:1].isalnum():
        slug = ("learner_" + slug)[:40].strip("._-")
    return f"{slug}--{_hash(learner, digits)}"


def assign_ids(learners: list[str]) -> dict[str, str]:
    """Learner -> student_id(); never one id, or one up to case, for two learners."""
    ids = {learner: student_id(learner) for learner in learners}
    groups: dict[str, list[str]] = {}
    for learner, sid in ids.items():
        groups.setdefault(sid.casefold(), []).append(learner)
    for group in groups.values():
        if len(group) > 1:
            for learner in group:
                ids[learner] = student_id(learner, digits=32)
    return ids
