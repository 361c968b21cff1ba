"""Where the learners are: the folder of SUBMISSIONS whose entries are the learners.

Layouts
-------
* a folder per learner, the notebooks anywhere inside it: ``<learner>/<notebook>.ipynb``,
  ``<learner>/<anything>/<notebook>.ipynb``, or nbgrader's
  ``submitted/<learner>/<assignment>/<notebook>.ipynb`` (its ``timestamp.txt`` is used,
  and the ``submission_secret.txt`` nbgrader's exchange writes is kept for the feedback).
  A folder that holds one notebook, when the assignment has one, is taken to hold it under
  whatever name it was saved. A learner folder with no notebook still gets a row.
* one folder on top (``zip -r class.zip class/``), or several (``class/section-a/...``):
  a lone folder that holds two or more folders, or files named with a platform's
  decorations, and no notebook of its own, is the class, not a learner.
* nbgrader's own course folder (``source/``, ``release/``, ``submitted/``, ...): only
  ``submitted/`` is read, one learner per folder in it.
* flat files named by a platform (naming.py), or ``<learner>_<anything>_<notebook>.ipynb`` /
  ``<learner>_<notebook>.ipynb``;
* a .zip per learner (``fay.zip``, or a platform-named one): read as the folder ``fay/``;
* any other naming, with ``--regexp`` (nbgrader's ``named_regexp``: the groups
  ``student_id`` and ``file_id``, optionally ``timestamp``); it is tried first.
"""

from __future__ import annotations

from .items import Submissions, is_notebook
from .naming import generic, match_notebook, platform

# What sits beside submitted/ in an nbgrader course folder.
_NBGRADER_SIBLINGS = {
    "source",
    "release",
    "autograded",
    "feedback",
    "gradebook.db",
    "nbgrader_config.py",
}
_MAX_LEVELS = 8


class _Tree:
    """The paths of SUBMISSIONS, asked level by level."""

    def __init__(self, sub: Submissions, nb_set: set[str]):
        self.paths = [it.parts for it in sub.items] + [p for p, _ in sub.problems]
        self.kinds = {it.parts: it.kind for it in sub.items}
        self.nb_set = nb_set

    def below(self, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        n = len(prefix)
        return [p for p in self.paths if len(p) > n and p[:n] == prefix]

    def is_nbgrader_course(self, prefix: tuple[str, ...], names: set[str]) -> bool:
        return (
            "submitted" in names
            and self.kinds.get(prefix + ("submitted",)) == "dir"
            and bool(names & _NBGRADER_SIBLINGS or names == {"submitted"})
        )

    def level(self, prefix: tuple[str, ...], depth: int) -> tuple[str, ...]:
        """The class root at or below prefix."""
        n = len(prefix)
        below = self.below(prefix)
        names = {p[n] for p in below}
        if depth > _MAX_LEVELS:
            return prefix
        if self.is_nbgrader_course(prefix, names):
            return self.level(prefix + ("submitted",), depth + 1)
        if len(names) != 1 or self.kinds.get(prefix + (next(iter(names)),)) != "dir":
            return prefix
        return self.lone_folder(prefix, below, depth)

    def lone_folder(self, prefix: tuple[str, ...], below: list, depth: int) -> tuple[str, ...]:
        """prefix holds one folder only: is it the class, or a learner?"""
        n = len(prefix)
        here = below[0][: n + 1]
        inside = [p for p in below if len(p) > n + 1]
        kinds, nb_set = self.kinds, self.nb_set
        direct = [p[n + 1] for p in inside if len(p) == n + 2 and kinds.get(p) == "file"]
        subdirs = {p[n + 1] for p in inside if len(p) > n + 2 or kinds.get(p) == "dir"}
        learners = {g.learner for d in direct if (g := generic(d, nb_set))}
        if any(platform(d) for d in direct) or len(learners) > 1:
            return self.level(here, depth + 1)  # a folder of platform-named files
        if any(is_notebook(d) for d in direct) or any(match_notebook(s, nb_set) for s in subdirs):
            return prefix  # a learner's folder (or <learner>/<assignment>/)
        if "submitted" in subdirs or len(subdirs) > 1 or any(platform(s) for s in subdirs):
            return self.level(here, depth + 1)  # a folder of learner folders
        if len(subdirs) == 1 and not direct:  # class/section/...: only if a class is below
            deeper = self.level(here, depth + 1)
            return deeper if len(deeper) > len(here) else prefix
        return prefix


def class_root(sub: Submissions, nb_set: set[str]) -> tuple[str, ...]:
    """The folder whose entries are the learners (see "Layouts" above)."""
    return _Tree(sub, nb_set).level((), 0)
