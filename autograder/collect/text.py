"""Names as text: what the file system or an archive gives, made comparable and showable."""

from __future__ import annotations

import os
import unicodedata


def nfc(name: str) -> str:
    """A name from the file system or an archive as text: NFC, undecodable bytes as \\xNN."""
    if any("\udc80" <= c <= "\udcff" for c in name):
        name = os.fsencode(name).decode("utf-8", "backslashreplace")
    return unicodedata.normalize("NFC", name)


def show(text: str, n: int = 100) -> str:
    """text for a reason: control characters escaped, at most n characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= n else text[: n - 1] + "…"
