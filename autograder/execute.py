"""Running a submission: nbgrader's Execute, with limits, a guard and no lost notebooks.

:class:`GuardedExecute` replaces nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``
(see nbgrader_config.py), so ``nbgrader autograde`` and ``python -m autograder grade``
both use it. On top of nbgrader's behaviour it

* starts the kernel through launcher.py (:class:`GuardedKernelManager`) inside a jail of
  its own (jail.py: bubblewrap; new namespaces, no network, a read-only system, nothing of
  the course but what it needs, the exercise's reference implementation taken out
  (redact.py), a private size-limited /tmp), with memory and file size limits, killed with
  the grader, in a working folder that holds the assignment's data files but no notebook
  (the sanitised notebook, with its hidden tests, stays out of reach). Without bwrap the
  kernel runs with the limits and the guard only, and the notebook's metadata says so;
* before every graded test cell, has the guard restore numpy, backprop, builtins and the
  IPython machinery (guard.py), and checks the guard's signed answer; a cell whose guard
  fails is not run and scores nothing, with the reason as its error;
* when the kernel dies or stops answering, records why in that cell, starts a new kernel,
  runs the earlier cells again (without the one that killed it) and goes on, so one bad
  cell costs only its own points;
* caps what a cell may print while it runs, not only afterwards.
"""
from __future__ import annotations

import ast
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from queue import Empty

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from traitlets import Bool, Integer, List, Unicode, default

from nbgrader import utils
from nbgrader.preprocessors import Execute

from . import jail, redact

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "launcher.py")


def error_output(ename: str, evalue: str) -> dict:
    return new_output("error", ename=ename, evalue=evalue,
                      traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])


class GuardedKernelManager(AsyncKernelManager):
    """Starts ipykernel through launcher.py with the settings in ``sandbox``: inside the
    jail described by ``jail`` (jail.py, bubblewrap) when there is one."""

    sandbox: dict | None = None   # the launcher's settings
    private_dir: str | None = None
    jail: dict | None = None      # jail.command's arguments, None: no jail
    kernel_env: dict | None = None  # without a jail: the kernel's environment
    _jail_fds: tuple[int, int, int] | None = None  # settings memfd, info pipe (read, write)
    _jail_pid: int | None = None  # the jailed kernel, as this process sees it

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
            self.log.warning("kernel %s is not ipykernel: started without the grading sandbox",
                             cmd)
            return cmd
        if i < 2 or cmd[i - 1] != "-m":
            return cmd
        args = cmd[i + 1:]
        settings = {**self.sandbox, "parent": os.getpid()}
        if not self.jail:
            fd, path = tempfile.mkstemp(prefix="settings-", suffix=".json", dir=self.private_dir)
            with os.fdopen(fd, "w") as f:
                json.dump(settings, f)
            return [cmd[0], LAUNCHER, path, *args]
        if "-f" in args:
            args[args.index("-f") + 1] = jail.CONNECTION
        with open(self.connection_file) as f:
            connection = json.load(f)
        settings["jail"] = {"connection": connection, "ip": jail.RUN + "/k",
                            "connection_file": jail.CONNECTION, "stage": jail.STAGE,
                            "work": jail.WORK, "home": jail.HOME}
        fd, _, info_w = self._jail_fds
        data = memoryview(json.dumps(settings).encode())
        while data:
            data = data[os.write(fd, data):]
        os.lseek(fd, 0, os.SEEK_SET)
        return jail.command(self.jail["bwrap"],
                            [cmd[0], jail.CODE + "/launcher.py", jail.SETTINGS, *args],
                            settings_fd=fd, info_fd=info_w,
                            **{k: v for k, v in self.jail.items() if k != "bwrap"})

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
                raise RuntimeError("the grading jail (bwrap) did not start: see the grading "
                                   "log for bwrap's message")
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
                    jailed = any(l.startswith("NSpid:") and l.split()[-1] == "1" for l in f)
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


def _bound_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                names.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
    return names


def _parse(source: str) -> ast.AST | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


class GuardedExecute(Execute):
    """nbgrader's Execute with a sandboxed kernel, a guard before test cells, and recovery."""

    memory_limit_mb = Integer(3072, help="Address-space cap of the grading kernel in MiB "
                              "(0: none).").tag(config=True)
    file_limit_mb = Integer(256, help="Largest file the kernel may write, MiB (0: none).").tag(
        config=True)
    isolate_network = Bool(True, help="Run the kernel without network where the OS allows "
                           "(network namespace).").tag(config=True)
    hide_course_files = Bool(True, help="Hide the source, submitted, autograded and feedback "
                             "folders and the gradebook from the kernel.").tag(config=True)
    hide_paths = List(Unicode(), help="Further files or folders the kernel must not "
                      "read.").tag(config=True)
    guard_tests = Bool(True, help="Restore numpy, backprop, builtins and the IPython machinery "
                       "before each test cell.").tag(config=True)
    sandbox = Bool(True, help="Start the kernel through the grading launcher at all.").tag(
        config=True)
    max_output_chars = Integer(100_000, help="Output a cell may produce before the rest is "
                               "dropped (-1: no limit).").tag(config=True)
    max_record_chars = Integer(64 * 1024 * 1024, help="Characters of check records a test "
                               "cell may publish for the grader to verify.").tag(config=True)
    max_restarts = Integer(3, help="Kernel restarts per notebook after a crash or a hang.").tag(
        config=True)
    bwrap = Unicode(help="bubblewrap program for the kernel's jail (jail.py); empty: no jail "
                    "(limits and the guard only). Default $AUTOGRADER_BWRAP, else bwrap.").tag(
        config=True)
    scratch_mb = Integer(512, help="Size of the jailed kernel's private /tmp, which holds its "
                         "$HOME and working folder, MiB.").tag(config=True)
    guard_timeout = Integer(10, help="Seconds the guard may take before a test cell.").tag(
        config=True)

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = GuardedKernelManager
        super().__init__(*args, **kwargs)

    @default("bwrap")
    def _bwrap_default(self):
        return os.environ.get("AUTOGRADER_BWRAP", "bwrap")

    # --- kernel ----------------------------------------------------------------------------

    def _hidden_paths(self) -> list[str]:
        paths = list(self.hide_paths)
        if self.hide_course_files:
            try:
                from nbgrader.coursedir import CourseDirectory
                cd = CourseDirectory(config=self.config)
                root = os.path.abspath(cd.root)
                for d in (cd.source_directory, cd.submitted_directory, cd.autograded_directory,
                          cd.feedback_directory):
                    paths.append(os.path.join(root, d))
                if cd.db_url.startswith("sqlite:///"):
                    paths.append(os.path.abspath(cd.db_url[len("sqlite:///"):]))
            except Exception as exc:  # never stop grading for this
                self.log.warning("could not work out the course folders to hide: %s", exc)
        return sorted({os.path.abspath(p) for p in paths})

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if not self.sandbox:
            return km
        # $AUTOGRADER_KERNEL_DIR: where python -m autograder grade wants these (it removes the
        # whole folder at the end, so a killed grading leaves nothing behind)
        private = tempfile.mkdtemp(prefix="grading-kernel-",
                                   dir=os.environ.get("AUTOGRADER_KERNEL_DIR") or None)
        km.private_dir = private
        km.connection_file = os.path.join(private, "kernel.json")
        self._guard_key = secrets.token_bytes(32) if self.guard_tests else None
        self._guard_module = "_grading_guard_" + secrets.token_hex(8)
        hidden = self._hidden_paths()
        bwrap, self._sandbox_status = jail.status(self.bwrap)
        package, redacted = self._redacted_backprop(private)
        audit = [p for p in hidden if not private.startswith(p + os.sep)]
        if redacted and not bwrap:  # the real package is still on disk: refuse to open it
            audit.append(package)
        km.sandbox = {
            "memory_mb": self.memory_limit_mb or None,
            "file_mb": self.file_limit_mb or None,
            "audit_paths": audit,
            "guard": {"key": self._guard_key.hex(), "module": self._guard_module}
                     if self._guard_key else None,
        }
        if bwrap:
            # unix sockets: the jailed kernel has a network of its own. The kernel makes them
            # in its /run/kernel; the manager points the client there once it knows the pid
            km.transport = "ipc"
            km.ip = os.path.join(private, "k")
            km.jail = {"bwrap": bwrap, "stage": os.path.join(private, "work"),
                       "code": {jail.CODE + "/launcher.py": LAUNCHER,
                                jail.CODE + "/guard.py": os.path.join(HERE, "guard.py")},
                       "library": os.path.dirname(package), "redacted": redacted,
                       "hidden": hidden, "project": os.path.dirname(HERE),
                       "network": not self.isolate_network, "tmp_mb": self.scratch_mb}
        else:  # today's protections only: limits, the guard and its audit hook
            home, tmp = os.path.join(private, "home"), os.path.join(private, "tmp")
            env = jail.environment(home, tmp, jail.data_dir())
            env["PATH"] = os.environ.get("PATH", env["PATH"])
            if redacted:
                env["PYTHONPATH"] = os.path.dirname(redacted)
            km.kernel_env = env
        return km

    def _redaction_names(self) -> set[str]:
        """What this notebook has the learner build: the names the learner's answer cells
        define, and the names the (trusted) test cells use that no locked cell of the
        instructor's defines; minus what the instructor's cells import for the learner
        (the layers a later notebook builds on)."""
        names = set(getattr(self, "_learner_names", ()) or ())
        given: set[str] = set()
        used: set[str] = set()
        nb = getattr(self, "nb", None)
        for cell in nb.cells if nb is not None else []:
            if cell.cell_type != "code" or utils.is_solution(cell) or not utils.is_locked(cell):
                continue
            tree = _parse(cell.source)
            if tree is None:
                continue
            given |= _bound_names(tree)
            if utils.is_grade(cell):
                used |= {n.id for n in ast.walk(tree)
                         if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        return (names | used) - given

    def _redacted_backprop(self, private: str) -> tuple[str, str | None]:
        """(the backprop package's folder, a redacted copy of it or None): redact.py."""
        import importlib.util
        spec = importlib.util.find_spec("backprop")
        package = os.path.dirname(os.path.realpath(spec.origin))
        cache = os.environ.get("AUTOGRADER_KERNEL_DIR") or private
        try:
            copy = redact.redacted_package(package, self._redaction_names(), cache)
        except Exception as exc:  # pragma: no cover - a broken package is graded as it is
            self.log.warning("could not redact backprop: %s", exc)
            copy = None
        return package, (str(copy) if copy else None)

    async def async_start_new_kernel(self, **kwargs):
        km = self.km
        if self.sandbox and km is not None and getattr(km, "private_dir", None):
            # A working folder of its own: the assignment's other files, never a notebook
            # (in the jail, the kernel copies it into its private /tmp).
            src = self.resources.get("metadata", {}).get("path") or os.getcwd()
            cwd = os.path.join(km.private_dir, "work")
            shutil.copytree(src, cwd, ignore=shutil.ignore_patterns(
                "*.ipynb", ".ipynb_checkpoints", "*.db", "*.sqlite"), dirs_exist_ok=True)
            if km.jail:
                kwargs["cwd"] = km.private_dir
            else:
                kwargs["cwd"] = cwd
                kwargs["env"] = dict(km.kernel_env)
                for d in (km.kernel_env["HOME"], km.kernel_env["TMPDIR"]):
                    os.makedirs(d, exist_ok=True)
            self.nb.metadata.setdefault("autograder", {})["sandbox"] = self._sandbox_status
        self._kernel_started_at = time.monotonic()
        await super().async_start_new_kernel(**kwargs)

    # nbclient's synchronous entry points wrap its own coroutines: point them at ours.
    start_new_kernel = run_sync(async_start_new_kernel)

    # --- the notebook ------------------------------------------------------------------------

    def preprocess(self, nb, resources=None, km=None):
        self._dead_cells: set[int] = set()
        self._restarts = 0
        self._problems: list[str] = []
        self._mistakes: dict[str, list[str]] = {}
        self._guard_key = None
        self._plan(nb)
        nb, resources = super().preprocess(nb, resources, km)
        if self._problems:
            meta = nb.metadata.setdefault("autograder", {})
            meta.setdefault("problems", []).extend(self._problems)
        return nb, resources

    def _plan(self, nb) -> None:
        """The instructor's imports to make again before each test, and the learner's names."""
        learner: set[str] = set()
        for cell in nb.cells:
            if cell.cell_type == "code" and utils.is_solution(cell):
                tree = _parse(cell.source)
                if tree is not None:
                    learner |= _bound_names(tree)
        imports = []
        for cell in nb.cells:
            if cell.cell_type != "code" or utils.is_solution(cell) or not utils.is_locked(cell):
                continue
            tree = _parse(cell.source)
            for node in getattr(tree, "body", []):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    keep = [a for a in node.names
                            if (a.asname or a.name).split(".")[0] not in learner
                            and a.name != "*"]
                    if keep:
                        node.names = keep
                        imports.append(ast.unparse(node))
        self._imports = list(dict.fromkeys(imports))
        self._learner_names = sorted(learner)

    async def _hidden(self, code: str, timeout: float, user_expressions=None) -> dict | None:
        """Run code in the kernel outside the notebook; the reply, or None on timeout."""
        msg_id = await ensure_async(self.kc.execute(
            code, silent=True, store_history=False, user_expressions=user_expressions or {},
            allow_stdin=False, stop_on_error=False))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(left, 1.0)))
            except Empty:
                if not await ensure_async(self.kc.is_alive()):
                    raise DeadKernelError("Kernel died")
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    async def _guard(self, method: str, *args) -> str | None:
        """Call the guard; None if it answered correctly, else what went wrong."""
        if not self._guard_key:
            return None
        challenge = secrets.token_hex(16)
        mod = self._guard_module
        call = f"__import__('sys').modules[{mod!r}].{method}({challenge!r}" + "".join(
            f", {a!r}" for a in args) + ")"
        reply = await self._hidden(call, self.guard_timeout,
                                   {"t": f"__import__('sys').modules[{mod!r}].token"})
        if reply is None:
            return "the grading guard did not answer in time"
        content = reply["content"]
        if content.get("status") != "ok":
            return (f"the grading guard could not run ({content.get('ename')}: "
                    f"{content.get('evalue')}); was the kernel's machinery tampered with?")
        token = content.get("user_expressions", {}).get("t", {})
        got = token.get("data", {}).get("text/plain", "") if token.get("status") == "ok" else ""
        want = hmac.new(self._guard_key, challenge.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(got.strip("'\""), want):
            return "the grading guard's answer was intercepted; cell execution was tampered with"
        return None

    async def _restart_and_replay(self, upto: int) -> str | None:
        """A new kernel that has run cells [0, upto) except the dead ones; None if it worked."""
        self._restarts += 1
        if self._restarts > self.max_restarts:
            return f"the kernel was restarted {self.max_restarts} times already"
        try:
            await self._async_cleanup_kernel()
        except Exception:
            pass
        self.km = self.create_kernel_manager()
        await self.async_start_new_kernel()
        await self.async_start_new_kernel_client()
        for index, cell in enumerate(self.nb.cells[:upto]):
            if cell.cell_type != "code" or index in self._dead_cells or not cell.source.strip():
                continue
            if utils.is_grade(cell) and not utils.is_solution(cell):
                continue  # test cells define nothing the later cells need
            reply = await self._hidden(cell.source, self._get_timeout(cell) or 600)
            if reply is None:
                return f"re-running cell {index} after the restart timed out"
        return None

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        if getattr(self, "_gave_up", None):
            cell.outputs = [error_output("KernelDied", f"not run: {self._gave_up}")]
            return cell
        is_test = utils.is_grade(cell) and not utils.is_solution(cell)
        if is_test:
            problem = await self._guard("before_test", self._imports, self._learner_names)
            if problem:
                self._problems.append(f"cell {cell.metadata.nbgrader.get('grade_id')}: {problem}")
                cell.outputs = [error_output("GradingGuardError", problem)]
                if "in time" in problem:  # a kernel that cannot run 3 ms of guard is lost
                    self._gave_up = "the kernel stopped answering (its cell execution was " \
                                    "hijacked or broken)"
                    self._problems.append(self._gave_up)
                return cell
        self._output_chars = 0
        self._record_chars = 0
        self._output_truncated = False
        try:
            cell = await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        except (DeadKernelError, CellTimeoutError) as exc:
            what = ("the kernel died (it was killed, ran out of memory, or the code ended the "
                    "process)" if isinstance(exc, DeadKernelError) else
                    "the kernel stopped responding and was killed")
            where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{cell_index}"
            self._problems.append(f"cell {where}: {what}")
            cell.outputs = list(cell.get("outputs", [])) + [
                error_output("KernelDied", f"{what} while running this cell; a new kernel "
                             "ran the cells before it again and grading went on")]
            self._dead_cells.add(cell_index)
            problem = await self._restart_and_replay(cell_index)
            if problem:
                self._gave_up = f"{what} in cell {where}, and {problem}"
                self._problems.append(self._gave_up)
            return cell
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{cell_index}"
            self._problems.append(f"cell {where}: ran past the time limit of "
                                  f"{self._get_timeout(cell)} s and was interrupted")
        if is_test:
            await self._guard("after_test")
            self._judge(cell)
        return cell

    execute_cell = run_sync(async_execute_cell)

    def _judge(self, cell) -> None:
        """Replace a test cell's outputs with the grader's own verdict (verdict.py)."""
        from .verdict import judge
        decided = judge(cell.source, list(cell.get("outputs", [])))
        cell.outputs = decided.outputs
        where = cell.metadata.get("nbgrader", {}).get("grade_id")
        self._mistakes[where] = decided.mistakes
        if decided.problem:
            self._problems.append(f"cell {where}: {decided.problem}")

    # --- output cap while running --------------------------------------------------------------

    def output(self, outs, msg, display_id, cell_index):
        from .verdict import is_record
        if msg["msg_type"] == "display_data" and is_record(msg.get("content", {})):
            # checks' records have a budget of their own: printing cannot crowd them out
            size = len(str(msg["content"]["data"]))
            used = getattr(self, "_record_chars", 0)
            if used + size > self.max_record_chars:
                return None
            self._record_chars = used + size
            return super().output(outs, msg, display_id, cell_index)
        limit = self.max_output_chars
        if limit is None or limit < 0 or msg["msg_type"] == "error":
            return super().output(outs, msg, display_id, cell_index)
        if getattr(self, "_output_truncated", False):
            return None
        content = msg.get("content", {})
        used = getattr(self, "_output_chars", 0)
        if msg["msg_type"] == "stream":
            text = content.get("text", "")
            if used + len(text) > limit:  # keep what fits, then say so once
                content["text"] = text[:max(0, limit - used)]
                self._output_truncated = True
                out = super().output(outs, msg, display_id, cell_index)
                outs.append(new_output("stream", name="stdout", text=(
                    f"\n... output truncated by the autograder: this cell printed more than "
                    f"{limit} characters ...\n")))
                return out
            self._output_chars = used + len(text)
        else:
            size = sum(len(str(v)) for v in content.get("data", {}).values())
            if used + size > limit:
                self._output_truncated = True
                outs.append(new_output("stream", name="stdout", text=(
                    f"\n... output truncated by the autograder: this cell printed more than "
                    f"{limit} characters ...\n")))
                return None
            self._output_chars = used + size
        return super().output(outs, msg, display_id, cell_index)
