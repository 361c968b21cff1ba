"""The worker's head start, and feedback rendered with it.

:func:`warm_up` is the pool's initializer (a Dask worker runs :func:`prepare` through
cluster.py's plugin): it does once, before the forks, what every
grading child would otherwise do first (imports, SQLAlchemy's mappers, nbformat's schema,
one feedback page rendered so that the templates are compiled), and keeps the prepared
HTML exporter in :data:`WARM`. :func:`generate_feedback` is nbgrader's generate_feedback
for one learner, rendering with that exporter.
"""

from __future__ import annotations

import os
import signal

from . import config, processes

WARM: dict = {}  # what warm_up prepared in the worker, inherited by every forked child


def generate_feedback(api, assignment: str, learner: str) -> dict:
    """nbgrader generate_feedback for one learner, as NbGraderAPI.generate_feedback runs it,
    but rendering with the worker's exporter, whose templates are already compiled."""
    from nbconvert.writers import FilesWriter
    from nbgrader.converters import GenerateFeedback
    from nbgrader.utils import capture_log, temp_attrs
    from traitlets.config import Config

    class WarmGenerateFeedback(GenerateFeedback):
        def start(self):  # BaseConverter.start, with the prepared exporter
            exporter = WARM.get("exporter")
            if exporter is None:
                return super().start()
            self.init_notebooks()
            self.writer = FilesWriter(parent=self, config=self.config)
            exporter._preprocessors = []
            self.exporter = exporter
            for pp in self.preprocessors:
                self.exporter.register_preprocessor(pp)
            here = os.getcwd()
            os.chdir(self.coursedir.root)
            try:
                self.convert_notebooks()
            finally:
                os.chdir(here)

    c = Config()
    c.HTMLExporter.template_name = "feedback"
    with temp_attrs(api.coursedir, assignment_id=assignment, student_id=learner):
        app = WarmGenerateFeedback(coursedir=api.coursedir, parent=api)
        app.update_config(c)
        app.force = True
        return capture_log(app)


def last_error(res: dict) -> str:
    """The line of an NbGraderAPI result that says what went wrong."""
    text = (res.get("error") or "") + "\n" + (res.get("log") or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "Error" in line]
    return (errors[-1] if errors else (lines[-1] if lines else "unknown error"))[:300]


def _sample_notebook():
    """A small graded notebook: markdown, a test cell with output and an error."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    grade = dict(grade=True, solution=False, locked=True, grade_id="t", points=1, score=1)
    grade.update(comment="", schema_version=3)
    error = new_output(
        "error",
        ename="AssertionError",
        evalue="x",
        traceback=["\x1b[0;31mAssertionError\x1b[0m: x"],
    )
    code = new_code_cell(
        "import numpy as np\nprint(np.ones(2))",
        metadata={"nbgrader": grade},
        outputs=[new_output("stream", name="stdout", text="[1. 1.]\n"), error],
    )
    nb = new_notebook(cells=[new_markdown_cell("# Title\n\nSome *text* and $x^2$."), code])
    nb.metadata.kernelspec = dict(name="python3", display_name="Python 3", language="python")
    return nb


def _feedback_exporter(cfg):
    """nbgrader's feedback HTML exporter, its templates compiled by one page rendered."""
    import nbformat
    from nbconvert.exporters import HTMLExporter
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    nb = _sample_notebook()
    nbformat.validate(nb)
    c = Config()
    c.HTMLExporter.template_name = "feedback"
    gf = GenerateFeedback(coursedir=CourseDirectory(config=cfg), config=cfg)
    gf.update_config(c)
    exporter = HTMLExporter(parent=gf, config=gf.config)
    info = dict(score=1, max_score=1, late_penalty=0, notebook="n", assignment="a", student="s")
    exporter.from_notebook_node(nb, resources={"nbgrader": info})
    return exporter


def warm_up() -> None:
    """Pool initializer: signals set for the batch to stop workers, then :func:`prepare`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, processes.stop_worker)  # the batch stops workers so
    processes.die_with_parent(signal.SIGTERM)
    prepare()


def prepare() -> None:
    """Do once per worker, before the forks, what every grading child would do first.

    Imports, SQLAlchemy's mapper set-up, nbformat's schema, and a feedback page rendered
    once (pygments, the templates, markdown): each child then starts with all of that
    already in memory instead of paying for it again. ``AUTOGRADER_NO_WARM=1`` switches this
    off (the benchmark measures what it saves). Done once per process: the pool's initializer
    calls it, and so does each task (a Dask worker's first task warms it up).
    """
    if os.environ.get("AUTOGRADER_NO_WARM") or WARM.get("ready"):
        return
    WARM["ready"] = True
    from nbgrader.apps import NbGraderAPI  # noqa: F401

    from . import notebooks  # noqa: F401
    from .kernel import jail

    jail.status(os.environ.get("AUTOGRADER_BWRAP", "bwrap"))  # probed here, not in each child
    try:
        from nbgrader.api import Gradebook

        with Gradebook("sqlite://"):  # SQLAlchemy's mappers, configured once
            pass
        WARM["exporter"] = _feedback_exporter(config.course_config())  # the children use it
    except Exception:  # warming up is only an optimisation
        pass
