"""Real servers for tests and the benchmark: a Dask cluster and a PostgreSQL server.

Each is started on 127.0.0.1 by the caller, in a temporary folder, and stopped by the process
ids it started (its whole process group, so nothing is left behind):

* :class:`DaskCluster`: ``dask scheduler`` and N ``dask worker`` processes (each a nanny and
  the worker it runs), one thread per worker, as the README tells instructors to run them;
* :class:`PostgresServer`: Debian's ``postgresql`` binaries (``initdb``, ``postgres``) in a
  fresh data folder, run as an unprivileged user (the server refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers import free_port

# A task whose worker dies is tried once more elsewhere, then reported (README: cluster).
DASK_ENV = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
    """Stop proc and its process group (started with start_new_session=True)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything the group left running
    except ProcessLookupError:
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


class DaskCluster:
    """``with DaskCluster(workers=2) as c:`` a scheduler at ``c.address`` and its workers."""

    def __init__(self, workers: int = 2, env: dict | None = None, timeout: float = 60.0):
        self.workers, self.timeout = workers, timeout
        self.env = {**os.environ, **DASK_ENV, **(env or {})}
        self.procs: list[subprocess.Popen] = []
        self.nannies: list[subprocess.Popen] = []

    def _start(self, args: list[str], log: str) -> subprocess.Popen:
        out = open(self.folder / log, "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "dask", *args],  # `dask scheduler`, `dask worker`
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.folder,
            start_new_session=True,
        )
        out.close()
        self.procs.append(proc)
        return proc

    def __enter__(self) -> DaskCluster:
        self.folder = Path(tempfile.mkdtemp(prefix="dask-cluster-"))
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        try:
            self._start(["scheduler", "--host", "127.0.0.1", "--port", str(port),
                         "--no-dashboard", "--no-show"], "scheduler.log")  # fmt: skip
            for i in range(self.workers):
                self.nannies.append(
                    self._start(
                        [
                            "worker",
                            self.address,
                            "--host",
                            "127.0.0.1",
                            "--nthreads",
                            "1",
                            "--nworkers",
                            "1",
                            "--no-dashboard",
                            "--memory-limit",
                            "0",
                            "--name",
                            f"w{i}",
                            "--local-directory",
                            str(self.folder / f"w{i}"),
                        ],
                        f"worker{i}.log",
                    )  # fmt: skip
                )
            self.wait_for_workers(self.workers)
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=self.timeout) as client:
            client.wait_for_workers(n, timeout=self.timeout)

    def worker_pids(self) -> list[int]:
        """The worker processes themselves (each a child of its nanny)."""
        import psutil

        pids = []
        for nanny in self.nannies:
            try:
                pids += [
                    c.pid
                    for c in psutil.Process(nanny.pid).children()
                    if "spawn_main" in " ".join(c.cmdline())
                ]
            except psutil.NoSuchProcess:
                pass
        return pids

    def pids(self) -> list[int]:
        """Every process of the cluster: scheduler, nannies, workers and their children."""
        import psutil

        out = []
        for proc in self.procs:
            try:
                p = psutil.Process(proc.pid)
                out += [p.pid] + [c.pid for c in p.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return out

    def log(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.folder.glob("*.log"))
        )

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.procs):  # workers first, the scheduler last
            _stop(proc)
        shutil.rmtree(self.folder, ignore_errors=True)


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL server binaries (the newest version installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: p.split("/")[4])
    return Path(found[-1]).parent if found else None


def postgres_user() -> str | None:
    """Who runs the server: this user unless root, then ``postgres`` (None: no such user)."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        return None


class PostgresServer:
    """``with PostgresServer() as pg:`` a server on 127.0.0.1:``pg.port``; ``pg.url(db)``."""

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self.bin, self.user = postgres_bin(), postgres_user()
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def unavailable() -> str | None:
        """Why no server can be started here (None: it can)."""
        if postgres_bin() is None:
            return "PostgreSQL is not installed (apt-get install postgresql)"
        if postgres_user() is None:
            return "running as root and there is no 'postgres' user to run the server as"
        return None

    def _run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            user=self.user,
            capture_output=True,
            text=True,
            check=True,
            timeout=self.timeout,
            **kw,
        )

    def __enter__(self) -> PostgresServer:
        why = self.unavailable()
        if why:
            raise RuntimeError(why)
        self.folder = Path(tempfile.mkdtemp(prefix="postgres-"))
        os.chmod(self.folder, 0o755)
        self.data = self.folder / "data"
        shutil.chown(self.folder, self.user)
        self.port = free_port()
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--no-sync", "-E", "UTF8")  # fmt: skip
            log = open(self.folder / "server.log", "wb")
            self.proc = subprocess.Popen(
                [
                    str(self.bin / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.folder}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=50",
                ],  # fmt: skip
                user=self.user,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            self._wait()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited:\n" + self.log())
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("postgres did not start:\n" + self.log())

    def create_database(self, name: str) -> str:
        """A new database; its SQLAlchemy URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def __exit__(self, *exc) -> None:
        if self.proc is not None:  # SIGINT: PostgreSQL's fast shutdown
            _stop(self.proc, signal.SIGINT)
        shutil.rmtree(self.folder, ignore_errors=True)
