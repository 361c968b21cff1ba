"""Finding each learner's notebooks in what a learning platform exports.

``open_submissions(path, scratch)`` opens SUBMISSIONS (a folder, or a .zip of one) and lists
what it holds, opening the .zip files inside it too; ``collect(opened, notebooks)`` tells
whose each file is. Nothing is extracted onto disk and nothing is followed: files are read,
as bytes and within limits, only when a learner's notebook is graded.

When one learner handed in the same notebook more than once, the latest counts (by the
timestamp in the name or nbgrader's timestamp.txt, else the file's time). Hidden files and
folders (a name starting with ``.``: ``.ipynb_checkpoints``, ``.DS_Store``, ``._*``) and
``__MACOSX`` are skipped.

Each module documents its part:

=============  ===============================================================================
layout.py      the layouts understood: where in SUBMISSIONS the learners are
naming.py      the platforms' file names (Canvas, Moodle, Blackboard, resubmission copies)
ids.py         learner ids: the name kept, and the id nbgrader sees (``student_id``)
limits.py      the limits on what is read; ``CollectError`` and ``Refused``
opening.py     ``open_submissions``: a folder walked, a .zip listed, no link followed
archives.py    .zip files read in place, nested ones too, zip bombs refused
items.py       ``Item`` (a file or folder as handed in) and ``Submissions`` (all of them)
learners.py    ``collect``: each file given to its learner
entry.py       ``Found``: one learner's record (the copy graded per notebook, the notes)
text.py        names as text (NFC, undecodable bytes shown as ``\\xNN``)
=============  ===============================================================================
"""

from .entry import Candidate, Found
from .ids import safe_id, student_id
from .items import Item, Submissions
from .learners import collect
from .limits import LIMITS, CollectError, Limits, Refused
from .opening import open_submissions

__all__ = [
    "LIMITS",
    "Candidate",
    "CollectError",
    "Found",
    "Item",
    "Limits",
    "Refused",
    "Submissions",
    "collect",
    "open_submissions",
    "safe_id",
    "student_id",
]
