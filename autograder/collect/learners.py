"""``collect(opened, notebooks)``: whose is each file SUBMISSIONS holds, one Found per learner
(layout.py finds where the learners are, naming.py reads the file names)."""

from __future__ import annotations

import re
from pathlib import Path

from backprop.i18n import _

from .entry import Candidate, Found
from .ids import assign_ids
from .items import SECRET, TIMESTAMP, Item, Submissions, is_notebook, is_zip_name
from .layout import class_root
from .limits import CollectError, Refused
from .naming import BlackboardNames, Named, epoch, generic, match_notebook, platform, stamp
from .opening import open_submissions
from .text import nfc, show

_SECRET = re.compile(r"[0-9a-f]{16,256}")  # nbgrader writes secrets.token_hex(64)


class _Collector:
    """One pass over what open_submissions found (see collect())."""

    def __init__(self, sub: Submissions, notebooks: list[str], user: re.Pattern | None):
        self.sub, self.notebooks, self.nb_set, self.user = sub, notebooks, set(notebooks), user
        self.prefix = class_root(sub, self.nb_set)  # the folder whose entries are learners
        self.n = len(self.prefix)
        self.index = {it.parts: it for it in sub.items}
        self.found: dict[str, Found] = {}  # learner -> record
        self.unmatched: list[str] = []  # notes on what belongs to no learner
        # learner -> the notebooks (and what their names say) that are theirs
        self.owned: dict[str, list[tuple[Item, Named | None]]] = {}
        self.blackboard: list[tuple[Item, Named]] = []  # named once all names are known
        self.canvas_others: list[Named] = []  # Canvas-named files that are not notebooks
        self.canvas_seen = False  # a Canvas-named notebook was seen: this is a Canvas export
        self.bb = BlackboardNames(set())

    # --- learners and what they own ---

    def entry(self, learner: str) -> Found:
        learner = nfc(learner)
        return self.found.setdefault(learner, Found(learner))

    def own(self, learner: str, it: Item, named: Named | None) -> None:
        self.owned.setdefault(self.entry(learner).learner, []).append((it, named))

    def inside(self, parts: tuple[str, ...]) -> bool:
        return len(parts) > self.n and parts[: self.n] == self.prefix

    def folder_learner(self, name: str, parts: tuple[str, ...]) -> str:
        """The learner a folder (or an archive read as one) at the class root is."""
        named = platform(name)
        if named and (named.file is None or parts in self.sub.zip_dirs):
            return named.learner  # Moodle's folders; a platform-named .zip
        if parts in self.sub.zip_dirs:
            named = generic(name, self.nb_set)
            if named:
                return named.learner
        return name

    # --- the items ---

    def take(self, it: Item) -> None:
        """Give one item below the class root to its learner (or to unmatched)."""
        rel = it.parts[self.n :]
        if it.kind == "dir":
            if len(rel) == 1:
                self.entry(self.folder_learner(rel[0], it.parts))
            return
        if self.user and is_notebook(it.name) and self.by_regexp(it, rel):
            return
        if len(rel) == 1:
            self.root_file(it)
        else:
            learner = self.folder_learner(rel[0], it.parts[: self.n + 1])
            self.entry(learner)
            if is_notebook(it.name):
                self.own(learner, it, platform(it.name))

    def by_regexp(self, it: Item, rel: tuple[str, ...]) -> bool:
        """--regexp names the notebook's learner; False if it does not match."""
        m = self.user.match("/".join(rel)) or self.user.match(it.name)
        gd = m.groupdict() if m else {}
        if not gd.get("student_id") or gd.get("file_id") is None:
            return False
        sid = gd["student_id"]
        self.own(sid, it, Named(sid, gd["file_id"], stamp(gd.get("timestamp")), kind="regexp"))
        return True

    def root_file(self, it: Item) -> None:
        """A file at the class root: named by a platform, or <learner>_..._<notebook>."""
        named = platform(it.name)
        if named is None and is_notebook(it.name):
            named = generic(it.name, self.nb_set)
        if named is None:
            if is_notebook(it.name):
                self.unmatched.append(
                    _("{where}: no learner id in the file name").format(where=it.where)
                )
        elif named.kind == "blackboard":
            self.blackboard.append((it, named))
        elif named.kind == "canvas" and not is_notebook(it.name):
            self.canvas_others.append(named)  # a learner only if this is a Canvas export
        else:
            self.canvas_seen |= named.kind == "canvas"
            if named.note:
                self.entry(named.learner).note(named.note)
            if is_notebook(it.name):
                self.own(named.learner, it, named)
            else:
                self.entry(named.learner)  # handed in something else (Moodle)

    def platform_learners(self) -> None:
        """Canvas's other files count in a Canvas export; Blackboard's names are resolved."""
        if self.canvas_seen:
            for named in self.canvas_others:
                e = self.entry(named.learner)
                if named.note:
                    e.note(named.note)
        self.bb = BlackboardNames({named.head for _, named in self.blackboard})
        for it, named in self.blackboard:
            learner = self.bb.learner(named.head)
            if is_notebook(it.name):
                self.own(learner, it, named)
            else:
                self.entry(learner)  # the attempt's receipt (.txt)

    # --- which copy of each notebook is graded ---

    def beside(self, it: Item, name: str, folders: int) -> str | None:
        """The text of the file called name in the item's folder (or, with folders=2, the one
        above it) inside a learner's folder, if it can be read."""
        for d in (it.parts[:-1], it.parts[:-2])[:folders]:
            found = self.index.get(d + (name,))
            if found is None or len(d) <= self.n:
                continue
            try:
                return found.read_bytes(1024).decode("utf-8", "replace")
            except Refused:
                continue
        return None

    def time_of(self, it: Item, named: Named | None) -> tuple[float, str | None]:
        """The copy's time (seconds since the epoch) and its nbgrader timestamp, if any: from
        its name, else from nbgrader's timestamp.txt beside it or above, else the file's."""
        text = named.timestamp if named and epoch(named.timestamp) is not None else None
        if not text:
            text = (self.beside(it, TIMESTAMP, 2) or "").strip() or None
            if epoch(text) is None:
                text = None
        return (epoch(text) if text else it.mtime), text

    def add(self, learner: str, nb: str, it: Item, named: Named | None) -> None:
        key, when = self.time_of(it, named)
        secret = self.beside(it, SECRET, 1)
        cand = Candidate(it, key, when, secret if secret and _SECRET.fullmatch(secret) else None)
        e = self.entry(learner)
        if not e.add(nb, cand):
            e.note(
                _("{notebook} handed in more than once; the latest was graded").format(notebook=nb)
            )

    def choose(self, learner: str, items: list[tuple[Item, Named | None]]) -> None:
        """Each of a learner's notebooks, by name; a lone notebook of another name counts
        as the assignment's, when it has one."""
        named_, others = [], []
        for it, nm in items:
            nb = match_notebook(nm.file if nm and nm.file else it.name, self.nb_set)
            (named_ if nb else others).append((it, nb, nm))
        for it, nb, nm in named_:
            self.add(learner, nb, it, nm)
        if len(self.nb_set) != 1 or named_ or not others:
            return
        nb = self.notebooks[0]
        it, _item, nm = max(others, key=lambda o: self.time_of(o[0], o[2])[0])
        self.add(learner, nb, it, nm)
        if len(others) == 1:
            text = _("notebook saved as {name}; graded as {notebook}.ipynb").format(
                name=show(it.name), notebook=nb
            )
        else:
            text = _(
                "{n} notebooks, none named {notebook}.ipynb; graded the latest, {name}"
            ).format(n=len(others), notebook=nb, name=show(it.name))
        self.entry(learner).note(text)

    # --- what was refused ---

    def problem_owner(self, parts: tuple[str, ...]) -> str | None:
        """The learner a refused path belongs to, if it names one."""
        rel = parts[self.n :]
        name = rel[0]
        if len(rel) > 1:
            return self.folder_learner(name, parts[: self.n + 1])
        base = name[:-4] if is_zip_name(name) else name
        named = platform(base)
        if named is None and (is_notebook(name) or is_zip_name(name)):
            named = generic(base, self.nb_set)
        if named is not None:
            return self.bb.learner(named.head) if named.head else named.learner
        if is_zip_name(name):
            return base  # a learner's .zip that could not be opened
        if "." not in name:
            return name  # a learner's folder that is a link, or unreadable
        return None

    def run(self) -> tuple[dict[str, Found], list[str]]:
        for it in self.sub.items:
            if self.inside(it.parts):
                self.take(it)
        self.platform_learners()
        for learner, items in self.owned.items():
            self.choose(learner, items)
        for parts, why in self.sub.problems:  # each goes to the learner it belongs to
            learner = self.problem_owner(parts) if self.inside(parts) else None
            if learner:
                self.entry(learner).problem(why)
            else:
                self.unmatched.append(why)
        for e in self.found.values():
            if not e.candidates and not e.problems:
                e.note(_("no notebook handed in"))
        for learner, sid in assign_ids(list(self.found)).items():
            self.found[learner].folder = sid
        return self.found, self.unmatched


def collect(
    root: Submissions | Path | str, notebooks: list[str], regexp: str | None = None
) -> tuple[dict[str, Found], list[str]]:
    """Learner id -> their notebooks, from what open_submissions found (or from a folder),
    and notes on what could be given to no learner. notebooks: the assignment's notebook
    ids; regexp: nbgrader's ``named_regexp`` for file names, tried first."""
    sub = root if isinstance(root, Submissions) else open_submissions(Path(root))
    try:
        user = re.compile(regexp, re.DOTALL) if regexp else None
    except re.error as exc:
        raise CollectError(f"--regexp {regexp!r}: not a regular expression ({exc})") from None
    return _Collector(sub, notebooks, user).run()
