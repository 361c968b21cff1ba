"""The grading guard: runs inside the grading kernel, never in the grader.

At kernel start (before any learner code) :func:`install` takes a snapshot of
everything the tests rely on: numpy and backprop (module namespaces, the code of
every Python function in them, the namespaces of their classes), builtins, the
hooks in ``sys``, signal handlers, and the IPython machinery that runs cells and
reports their errors. Before each graded test cell the grader sends a hidden
request that calls :meth:`Guard.before_test`, which puts all of it back; after
the cell, :meth:`Guard.after_test` gives the learner's own names back.

So a submission that does ``np.allclose = lambda *a, **k: True``, replaces the
code of ``rel_error``, redefines ``LayerReport.assert_ok``, shadows ``zip`` or
``check_affine`` with its own, wraps ``run_cell`` to swallow errors, or leaves a
thread or a timer behind to do so later, is graded as if it had not.

The guard answers each request with an HMAC of a fresh challenge under a key
only it holds, so a submission that intercepts the request instead of letting it
run is caught too (the test cell then fails with a reason).

This is a strong fence, not a proof: code running in the same process can in
principle find the guard and take it apart. What it cannot reach is on the
grader's side (timeouts, memory, output caps, restoring cells, the scores).
"""

from __future__ import annotations

import builtins
import gc
import hashlib
import hmac
import os
import signal
import sys
import threading
import types

# Modules whose state the tests depend on. Prefixes: every loaded submodule counts.
PROTECTED_PREFIXES = ("numpy", "backprop")
# Imported before the snapshot so lazily loaded parts are covered too.
PRELOAD = (
    "numpy",
    "numpy.testing",
    "numpy.linalg",
    "numpy.random",
    "backprop",
    "backprop.gradcheck",
    "backprop.checks",
)
# IPython / ipykernel modules whose classes run cells and report errors.
MACHINERY = (
    "IPython.core.interactiveshell",
    "IPython.core.displayhook",
    "IPython.core.displaypub",
    "IPython.core.compilerop",
    "IPython.core.events",
    "IPython.core.inputtransformer2",
    "IPython.core.ultratb",
    "ipykernel.ipkernel",
    "ipykernel.kernelbase",
    "ipykernel.zmqshell",
    "ipykernel.displayhook",
    "ipykernel.iostream",
    "ipykernel.jsonutil",
)
# Names IPython itself keeps in builtins while a cell runs.
_BUILTINS_OK_TO_ADD = {
    "get_ipython",
    "display",
    "exit",
    "quit",
    "__IPYTHON__",
    "_",
    "__",
    "___",
    "dreload",
    "execfile",
    "runfile",
}
# Names the user namespace legitimately holds that share a builtin's name.
_USER_NS_SHADOW_OK = {
    "_",
    "__",
    "___",
    "exit",
    "quit",
    "get_ipython",
    "display",
    "__name__",
    "__doc__",
    "__builtins__",
    "__builtin__",
    "__package__",
    "__loader__",
    "__spec__",
}

_FUNC_ATTRS = ("__code__", "__defaults__", "__kwdefaults__")


class GradingBlocked(RuntimeError):
    """Raised in the kernel for an action grading does not allow (os._exit, fork...)."""


def _is_protected(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PROTECTED_PREFIXES)


class _State:
    """Snapshot of modules, classes and functions, restorable in place."""

    def __init__(self, modules: list[types.ModuleType]) -> None:
        self.modules = [(m, dict(vars(m))) for m in modules]
        self.classes: list[tuple[type, dict]] = []
        self.functions: list[tuple[types.FunctionType, tuple]] = []
        seen: set[int] = set()
        names = {m.__name__ for m in modules}
        for _, ns in self.modules:
            for value in ns.values():
                self._take(value, names, seen)

    def _take(self, value, names, seen, depth=0) -> None:
        if id(value) in seen or depth > 3:
            return
        seen.add(id(value))
        if isinstance(value, types.FunctionType):
            self.functions.append((value, tuple(getattr(value, a) for a in _FUNC_ATTRS)))
            return
        wrapped = getattr(value, "__wrapped__", None) if not isinstance(value, type) else None
        if isinstance(wrapped, types.FunctionType):  # numpy's array-function dispatchers
            self._take(wrapped, names, seen, depth + 1)
            return
        if isinstance(value, type) and getattr(value, "__module__", None) in names:
            try:
                ns = dict(vars(value))
            except TypeError:
                return
            if not (value.__flags__ & (1 << 9)):  # not a heap type: immutable, skip
                return
            self.classes.append((value, ns))
            for v in ns.values():
                for inner in (
                    v,
                    getattr(v, "__func__", None),
                    getattr(v, "fget", None),
                    getattr(v, "fset", None),
                ):
                    if inner is not None:
                        self._take(inner, names, seen, depth + 1)

    def restore(self) -> list[str]:
        changed: list[str] = []
        for fn, saved in self.functions:
            for attr, value in zip(_FUNC_ATTRS, saved, strict=False):
                if getattr(fn, attr) is not value:
                    setattr(fn, attr, value)
                    changed.append(f"{fn.__module__}.{fn.__qualname__}.{attr}")
        for cls, saved in self.classes:
            now = vars(cls)
            for key in [k for k in now if k not in saved]:
                try:
                    delattr(cls, key)
                    changed.append(f"{cls.__module__}.{cls.__qualname__}.{key} (added)")
                except (AttributeError, TypeError):
                    pass
            for key, value in saved.items():
                if key in ("__dict__", "__weakref__"):
                    continue
                if now.get(key, _MISSING) is not value:
                    try:
                        setattr(cls, key, value)
                        changed.append(f"{cls.__module__}.{cls.__qualname__}.{key}")
                    except (AttributeError, TypeError):
                        pass
        for mod, saved in self.modules:
            ns = vars(mod)
            for key, value in saved.items():
                if ns.get(key, _MISSING) is not value:
                    ns[key] = value
                    changed.append(f"{mod.__name__}.{key}")
        return changed


_MISSING = object()


class Guard:
    """Everything the grading kernel needs to put back before a test cell."""

    def __init__(self, shell, key: bytes, hidden_paths: list[str]) -> None:
        self._key = key
        self.shell = shell
        self.hidden_paths = [os.path.realpath(p) for p in hidden_paths if p]
        self.token = ""
        self.stashed: dict[str, object] = {}
        for name in PRELOAD:
            try:
                __import__(name)
            except Exception:  # a missing optional part must not stop the kernel
                pass
        modules = [m for n, m in sorted(sys.modules.items()) if m is not None and _is_protected(n)]
        self.module_names = {m.__name__: m for m in modules}
        machinery = [sys.modules[n] for n in MACHINERY if n in sys.modules]
        self.state = _State(modules)
        self.machinery = _State(machinery)
        self.builtins = dict(vars(builtins))
        self.sys_attrs = {
            k: getattr(sys, k)
            for k in (
                "displayhook",
                "excepthook",
                "stdout",
                "stderr",
                "stdin",
                "__displayhook__",
                "__excepthook__",
                "unraisablehook",
                "breakpointhook",
            )
            if hasattr(sys, k)
        }
        self.os_attrs = {
            k: getattr(os, k)
            for k in ("_exit", "abort", "kill", "killpg", "fork")
            if hasattr(os, k)
        }
        self.signals = {}
        for sig in signal.Signals:
            try:
                self.signals[sig] = signal.getsignal(sig)
            except (ValueError, OSError):
                pass
        self.gc_callbacks = list(gc.callbacks)
        self.threads = set(threading.enumerate())
        self.objects = self._shell_objects()

    # --- IPython machinery ------------------------------------------------------------

    def _shell_objects(self) -> list[tuple[object, dict]]:
        sh = self.shell
        objs = [
            sh,
            getattr(sh, "kernel", None),
            getattr(sh, "compile", None),
            getattr(sh, "events", None),
            getattr(sh, "displayhook", None),
            getattr(sh, "display_pub", None),
            getattr(sh, "input_transformer_manager", None),
            getattr(sh, "InteractiveTB", None),
            getattr(sh, "SyntaxTB", None),
        ]
        saved = []
        for obj in objs:
            if obj is None:
                continue
            state = {}
            for key, value in vars(obj).items():
                if isinstance(value, list):
                    state[key] = ("list", value, list(value))
                elif isinstance(value, dict) and key in (
                    "callbacks",
                    "shell_handlers",
                    "control_handlers",
                ):
                    state[key] = (
                        "dict",
                        value,
                        {k: (list(v) if isinstance(v, list) else v) for k, v in value.items()},
                    )
                elif callable(value) or key in ("custom_exceptions", "flags", "CustomTB"):
                    state[key] = ("value", value, None)
            saved.append((obj, state))
        return saved

    def _restore_shell(self) -> list[str]:
        changed = []
        for obj, state in self.objects:
            now = vars(obj)
            for key in list(now):
                if key not in state and callable(now[key]) and hasattr(type(obj), key):
                    del now[key]  # an instance attribute hiding a method: remove it
                    changed.append(f"shell.{type(obj).__name__}.{key}")
            for key, (kind, value, contents) in state.items():
                if now.get(key, _MISSING) is not value:
                    now[key] = value
                    changed.append(f"shell.{type(obj).__name__}.{key}")
                if kind == "list" and value != contents:
                    if key in (
                        "ast_transformers",
                        "input_transformers_post",
                        "line_transforms",
                        "cleanup_transforms",
                        "token_transformers",
                        "input_transformers_cleanup",
                    ):
                        value[:] = contents
                        changed.append(f"shell.{type(obj).__name__}.{key}[]")
                elif kind == "dict":
                    for k in [k for k in value if k not in contents]:
                        del value[k]
                    for k, v in contents.items():
                        if isinstance(v, list):
                            if value.get(k) != v:
                                value[k] = list(v) if k not in value else value[k]
                                value[k][:] = v
                        elif value.get(k, _MISSING) is not v:
                            value[k] = v
        return changed

    # --- the hidden requests ----------------------------------------------------------

    def _answer(self, challenge: str) -> None:
        self.token = hmac.new(self._key, challenge.encode(), hashlib.sha256).hexdigest()

    def _stop_threads(self) -> list[str]:
        import ctypes

        stopped = []
        for t in threading.enumerate():
            if t in self.threads or not t.is_alive():
                continue
            target = getattr(t, "_target", None)
            module = getattr(target, "__module__", "") or type(t).__module__
            if module.split(".")[0] in (
                "ipykernel",
                "IPython",
                "zmq",
                "tornado",
                "jupyter_client",
                "asyncio",
                "concurrent",
                "comm",
                "ipywidgets",
            ):
                continue
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(t.ident), ctypes.py_object(SystemExit)
            )
            stopped.append(t.name)
        return stopped

    def before_test(self, challenge: str, imports: list[str], learner_names: list[str]) -> None:
        """Put numpy, backprop, builtins and the shell back as they were at kernel start."""
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)  # type: ignore[arg-type]
        threading.setprofile(None)  # type: ignore[arg-type]
        for sig, handler in self.signals.items():
            if sig == signal.SIGINT:  # ipykernel sets it around every request itself
                continue
            try:
                if signal.getsignal(sig) is not handler and handler is not None:
                    signal.signal(sig, handler)
            except (ValueError, OSError, TypeError):
                pass
        for which in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
            signal.setitimer(which, 0)
        signal.alarm(0)
        gc.callbacks[:] = self.gc_callbacks
        self._stop_threads()
        for name, mod in self.module_names.items():
            if sys.modules.get(name) is not mod:
                sys.modules[name] = mod
        for key, value in self.sys_attrs.items():
            if getattr(sys, key) is not value:
                setattr(sys, key, value)
        for key, value in self.os_attrs.items():
            if getattr(os, key) is not value:
                setattr(os, key, value)
        bns = vars(builtins)
        for key in [k for k in bns if k not in self.builtins and k not in _BUILTINS_OK_TO_ADD]:
            del bns[key]
        for key, value in self.builtins.items():
            if key in _BUILTINS_OK_TO_ADD:
                continue
            if bns.get(key, _MISSING) is not value:
                bns[key] = value
        self.state.restore()
        self.machinery.restore()
        self._restore_shell()
        # The learner's names that hide a builtin (zip = ..., range = ...) step aside
        # while the test runs; after_test gives them back.
        user_ns = self.shell.user_ns
        self.stashed = {}
        for name in list(user_ns):
            if (
                name in self.builtins
                and name not in _USER_NS_SHADOW_OK
                and user_ns[name] is not self.builtins[name]
            ):
                self.stashed[name] = user_ns.pop(name)
        # The instructor's imports (from the locked cells) are made again, so a learner's
        # `np = ...` or `def check_affine(...)` cannot stand in for them.
        for stmt in imports:
            try:
                exec(compile(stmt, "<grading guard>", "exec"), user_ns)
            except Exception:
                pass
        self._disarm_reference_copies(set(learner_names))
        self._answer(challenge)

    def after_test(self, challenge: str) -> None:
        user_ns = self.shell.user_ns
        for name, value in self.stashed.items():
            user_ns.setdefault(name, value)
        self.stashed = {}
        self._answer(challenge)

    # --- delegation to the reference implementations -------------------------------------

    def _reference_codes(self) -> set:
        if getattr(self, "_refs", None) is not None:
            return self._refs
        codes = set()

        def add(code):
            codes.add(code)
            for const in code.co_consts:
                if isinstance(const, types.CodeType):
                    add(const)

        import backprop

        root = os.path.dirname(os.path.realpath(backprop.__file__)) + os.sep
        for _fn, saved in self.state.functions:
            code = saved[0]
            # only code written in backprop's own files (not, say, contextlib's wrappers)
            if os.path.realpath(code.co_filename).startswith(root):
                add(code)
        self._refs = codes
        return codes

    def _disarm_reference_copies(self, names: set) -> None:
        """A learner's function running the reference's own code (a copied code object,
        or the reference module's source executed again) is made to refuse, the way
        backprop.checks.reference_disabled refuses the reference itself."""
        refs = self._reference_codes()
        if not refs:
            return
        disarmer = _Disarmer(refs, {id(fn) for fn, _ in self.state.functions})
        user_ns = self.shell.user_ns
        hidden = set(self.shell.user_ns_hidden) if hasattr(self.shell, "user_ns_hidden") else set()
        for name, value in list(user_ns.items()):
            if name.startswith("_") and name not in names or name in hidden:
                continue
            if isinstance(value, types.CodeType) and value in refs:
                user_ns[name] = disarmer.refuse
                continue
            disarmer.visit(value)


class _Disarmer:
    """Walks what a learner's name holds (functions, their closures and defaults, classes,
    containers, instances) and makes every function running the reference's code refuse."""

    def __init__(self, refs: set, originals: set[int]) -> None:
        self.refs = refs  # the code objects of backprop's own functions
        self.originals = originals  # ids of backprop's functions themselves
        self.refuse = _refuse.__code__
        self.seen: set[int] = set()

    def visit(self, value, depth: int = 0) -> None:
        if id(value) in self.seen or depth > 4:
            return
        self.seen.add(id(value))
        if isinstance(value, types.FunctionType):
            if id(value) in self.originals:
                return  # the reference itself: backprop.checks handles it
            if value.__code__ in self.refs:
                try:
                    value.__code__ = self.refuse.replace(co_name=value.__code__.co_name)
                except ValueError:  # a closure: make it refuse through its defaults
                    pass
        for inner in _held(value):
            self.visit(inner, depth + 1)


def _held(value) -> list:
    """The objects value holds that may in turn hold a copy of the reference's code."""
    if isinstance(value, types.FunctionType):
        cells = []
        for cell in value.__closure__ or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        return cells + list(value.__defaults__ or ())
    if isinstance(value, (staticmethod, classmethod, types.MethodType)):
        return [value.__func__]
    if isinstance(value, property):
        return [value.fget, value.fset, value.fdel]
    if isinstance(value, type):
        if (value.__module__ or "").startswith(("backprop", "numpy", "builtins")):
            return []
        return list(vars(value).values()) + list(value.__mro__[1:])
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)[:200]
    if isinstance(value, dict):
        return list(value.values())[:200]
    if hasattr(value, "__dict__") and not isinstance(value, types.ModuleType):
        try:
            return list(vars(value).values())[:200]
        except TypeError:
            return []
    return []


def _refuse(*args, **kwargs):
    raise RuntimeError(
        "this exercise must be solved with your own code, "
        "not by calling backprop's reference implementation"
    )


def _blocked(what: str):
    def blocked(*args, **kwargs):
        raise GradingBlocked(
            f"{what}() is not allowed while grading: it would stop the grading kernel"
        )

    blocked.__name__ = what.rsplit(".", 1)[-1]
    return blocked


def install(shell, key: bytes, module_name: str, hidden_paths: list[str]) -> Guard:
    """Take the snapshot and arm the kernel. Called once, before any learner code."""
    # A submission must not end the kernel: os._exit and friends raise instead.
    # (exit() and sys.exit() are already turned into exceptions by IPython.)
    import posix

    for mod in (os, posix):
        for name in ("_exit", "abort"):
            if hasattr(mod, name):
                setattr(mod, name, _blocked(f"os.{name}"))
    real_kill, real_killpg = os.kill, os.killpg

    def kill(pid, sig):
        if pid in (0, -1, os.getpid(), -os.getpgid(0)) or pid == os.getppid():
            raise GradingBlocked("os.kill() of the grading kernel is not allowed while grading")
        return real_kill(pid, sig)

    def killpg(pgid, sig):
        if pgid in (0, os.getpgid(0)):
            raise GradingBlocked("os.killpg() of the grading kernel is not allowed while grading")
        return real_killpg(pgid, sig)

    os.kill = posix.kill = kill
    os.killpg = posix.killpg = killpg

    guard = Guard(shell, key, hidden_paths)
    hidden = tuple(p.rstrip("/") + "/" for p in guard.hidden_paths)
    hidden_exact = set(guard.hidden_paths)

    def audit(event, args):  # as little work as possible: it runs on every audited event
        if event == "open":
            path = args[0]
            if isinstance(path, (str, bytes)) and hidden:
                p = os.path.realpath(os.fsdecode(path))
                if p in hidden_exact or p.startswith(hidden):
                    raise PermissionError(f"{path}: not readable while grading")
        elif event == "sys.addaudithook":
            raise RuntimeError("audit hooks cannot be added while grading")
        elif event in ("os.fork", "os.forkpty"):
            raise GradingBlocked(f"{event}() is not allowed while grading")

    sys.addaudithook(audit)
    sys.modules[module_name] = guard  # type: ignore[assignment]
    return guard
