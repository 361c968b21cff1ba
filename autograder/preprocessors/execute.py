"""GuardedExecute: nbgrader's Execute, with limits, a guard and no lost notebooks.

:class:`GuardedExecute` replaces nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors``
(see nbgrader_config.py), so ``nbgrader autograde`` and ``python -m autograder grade``
both use it. On top of nbgrader's behaviour it

* starts the kernel through the launcher, in a jail of its own where there is one
  (kernel_manager.py); without bwrap the kernel runs with the limits and the guard only,
  and the grader's notes on the notebook (notes.py) say so;
* before every graded test cell, has the guard restore numpy, backprop, builtins and the
  IPython machinery (kernel/guard.py), and checks the guard's signed answer; a cell whose
  guard fails is not run and scores nothing, with the reason as its error;
* after every test cell, replaces its outputs with the grader's own verdict (verdict.py);
* when the kernel dies or stops answering, records why in that cell, starts a new kernel,
  runs the earlier cells again (without the one that killed it) and goes on, so one bad
  cell costs only its own points;
* caps what a cell may print while it runs, not only afterwards (output_cap.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from queue import Empty

from backprop.i18n import N_, _, notebook_language, using
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer, List, Unicode, default

from .. import notes
from . import plan
from .cells import is_test_cell
from .kernel_manager import Confinement, GuardedKernelManager, course_folders
from .output_cap import OutputCap


def _verdict():
    """verdict.py, imported when a cell is first judged: it imports ``backprop.checks``,
    and nbgrader loads this module with its configuration for every command."""
    from .. import verdict

    return verdict


_GUARD_LATE = N_("the grading guard did not answer in time")


def _where(cell, index: int) -> str:
    """A cell as the notes name it: its grade_id, else its index."""
    return cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{index}"


class GuardedExecute(Execute):
    """nbgrader's Execute with a sandboxed kernel, a guard before test cells, and recovery."""

    memory_limit_mb = Integer(
        3072, help="Address-space cap of the grading kernel in MiB (0: none)."
    ).tag(config=True)
    file_limit_mb = Integer(256, help="Largest file the kernel may write, MiB (0: none).").tag(
        config=True
    )
    isolate_network = Bool(
        True, help="Run the kernel without network where the OS allows (network namespace)."
    ).tag(config=True)
    hide_course_files = Bool(
        True,
        help="Hide the source, submitted, autograded and feedback "
        "folders and the gradebook from the kernel.",
    ).tag(config=True)
    hide_paths = List(Unicode(), help="Further files or folders the kernel must not read.").tag(
        config=True
    )
    guard_tests = Bool(
        True,
        help="Restore numpy, backprop, builtins and the IPython machinery before each test cell.",
    ).tag(config=True)
    sandbox = Bool(True, help="Start the kernel through the grading launcher at all.").tag(
        config=True
    )
    max_output_chars = Integer(
        100_000, help="Output a cell may produce before the rest is dropped (-1: no limit)."
    ).tag(config=True)
    max_record_chars = Integer(
        64 * 1024 * 1024,
        help="Characters of check records a test cell may publish for the grader to verify.",
    ).tag(config=True)
    max_restarts = Integer(3, help="Kernel restarts per notebook after a crash or a hang.").tag(
        config=True
    )
    bwrap = Unicode(
        help="bubblewrap program for the kernel's jail (jail.py); empty: no jail "
        "(limits and the guard only). Default $AUTOGRADER_BWRAP, else bwrap."
    ).tag(config=True)
    scratch_mb = Integer(
        512,
        help="Size of the jailed kernel's private /tmp, which holds its "
        "$HOME and working folder, MiB.",
    ).tag(config=True)
    guard_timeout = Integer(10, help="Seconds the guard may take before a test cell.").tag(
        config=True
    )
    language = Unicode(
        "",
        help="The language of the verdicts and notes written into graded notebooks ('en', "
        "'ko'); empty: the language the assignment's source notebook declares "
        "(metadata.backprop.language), else the grader's own (backprop.i18n).",
    ).tag(config=True)

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
                paths += course_folders(self.config)
            except Exception as exc:  # never stop grading for this
                self.log.warning("could not work out the course folders to hide: %s", exc)
        return sorted({os.path.abspath(p) for p in paths})

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        if not self.sandbox:
            return km
        # $AUTOGRADER_KERNEL_DIR: where python -m autograder grade wants these (it removes the
        # whole folder at the end, so a killed grading leaves nothing behind)
        private = tempfile.mkdtemp(
            prefix="grading-kernel-", dir=os.environ.get("AUTOGRADER_KERNEL_DIR") or None
        )
        self._guard_key = secrets.token_bytes(32) if self.guard_tests else None
        self._guard_module = "_grading_guard_" + secrets.token_hex(8)
        nb = getattr(self, "nb", None)
        self._sandbox_status = km.confine(
            Confinement(
                memory_mb=self.memory_limit_mb or None,
                file_mb=self.file_limit_mb or None,
                bwrap=self.bwrap,
                network=not self.isolate_network,
                tmp_mb=self.scratch_mb,
                hidden=self._hidden_paths(),
                redact=plan.redaction_names(nb, self._learner_names) if nb is not None else set(),
                guard={"key": self._guard_key.hex(), "module": self._guard_module}
                if self._guard_key
                else None,
            ),
            private,
        )
        return km

    async def async_start_new_kernel(self, **kwargs):
        km = self.km
        if self.sandbox and km is not None and getattr(km, "private_dir", None):
            folder = self.resources.get("metadata", {}).get("path") or os.getcwd()
            kwargs.update(km.start_arguments(folder))
            notes.set_sandbox(self.nb, self._sandbox_status)
        await super().async_start_new_kernel(**kwargs)

    # nbclient's synchronous entry points wrap its own coroutines: point them at ours.
    start_new_kernel = run_sync(async_start_new_kernel)

    # --- the notebook ------------------------------------------------------------------------

    def preprocess(self, nb, resources=None, km=None):
        self._dead_cells: set[int] = set()
        self._restarts = 0
        self._gave_up: str | None = None
        self._problems: list[str] = []
        self._mistakes: list[notes.Mistake] = []
        self._guard_key = None
        self._cap = OutputCap(self.max_output_chars, self.max_record_chars)
        self._learner_names = plan.learner_names(nb)
        self._imports = plan.instructor_imports(nb, self._learner_names)
        with using(self.language or self._source_language(resources)):
            nb, resources = super().preprocess(nb, resources, km)
        if self._problems:
            notes.add_problems(nb, self._problems)
        if self._mistakes:
            notes.add_mistakes(nb, self._mistakes)
        return nb, resources

    def _source_language(self, resources) -> str:
        """The language of the assignment's source notebook (trusted: the instructor's, never
        the submission's metadata), else the language the grader runs in."""
        from backprop.i18n import language
        from nbgrader.coursedir import CourseDirectory

        try:
            info = (resources or {})["nbgrader"]
            cd = CourseDirectory(config=self.config)
            folder = cd.format_path(cd.source_directory, ".", info["assignment"])
            path = os.path.join(folder, f"{info['notebook']}.ipynb")
            with open(path, encoding="utf-8") as f:
                return notebook_language(json.load(f).get("metadata", {}))
        except (KeyError, OSError, ValueError, TypeError):
            return language()

    async def _hidden(self, code: str, timeout: float, user_expressions=None) -> dict | None:
        """Run code in the kernel outside the notebook; the reply, or None on timeout."""
        msg_id = await ensure_async(
            self.kc.execute(
                code,
                silent=True,
                store_history=False,
                user_expressions=user_expressions or {},
                allow_stdin=False,
                stop_on_error=False,
            )
        )
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(left, 1.0)))
            except Empty:
                if not await ensure_async(self.kc.is_alive()):
                    raise DeadKernelError("Kernel died") from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    async def _guard(self, method: str, *args) -> str | None:
        """Call the guard; None if it answered correctly, else what went wrong."""
        if not self._guard_key:
            return None
        challenge = secrets.token_hex(16)
        mod = self._guard_module
        call = (
            f"__import__('sys').modules[{mod!r}].{method}({challenge!r}"
            + "".join(f", {a!r}" for a in args)
            + ")"
        )
        reply = await self._hidden(
            call, self.guard_timeout, {"t": f"__import__('sys').modules[{mod!r}].token"}
        )
        if reply is None:
            return _(_GUARD_LATE)
        content = reply["content"]
        if content.get("status") != "ok":
            return _(
                "the grading guard could not run ({error}); was the kernel's machinery "
                "tampered with?"
            ).format(error=f"{content.get('ename')}: {content.get('evalue')}")
        token = content.get("user_expressions", {}).get("t", {})
        got = token.get("data", {}).get("text/plain", "") if token.get("status") == "ok" else ""
        want = hmac.new(self._guard_key, challenge.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(got.strip("'\""), want):
            return _("the grading guard's answer was intercepted; cell execution was tampered with")
        return None

    async def _restart_and_replay(self, upto: int) -> str | None:
        """A new kernel that has run cells [0, upto) except the dead ones; None if it worked."""
        self._restarts += 1
        if self._restarts > self.max_restarts:
            return _("the kernel was restarted {n} times already").format(n=self.max_restarts)
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
            if is_test_cell(cell):
                continue  # test cells define nothing the later cells need
            reply = await self._hidden(cell.source, self._get_timeout(cell) or 600)
            if reply is None:
                return _("re-running cell {index} after the restart timed out").format(index=index)
        return None

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(
                cell, cell_index, execution_count, store_history
            )
        is_test = is_test_cell(cell)
        if self._gave_up:
            cell.outputs = [
                _verdict().error_output("KernelDied", _("not run: {why}").format(why=self._gave_up))
            ]
            if is_test:
                self._note_unjudged(cell)
            return cell
        if is_test and not await self._guard_before(cell):
            return cell
        self._cap = OutputCap(self.max_output_chars, self.max_record_chars)
        try:
            cell = await super().async_execute_cell(
                cell, cell_index, execution_count, store_history
            )
        except (DeadKernelError, CellTimeoutError) as exc:
            await self._recover(cell, cell_index, exc, is_test)
            return cell
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            self._problems.append(
                _("cell {cell}: ran past the time limit of {seconds} s and was interrupted").format(
                    cell=_where(cell, cell_index), seconds=self._get_timeout(cell)
                )
            )
        if is_test:
            await self._guard("after_test")
            self._judge(cell)
        return cell

    execute_cell = run_sync(async_execute_cell)

    async def _guard_before(self, cell) -> bool:
        """The guard's work before a test cell; False (the cell failed, not to be run) if
        it did not answer as it must."""
        problem = await self._guard("before_test", self._imports, self._learner_names)
        if not problem:
            return True
        self._problems.append(
            _("cell {cell}: {problem}").format(
                cell=cell.metadata.nbgrader.get("grade_id"), problem=problem
            )
        )
        cell.outputs = [_verdict().error_output("GradingGuardError", problem)]
        self._note_unjudged(cell)
        if problem == _(_GUARD_LATE):  # a kernel that cannot run 3 ms of guard is lost
            self._gave_up = _(
                "the kernel stopped answering (its cell execution was hijacked or broken)"
            )
            self._problems.append(self._gave_up)
        return False

    async def _recover(self, cell, cell_index: int, exc: Exception, is_test: bool) -> None:
        """A cell whose kernel died or hung: say so in it, and go on with a new kernel."""
        what = (
            _("the kernel died (it was killed, ran out of memory, or the code ended the process)")
            if isinstance(exc, DeadKernelError)
            else _("the kernel stopped responding and was killed")
        )
        where = _where(cell, cell_index)
        self._problems.append(_("cell {cell}: {problem}").format(cell=where, problem=what))
        cell.outputs = list(cell.get("outputs", [])) + [
            _verdict().error_output(
                "KernelDied",
                _(
                    "{what} while running this cell; a new kernel ran the cells before it "
                    "again and grading went on"
                ).format(what=what),
            )
        ]
        self._dead_cells.add(cell_index)
        if is_test:
            self._note_unjudged(cell)
        problem = await self._restart_and_replay(cell_index)
        if problem:
            self._gave_up = _("{what} in cell {cell}, and {problem}").format(
                what=what, cell=where, problem=problem
            )
            self._problems.append(self._gave_up)

    def _judge(self, cell) -> None:
        """Replace a test cell's outputs with the grader's own verdict (verdict.py)."""
        where = cell.metadata.get("nbgrader", {}).get("grade_id")
        decided = _verdict().judge(cell.source, list(cell.get("outputs", [])), where)
        cell.outputs = decided.outputs
        self._mistakes += decided.mistakes
        if decided.problem:
            self._problems.append(
                _("cell {cell}: {problem}").format(cell=where, problem=decided.problem)
            )

    def _note_unjudged(self, cell) -> None:
        """A test cell that never reached the verdict: its kernel errors as mistakes."""
        where = cell.metadata.get("nbgrader", {}).get("grade_id")
        self._mistakes += _verdict().kernel_mistakes(where, list(cell.get("outputs", [])))

    def output(self, outs, msg, display_id, cell_index):
        # the cap while the cell runs (output_cap.py); nbclient records what it admits
        kept, notice = self._cap.admit(msg)
        out = super().output(outs, msg, display_id, cell_index) if kept else None
        if notice is not None:
            outs.append(notice)
        return out
