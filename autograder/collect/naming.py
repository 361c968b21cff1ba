"""Whose is a file: the learner and the notebook a platform's file name stands for.

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
  otherwise look alike (``BlackboardNames``).
* A platform-named file that is not a notebook (a PDF, Moodle's online text, Blackboard's
  receipt) still names its learner, who then gets a row (for Canvas, when the export holds
  Canvas-named notebooks too).
* **Resubmission copies** of a notebook's name, stripped (repeatedly) when what is left names
  the assignment's notebook: Canvas's ``-1``..``-7`` and ``-<uuid>``
  (``Attachment.make_unique_filename``), browsers' ``notebook (2).ipynb``, Jupyter's
  ``notebook-Copy1.ipynb``, Windows' ``notebook - Copy (2).ipynb``, macOS's
  ``notebook copy.ipynb`` / ``notebook 2.ipynb``; ``.IPYNB`` counts as ``.ipynb``.
* Without a platform's decorations: ``<learner>_<anything>_<notebook>.ipynb`` or
  ``<learner>_<notebook>.ipynb`` (``generic``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .items import is_notebook

_COPY = re.compile(
    r"(\s*\(\d+\)|\s*-\s*Copy(\s*\(\d+\))?\d*|\s+copy\s*\d*|-\d{1,3}|\s+\d{1,3}"
    r"|-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
    re.IGNORECASE,
)
_MOODLE = re.compile(
    r"(?P<name>[^_]+?)(?:_(?P<uid>\d+))?_assign(?:submission|feedback)_"
    r"(?P<plugin>[a-z]+)(?:_(?P<file>.*))?",
    re.DOTALL,
)
_CANVAS = re.compile(
    r"(?P<name>.+?)(?P<late>_late)?_(?P<uid>\d+)_(?P<aid>\d+)_(?P<file>.+)",
    re.DOTALL | re.IGNORECASE,
)
_CANVAS_ANON = re.compile(
    r"(?P<late>late_)?(?P<name>anon_[A-Za-z0-9]+)_(?P<aid>\d+)_(?P<file>.+)",
    re.DOTALL | re.IGNORECASE,
)
_BLACKBOARD = re.compile(
    r"(?P<head>.+)_attempt_(?P<ts>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})(?:_(?P<file>.+))?", re.DOTALL
)


@dataclass
class Named:
    """What a file name says."""

    learner: str
    file: str | None  # the file's own name, decorations removed (None: none left)
    timestamp: str | None = None
    note: str | None = None
    head: str | None = None  # Blackboard: everything before _attempt_
    kind: str = ""  # "moodle", "blackboard", "canvas", "regexp", "generic"


def platform(name: str) -> Named | None:
    """The learner a platform's decorations name, if name has them."""
    m = _MOODLE.fullmatch(name)
    if m:
        learner = m["name"] + (f"_{m['uid']}" if m["uid"] else "")
        return Named(learner, m["file"] or None, kind="moodle")
    m = _BLACKBOARD.fullmatch(name)
    if m:
        learner = m["head"].rsplit("_", 1)[-1]
        return Named(learner, m["file"], stamp(m["ts"]), head=m["head"], kind="blackboard")
    m = _CANVAS_ANON.fullmatch(name) or _CANVAS.fullmatch(name)
    if m:
        uid = m.groupdict().get("uid")
        learner = m["name"] + (f"_{uid}" if uid else "")
        late = "handed in late (Canvas marked it LATE)" if m["late"] else None
        return Named(learner, m["file"], None, late, kind="canvas")
    return None


def match_notebook(name: str, nb_set: set[str]) -> str | None:
    """The assignment notebook a file name is a copy of, if any."""
    stem = name[:-6] if is_notebook(name) else name
    folded = {n.casefold(): n for n in nb_set}
    for _ in range(4):
        if stem in nb_set:
            return stem
        if stem.casefold() in folded:
            return folded[stem.casefold()]
        shorter = _COPY.sub("", stem)
        if shorter == stem or not shorter:
            return None
        stem = shorter
    return None


def generic(name: str, nb_set: set[str]) -> Named | None:
    """<learner>_<anything>_<notebook>.ipynb or <learner>_<notebook>.ipynb."""
    stem = name[:-6] if is_notebook(name) else name
    for nb_id in sorted(nb_set, key=len, reverse=True):
        for cand in {stem, _COPY.sub("", stem)}:
            if cand.endswith("_" + nb_id) and len(cand) > len(nb_id) + 1:
                learner = cand[: -len(nb_id) - 1].split("_")[0]
                if learner:
                    return Named(learner, nb_id + ".ipynb", kind="generic")
    return None


def stamp(text: str | None) -> str | None:
    """A timestamp from a file name, as nbgrader reads them (Blackboard's
    2016-01-30-15-00-00 becomes 2016-01-30 15:00:00)."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[-_ T](\d{2})-(\d{2})-(\d{2})", text or "")
    return f"{m[1]} {m[2]}:{m[3]}:{m[4]}" if m else text


def epoch(text: str | None) -> float | None:
    """A timestamp as nbgrader parses it, in seconds since the epoch (None: not one)."""
    if not text:
        return None
    try:
        from nbgrader.utils import parse_utc

        return parse_utc(text).timestamp()
    except Exception:
        return None


class BlackboardNames:
    """Blackboard's user names: the last part before _attempt_, unless two users' would end
    alike; then what follows the prefix every file shares (the assignment's name)."""

    def __init__(self, heads: set[str]):
        self.lasts: dict[str, set[str]] = {}
        for h in heads:
            self.lasts.setdefault(h.rsplit("_", 1)[-1], set()).add(h)
        common = os.path.commonprefix(sorted(heads)) if len(heads) > 1 else ""
        self.cut = common.rfind("_") + 1

    def learner(self, head: str) -> str:
        last = head.rsplit("_", 1)[-1]
        return (head[self.cut :] or head) if len(self.lasts.get(last, ())) > 1 else last
