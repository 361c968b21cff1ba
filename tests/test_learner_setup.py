"""A learner's local JupyterLab after ``python -m backprop.jupyter``: what Binder shows.

The settings are written into a temporary prefix (never this machine's environment) and
a JupyterLab on 127.0.0.1 reads them through JUPYTER_CONFIG_PATH; Debian's Chromium opens
an untouched course notebook, waits for its kernel, and the tab must not be marked as
changed; nbgrader's Validate button is there, its menu and Create Assignment panel are not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from backprop import jupyter
from helpers import free_port, lab_command, stop_group, wait_for_http

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = REPO / "course" / "01_computational_graphs" / "01_computational_graphs.ipynb"


def test_learner_and_instructor_modes_write_what_jupyter_reads(tmp_path):
    # (test_binder.py checks in a real environment that jupyter then lists them so)
    jupyter.configure(tmp_path)
    page = tmp_path / "etc/jupyter/labconfig/page_config.json"
    server = tmp_path / "etc/jupyter/jupyter_server_config.json"
    assert all(
        json.loads(page.read_text())["disabledExtensions"][p] for p in jupyter.INSTRUCTOR_PLUGINS
    )
    extensions = json.loads(server.read_text())["ServerApp"]["jpserver_extensions"]
    assert extensions == {
        **{e: False for e in jupyter.INSTRUCTOR_SERVER_EXTENSIONS},
        jupyter.VALIDATE: True,
    }
    jupyter.configure(tmp_path, instructor=True)
    assert not any(json.loads(page.read_text())["disabledExtensions"].values())
    assert all(json.loads(server.read_text())["ServerApp"]["jpserver_extensions"].values())
    assert (
        json.loads(server.read_text())["ServerApp"]["contents_manager_class"]
        == "backprop.jupyter.CourseContentsManager"
    )


def test_kernel_metadata_is_what_ipykernel_reports():
    meta = jupyter.kernel_metadata("python3")
    assert meta["language_info"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert meta["kernelspec"]["name"] == "python3"


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not at /usr/bin/chromium")
def test_untouched_notebook_is_not_changed_and_only_validate_is_shown(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    prefix, home, root = tmp_path / "prefix", tmp_path / "home", tmp_path / "root"
    jupyter.configure(prefix)
    root.mkdir()
    (root / "nb.ipynb").write_bytes(NOTEBOOK.read_bytes())
    settings = home / ".jupyter/lab/user-settings/@jupyterlab/apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NBGRADER"))}
    env.update(HOME=str(home), JUPYTER_CONFIG_PATH=str(prefix / "etc/jupyter"))
    port = free_port()
    cmd = [*lab_command(port, root)]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(tmp_path / "jupyter.log", "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/api/status", proc)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url + "/lab/tree/nb.ipynb")
            page.wait_for_selector(".jp-Notebook", timeout=180_000)
            page.wait_for_function(
                "() => document.body.innerText.includes('Idle')", timeout=180_000
            )
            time.sleep(3)  # the kernel's metadata arrives after it is idle
            artifacts = REPO / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "learner-setup.png"))
            dirty = page.locator(".jp-mod-dirty").count()
            text = page.inner_text("body")
            validate = page.get_by_text("Validate", exact=True).count()
            menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
            browser.close()
        assert dirty == 0, "opening the notebook marked it as changed"
        assert validate >= 1, "nbgrader's Validate button is missing"
        assert "Nbgrader" not in menus and "Create Assignment" not in text
    finally:
        stop_group(proc)
