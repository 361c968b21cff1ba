"""The course's nbgrader preprocessors: the nbgrader-facing side of grading.

nbgrader_config.py names them by these paths (``autograder.preprocessors.RestoreCells``,
...) and configures them by class name (``c.GuardedExecute.memory_limit_mb``). Nothing in
a submission's metadata is trusted: what a cell is, and what the notebook is, comes from
the gradebook. What they tell the batch goes through the grader's notes (notes.py).

======================  ==================  ===============================================
preprocessor            module              what
======================  ==================  ===============================================
RestoreCells            restore.py          sanitising: every cell matched to the
                                            gradebook's (matching.py) and rebuilt from it;
                                            missing cells put back; the notebook's metadata
                                            made anew
GuardedExecute          execute.py          executing: the kernel in its jail
                                            (kernel_manager.py), a guard before each test
                                            cell, the grader's verdict after it, recovery
                                            from a dead or hung kernel, an output cap while
                                            a cell runs (output_cap.py)
GradeOutputs            outputs.py          after execution: an error anywhere in a test
                                            cell's output scores zero
HideHiddenTests         feedback.py         feedback: no hidden test, in a cell's source or
                                            in a traceback
SanitizeLearnerContent  sanitize.py         feedback and formgrader: every output and every
                                            cell the learner wrote as sanitised HTML or text
======================  ==================  ===============================================

cells.py holds what they share (test cells, hidden regions, kept tags, defined names);
plan.py what GuardedExecute reads from the cells before running them.
"""

from __future__ import annotations

from .cells import DEFAULT_KERNELSPEC, GRADING_TAGS, RESTORED_NOTE, remove_hidden_tests
from .execute import GuardedExecute
from .feedback import HideHiddenTests
from .kernel_manager import GuardedKernelManager
from .matching import SourceCell, gradebook_cells, match_cells, normalise
from .outputs import GradeOutputs
from .restore import RestoreCells
from .sanitize import (
    MARKDOWN_TAGS,
    OUTPUT_TAGS,
    SanitizeLearnerContent,
    clean_markdown,
    clean_output_html,
    sanitise_outputs,
)

__all__ = [
    "DEFAULT_KERNELSPEC",
    "GRADING_TAGS",
    "MARKDOWN_TAGS",
    "OUTPUT_TAGS",
    "RESTORED_NOTE",
    "GradeOutputs",
    "GuardedExecute",
    "GuardedKernelManager",
    "HideHiddenTests",
    "RestoreCells",
    "SanitizeLearnerContent",
    "SourceCell",
    "clean_markdown",
    "clean_output_html",
    "gradebook_cells",
    "match_cells",
    "normalise",
    "remove_hidden_tests",
    "sanitise_outputs",
]
