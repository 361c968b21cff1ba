"""A submission's metadata is never trusted, and work is not lost with it.

Three groups, on notebooks built here from course/ and solutions/:

* metadata: tags (``skip-execution``, ``raises-exception``), nbgrader metadata claiming
  other points or another role, duplicated grade_ids, the grader's own ``autograder``
  entry filled in by the learner, a made-up notebook-level ``nbgrader`` entry, another
  kernel. The course's sanitising preprocessors (``Autograde.sanitize_preprocessors``)
  run on them against a real gradebook (generate_assignment into tmp_path);
* pages: learner HTML, JavaScript, SVG, widgets and markdown rendered as the feedback
  and as formgrader render them, parsed with html.parser, and one page loaded in
  Chromium (Debian's /usr/bin/chromium through Playwright, as tests/test_browser.py);
* metadata loss: a correct notebook whose cells lost their nbgrader metadata (all, half,
  and reordered or duplicated too), and one that has nothing to do with the assignment.

One slow test grades such submissions end to end with ``python -m autograder grade
--jobs 2`` next to honest controls.
"""

from __future__ import annotations

import base64
import copy
import csv
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder import config, flags  # noqa: E402
from autograder.notebooks import read_submission  # noqa: E402
from autograder.preprocessors import GRADING_TAGS, RESTORED_NOTE, SanitizeLearnerContent  # noqa: E402
from autograder.template import make_template  # noqa: E402

A = "04_affine_layer"
SOLUTION = REPO / "solutions" / A / f"{A}.ipynb"
RELEASE = REPO / "course" / A / f"{A}.ipynb"
TESTS = [
    "test_affine_forward",
    "test_affine_dx",
    "test_affine_dw",
    "test_affine_db",
    "test_affine_nd_input",
    "test_affine_state",
]
ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not SOLUTION.is_file() or not RELEASE.is_file(), reason=f"{A} is not in solutions/ and course/"
)


# --- building notebooks ---------------------------------------------------------------------


def release(assignment: str = A):
    return nbformat.read(REPO / "course" / assignment / f"{assignment}.ipynb", as_version=4)


def answers(assignment: str = A) -> dict[str, str]:
    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return {
        c.metadata.nbgrader["grade_id"]: "\n".join(
            line
            for line in c.source.split("\n")
            if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line
        )
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }


def filled(extra: str = "", assignment: str = A):
    """The release answered with the reference solution (extra code in the first answer)."""
    nb, sol = release(assignment), answers(assignment)
    for cell in nb.cells:
        name = cell.metadata.nbgrader.get("grade_id")
        if name in sol:
            cell.source = sol[name] + (("\n" + extra) if extra else "")
            extra = ""
    return nb


def is_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def strip(nb, which=lambda i, cell: True):
    for i, cell in enumerate(nb.cells):
        if which(i, cell):
            cell.metadata = {}
    return nb


def gid(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def notes(nb) -> list[str]:
    return nb.metadata.get("autograder", {}).get("cells", [])


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory) -> Path:
    """The assignment's gradebook, made by nbgrader's generate_assignment (batch template)."""
    return make_template(A, tmp_path_factory.mktemp("state")) / "gradebook.db"


@pytest.fixture(scope="module")
def source_cells(gradebook):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{gradebook}") as gb:
        nb = gb.find_notebook(A, A)
        return {c.name: (c.cell_type, c.source, c.locked) for c in nb.source_cells}


def sanitise(nb, gradebook: Path):
    """What nbgrader autograde does to a submission before running it, with our config."""
    cfg = config.course_config()
    nb = copy.deepcopy(nb)
    resources = {"nbgrader": {"notebook": A, "assignment": A, "db_url": f"sqlite:///{gradebook}"}}
    for pp in cfg.Autograde.sanitize_preprocessors:
        nb, resources = pp(config=cfg).preprocess(nb, resources)
    nbformat.validate(nb)
    return nb


def assert_graded_as_source(nb, source_cells, answer: str | None):
    """Every gradebook cell once, in the source's order; locked ones hold the gradebook's
    source (hidden tests included); the answer cell holds ``answer``; no tags anywhere."""
    ids = [gid(c) for c in nb.cells if gid(c)]
    assert ids == list(source_cells), ids
    for cell in nb.cells:
        assert not cell.metadata.get("tags"), cell.metadata
        assert set(cell.metadata) <= {"nbgrader", "editable", "deletable"}, cell.metadata
        name = gid(cell)
        if name is None:
            continue
        kind, source, locked = source_cells[name]
        meta = cell.metadata.nbgrader
        assert meta["locked"] == locked and cell.cell_type == kind
        if locked:  # (a restored cell starts with a line saying so)
            shown = "\n".join(line for line in cell.source.split("\n") if RESTORED_NOTE not in line)
            assert shown.strip() == source.strip()
        elif answer is not None and name == "affine_impl":
            assert cell.source == answer
        if name in TESTS:
            assert meta["grade"] and not meta["solution"] and meta["locked"]
            assert meta["points"] == {"test_affine_dx": 3, "test_affine_dw": 3}.get(name, 2)


# --- metadata: hostile, with honest controls ----------------------------------------------------


@pytest.mark.slow
def test_honest_notebook_is_left_as_it_is(gradebook, source_cells):
    nb = filled()
    out = sanitise(nb, gradebook)
    assert_graded_as_source(out, source_cells, answers()["affine_impl"])
    assert notes(out) == []
    assert [c.get("id") for c in out.cells] == [c.get("id") for c in nb.cells]
    assert out.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize(
    "tags",
    [
        ["skip-execution"],
        ["raises-exception"],
        ["skip-execution", "raises-exception", "remove_cell"],
    ],
)
def test_tags_on_test_cells_are_dropped(gradebook, source_cells, tags):
    nb = release()  # unanswered: with skip-execution its tests used to score full marks
    for cell in nb.cells:
        if gid(cell) in TESTS or gid(cell) == "affine_impl":
            cell.metadata["tags"] = list(tags)
    out = sanitise(nb, gradebook)
    assert_graded_as_source(out, source_cells, None)
    assert GRADING_TAGS == frozenset()
    assert any(n.startswith("cell tags removed") and tags[0] in n for n in notes(out))


@pytest.mark.parametrize(
    "claim",
    [
        {"points": 100},
        {"grade": False},
        {"solution": True},
        {"locked": False, "solution": True, "points": 100, "grade": False},
    ],
)
def test_nbgrader_metadata_on_a_test_cell_comes_from_the_gradebook(gradebook, source_cells, claim):
    nb = filled()
    for cell in nb.cells:
        if gid(cell) == "test_affine_dx":
            cell.metadata.nbgrader.update(claim)
            cell.source = "pass  # no test here"
    out = sanitise(nb, gradebook)
    assert_graded_as_source(out, source_cells, answers()["affine_impl"])
    assert any(n.startswith("test_affine_dx: nbgrader metadata edited") for n in notes(out))


def test_a_duplicated_grade_id_takes_no_cell_from_the_gradebook(gradebook, source_cells):
    nb = filled()
    test = next(c for c in nb.cells if gid(c) == "test_affine_state")
    answer = next(c for c in nb.cells if gid(c) == "affine_impl")
    # two forged copies, placed last, which nbgrader's DeduplicateIds would keep
    nb.cells.append(new_code_cell("print('all passed')", metadata=copy.deepcopy(test.metadata)))
    nb.cells.append(
        new_code_cell("class Affine:\n    pass", metadata=copy.deepcopy(answer.metadata))
    )
    out = sanitise(nb, gradebook)
    assert_graded_as_source(out, source_cells, answers()["affine_impl"])
    assert [c.source for c in out.cells[-2:]] == ["print('all passed')", "class Affine:\n    pass"]
    assert all("nbgrader" not in c.metadata for c in out.cells[-2:])
    assert any(
        "test_affine_state: claimed by a cell that is not that cell" in n for n in notes(out)
    )


def test_duplicated_cells_with_their_metadata_are_graded_once_quietly(gradebook, source_cells):
    nb = filled()  # every code cell twice (a copy-paste), as nbformat 4.4 without ids
    nb.cells = [
        c
        for cell in nb.cells
        for c in ([cell, copy.deepcopy(cell)] if cell.cell_type == "code" else [cell])
    ]
    for c in nb.cells:
        c.pop("id", None)
    nb.nbformat_minor = 4
    out = sanitise(nb, gradebook)
    assert_graded_as_source(out, source_cells, answers()["affine_impl"])
    assert notes(out) == []


def test_learner_written_grader_metadata_never_reaches_the_batch(gradebook, source_cells):
    nb = release()
    nb.metadata["autograder"] = {
        "problems": [],
        "cells": ["all tests passed (checked by hand)"],
        "sandbox": "bwrap",
        "verdict": "full marks",
    }
    nb.metadata["nbgrader"] = {"grade": True, "points": 100, "score": 100}
    nb.metadata["kernelspec"] = {"name": "evil", "display_name": "Not Python", "language": "bash"}
    nb.metadata["language_info"] = {"name": "bash", "pygments_lexer": "bash"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nb.cells[0]["attachments"] = {"x.svg": {"image/svg+xml": "<svg onload='alert(1)'/>"}}
    # the batch path: the file as read by notebooks.py
    s = read_submission(nbformat.writes(nb).encode())
    assert set(s.nb.metadata) <= {"kernelspec", "language_info"}
    assert any("'autograder'" in r for r in s.repairs)
    # nbgrader autograde on the file as it was handed in (nbgrader's own command)
    out = sanitise(nb, gradebook)
    assert_graded_as_source(out, source_cells, None)
    assert out.metadata.kernelspec == {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    assert out.metadata.language_info == {"name": "python"}
    assert set(out.metadata) == {"kernelspec", "language_info", "autograder"}
    assert out.metadata.autograder == {
        "cells": ["the notebook's metadata held the grader's own entry ('autograder'); ignored"]
    }
    assert out.cells[0].attachments == {}  # a locked cell shows the gradebook's text only


def test_a_cell_claiming_to_be_locked_is_still_flagged(gradebook):
    nb = filled()
    nb.cells.insert(
        18,
        new_code_cell(
            "import sys\nsys.modules['numpy'].allclose = lambda *a, **k: True",
            metadata={
                "nbgrader": {
                    "grade_id": "imports_2",
                    "locked": True,
                    "grade": False,
                    "solution": False,
                    "schema_version": 3,
                }
            },
        ),
    )
    learner = read_submission(nbformat.writes(nb).encode()).nb
    assert flags.suspicious(learner) == []  # what the learner's own metadata claims
    out = sanitise(learner, gradebook)
    assert "nbgrader" not in out.cells[18].metadata
    assert "reaches into the interpreter" in flags.suspicious(out)
    assert flags.suspicious(sanitise(filled(), gradebook)) == []


# --- metadata loss ----------------------------------------------------------------------------


def test_all_cell_metadata_lost_is_matched_back(gradebook, source_cells):
    out = sanitise(strip(filled()), gradebook)
    assert_graded_as_source(out, source_cells, answers()["affine_impl"])
    assert len(notes(out)) == 1 and re.fullmatch(
        r"cell metadata was missing: \d+ locked cells matched by content, "
        r"\d+ answer cells? matched by position",
        notes(out)[0],
    ), notes(out)


def test_half_the_cells_lost_their_metadata(gradebook, source_cells):
    out = sanitise(strip(filled(), lambda i, c: i % 2 == 1), gradebook)  # the answer too
    assert_graded_as_source(out, source_cells, answers()["affine_impl"])
    assert len(notes(out)) == 1 and re.fullmatch(
        r"cell metadata was missing: \d+ locked cells matched by content"
        r"(, \d+ answer cells? matched by position)?",
        notes(out)[0],
    ), notes(out)
    out = sanitise(strip(filled(), lambda i, c: i % 2 == 0), gradebook)
    assert_graded_as_source(out, source_cells, answers()["affine_impl"])
    assert len(notes(out)) == 1 and re.fullmatch(
        r"cell metadata was missing: \d+ locked cells matched by content"
        r"(, \d+ answer cells? matched by position)?",
        notes(out)[0],
    ), notes(out)


def test_retyped_cells_lost_metadata_reordered_and_duplicated(gradebook, source_cells):
    at = [gid(c) for c in filled().cells].index("affine_impl")
    nb = strip(filled())
    cells = nb.cells
    answer = cells[at]
    cells[2].source = cells[2].source.replace("batch", "bacth").replace("\n", "  \n")  # retyped
    cells[4], cells[5] = cells[5], cells[4]  # two markdown cells swapped
    cells.insert(at + 1, copy.deepcopy(answer))  # the answer twice
    cells.insert(at, new_code_cell("W = np.ones((3, 2))\nb = np.zeros(2)"))  # scratch work
    cells.insert(at + 6, copy.deepcopy(cells[at + 5]))  # a test cell twice
    out = sanitise(nb, gradebook)
    assert_graded_as_source(out, source_cells, answers()["affine_impl"])
    (note,) = [n for n in notes(out) if n.startswith("cell metadata was missing")]
    assert re.search(r"\d+ answer cells? matched by position", note), note
    assert "1 locked cell matched by similar content and restored" in note
    order = [gid(c) or c.source[:20] for c in out.cells]
    assert order.index("affine_impl") < min(order.index(t) for t in TESTS)
    assert sum(1 for c in out.cells if c.source == answers()["affine_impl"]) == 2
    assert sum(1 for c in out.cells if gid(c) == "affine_impl") == 1


def test_a_test_cell_edited_without_metadata_is_not_taken_for_the_test(gradebook, source_cells):
    nb = release()
    for cell in nb.cells:  # each test "passes" now, and the answer is still the stub
        if gid(cell) in TESTS:
            cell.source = "print('Success! All tests passed.')"
    out = sanitise(strip(nb), gradebook)
    assert_graded_as_source(out, source_cells, None)
    assert (
        all(
            c.source == "print('Success! All tests passed.')"
            for c in out.cells
            if c.cell_type == "code" and not gid(c)
        )
        and sum(1 for c in out.cells if "Success!" in c.source and not gid(c)) == 6
    )
    assert sum(1 for n in notes(out) if "missing from the submission; restored" in n) == 6


def test_answer_placed_after_the_tests_is_not_moved_before_them(gradebook, source_cells):
    ids = [gid(c) for c in filled().cells]
    at, after = (
        ids.index("affine_impl"),
        max(i for i, g in enumerate(ids) if g and g.startswith("test_affine")),
    )
    nb = strip(filled())
    answer = nb.cells.pop(at)
    nb.cells.insert(after, answer)
    out = sanitise(nb, gradebook)
    impl = next(i for i, c in enumerate(out.cells) if gid(c) == "affine_impl")
    assert out.cells[impl].source.startswith("class Affine:")
    assert "raise NotImplementedError" in out.cells[impl].source  # the stub, in its place
    assert any(n == "affine_impl: missing from the submission; restored" for n in notes(out))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["other assignment", "scratch", "empty"])
def test_a_notebook_with_no_relation_to_the_assignment(gradebook, source_cells, kind):
    if kind == "other assignment":
        nb = strip(
            nbformat.read(
                REPO / "solutions" / "02_chain_rule" / "02_chain_rule.ipynb", as_version=4
            )
        )
    elif kind == "scratch":
        nb = new_notebook(
            cells=[
                new_markdown_cell("# my notes"),
                new_code_cell("print(sum(range(10)))"),
                new_code_cell("class Thing:\n    pass"),
            ]
        )
    else:
        nb = new_notebook()
    out = sanitise(nb, gradebook)
    assert_graded_as_source(out, source_cells, None)
    impl = next(c for c in out.cells if gid(c) == "affine_impl")
    assert "raise NotImplementedError" in impl.source
    assert not any(n.startswith("cell metadata was missing") for n in notes(out))


# --- pages a browser opens: feedback and formgrader --------------------------------------------

PWN = "window.pwned = '{0}'; document.title = 'pwned {0}'"


def hostile_outputs() -> list:
    def html_out(text, **meta):
        return new_output(
            "display_data", data={"text/html": text, "text/plain": "<HTML>"}, metadata=meta
        )

    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" onload="{PWN.format("svg-onload")}">'
        f'<script>{PWN.format("svg-script")}</script><circle r="4"/></svg>'
    )
    return [
        html_out(f"<b>ok</b><script>{PWN.format('script')}</script>"),
        html_out(f'<img src="missing.png" onerror="{PWN.format("img-onerror")}">'),
        html_out(
            '<iframe srcdoc="<script>parent.pwned=1</script>"></iframe>'
            '<iframe src="javascript:parent.pwned=2"></iframe>'
        ),
        html_out(svg),
        html_out(f"<script>{PWN.format('isolated')}</script>", **{"text/html": {"isolated": True}}),
        html_out(
            '<a href="javascript:window.pwned=3">click</a><form action="javascript:1">'
            '<button formaction="javascript:window.pwned=4">go</button></form>'
            '<meta http-equiv="refresh" content="0;url=javascript:window.pwned=5">'
            '<base href="javascript:/"><object data="javascript:window.pwned=6"></object>'
            '<embed src="javascript:window.pwned=7"><style>body{display:none}</style>'
            '<math><mtext><table><mglyph><style><img src=x onerror="window.pwned=8">'
            '<div id="MathJax" class="navbar-fixed-top">clobber</div>'
        ),
        new_output("display_data", data={"image/svg+xml": svg, "text/plain": "<SVG>"}),
        new_output(
            "display_data", data={"application/javascript": PWN.format("js"), "text/plain": "<JS>"}
        ),
        new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {
                    "model_id": "m1",
                    "version_major": 2,
                    "version_minor": 0,
                },
                "text/plain": "HTML(value='...')",
            },
        ),
        new_output(
            "display_data",
            data={
                "text/markdown": f"[click](javascript:{PWN.format('md-link')})\n\n"
                f"<script>{PWN.format('md-output')}</script>",
                "text/plain": "<Markdown>",
            },
        ),
        new_output(
            "display_data",
            data={
                "text/vnd.mermaid": "graph TD; A-->B",
                "text/latex": r"$\href{javascript:window.pwned=9}{x}$",
            },
        ),
        new_output(
            "execute_result",
            execution_count=3,
            data={"text/plain": "</pre><script>window.pwned=10</script>"},
        ),
        new_output("stream", name="stdout", text="<script>window.pwned=11</script>\n"),
        new_output(
            "error",
            ename="<script>window.pwned=12</script>",
            evalue="<img onerror=x>",
            traceback=["<script>window.pwned=13</script>"],
        ),
    ]


LEARNER_MARKDOWN = (
    f"My notes <script>{PWN.format('md-cell')}</script>\n\n"
    f'<img src="missing.png" onerror="{PWN.format("md-img")}">\n\n'
    f"[click me](javascript:{PWN.format('md-cell-link')})\n\n"
    "[a link](javascript:window.pwned=15) and <javascript:window.pwned=16> "
    "and <a href='javascript:window.pwned=17'>another</a>\n\n"
    f'<details open ontoggle="{PWN.format("toggle")}"><summary>s</summary>'
    "</details>\n\nAnd $x^2 < y$, `code`, **bold**."
)


def hostile_graded(gradebook):
    """An autograded notebook as learner code and a learner's file could leave it."""
    nb = sanitise(filled(), gradebook)
    answer = next(i for i, c in enumerate(nb.cells) if gid(c) == "affine_impl")
    nb.cells[answer].outputs = hostile_outputs()
    imports = next(c for c in nb.cells if gid(c) == "imports")  # an instructor's cell
    imports.outputs = hostile_outputs()[:2]
    nb.cells.insert(
        answer + 1,
        new_markdown_cell(LEARNER_MARKDOWN, attachments={"a.png": {"image/png": "iVBORw0KGgo="}}),
    )
    nb.cells.insert(
        answer + 2,
        new_raw_cell(
            f"<script>{PWN.format('raw')}</script>", metadata={"raw_mimetype": "text/html"}
        ),
    )
    nb.cells.insert(
        answer + 3, new_code_cell("1", metadata={"tags": ['x" onmouseover="window.pwned=14']})
    )
    nb.cells.insert(
        answer + 4,
        new_code_cell(
            "2",
            metadata={
                "nbgrader": {  # a stale notebook
                    "grade": True,
                    "solution": False,
                    "locked": True,
                    "points": 1,
                    "score": 1,
                    "grade_id": 'x"><script>window.pwned=20</script>',
                    "schema_version": 3,
                }
            },
        ),
    )
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "version_major": 2,
            "version_minor": 0,
            "state": {
                "m1": {
                    "model_name": "HTMLModel",
                    "model_module": "@jupyter-widgets/controls",
                    "model_module_version": "2.0.0",
                    "state": {"value": f'<img src=x onerror="{PWN.format("widget")}">'},
                }
            },
        }
    }
    return nb


def exporter_for(template: str, cfg=None, sanitised: bool = True):
    """An HTMLExporter set up as nbgrader's generate_feedback (``feedback``) or formgrader
    (``formgrade``) sets up its own, with the course's configuration."""
    import nbgrader
    from nbconvert.exporters import HTMLExporter
    from traitlets.config import Config

    cfg = copy.deepcopy(cfg) if cfg is not None else config.course_config()
    templates = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
    extra = Config()
    extra.HTMLExporter.template_name = template
    extra.HTMLExporter.extra_template_basedirs = [str(templates)]
    extra.HTMLExporter.extra_template_paths = [
        str(templates.parent / "static" / "node_modules" / "bootstrap" / "dist" / "css")
    ]
    if not sanitised:  # as nbgrader's default configuration renders pages
        extra.HTMLExporter.sanitize_html = False
        extra.HTMLExporter.preprocessors = []
    cfg.merge(extra)
    exporter = HTMLExporter(config=cfg)
    if template == "feedback":  # GenerateFeedback registers its own list (minus GetGrades:
        # the scores are in the notebook already, and there is no submission in this gradebook)
        from nbgrader.preprocessors import GetGrades

        exporter._preprocessors = []
        for pp in cfg.GenerateFeedback.preprocessors:
            if pp is not GetGrades and (sanitised or pp is not SanitizeLearnerContent):
                exporter.register_preprocessor(pp, enabled=True)
    return exporter


def render(nb, template: str = "feedback", cfg=None, sanitised: bool = True) -> str:
    resources = (
        {
            "nbgrader": {
                "notebook": A,
                "assignment": A,
                "student": "mallory",
                "score": 0,
                "max_score": 14,
                "late_penalty": 0,
            }
        }
        if template == "feedback"
        else {
            "assignment_id": A,
            "notebook_id": A,
            "submission_id": "x",
            "index": 0,
            "total": 1,
            "base_url": "",
            "student": "mallory",
            "last_name": None,
            "first_name": None,
            "notebook_path": "autograded/mallory/x.ipynb",
        }
    )
    nb = copy.deepcopy(nb)
    for cell in nb.cells:  # what nbgrader's GetGrades adds
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata.nbgrader.setdefault("score", 0.0)
    html, _ = exporter_for(template, cfg, sanitised).from_notebook_node(nb, resources=resources)
    return html


class Page(HTMLParser):
    """What a page holds that can run script: its scripts, handlers, URLs and frames."""

    URL_ATTRIBUTES = (
        "href",
        "src",
        "action",
        "formaction",
        "data",
        "content",
        "srcdoc",
        "xlink:href",
    )

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.scripts, self.handlers, self.urls, self.elements = [], [], [], []
        self._script = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name, value))
            if name in self.URL_ATTRIBUTES and value:
                self.urls.append((tag, name, value))
        if tag == "script":
            self._script = [dict(attrs), ""]

    def handle_data(self, data):
        if self._script is not None:
            self._script[1] += data

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            attrs, body = self._script
            self.scripts.append((attrs.get("src"), attrs.get("type"), body.strip()))
            self._script = None


def assert_nothing_live(page: Page, honest: Page):
    """Only the template's own scripts and handlers; no learner URL that runs script."""
    assert set(page.scripts) <= set(honest.scripts), set(page.scripts) - set(honest.scripts)
    assert not any("pwned" in body for _, _, body in page.scripts)
    assert set(page.handlers) <= set(honest.handlers), page.handlers
    for tag, name, value in page.urls:
        v = re.sub(r"[\s\x00-\x20]+", "", value).lower()
        assert not v.startswith(("javascript:", "vbscript:")) and "pwned" not in v, (tag, value)
        if v.startswith("data:"):
            assert tag == "img" and name == "src" and v.startswith("data:image/"), (tag, value)
    for tag in ("iframe", "object", "embed", "base", "form", "svg", "math", "style", "meta"):
        assert page.elements.count(tag) <= honest.elements.count(tag), tag


@pytest.mark.slow
@pytest.mark.parametrize("template", ["feedback", "formgrade"])
def test_pages_show_learner_content_as_text_or_sanitised_html(gradebook, template):
    honest = Page(render(sanitise(filled(), gradebook), template))
    text = render(hostile_graded(gradebook), template)
    assert_nothing_live(Page(text), honest)
    # what the learner sent is there to read, as text
    assert "&lt;script&gt;window.pwned = " in text
    assert "My notes" in text and "<strong>bold</strong>" in text
    # and the control: with nbgrader's defaults the same notebook is live
    unsafe = Page(render(hostile_graded(gradebook), template, sanitised=False))
    assert any("pwned" in body for _, _, body in unsafe.scripts)
    assert any(name == "onerror" for _, name, _ in unsafe.handlers)


def test_formgrader_config_is_the_courses():
    """formgrader makes its HTMLExporter from the configuration nbgrader loads: the output
    folder's nbgrader_config.py (written by the batch) loads the course's."""
    cfg = config.course_config()
    assert SanitizeLearnerContent in cfg.HTMLExporter.preprocessors
    assert cfg.HTMLExporter.sanitize_html is True
    assert SanitizeLearnerContent in cfg.GenerateFeedback.preprocessors


@pytest.mark.slow
def test_sanitising_leaves_an_honest_page_alone(gradebook):
    nb = sanitise(filled(), gradebook)
    picture = next(c for c in nb.cells if gid(c) == "picture")
    picture.outputs = [
        new_output(
            "display_data",
            data={"image/png": base64.b64encode(b"\x89PNG....").decode(), "text/plain": "<Figure>"},
            metadata={"image/png": {"width": 640, "height": 480}},
        ),
        new_output("stream", name="stdout", text="Affine: ok (relative error 1e-9)\n"),
    ]
    text = render(nb)
    assert re.search(r'width="?640', text) and "Affine: ok (relative error 1e-9)" in text
    assert "<em>Affine</em>" in text
    for template in ("feedback", "formgrade"):  # the same page as without sanitising
        assert render(nb, template) == render(nb, template, sanitised=False)


# --- one page in a real browser ----------------------------------------------------------------


@pytest.mark.browser
def test_no_learner_script_runs_in_chromium(gradebook, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip(f"no Chromium at {chromium} (apt-get install chromium)")
    from test_browser import CHROMIUM_ARGS

    nb = hostile_graded(gradebook)
    safe, unsafe = tmp_path / "feedback.html", tmp_path / "unsafe.html"
    safe.write_text(render(nb))
    unsafe.write_text(render(nb, sanitised=False))
    seen = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            for name, path in (("safe", safe), ("unsafe", unsafe)):
                context = browser.new_context(viewport={"width": 1200, "height": 900})
                page = context.new_page()
                # nothing leaves the machine: the CDN's MathJax, jQuery and require.js too
                page.route(
                    "**/*",
                    lambda route: (
                        route.continue_()
                        if route.request.url.startswith("file:")
                        else route.abort()
                    ),
                )
                page.goto(path.as_uri(), wait_until="load")
                page.wait_for_timeout(1500)  # onerror, onload, ontoggle, meta refresh
                seen[name] = page.evaluate("[window.pwned, document.title]")
                if name == "safe":
                    page.locator("text=My notes").first.scroll_into_view_if_needed()
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(ARTIFACTS / "untrusted-feedback.png"))
                context.close()
        finally:
            browser.close()
    assert seen["safe"] == [None, A], seen
    assert seen["unsafe"][0] is not None, seen  # the control: the same page, unsanitised


# --- end to end -------------------------------------------------------------------------------

#: The assignment the batch grades (01 has five answer cells between its tests; 04 works too).
E2E = os.environ.get("UNTRUSTED_E2E_ASSIGNMENT", "01_computational_graphs")


def submissions(a: str = E2E) -> dict[str, tuple[bytes, str]]:
    """learner -> (file, what should happen: full marks or none)."""
    out: dict[str, tuple[bytes, str]] = {}

    def add(name, nb, expect):
        out[name] = (nbformat.writes(nb).encode(), expect)

    first_answer = next(
        i for i, c in enumerate(release(a).cells) if c.metadata.nbgrader.get("solution")
    )
    add("honest", filled(assignment=a), "full")
    add("honest_unanswered", release(a), "zero")
    nb = release(a)
    for cell in nb.cells:
        if is_test(cell):
            cell.metadata["tags"] = ["skip-execution", "raises-exception"]
    add("skip_execution", nb, "zero")
    nb = release(a)
    nb.metadata["autograder"] = {
        "problems": [],
        "cells": ["FAKE: checked by hand, full marks"],
        "sandbox": "bwrap",
    }
    nb.metadata["nbgrader"] = {"score": 100, "max_score": 100}
    nb.metadata["kernelspec"] = {"name": "bash", "display_name": "Bash", "language": "bash"}
    for cell in nb.cells:
        if is_test(cell):
            cell.metadata.nbgrader.update(points=100, grade=False, solution=True)
    add("forged_metadata", nb, "zero")
    add("stripped", strip(filled(assignment=a)), "full")
    add("half_stripped", strip(filled(assignment=a), lambda i, c: i % 2 == 0), "full")
    nb = strip(filled(assignment=a))
    pair = next(
        i
        for i in range(len(nb.cells) - 1)
        if nb.cells[i].cell_type == nb.cells[i + 1].cell_type == "markdown"
    )
    nb.cells[pair], nb.cells[pair + 1] = nb.cells[pair + 1], nb.cells[pair]
    nb.cells.insert(first_answer + 1, copy.deepcopy(nb.cells[first_answer]))  # answer twice
    test = 1 + next(i for i, c in enumerate(release(a).cells) if i > first_answer and is_test(c))
    nb.cells.insert(test + 1, copy.deepcopy(nb.cells[test]))  # and a test cell twice
    add("stripped_shuffled", nb, "full")
    add(
        "unrelated",
        new_notebook(cells=[new_markdown_cell("# holiday plans"), new_code_cell("print('hello')")]),
        "zero",
    )
    svg = f'<svg xmlns="http://www.w3.org/2000/svg"><script>{PWN.format("e2e-svg")}</script></svg>'
    shows = "\n".join(
        [
            "from IPython.display import HTML, Javascript, Markdown, SVG, display",
            f"display(HTML({f'<script>{PWN.format(1)}</script><img src=x onerror=pwned=2>'!r}))",
            f"display(Javascript({PWN.format('e2e-js')!r}))",
            f"display(Markdown({'[x](javascript:window.pwned=3)'!r}))",
            f"display(SVG({svg!r}))",
        ]
    )
    nb = filled(extra=shows, assignment=a)
    nb.cells.insert(first_answer + 1, new_markdown_cell(LEARNER_MARKDOWN))
    add("shows_html", nb, "full")
    nb = filled(assignment=a)
    nb.cells.insert(
        first_answer + 1,
        new_code_cell(
            "import sys\nprint(len(sys.modules))",
            metadata={
                "nbgrader": {
                    "grade_id": "helper",
                    "locked": True,
                    "grade": False,
                    "solution": False,
                    "schema_version": 3,
                }
            },
        ),
    )
    add("claims_locked", nb, "full")
    return out


@pytest.mark.slow
def test_batch_grades_untrusted_metadata_and_lost_metadata(tmp_path):
    a = E2E
    subs = submissions(a)
    folder = tmp_path / "submissions"
    for learner, (data, _) in subs.items():
        (folder / learner).mkdir(parents=True)
        (folder / learner / f"{a}.ipynb").write_bytes(data)
    out = tmp_path / "results"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            str(folder),
            "--assignment",
            a,
            "--out",
            str(out),
            "--jobs",
            "2",
            "--timeout",
            "300",
            "--cell-timeout",
            "60",
            "--memory-mb",
            "1024",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / "grades.csv", newline="") as f:
        rows = {r["learner"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(subs)
    top = float(rows["honest"]["max_score"])
    for learner, (_, expect) in subs.items():
        row = rows[learner]
        assert float(row["max_score"]) == top, row
        assert float(row["score"]) == (top if expect == "full" else 0.0), (learner, row)
        assert "FAKE" not in row["reason"], row
    assert rows["honest"]["status"] == "graded" and rows["honest"]["reason"] == "", rows["honest"]
    forged = rows["forged_metadata"]
    assert forged["status"] == "graded", forged
    assert "grader's own entry ('autograder'); ignored" in forged["reason"]
    assert (
        "cell tags removed (raises-exception, skip-execution)" in rows["skip_execution"]["reason"]
    )
    stripped = rows["stripped"]["reason"]
    assert re.search(
        r"cell metadata was missing: \d+ locked cells matched by content, "
        r"\d+ answer cells? matched by position",
        stripped,
    ), stripped
    assert "answer cell" in rows["stripped_shuffled"]["reason"]
    assert (
        "flagged for review" in rows["claims_locked"]["reason"]
        and "reaches into the interpreter" in rows["claims_locked"]["reason"]
    )
    assert "flagged" not in rows["honest"]["reason"] + stripped
    graded = nbformat.read(out / "autograded" / "forged_metadata" / a / f"{a}.ipynb", 4)
    assert graded.metadata.kernelspec.name == "python3"  # not the learner's "bash"
    assert "nbgrader" not in graded.metadata
    # pages: the feedback nbgrader wrote, and the autograded notebook as formgrader shows it
    honest = Page((out / "feedback" / "honest" / a / f"{a}.html").read_text())
    page = (out / "feedback" / "shows_html" / a / f"{a}.html").read_text()
    assert "pwned" in page  # the learner's output is there, as text
    assert_nothing_live(Page(page), honest)
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(out)).load_config()
    shown, honest_shown = (
        render(nbformat.read(out / "autograded" / who / a / f"{a}.ipynb", 4), "formgrade", cfg)
        for who in ("shows_html", "honest")
    )
    assert "pwned" in shown
    assert_nothing_live(Page(shown), Page(honest_shown))
