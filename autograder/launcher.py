"""Start a grading kernel inside its limits: ``python launcher.py SETTINGS ipykernel-args...``.

Run by :class:`autograder.execute.GuardedKernelManager` in place of
``python -m ipykernel_launcher``. In this order it

1. reads its settings (a JSON file it deletes at once: it holds the guard's key);
2. asks Linux to kill it when the grading process dies (no orphaned kernels);
3. where the OS allows (root, or user namespaces), moves into new mount and network
   namespaces: no network at all, and the folders that hold hidden tests, the
   gradebook and other learners' work replaced by empty ones. Where it is not
   allowed the kernel still runs, and the guard's audit hook refuses to open
   files under those folders;
4. caps its address space (RLIMIT_AS), file size and core dumps;
5. starts the IPython kernel, installs the guard (autograder/guard.py) before any
   learner code can run, and serves.

With a zygote (zygote.py, started by ``python -m autograder grade``), steps 3 to 5 happen
in a process the zygote forks, already holding ipykernel, numpy and backprop in memory;
this process then only stands in for it (see :func:`via_zygote`).

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
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG = 1


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _warn(msg: str) -> None:
    sys.stderr.write(f"[grading sandbox] {msg}\n")
    sys.stderr.flush()


def private_tmp(libc, tmp: str, keep: str) -> str | None:
    """Mount an empty tmpfs on tmp, then bind keep (a folder inside tmp) back into it."""
    tmp, keep = os.path.realpath(tmp), os.path.realpath(keep)
    if not keep.startswith(tmp + os.sep):
        return None
    fd = os.open(keep, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if libc.mount(b"tmpfs", os.fsencode(tmp), b"tmpfs", MS_NOSUID | MS_NODEV,
                      b"mode=1777") != 0:
            return f"could not give the kernel its own {tmp} ({os.strerror(ctypes.get_errno())})"
        os.makedirs(keep, exist_ok=True)
        if libc.mount(os.fsencode(f"/proc/self/fd/{fd}"), os.fsencode(keep), None, MS_BIND,
                      None) != 0:
            return f"could not bring {keep} back ({os.strerror(ctypes.get_errno())})"
        os.chdir(keep + "/work") if os.path.isdir(keep + "/work") else None
    finally:
        os.close(fd)
    return None


def isolate(libc, network: bool, hide: list[str], tmp: list[str] | None = None) -> list[str]:
    """Enter new namespaces and hide folders; returns what could not be done."""
    problems = []
    flags = (CLONE_NEWNET if network else 0) | (CLONE_NEWNS if hide or tmp else 0)
    if not flags:
        return problems
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        problems.append(f"unshare failed ({os.strerror(err)}): network and file system "
                        "are not isolated")
        return problems
    if hide or tmp:
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            problems.append("could not make mounts private; folders not hidden")
            return problems
        if tmp:
            problem = private_tmp(libc, *tmp)
            if problem:
                problems.append(problem)
        for path in hide:
            p = os.fsencode(path)
            if os.path.isdir(path):
                ok = libc.mount(b"tmpfs", p, b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                b"size=4k,mode=000") == 0
            elif os.path.exists(path):
                ok = libc.mount(b"/dev/null", p, None, MS_BIND, None) == 0
            else:
                continue
            if not ok:
                problems.append(f"could not hide {path} ({os.strerror(ctypes.get_errno())})")
    return problems


def limit(memory_mb: int | None, file_mb: int | None) -> None:
    if memory_mb:
        size = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if file_mb:
        size = int(file_mb) * 1024 * 1024
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too large write fails, no kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def via_zygote(path: str, settings: dict, kernel_args: list[str]) -> int | None:
    """Have the zygote (zygote.py) fork the kernel; stand in for it until it exits.

    Returns the kernel's exit status, or None if no zygote answered (then the caller
    starts the kernel itself). This process stays the one jupyter_client manages: signals
    it gets go to the kernel, and if it is killed the zygote kills the kernel.
    """
    import socket
    import struct
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        payload = json.dumps({"settings": settings, "args": kernel_args,
                              "env": dict(os.environ), "cwd": os.getcwd()}).encode()
        socket.send_fds(sock, [struct.pack("!Q", len(payload))], [0, 1, 2])
        sock.sendall(payload)
        replies = sock.makefile("rb")
        line = replies.readline()
    except OSError:
        return None
    if not line.startswith(b"PID "):
        return None
    pid = int(line.split()[1])

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                signal.SIGUSR2):
        signal.signal(sig, forward)
    line = replies.readline()  # "EXIT <status>" when the kernel ends
    return int(line.split()[1]) if line.startswith(b"EXIT ") else 1


def serve(libc, settings: dict, kernel_args: list[str]) -> None:
    """Sandbox this process, become the kernel, install the guard, and serve."""
    tmp = settings.get("private_tmp")
    if tmp and "-f" in kernel_args:
        # The connection file may sit in the /tmp the kernel is about to lose: keep a copy in
        # the kernel's own folder, which stays.
        i = kernel_args.index("-f") + 1
        copy = os.path.join(tmp[1], "connection.json")
        with open(kernel_args[i], "rb") as src, open(copy, "wb") as dst:
            dst.write(src.read())
        os.chmod(copy, 0o600)
        kernel_args[i] = copy
    for problem in isolate(libc, settings.get("isolate_network", False),
                           settings.get("hide_paths", []), settings.get("private_tmp")):
        _warn(problem)
    limit(settings.get("memory_mb"), settings.get("file_mb"))

    here = os.path.dirname(os.path.abspath(__file__))
    guard = None
    if settings.get("guard"):
        spec = importlib.util.spec_from_file_location("_grading_guard",
                                                      os.path.join(here, "guard.py"))
        guard = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(guard)
    # The kernel should look as if started by `python -m ipykernel_launcher`.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.argv = ["ipykernel_launcher", *kernel_args]
    for key in ("AUTOGRADER_SETTINGS", "AUTOGRADER_ZYGOTE"):
        os.environ.pop(key, None)

    from ipykernel.kernelapp import IPKernelApp
    app = IPKernelApp.instance()
    app.initialize(kernel_args)
    if guard is not None:
        guard.install(app.shell, bytes.fromhex(settings["guard"]["key"]),
                      settings["guard"]["module"], settings.get("audit_paths", []))
    del guard, settings
    app.start()


def main() -> None:
    settings_path, kernel_args = sys.argv[1], sys.argv[2:]
    with open(settings_path) as f:
        settings = json.load(f)
    os.unlink(settings_path)

    libc = _libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != settings["parent"]:  # the grader died before we got here
        os._exit(1)
    if settings.get("zygote"):
        status = via_zygote(settings["zygote"], settings, kernel_args)
        if status is not None:
            os._exit(status)
    serve(libc, settings, kernel_args)


if __name__ == "__main__":
    main()
