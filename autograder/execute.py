"""Running a submission: nbgrader's Execute, with limits, a guard and no lost notebooks.

:class:`GuardedExecute` replaces nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``
(see nbgrader_config.py), so ``nbgrader autograde`` and ``python -m autograder grade``
both use it. On top of nbgrader's behaviour it

* starts the kernel through launcher.py (:class:`GuardedKernelManager`): memory and file
  size limits, no network and hidden course folders where the OS allows, killed with the
  grader, in a working folder of its own that holds the assignment's data files but no
  notebook (the sanitised notebook, with its hidden tests, stays out of reach);
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
import sys
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

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, "launcher.py")


def error_output(ename: str, evalue: str) -> dict:
    return new_output("error", ename=ename, evalue=evalue,
                      traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])


_NAMESPACES_OK: bool | None = None



def _kernel_code_in(folder: str) -> bool:
    """Whether anything the grading kernel loads (this package, the interpreter's prefix,
    numpy, ipykernel, backprop) lives inside folder: a private mount there would hide it."""
    import importlib.util

    folder = os.path.realpath(folder) + os.sep
    needed = [os.path.dirname(os.path.abspath(__file__)), sys.prefix, sys.exec_prefix]
    for name in ("numpy", "ipykernel", "backprop"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            needed.append(os.path.dirname(spec.origin))
    return any(os.path.realpath(p).startswith(folder) for p in needed)


def namespaces_available() -> bool:
    """Whether this process may create network and mount namespaces (probed once, in a child)."""
    global _NAMESPACES_OK
    if _NAMESPACES_OK is None:
        if not sys.platform.startswith("linux"):
            _NAMESPACES_OK = False
        else:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                import ctypes
                import ctypes.util
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
                os._exit(0 if libc.unshare(0x40000000 | 0x00020000) == 0 else 1)
            _, status = os.waitpid(pid, 0)
            _NAMESPACES_OK = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return _NAMESPACES_OK


class GuardedKernelManager(AsyncKernelManager):
    """Starts ipykernel through launcher.py with the settings in ``sandbox``."""

    sandbox: dict | None = None
    private_dir: str | None = None

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
        fd, path = tempfile.mkstemp(prefix="settings-", suffix=".json", dir=self.private_dir)
        with os.fdopen(fd, "w") as f:
            json.dump({**self.sandbox, "parent": os.getpid()}, f)
        return [cmd[0], LAUNCHER, path, *cmd[i + 1:]]

    def _kill_group(self) -> None:
        pgid = getattr(self.provisioner, "pgid", None) if self.provisioner else None
        if pgid and pgid != os.getpgid(0):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        # Whatever the kernel left running (subprocesses in its group) goes with it.
        self._kill_group_pgid = getattr(self.provisioner, "pgid", None)
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
    max_restarts = Integer(3, help="Kernel restarts per notebook after a crash or a hang.").tag(
        config=True)
    zygote = Unicode(help="Unix socket of a kernel zygote (zygote.py) to fork kernels from; "
                     "default $AUTOGRADER_ZYGOTE, set by python -m autograder grade.").tag(
        config=True)
    guard_timeout = Integer(10, help="Seconds the guard may take before a test cell.").tag(
        config=True)

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = GuardedKernelManager
        super().__init__(*args, **kwargs)

    @default("zygote")
    def _zygote_default(self):
        return os.environ.get("AUTOGRADER_ZYGOTE", "")

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
        self._guard_key = secrets.token_bytes(32) if self.guard_tests else None
        self._guard_module = "_grading_guard_" + secrets.token_hex(8)
        isolate = self.isolate_network and namespaces_available()
        zygote = self.zygote if self.zygote and os.path.exists(self.zygote) else None
        hide = self._hidden_paths() + ([os.path.dirname(zygote)] if zygote else [])
        if isolate:  # the kernel gets a network of its own: talk to it over unix sockets
            km.transport = "ipc"
            km.ip = os.path.join(private, "k")
        km.sandbox = {
            "memory_mb": self.memory_limit_mb or None,
            "file_mb": self.file_limit_mb or None,
            "isolate_network": isolate,
            "hide_paths": [p for p in hide if not private.startswith(p + os.sep)]
                          if namespaces_available() else [],
            "audit_paths": [p for p in hide if not private.startswith(p + os.sep)],
            # a /tmp of its own, holding only the kernel's folder: other learners' scratch
            # courses and whatever else is in /tmp are out of sight
            # (not when the kernel's own code lives in /tmp: a checkout or virtualenv there)
            "private_tmp": [tempfile.gettempdir(), private]
                           if namespaces_available() and not _kernel_code_in(tempfile.gettempdir())
                           else None,
            "guard": {"key": self._guard_key.hex(), "module": self._guard_module}
                     if self._guard_key else None,
            "zygote": zygote,
        }
        return km

    async def async_start_new_kernel(self, **kwargs):
        if self.sandbox and self.km is not None and getattr(self.km, "private_dir", None):
            # A working folder of its own: the assignment's other files, never a notebook.
            src = self.resources.get("metadata", {}).get("path") or os.getcwd()
            cwd = os.path.join(self.km.private_dir, "work")
            shutil.copytree(src, cwd, ignore=shutil.ignore_patterns(
                "*.ipynb", ".ipynb_checkpoints", "*.db", "*.sqlite"), dirs_exist_ok=True)
            kwargs["cwd"] = cwd
        self._kernel_started_at = time.monotonic()
        await super().async_start_new_kernel(**kwargs)

    # nbclient's synchronous entry points wrap its own coroutines: point them at ours.
    start_new_kernel = run_sync(async_start_new_kernel)

    # --- the notebook ------------------------------------------------------------------------

    def preprocess(self, nb, resources=None, km=None):
        self._dead_cells: set[int] = set()
        self._restarts = 0
        self._problems: list[str] = []
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
        return cell

    execute_cell = run_sync(async_execute_cell)

    # --- output cap while running --------------------------------------------------------------

    def output(self, outs, msg, display_id, cell_index):
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
