"""The grading kernel's start and end: through the launcher, in its jail where there is one.

:class:`GuardedKernelManager` starts ipykernel through ``kernel/launcher.py`` with the
settings of a :class:`Confinement`: inside a bubblewrap jail of its own (``kernel/jail.py``:
new namespaces, no network, a read-only system, nothing of the course but what it needs,
the exercise's reference implementation taken out (``kernel/redact.py``), a private
size-limited /tmp), with memory and file size limits, killed with the grader, in a working
folder that holds the assignment's data files but no notebook. Without bwrap the kernel
runs with the limits and the guard only. Its private folder (settings, connection file,
working folder) goes with the kernel.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass, field

from jupyter_client.manager import AsyncKernelManager

from ..kernel import jail, redact

AUTOGRADER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNEL_SIDE = os.path.join(AUTOGRADER, "kernel")
LAUNCHER = os.path.join(KERNEL_SIDE, "launcher.py")
#: Files of the notebook's folder the kernel's working folder never gets.
_NOT_COPIED = ("*.ipynb", ".ipynb_checkpoints", "*.db", "*.sqlite")


@dataclass
class Confinement:
    """What a grading kernel runs in (GuardedExecute's settings for one kernel)."""

    memory_mb: int | None  # address-space cap, MiB; None: none
    file_mb: int | None  # largest file it may write, MiB; None: none
    bwrap: str  # the bubblewrap program; "": no jail
    network: bool  # whether the jailed kernel keeps the network
    tmp_mb: int  # size of the jail's private /tmp, MiB
    hidden: list[str] = field(default_factory=list)  # files and folders kept from it
    redact: set[str] = field(default_factory=set)  # backprop names it must not have
    guard: dict | None = None  # the guard's {"key": hex, "module": name}, or None


def course_folders(config) -> list[str]:
    """The course's source, submitted, autograded and feedback folders and its gradebook
    (an sqlite file), as nbgrader's configuration names them."""
    from nbgrader.coursedir import CourseDirectory

    cd = CourseDirectory(config=config)
    root = os.path.abspath(cd.root)
    paths = [
        os.path.join(root, d)
        for d in (
            cd.source_directory,
            cd.submitted_directory,
            cd.autograded_directory,
            cd.feedback_directory,
        )
    ]
    if cd.db_url.startswith("sqlite:///"):
        paths.append(os.path.abspath(cd.db_url[len("sqlite:///") :]))
    return paths


def redacted_backprop(names: set[str], cache: str, log) -> tuple[str, str | None]:
    """(the backprop package's folder, a copy of it without ``names`` or None): redact.py."""
    spec = importlib.util.find_spec("backprop")
    package = os.path.dirname(os.path.realpath(spec.origin))
    try:
        copy = redact.redacted_package(package, names, cache)
    except Exception as exc:  # pragma: no cover - a broken package is graded as it is
        log.warning("could not redact backprop: %s", exc)
        copy = None
    return package, (str(copy) if copy else None)


class GuardedKernelManager(AsyncKernelManager):
    """Starts ipykernel through launcher.py with the settings in ``sandbox``: inside the
    jail described by ``jail`` (jail.py, bubblewrap) when there is one."""

    sandbox: dict | None = None  # the launcher's settings
    private_dir: str | None = None
    jail: dict | None = None  # jail.command's arguments, None: no jail
    kernel_env: dict | None = None  # without a jail: the kernel's environment
    _jail_fds: tuple[int, int, int] | None = None  # settings memfd, info pipe (read, write)
    _jail_pid: int | None = None  # the jailed kernel, as this process sees it

    def confine(self, c: Confinement, private: str) -> str:
        """Set the next start up to run in ``c``, with ``private`` (a new folder) as the
        kernel's own; what it will run in, for the notes (``bwrap`` or ``none (why)``)."""
        self.private_dir = private
        self.connection_file = os.path.join(private, "kernel.json")
        bwrap, status = jail.status(c.bwrap)
        cache = os.environ.get("AUTOGRADER_KERNEL_DIR") or private
        package, redacted = redacted_backprop(c.redact, cache, self.log)
        audit = [p for p in c.hidden if not private.startswith(p + os.sep)]
        if redacted and not bwrap:  # the real package is still on disk: refuse to open it
            audit.append(package)
        self.sandbox = {
            "memory_mb": c.memory_mb,
            "file_mb": c.file_mb,
            "audit_paths": audit,
            "guard": c.guard,
        }
        if bwrap:
            # unix sockets: the jailed kernel has a network of its own. The kernel makes them
            # in its /run/kernel; the manager points the client there once it knows the pid
            self.transport = "ipc"
            self.ip = os.path.join(private, "k")
            self.jail = {
                "bwrap": bwrap,
                "stage": os.path.join(private, "work"),
                "code": {
                    jail.CODE + "/launcher.py": LAUNCHER,
                    jail.CODE + "/guard.py": os.path.join(KERNEL_SIDE, "guard.py"),
                },
                "library": os.path.dirname(package),
                "redacted": redacted,
                "hidden": c.hidden,
                "project": os.path.dirname(AUTOGRADER),
                "network": c.network,
                "tmp_mb": c.tmp_mb,
            }
        else:  # the launcher's protections only: limits, the guard and its audit hook
            env = jail.environment(
                os.path.join(private, "home"), os.path.join(private, "tmp"), jail.data_dir()
            )
            env["PATH"] = os.environ.get("PATH", env["PATH"])
            if redacted:
                env["PYTHONPATH"] = os.path.dirname(redacted)
            self.kernel_env = env
        return status

    def start_arguments(self, folder: str) -> dict:
        """Arguments for ``start_kernel``: a working folder of its own holding the files of
        ``folder`` (the assignment's), never a notebook; in the jail, the kernel copies it
        into its private /tmp."""
        cwd = os.path.join(self.private_dir, "work")
        shutil.copytree(
            folder, cwd, ignore=shutil.ignore_patterns(*_NOT_COPIED), dirs_exist_ok=True
        )
        if self.jail:
            return {"cwd": self.private_dir}
        for d in (self.kernel_env["HOME"], self.kernel_env["TMPDIR"]):
            os.makedirs(d, exist_ok=True)
        return {"cwd": cwd, "env": dict(self.kernel_env)}

    async def _async_pre_start_kernel(self, **kw):
        if self.sandbox and self.jail:
            settings = os.memfd_create("grading-settings")
            info_r, info_w = os.pipe()
            self._jail_fds = (settings, info_r, info_w)
            kw["pass_fds"] = tuple(kw.get("pass_fds", ())) + (settings, info_w)
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if not self.sandbox:
            return cmd
        try:
            i = cmd.index("ipykernel_launcher")
        except ValueError:
            self.log.warning("kernel %s is not ipykernel: started without the grading sandbox", cmd)
            return cmd
        if i < 2 or cmd[i - 1] != "-m":
            return cmd
        python, args = cmd[0], cmd[i + 1 :]
        settings = {**self.sandbox, "parent": os.getpid()}
        if not self.jail:
            fd, path = tempfile.mkstemp(prefix="settings-", suffix=".json", dir=self.private_dir)
            with os.fdopen(fd, "w") as f:
                json.dump(settings, f)
            return [python, LAUNCHER, path, *args]
        return self._jail_command(python, args, settings)

    def _jail_command(self, python: str, args: list[str], settings: dict) -> list[str]:
        """bwrap's command line; the launcher's settings written to the memfd it reads."""
        if "-f" in args:
            args[args.index("-f") + 1] = jail.CONNECTION
        with open(self.connection_file) as f:
            connection = json.load(f)
        settings["jail"] = {
            "connection": connection,
            "ip": jail.RUN + "/k",
            "connection_file": jail.CONNECTION,
            "stage": jail.STAGE,
            "work": jail.WORK,
            "home": jail.HOME,
        }
        fd, _, info_w = self._jail_fds
        data = memoryview(json.dumps(settings).encode())
        while data:
            data = data[os.write(fd, data) :]
        os.lseek(fd, 0, os.SEEK_SET)
        return jail.command(
            self.jail["bwrap"],
            [python, jail.CODE + "/launcher.py", jail.SETTINGS, *args],
            settings_fd=fd,
            info_fd=info_w,
            **{k: v for k, v in self.jail.items() if k != "bwrap"},
        )

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        fds, self._jail_fds = self._jail_fds, None
        try:
            await super()._async_launch_kernel(kernel_cmd, **kw)
        finally:
            if fds:
                os.close(fds[0])
                os.close(fds[2])
        if fds:
            try:
                pid = jail.read_info(fds[1])
            finally:
                os.close(fds[1])
            if pid is None:
                raise RuntimeError(
                    "the grading jail (bwrap) did not start: see the grading "
                    "log for bwrap's message"
                )
            self._jail_pid = pid
            # the kernel's sockets, in its own /run/kernel, as the client reaches them (a
            # short path: unix socket paths are limited to 107 bytes)
            self.ip = f"/proc/{pid}/root{jail.RUN}/k"

    async def _async_signal_kernel(self, signum: int) -> None:
        if self._jail_pid and signum == signal.SIGINT:
            # bwrap does not pass signals on: interrupt the kernel (it leads its own session)
            try:
                os.killpg(self._jail_pid, signum)
            except ProcessLookupError:
                pass
            return
        await super()._async_signal_kernel(signum)

    def _kill_group(self) -> None:
        pgid = getattr(self.provisioner, "pgid", None) if self.provisioner else None
        if pgid and pgid != os.getpgid(0):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        if self._jail_pid:  # PID 1 of the jail (still that pid?): everything in it ends too
            try:
                with open(f"/proc/{self._jail_pid}/status") as f:
                    jailed = any(ln.startswith("NSpid:") and ln.split()[-1] == "1" for ln in f)
                if jailed:
                    os.kill(self._jail_pid, signal.SIGKILL)
            except OSError:
                pass

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        # Whatever the kernel left running (subprocesses in its group) goes with it; in the
        # jail, killing bwrap ends the kernel's PID namespace and every process in it.
        try:
            await super().shutdown_kernel(now=now, restart=restart)
        finally:
            self._kill_group()

    async def cleanup_resources(self, restart: bool = False) -> None:
        try:
            await super().cleanup_resources(restart=restart)
        finally:
            if self.private_dir and not restart:
                shutil.rmtree(self.private_dir, ignore_errors=True)
