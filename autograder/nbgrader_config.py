"""nbgrader configuration for Backprop from Scratch.

The instructor versions of the notebooks (nbgrader's "source") live in
solutions/, the learner versions (nbgrader's "release") in course/.
Run nbgrader from the repository root (nbgrader_config.py there loads this file):
``nbgrader generate_assignment``, ``autograde``, ``generate_feedback`` and ``export``
all work unchanged, and so does the formgrader (a Jupyter server extension: README.md,
"Manual review"). ``python -m autograder grade`` grades a whole
batch in parallel with these same settings (see autograder/README.md).

Grading (nbgrader autograde) here differs from nbgrader's defaults in that:

* cells a learner deleted are put back, and every cell's nbgrader metadata and every
  locked cell comes from the gradebook, not from the learner's file; cells that lost
  their metadata are recognised by content and place; cell tags, other cell metadata and
  the notebook's metadata are not taken from the learner's file (RestoreCells);
* the kernel runs through autograder/kernel/launcher.py: a memory cap, no network and the
  course's folders hidden where the OS allows, a working folder without notebooks;
* before each test cell a guard restores numpy, backprop, builtins and IPython's
  machinery, so monkeypatching earns nothing (autograder/kernel/guard.py);
* ``os._exit`` cannot end the kernel, and a kernel that dies or hangs costs only the
  cell it died in (a new kernel runs the earlier cells again and grading goes on);
* output is capped while a cell runs; harmless warnings on stderr do not fail a test;
* feedback never shows hidden tests, and no page (feedback, formgrader) runs a script the
  learner's notebook holds or its code displayed (SanitizeLearnerContent).
"""

import sys
from pathlib import Path

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # so nbgrader can import the course's preprocessors
    sys.path.insert(0, str(ROOT))

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    OverwriteKernelspec,
    SaveAutoGrades,
)

from autograder.preprocessors import (  # noqa: E402
    GradeOutputs,
    GuardedExecute,
    HideHiddenTests,
    RestoreCells,
    SanitizeLearnerContent,
)

c.CourseDirectory.course_id = "backprop-from-scratch"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
c.CourseDirectory.db_url = f"sqlite:///{ROOT / 'gradebook.db'}"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# The learner versions keep no outputs (generate_assignment clears them).
c.ClearOutput.enabled = True

# --- autograde ------------------------------------------------------------------------------
# Sanitising: nbgrader's list, with RestoreCells (a stricter OverwriteCells) in its place.
c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    DeduplicateIds,
    OverwriteKernelspec,
    RestoreCells,
    CheckCellMetadata,
]
# Executing: nbgrader's list, with GuardedExecute for Execute and GradeOutputs before the
# grades are saved.
c.Autograde.autograde_preprocessors = [
    GuardedExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    GradeOutputs,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
# Deleted cells come back (test cells from the gradebook, solution cells as the stub).
c.OverwriteCells.add_missing_cells = True

# Per-cell time limit in seconds (nbgrader's default is 30). Training on MNIST needs more.
c.Execute.timeout = 180
c.Execute.interrupt_on_timeout = True
# The grading kernel is thrown away: kill it at once rather than wait for a clean exit.
c.Execute.shutdown_kernel = "immediate"
c.Execute.error_on_timeout = {
    "ename": "CellTimeoutError",
    "evalue": "this cell ran longer than the time limit and was interrupted",
    "traceback": [
        "\x1b[0;31mCellTimeoutError\x1b[0m: this cell ran longer than the time "
        "limit (an infinite loop?) and was interrupted"
    ],
}
# nbgrader counts any stderr output in a test cell as a failure. Warnings (numpy's
# "RuntimeWarning: overflow encountered in exp", deprecations) are not failures: drop them.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\b\w*Warning: "
# Output kept per cell: lines (nbgrader) and characters (GuardedExecute, while running).
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100
c.GuardedExecute.max_output_chars = 100_000
# The grading kernel's limits (see autograder/kernel/launcher.py).
c.GuardedExecute.memory_limit_mb = 4096
c.GuardedExecute.file_limit_mb = 256
c.GuardedExecute.isolate_network = True
c.GuardedExecute.hide_course_files = True
c.GuardedExecute.guard_tests = True

# --- feedback -------------------------------------------------------------------------------
c.GenerateFeedback.preprocessors = [
    GetGrades,
    HideHiddenTests,
    SanitizeLearnerContent,
    CSSHTMLHeaderPreprocessor,
]
# Pages that show a learner's notebook (feedback, and formgrader, which renders the autograded
# notebook with its own HTMLExporter): learner outputs and markdown as sanitised HTML or text.
# SanitizeLearnerContent does it for every page; nbconvert's sanitize_html makes the templates
# clean HTML outputs again and leave out JavaScript outputs and widget views.
c.HTMLExporter.preprocessors = [SanitizeLearnerContent]
c.HTMLExporter.sanitize_html = True
