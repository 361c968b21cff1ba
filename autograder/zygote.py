"""A kernel zygote: ``python zygote.py SOCKET`` forks ready-made grading kernels.

Starting a kernel from nothing (Python, ipykernel, numpy, backprop) costs about a second of
CPU per notebook, as much as grading it. ``python -m autograder grade`` starts one zygote
per worker: it imports all of that once, then for each request from launcher.py forks a
child that sandboxes itself exactly as launcher.py would (namespaces, limits, the guard)
and becomes the kernel. Memory is shared copy-on-write.

Protocol, over a unix socket only this user can open: the launcher sends an 8-byte length
with its stdin, stdout and stderr attached (SCM_RIGHTS), then JSON {settings, args, env,
cwd}; the zygote answers ``PID <pid>`` and, when the kernel has exited, ``EXIT <status>``.
The launcher stays the process jupyter_client manages and forwards signals to the kernel;
if the launcher dies (killed with its grading process), the zygote kills the kernel. The
zygote itself dies with the worker that started it (parent-death signal), and its kernels
with it.
"""
from __future__ import annotations

import importlib.util
import json
import os
import select
import signal
import socket
import struct
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "IPython.core.interactiveshell",
           "jupyter_client.session", "numpy", "numpy.testing", "numpy.linalg", "numpy.random",
           "backprop", "backprop.gradcheck", "backprop.checks", "matplotlib")


def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = conn.recv(min(n, 1 << 16))
        if not chunk:
            raise ConnectionError("launcher went away")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _child(launcher, libc, request: dict, fds: list[int], keep_closed: list[int]) -> None:
    """In the forked child: become the kernel. Never returns."""
    real_exit = os._exit  # the guard replaces os._exit in the kernel
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        for fd in keep_closed:
            try:
                os.close(fd)
            except OSError:
                pass
        for i, fd in enumerate(fds[:3]):
            os.dup2(fd, i)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.setsid()
        libc.prctl(launcher.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        import random
        random.seed()
        import numpy
        numpy.random.seed()  # not the zygote's state, shared by every fork
        launcher.serve(libc, request["settings"], request["args"])
        real_exit(0)
    except SystemExit as exc:
        real_exit(exc.code if isinstance(exc.code, int) else 0)
    except BaseException:
        traceback.print_exc()
        real_exit(1)


def main() -> None:
    path = sys.argv[1]
    launcher = _load("_grading_launcher", "launcher.py")
    libc = launcher._libc()
    libc.prctl(launcher.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:
            pass
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    server.bind(path)
    os.umask(old)
    server.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    kernels: dict[int, tuple[socket.socket, int]] = {}  # launcher socket fd -> (socket, pid)
    print("READY", flush=True)

    while True:
        ready, _, _ = select.select([server, wake_r, *[c for c, _ in kernels.values()]], [], [],
                                    1.0)
        try:
            os.read(wake_r, 4096)
        except BlockingIOError:
            pass
        while True:  # reap kernels that ended, and tell their launchers
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            code = os.waitstatus_to_exitcode(status)
            for fd, (conn, kpid) in list(kernels.items()):
                if kpid == pid:
                    try:
                        conn.sendall(b"EXIT %d\n" % (code if code >= 0 else 128 - code))
                    except OSError:
                        pass
                    conn.close()
                    del kernels[fd]
        for sock in ready:
            if sock is server:
                conn, _ = server.accept()
                try:
                    head, fds, _, _ = socket.recv_fds(conn, 8, 3)
                    request = json.loads(_recv_exactly(conn, struct.unpack("!Q", head)[0]))
                except Exception:
                    conn.close()
                    continue
                others = [server.fileno(), wake_r, wake_w, conn.fileno(),
                          *[c.fileno() for c, _ in kernels.values()]]
                pid = os.fork()
                if pid == 0:
                    _child(launcher, libc, request, fds, others)
                for fd in fds:
                    os.close(fd)
                conn.sendall(b"PID %d\n" % pid)
                kernels[conn.fileno()] = (conn, pid)
            elif sock is not wake_r:
                fd = sock.fileno()
                try:
                    gone = not sock.recv(1)
                except OSError:
                    gone = True
                if gone and fd in kernels:  # the launcher died: so does its kernel
                    conn, pid = kernels.pop(fd)
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    conn.close()


if __name__ == "__main__":
    main()
