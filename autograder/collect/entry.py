"""The record of one learner: which file of theirs is graded for each notebook, and why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from backprop.i18n import _

from .items import Item
from .limits import Refused
from .naming import epoch


@dataclass
class Candidate:
    """One copy of a notebook a learner handed in."""

    item: Item
    key: float  # its time, seconds since the epoch: the latest copy is graded
    stamp: str | None  # nbgrader's timestamp for it, if known
    secret: str | None = None  # nbgrader's submission_secret.txt beside it, if any


@dataclass
class Found:
    """One learner: what they handed in for each notebook, and what to say about it."""

    learner: str  # as handed in, NFC
    files: dict[str, Item] = field(default_factory=dict)  # notebook id -> the one graded
    times: dict[str, str] = field(default_factory=dict)  # notebook id -> its time
    notes: list[str] = field(default_factory=list)  # for the reason, problems included
    problems: list[str] = field(default_factory=list)  # what was refused
    folder: str = ""  # nbgrader student id (ids.student_id())
    candidates: dict[str, list[Candidate]] = field(default_factory=dict)  # latest first

    @property
    def timestamp(self) -> str | None:
        """nbgrader's timestamp for the submission: the latest one known, if any."""
        stamps = [c.stamp for c in self._chosen() if c.stamp]
        return max(stamps, key=lambda s: epoch(s) or 0.0) if stamps else None

    @property
    def secret(self) -> str | None:
        """The submission_secret.txt that nbgrader's exchange wrote beside the graded
        notebooks (``nbgrader release_feedback`` names each feedback file by it), if any."""
        secrets = {c.secret for c in self._chosen() if c.secret}
        return secrets.pop() if len(secrets) == 1 else None

    def _chosen(self) -> Iterator[Candidate]:
        for cands in self.candidates.values():
            if cands:
                yield cands[0]

    def add(self, nb: str, cand: Candidate) -> bool:
        """Count cand as a copy of notebook nb; False if nb had one already."""
        cands = self.candidates.setdefault(nb, [])
        first = not cands
        cands.append(cand)
        cands.sort(key=lambda c: -c.key)
        self.files[nb] = cands[0].item
        self.times[nb] = cands[0].stamp or f"{cands[0].item.mtime:020.6f}"
        return first

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
                    self.problem(str(exc))
                    continue
                if i:
                    self.notes.append(
                        _("{notebook}: graded {where} instead").format(
                            notebook=nb, where=cand.item.where
                        )
                    )
                    self.files[nb] = cand.item
                break
            else:
                self.files.pop(nb, None)
        return out

    def refused(self, notebooks: dict[str, bytes | None]) -> bool:
        """Nothing to grade, and something was handed in and refused."""
        return all(v is None for v in notebooks.values()) and bool(self.problems)

    def note(self, text: str) -> None:
        """Add text to the reason, once."""
        if text not in self.notes:
            self.notes.append(text)

    def problem(self, text: str) -> None:
        """Something refused: in the reason and among the problems, once."""
        if text not in self.problems:
            self.problems.append(text)
            self.notes.append(text)
