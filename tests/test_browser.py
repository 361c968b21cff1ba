"""The notebooks in a real JupyterLab, driven by Chromium through Playwright.

A session-wide JupyterLab serves copies of solutions/ and course/ (with the
nbgrader configuration) from a temporary folder, with a fresh HOME and
BACKPROP_DATA pointing at a copy of the MNIST files; the kernels import the
course package from this checkout. The browser is Debian's Chromium
(/usr/bin/chromium): Playwright's own browser download is never used.

Screenshots go to test-artifacts/ (git-ignored). Run with::

    pytest -m browser tests/test_browser.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import MNIST_FILES, REPO, lab_command, shared_mnist_dir
from helpers import free_port as _free_port
from helpers import stop_group as _stop

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = REPO / "test-artifacts"
VIEWPORT = {"width": 1400, "height": 1000}

NB_GRAPHS = "solutions/01_computational_graphs/01_computational_graphs.ipynb"
NB_GRAPHS_LEARNER = "course/01_computational_graphs/01_computational_graphs.ipynb"
NB_TRAINING = "solutions/07_training_mnist/07_training_mnist.ipynb"

KERNEL_START = 180_000  # ms: a loaded 2-core machine can take a while
RUN_CELLS = 600_000  # ms


@dataclass
class Lab:
    url: str
    root: Path
    log: Path
    has_mnist: bool
    env: dict

    def api(self, path: str, method: str = "GET") -> object:
        req = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for session in self.api("/api/sessions"):
            try:
                self.api(f"/api/sessions/{session['id']}", method="DELETE")
            except urllib.error.HTTPError:
                pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    pytest.importorskip("jupyterlab")
    base = tmp_path_factory.mktemp("lab")
    root, home, data = base / "root", base / "home", base / "data"
    for name in ("solutions", "course", "autograder"):
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name,
                root / name,
                ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"),
            )
    root.mkdir(exist_ok=True)
    shutil.copyfile(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    data.mkdir()
    mnist = shared_mnist_dir()
    if mnist is not None:  # copies: the shared folder is never written to
        for name in MNIST_FILES:
            shutil.copyfile(mnist / name, data / name)
    # No news or update checks: no requests leave the machine, no toasts cover the page.
    settings = home / ".jupyter/lab/user-settings/@jupyterlab/apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER", "NBGRADER", "PYTHONPATH", "BACKPROP", "MPLBACKEND"))
    }
    env.update(HOME=str(home), BACKPROP_DATA=str(data), PYTHONPATH=str(REPO / "lib"))
    port = _free_port()
    cmd = [
        *lab_command(port, root),
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = base / "jupyter.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(url + "/api/status", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer in 120 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield Lab(url, root, log, has_mnist=mnist is not None, env=env)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")  # closed with this module: an open sync_playwright keeps
def browser():  # an asyncio loop running, which breaks later sync APIs
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, lab, request):
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    yield pg
    try:
        shot(pg, f"{request.node.name}-last")
    except Exception:  # the page may be gone; the screenshot is only a help
        pass
    context.close()
    lab.shutdown_kernels()  # a long run must not go on into the next test


def shot(target, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"browser-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    target.screenshot(path=str(path))
    return path


def need(lab: Lab, notebook: str) -> None:
    if not (lab.root / notebook).is_file():
        pytest.skip(f"{notebook} does not exist yet")


def open_notebook(page, lab: Lab, notebook: str) -> None:
    """Open a notebook in a fresh workspace and wait until its kernel is idle."""
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab/tree/{notebook}?reset")
    page.locator(".jp-NotebookPanel").first.wait_for(timeout=KERNEL_START)
    expect(page.locator("#jp-main-statusbar")).to_contain_text(
        re.compile(r"\|\s*Idle"), timeout=KERNEL_START
    )


def run_all(page) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()


def wait_drawn(page, image, timeout: float = 60_000) -> None:
    """Wait until an <img> shows a decoded picture of real size."""
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 500",
        arg=image.element_handle(timeout=timeout),
        timeout=timeout,
    )


def apple_explorer(page, lab: Lab, notebook: str):
    """Run every cell of notebook; the apple graph's explorer (the one without orange
    sliders) and its table of values, once it is on the page."""
    need(lab, notebook)
    open_notebook(page, lab, notebook)
    run_all(page)
    explorer = page.locator(".bp-graph-explorer:not(:has(.bp-slider-orange))").first
    explorer.wait_for(timeout=RUN_CELLS)
    explorer.scroll_into_view_if_needed()
    return explorer, explorer.locator(".bp-graph-values")


def test_graph_explorer_slider_updates_gradient(page, lab):
    from playwright.sync_api import expect

    explorer, table = apple_explorer(page, lab, NB_GRAPHS)
    expect(table).to_contain_text("d tax = 200", timeout=RUN_CELLS)
    expect(table).to_contain_text("d apple = 2.2")
    image = explorer.locator("img").first
    wait_drawn(page, image)
    before = image.get_attribute("src")
    shot(explorer, "graph-explorer-default")

    # type 3 into the apple count's readout, as a learner can
    readout = explorer.locator(".bp-slider-apple_num .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    page.keyboard.press("Enter")
    expect(table).to_contain_text("d tax = 300", timeout=60_000)  # 3 apples at 100
    expect(table).to_contain_text("d apple = 3.3")
    expect(table).to_contain_text("price = 330")
    expect(image).not_to_have_attribute("src", before or "")  # the drawing was redrawn

    # and with the keyboard on the slider itself
    explorer.locator(".bp-slider-apple_num .noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    expect(table).to_contain_text("d tax = 400", timeout=60_000)
    wait_drawn(page, image)
    shot(explorer, "graph-explorer-4-apples")


def make_learner_version(lab: Lab, source: str, release: str) -> None:
    """Until course/ holds the learner version, make it in the server's copy the way
    the course does: nbgrader generate_assignment with the course's configuration."""
    need(lab, source)
    assignment = Path(source).parent.name
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"],
        cwd=lab.root,
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0 or not (lab.root / release).is_file():
        pytest.skip(
            f"{release} does not exist yet and nbgrader generate_assignment could not "
            f"make it:\n{proc.stderr[-2000:]}"
        )


def test_validate_reports_failing_tests(page, lab):
    from playwright.sync_api import expect

    if not (lab.root / NB_GRAPHS_LEARNER).is_file():
        make_learner_version(lab, NB_GRAPHS, NB_GRAPHS_LEARNER)
    open_notebook(page, lab, NB_GRAPHS_LEARNER)
    toolbar = page.locator(".jp-NotebookPanel-toolbar").first
    toolbar.get_by_text("Validate", exact=True).click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Validation Results", timeout=RUN_CELLS)
    expect(dialog).to_contain_text("failed")
    expect(dialog).to_contain_text("NotImplementedError")
    shot(page, "validate-unanswered")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def step_shown(status) -> int:
    """The step number in the live view's status line ("step 1,201 / 3,600 · ...")."""
    m = re.search(r"step ([\d,]+) /", status.text_content())
    assert m, status.text_content()
    return int(m.group(1).replace(",", ""))


def test_live_training_view_renders(page, lab):
    from playwright.sync_api import expect

    need(lab, NB_TRAINING)
    if not lab.has_mnist:
        pytest.skip(
            "the MNIST files are not here (set BACKPROP_MNIST_DIR or put them in ../shared/mnist)"
        )
    open_notebook(page, lab, NB_TRAINING)
    run_all(page)
    view = page.locator(".bp-live-training")
    image = view.locator("img.bp-training-plot")
    status = view.locator(".bp-training-status")
    expect(status).to_contain_text(re.compile(r"step [\d,]+ / [\d,]+"), timeout=RUN_CELLS)
    wait_drawn(page, image)
    first_step = step_shown(status)
    first_src = image.get_attribute("src")
    # a later evaluation redraws the same view instead of adding outputs
    page.wait_for_function(
        """([el, first]) => {
            const m = el.textContent.match(/step ([\\d,]+) \\//);
            return m !== null && parseInt(m[1].replace(/,/g, ""), 10) > first;
        }""",
        arg=[status.element_handle(), first_step],
        timeout=RUN_CELLS,
    )
    assert step_shown(status) > first_step
    expect(status).to_contain_text("test accuracy")
    wait_drawn(page, image)
    assert image.get_attribute("src") != first_src
    expect(view).to_have_count(1)
    view.scroll_into_view_if_needed()
    shot(view, "live-training")
