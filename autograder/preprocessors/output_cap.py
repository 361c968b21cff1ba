"""What a cell may print while it runs: a cap on output, and one of its own for records.

nbgrader's LimitOutput trims outputs after the notebook has run; a cell that prints
gigabytes would fill the grader's memory long before that. :class:`OutputCap` decides, for
each output message of one cell, whether it is kept. The checks' records (verdict.py) have
a budget of their own, so printing cannot crowd out what the grader verifies.
"""

from __future__ import annotations

from nbformat.v4 import new_output


class OutputCap:
    """The output budget of one cell: ``limit`` characters of output (None or negative: no
    limit; errors always pass), ``record_limit`` characters of check records."""

    def __init__(self, limit: int | None, record_limit: int):
        from ..verdict import is_record  # imports backprop.checks: only once cells run

        self._is_record = is_record
        self.limit, self.record_limit = limit, record_limit
        self.chars = 0
        self.record_chars = 0
        self.truncated = False

    def notice(self) -> dict:
        """The output that says the rest was dropped."""
        return new_output(
            "stream",
            name="stdout",
            text=(
                f"\n... output truncated by the autograder: this cell printed more than "
                f"{self.limit} characters ...\n"
            ),
        )

    def admit(self, msg: dict) -> tuple[bool, dict | None]:
        """(whether the message is recorded, an output to append after it or None). A stream
        that goes past the limit is shortened in place to what fits."""
        kind, content = msg["msg_type"], msg.get("content", {})
        if kind == "display_data" and self._is_record(content):
            size = len(str(content["data"]))
            if self.record_chars + size > self.record_limit:
                return False, None
            self.record_chars += size
            return True, None
        if self.limit is None or self.limit < 0 or kind == "error":
            return True, None
        if self.truncated:
            return False, None
        if kind == "stream":
            text = content.get("text", "")
            if self.chars + len(text) > self.limit:  # keep what fits, then say so once
                content["text"] = text[: max(0, self.limit - self.chars)]
                self.truncated = True
                return True, self.notice()
            self.chars += len(text)
            return True, None
        size = sum(len(str(v)) for v in content.get("data", {}).values())
        if self.chars + size > self.limit:
            self.truncated = True
            return False, self.notice()
        self.chars += size
        return True, None
