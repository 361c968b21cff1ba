"""Small helpers several test modules share: ports, servers started and stopped by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def shared_mnist_dir() -> Path | None:
    """The folder with the four original MNIST .gz files, or None.

    BACKPROP_MNIST_DIR wins; else ../shared/mnist beside the repository.
    """
    candidates = [os.environ.get("BACKPROP_MNIST_DIR"), REPO.parent / "shared" / "mnist"]
    for c in candidates:
        if c and all((Path(c) / f).is_file() for f in MNIST_FILES):
            return Path(c)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_command(port: int, root) -> list[str]:
    """JupyterLab on 127.0.0.1:port serving root, without token or password."""
    return [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.token=",
            "--ServerApp.password=", f"--ServerApp.root_dir={root}"]  # fmt: skip


def wait_for_http(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    """Wait until url answers; raise if proc exits first or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {seconds} s") from None
            time.sleep(0.5)


def stop_group(proc: subprocess.Popen) -> None:
    """End a server started with start_new_session=True: its process group, by its own id."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- assignments as learners receive them ------------------------------------------------------


def release_notebooks(tmp, assignments: list[str]) -> dict:
    """assignment -> its learner notebook: course/<a>/<a>.ipynb, or generated from solutions/
    by nbgrader's own generate_assignment into tmp/release-course."""
    from pathlib import Path

    from autograder import config

    out, missing = {}, []
    for a in assignments:
        p = config.ROOT / "course" / a / f"{a}.ipynb"
        if p.is_file():
            out[a] = p
        else:
            missing.append(a)
    if missing:
        course = Path(tmp) / "release-course"
        course.mkdir(parents=True, exist_ok=True)
        config.write_config_file(course)
        for a in missing:
            subprocess.run(
                ["nbgrader", "generate_assignment", a, "--force"],
                cwd=course,
                check=True,
                capture_output=True,
            )
            out[a] = course / "release" / a / f"{a}.ipynb"
    return out


# What the README tells an instructor to run in a results folder: nbgrader's formgrader.
FORMGRADER = [
    "jupyter",
    "server",
    "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=True",
    "--ServerApp.default_url=/formgrader",
]


def formgrader_api(folder, env: dict, paths: list[str]) -> tuple[str, str, list]:
    """Start the formgrader in folder (127.0.0.1, no token), read the JSON of each
    ``/formgrader/api/...`` path, stop it: (the address / led to, that page, the JSONs)."""
    import json

    port = free_port()
    cmd = [sys.executable, "-m", *FORMGRADER, "--no-browser", "--ServerApp.ip=127.0.0.1"]
    cmd += [f"--ServerApp.port={port}", "--IdentityProvider.token=", "--ServerApp.password="]
    cmd += ["--allow-root"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(cmd, cwd=folder, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/api", proc)
        with urllib.request.urlopen(f"{base}/", timeout=60) as resp:
            where, page = resp.geturl(), resp.read().decode()
        found = []
        for path in paths:
            with urllib.request.urlopen(f"{base}/formgrader/api/{path}", timeout=60) as resp:
                found.append(json.loads(resp.read().decode()))
    finally:
        stop_group(proc)
    return where, page, found
