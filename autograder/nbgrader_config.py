"""nbgrader configuration for Backprop from Scratch.

The instructor versions of the notebooks (nbgrader's "source") live in
solutions/, the learner versions (nbgrader's "release") in course/.
Run nbgrader from the repository root (nbgrader_config.py there loads this file).
"""
from pathlib import Path

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

ROOT = Path(__file__).resolve().parent.parent

c.CourseDirectory.course_id = "backprop-from-scratch"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
c.CourseDirectory.db_url = f"sqlite:///{ROOT / 'gradebook.db'}"

c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
# The learner versions keep no outputs (generate_assignment clears them).
c.ClearOutput.enabled = True
