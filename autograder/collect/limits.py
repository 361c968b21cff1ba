"""What may be read, and the two ways of saying that something may not.

Limits (``Limits``; defaults)
-----------------------------
* an archive, with every .zip inside it, may decompress at most ``max_bytes`` = 1 GiB of
  what is read (notebooks, .zip files, timestamp.txt, submission_secret.txt) and hold at
  most ``max_entries`` = 10,000 entries; .zip files nest at most ``max_depth`` = 3 deep
  (SUBMISSIONS.zip, or a .zip in the SUBMISSIONS folder, is depth 1; a .zip inside it 2);
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

from dataclasses import dataclass


class CollectError(Exception):
    """SUBMISSIONS as a whole cannot be read (what is wrong in one learner's files never
    raises it out of open_submissions or collect)."""


class Refused(Exception):
    """One file is not read; the message, for the learner's reason, says why."""


@dataclass(frozen=True)
class Limits:
    """The limits above; sizes in bytes."""

    max_bytes: int = 1 << 30  # decompressed per archive, nested ones included
    max_entries: int = 10_000  # per archive, nested ones included
    max_depth: int = 3  # .zip nesting; SUBMISSIONS.zip is depth 1
    max_ratio: int = 100  # expansion allowed past ratio_free
    ratio_free: int = 10 << 20
    max_notebook: int = 100_000 * 1024  # nbgrader's CourseDirectory.max_file_size
    max_folder_depth: int = 32


LIMITS = Limits()
