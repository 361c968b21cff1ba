"""Start a grading kernel inside its limits: ``python launcher.py SETTINGS ipykernel-args...``.

Run by :class:`autograder.preprocessors.GuardedKernelManager` in place of
``python -m ipykernel_launcher``: inside the kernel's jail (jail.py: bubblewrap, which
gives it its namespaces, its read-only file system and its private /tmp), or directly
where there is no jail. In this order it

1. reads its settings (a JSON file it deletes at once: it holds the guard's key);
2. asks Linux to kill it when the grading process dies (no orphaned kernels; in the jail,
   bwrap's ``--die-with-parent`` does the same one level up);
3. in the jail: writes the kernel's connection file (its sockets live in /run/kernel, where
   the grader reaches them), and makes $HOME and the working folder, a copy of the
   assignment's files, in the jail's private /tmp;
4. caps its address space (RLIMIT_AS), file size and core dumps;
5. sets ``BACKPROP_CHECKS=collect`` (the checks' grading mode), starts the IPython
   kernel, installs the guard (guard.py, beside this file) before any learner code can
   run, and serves.

Only the standard library, ipykernel and guard.py are used: this file is not
imported as part of the autograder package, so the package never appears in the
kernel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import json
import os
import resource
import shutil
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Have Linux send sig to this process when its parent ends (prctl PR_SET_PDEATHSIG).
    Also used by the batch's workers (worker.py), from the grader's side."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def enter_jail(jail: dict) -> None:
    """Inside bwrap: the connection file, $HOME and the working folder."""
    info = dict(jail["connection"])
    info["ip"] = jail["ip"]
    fd = os.open(jail["connection_file"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    os.makedirs(jail["home"], exist_ok=True)
    shutil.copytree(jail["stage"], jail["work"], dirs_exist_ok=True)
    os.chdir(jail["work"])


def limit(memory_mb: int | None, file_mb: int | None) -> None:
    if memory_mb:
        size = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if file_mb:
        size = int(file_mb) * 1024 * 1024
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too large write fails, no kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def serve(settings: dict, kernel_args: list[str]) -> None:
    """Become the kernel inside the limits, install the guard, and serve."""
    limit(settings.get("memory_mb"), settings.get("file_mb"))
    os.environ["BACKPROP_CHECKS"] = "collect"  # before backprop.checks is first imported

    here = os.path.dirname(os.path.abspath(__file__))
    guard = None
    if settings.get("guard"):
        spec = importlib.util.spec_from_file_location(
            "_grading_guard", os.path.join(here, "guard.py")
        )
        guard = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(guard)
    # The kernel should look as if started by `python -m ipykernel_launcher`.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.argv = ["ipykernel_launcher", *kernel_args]

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(kernel_args)
    if guard is not None:
        guard.install(
            app.shell,
            bytes.fromhex(settings["guard"]["key"]),
            settings["guard"]["module"],
            settings.get("audit_paths", []),
        )
    del guard, settings
    app.start()


def main() -> None:
    settings_path, kernel_args = sys.argv[1], sys.argv[2:]
    with open(settings_path) as f:
        settings = json.load(f)
    os.unlink(settings_path)

    die_with_parent(signal.SIGKILL)
    if settings.get("jail"):
        enter_jail(settings["jail"])
    elif os.getppid() != settings["parent"]:  # the grader died before we got here
        os._exit(1)
    serve(settings, kernel_args)


if __name__ == "__main__":
    main()
