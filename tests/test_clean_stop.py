"""A batch stopped by SIGTERM or by Ctrl-C (SIGINT to its process group) ends within a few
seconds, leaves no grading process, kernel or temporary folder behind, and the same command
run again goes on where it stopped (learners already graded are skipped)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_jail import REPO, A, answered, jails_from, release_notebook, solution_sources

from autograder.__main__ import command as grade_command

LEARNERS = 6
SLOW = "import time\ntime.sleep(4)  # a slow answer: the batch is stopped while kernels run"


def _cmd(subs: Path, out: Path) -> list[str]:
    return [
        *grade_command(subs, A, out),
        "--jobs",
        "2",
        "--timeout",
        "120",
        "--cell-timeout",
        "30",
        "--memory-mb",
        "1024",
    ]


def _cmdline(p) -> list[str]:
    import psutil

    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _alive(procs) -> list:
    import psutil

    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.Error:
            pass
    return left


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_batch_stops_at_once_leaves_nothing_and_resumes(tmp_path, sig):
    import psutil

    release = release_notebook(tmp_path)
    subs, out, tmpdir = tmp_path / "subs", tmp_path / "out", tmp_path / "tmpdir"
    tmpdir.mkdir()
    data = answered(release, solution_sources(), SLOW)
    for i in range(LEARNERS):
        p = subs / f"learner{i}" / A / f"{A}.ipynb"
        p.parent.mkdir(parents=True)
        p.write_bytes(data)
    env = {**os.environ, "TMPDIR": str(tmpdir), "OPENBLAS_NUM_THREADS": "1"}
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(
        _cmd(subs, out), cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True
    )
    batch = psutil.Process(proc.pid)
    records = out / ".autograder" / "records" / A
    seen: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + 300
    while True:  # mid-batch: someone graded, kernels running
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the batch never got going"
        for p in batch.children(recursive=True):
            seen.setdefault(p.pid, p)
        running = [p for p in _alive(seen.values()) if "launcher.py" in " ".join(_cmdline(p))]
        if records.is_dir() and list(records.glob("*.json")) and running:
            break
        time.sleep(0.2)
    for p in batch.children(recursive=True):
        seen.setdefault(p.pid, p)

    t0 = time.monotonic()
    if sig == signal.SIGINT:  # Ctrl-C: the terminal signals the whole foreground group
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    proc.wait(timeout=30)
    took = time.monotonic() - t0
    print(f"\n{signal.Signals(sig).name}: the batch ended {took:.2f} s after the signal")
    log.close()
    text = (tmp_path / "first.log").read_text()
    assert took < 6, f"took {took:.1f} s to stop\n{text[-2000:]}"
    assert proc.returncode == 128 + sig, text[-2000:]
    assert f"stopped by {signal.Signals(sig).name}" in text

    deadline = time.monotonic() + 3
    while _alive(seen.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(seen.values()), [_cmdline(p) for p in _alive(seen.values())]
    stray = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if str(tmp_path) in " ".join(p.info["cmdline"] or []):
                stray.append(p.info["cmdline"])
        except psutil.Error:
            pass
    assert not stray, stray
    assert not jails_from(tmpdir), "a jailed kernel outlived the stop"
    assert list(tmpdir.iterdir()) == [], "temporary folders left behind"

    graded_before = len(list(records.glob("*.json")))
    assert 1 <= graded_before < LEARNERS
    again = subprocess.run(
        _cmd(subs, out), cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"{graded_before} already graded" in again.stdout, again.stdout
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == LEARNERS
    assert all(r["score"] == r["max_score"] and r["status"] == "graded" for r in rows), rows
    assert list(tmpdir.iterdir()) == [] and not jails_from(tmpdir)


@pytest.mark.parametrize("wait", [0.0, 2.0], ids=["while bwrap sets up", "once running"])
def test_stopping_a_grading_child_ends_the_jails_below_it(tmp_path, wait):
    """What a worker does to its grading child on SIGTERM or a timeout (processes.kill_tree):
    the child, its bwraps and the jailed processes all end, also a sandbox caught while
    bwrap still sets it up (its parent-death signal is not armed yet: it would live on)."""
    import psutil

    from autograder import processes
    from autograder.kernel import jail

    if jail.status()[0] is None:
        pytest.skip(f"no working bubblewrap here: {jail.status()[1]}")
    marker = tmp_path / "stage"
    marker.mkdir()
    sandbox = [
        jail.status()[0],
        "--unshare-all",
        "--die-with-parent",
        "--as-pid-1",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--ro-bind",
        str(marker),
        "/stage",
        "--",
        "/usr/bin/sleep",
        "300",
    ]
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import os, subprocess, sys, threading, time
        os.setsid()
        def start():  # from a second thread, each in a session of its own, as kernels are
            for _ in range(3):
                subprocess.Popen({sandbox!r}, start_new_session=True)
            print("started", flush=True)
            time.sleep(300)
        threading.Thread(target=start).start()
        time.sleep(300)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "started"
    if wait:
        deadline = time.monotonic() + 20
        while len(jails_from(marker)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(jails_from(marker)) == 3
    below = psutil.Process(child.pid).children(recursive=True)
    processes.kill_tree(child.pid)
    child.wait(10)
    deadline = time.monotonic() + 5
    while (jails_from(marker) or _alive(below)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = jails_from(marker)
    for pid in left:  # do not leave them to the next test run
        os.kill(pid, signal.SIGKILL)
    assert not left and not _alive(below)
