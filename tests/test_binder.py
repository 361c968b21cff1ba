"""The Binder set-up (binder/) works from its own files alone.

Does what repo2docker does, without Docker: a fresh virtual environment,
``pip install -r binder/requirements.txt`` from a copy of the repository,
``binder/postBuild`` with HOME in a temporary folder, then notebooks executed
through ``binder/start`` in that environment's kernel. The only network it
uses is the package registry, through pip; MNIST comes from copies of the
files in shared/mnist placed where postBuild looks for them.

Run with ``pytest -m slow tests/test_binder.py -s`` to see the install time
and the environment's size (they are also written to
test-artifacts/binder-metrics.json).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import MNIST_FILES, REPO, shared_mnist_dir

BINDER = REPO / "binder"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LEARNER_OFF = ["formgrader", "course-list", "assignment-list", "create-assignment", "menu"]
FIRST_CHAPTERS = ["01_*", "02_*"]


# --- the files themselves (fast) ---------------------------------------------------------


def test_runtime_is_python_311_or_newer():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-3\.(\d+)", runtime)
    assert m and int(m.group(1)) >= 11, runtime


def test_requirements_cover_the_course():
    lines = [
        ln.split("#")[0].strip() for ln in (BINDER / "requirements.txt").read_text().splitlines()
    ]
    lines = [ln for ln in lines if ln]
    names = {re.split(r"[<>=!~\[ ]", ln)[0].lower() for ln in lines}
    assert {"numpy", "matplotlib", "jupyterlab", "ipywidgets", "nbgrader", "pooch", "tqdm"} <= names
    assert "nbgrader==0.9.6" in lines
    assert "-e ." in lines or "." in lines  # the course package, from the repository root


def test_the_image_has_a_hangul_font():
    """repo2docker installs binder/apt.txt: fonts-nanum gives the Korean edition's plots and
    widgets their Hangul (backprop.i18n.HANGUL_FONTS names NanumGothic first)."""
    from backprop.i18n import HANGUL_FONTS

    packages = [ln.split("#")[0].strip() for ln in (BINDER / "apt.txt").read_text().splitlines()]
    assert [p for p in packages if p] == ["fonts-nanum"]
    assert HANGUL_FONTS[0] == "NanumGothic"


def test_scripts_are_strict_and_executable():
    post = (BINDER / "postBuild").read_text()
    start = (BINDER / "start").read_text()
    assert post.startswith("#!/bin/bash") and "set -euo pipefail" in post
    assert start.startswith("#!/bin/bash") and 'exec "$@"' in start
    assert "BACKPROP_DATA" in start
    for script in ("postBuild", "start"):
        assert os.access(BINDER / script, os.X_OK), f"binder/{script} is not executable"
    subprocess.run(["bash", "-n", str(BINDER / "postBuild")], check=True)
    subprocess.run(["bash", "-n", str(BINDER / "start")], check=True)


# --- a real build --------------------------------------------------------------------------


@dataclass
class BinderEnv:
    root: Path
    repo: Path
    home: Path
    venv: Path
    env: dict[str, str]
    install_seconds: float
    postbuild_seconds: float
    venv_mb: int

    @property
    def data(self) -> Path:
        return self.home / ".backprop-data"

    def run(
        self, *args: str, cwd: Path | None = None, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Run a command inside the Binder session: through binder/start, venv first on PATH."""
        proc = subprocess.run(
            [str(self.repo / "binder" / "start"), *args],
            cwd=cwd or self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"{' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
            )
        return proc


def _copy_repo(dst: Path) -> None:
    shutil.copytree(
        REPO,
        dst,
        ignore=shutil.ignore_patterns(
            ".git",
            "test-artifacts",
            ".hypothesis",
            ".pytest_cache",
            "__pycache__",
            "*.egg-info",
            ".benchmarks",
            ".venv",
            "gradebook.db",
            "*.npz",
            "*-ubyte*",
            ".ipynb_checkpoints",
        ),
    )


def _session_env(home: Path, venv: Path) -> dict[str, str]:
    """The environment of a Binder session: nothing of this machine's Python set-up."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "PYTHON",
                "JUPYTER",
                "NBGRADER",
                "VIRTUAL_ENV",
                "CONDA",
                "BACKPROP",
                "IPYTHON",
                "MPLBACKEND",
                "PYTEST",
            )
        )
    }
    env["HOME"] = str(home)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def binder(tmp_path_factory) -> BinderEnv:
    mnist = shared_mnist_dir()
    if mnist is None:
        pytest.skip(
            "the MNIST files are not here (set BACKPROP_MNIST_DIR or put them in "
            "../shared/mnist); postBuild would have to download them"
        )
    root = tmp_path_factory.mktemp("binder")
    repo, home, venv = root / "repo", root / "home", root / "venv"
    _copy_repo(repo)
    # repo2docker's image starts with an empty home; postBuild puts MNIST in
    # $HOME/.backprop-data. Seeding that folder with copies of the original
    # files stands in for the download (load_mnist still checks every checksum).
    (home / ".backprop-data").mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copyfile(mnist / name, home / ".backprop-data" / name)

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = _session_env(home, venv)
    # pip keeps this machine's HOME: its configuration and download cache live there.
    pip_env = dict(env, HOME=os.environ.get("HOME", str(home)))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
            "binder/requirements.txt",
        ],
        cwd=repo,
        env=pip_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    install_seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        pytest.fail(f"pip install -r binder/requirements.txt failed:\n{proc.stderr[-5000:]}")

    t0 = time.perf_counter()
    proc = subprocess.run(
        ["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    postbuild_seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        pytest.fail(f"binder/postBuild failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")

    du = subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True, check=True)
    venv_mb = int(du.stdout.split()[0])
    metrics = {
        "pip_install_seconds": round(install_seconds, 1),
        "postbuild_seconds": round(postbuild_seconds, 1),
        "venv_mb": venv_mb,
        "python": sys.version.split()[0],
    }
    sys.__stdout__.write(f"\n[binder] {json.dumps(metrics)}\n")
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "binder-metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return BinderEnv(root, repo, home, venv, env, install_seconds, postbuild_seconds, venv_mb)


@pytest.mark.slow
def test_install_and_postbuild(binder, record_property):
    record_property("pip_install_seconds", round(binder.install_seconds, 1))
    record_property("postbuild_seconds", round(binder.postbuild_seconds, 1))
    record_property("venv_mb", binder.venv_mb)
    probe = (
        "import backprop, ipywidgets, matplotlib, nbgrader, pooch, tqdm, sys; "
        "print(backprop.__file__); print(sys.prefix); print(nbgrader.__version__)"
    )
    out = binder.run("python", "-c", probe).stdout.split()
    assert Path(out[0]).resolve().is_relative_to(binder.repo.resolve())  # the course package
    assert Path(out[1]).resolve() == binder.venv.resolve()
    assert out[2] == "0.9.6"
    # MNIST was verified and cached in the image by postBuild
    assert (binder.data / "mnist.npz").is_file()


@pytest.mark.slow
def test_start_points_backprop_data_at_the_image_copy(binder):
    # The mirrors point nowhere: the data must come from the image, not the network.
    code = (
        "import os; from backprop.data import load_mnist; "
        "(x, _), (xt, _) = load_mnist(mirrors=['http://127.0.0.1:9/']); "
        "print(os.environ['BACKPROP_DATA'], x.shape[0], xt.shape[0])"
    )
    data_dir, n_train, n_test = binder.run("python", "-c", code).stdout.split()
    assert Path(data_dir) == binder.data
    assert (n_train, n_test) == ("60000", "10000")


@pytest.mark.slow
def test_nbgrader_is_in_learner_mode(binder):
    proc = binder.run("jupyter", "labextension", "list")
    lab = ANSI.sub("", proc.stdout + proc.stderr)
    assert re.search(r"@jupyter/nbgrader v0\.9\.6 enabled\s+OK", lab), lab
    disabled = lab.split("Disabled extensions:", 1)
    assert len(disabled) == 2, lab
    off = set(re.findall(r"@jupyter/nbgrader:[\w-]+", disabled[1]))
    assert off == {f"@jupyter/nbgrader:{p}" for p in LEARNER_OFF}, lab
    assert "@jupyter/nbgrader:validate-assignment" not in off

    proc = binder.run("jupyter", "server", "extension", "list")
    server = ANSI.sub("", proc.stdout + proc.stderr)
    state = dict(re.findall(r"(nbgrader\.server_extensions\.\w+) (enabled|disabled)", server))
    assert state == {
        "nbgrader.server_extensions.formgrader": "disabled",
        "nbgrader.server_extensions.course_list": "disabled",
        "nbgrader.server_extensions.assignment_list": "disabled",
        "nbgrader.server_extensions.validate_assignment": "enabled",
    }, server


def _notebook(cells: list[str]) -> dict:
    return {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": c,
            }
            for c in cells
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _execute(binder: BinderEnv, nb: Path, out_dir: Path, timeout: int = 600) -> dict:
    t0 = time.perf_counter()
    binder.run(
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        f"--ExecutePreprocessor.timeout={timeout}",
        "--output-dir",
        str(out_dir),
        str(nb),
        cwd=nb.parent,
        timeout=timeout + 120,
    )
    sys.__stdout__.write(f"\n[binder] executed {nb.name} in {time.perf_counter() - t0:.1f} s\n")
    return json.loads((out_dir / nb.name).read_text())


@pytest.mark.slow
def test_kernel_runs_in_the_binder_environment(binder, tmp_path):
    nb = tmp_path / "probe.ipynb"
    nb.write_text(
        json.dumps(
            _notebook(
                [
                    "import os, sys\nprint(sys.prefix)\nprint(os.environ['BACKPROP_DATA'])",
                    "from backprop.widgets import graph_explorer\n"
                    "ex = graph_explorer('apple')\nex.sliders['apple_num'].value = 3\n"
                    "assert 'd tax = 300' in ex.table.value\nex",
                ]
            )
        )
    )
    done = _execute(binder, nb, tmp_path / "out")
    text = "".join("".join(o.get("text", "")) for o in done["cells"][0]["outputs"])
    prefix, data_dir = text.split()
    assert Path(prefix).resolve() == binder.venv.resolve()
    assert Path(data_dir) == binder.data
    widget_out = done["cells"][1]["outputs"][0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in widget_out


@pytest.mark.slow
@pytest.mark.parametrize("chapter", FIRST_CHAPTERS)
def test_first_notebooks_execute(binder, tmp_path, chapter):
    notebooks = sorted((binder.repo / "solutions").glob(f"{chapter}/*.ipynb"))
    if not notebooks:
        pytest.skip(f"no notebook solutions/{chapter}/*.ipynb yet")
    for nb in notebooks:
        done = _execute(binder, nb, tmp_path / nb.parent.name)
        errors = [
            o
            for c in done["cells"]
            for o in c.get("outputs", [])
            if o.get("output_type") == "error"
        ]
        assert not errors, f"{nb.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
