"""The grading kernel's jail: bubblewrap (``bwrap``) around every kernel.

Each kernel :class:`~autograder.preprocessors.GuardedKernelManager` starts runs in a fresh
sandbox made by bwrap, with

* new user, PID, mount, network, IPC, UTS and cgroup namespaces (``--unshare-all``); the
  kernel is uid/gid 65534 in there, with no capabilities and no way to make further user
  namespaces (``--disable-userns``);
* the kernel as PID 1 of its PID namespace (``--as-pid-1``): when it ends, every process it
  started ends too, ``setsid`` or double fork or not; and it is killed when the grader dies
  (``--die-with-parent``), in a session of its own (``--new-session``);
* a root file system that holds only what the kernel needs, all read-only: /usr and /etc
  (the password hashes, ssh and TLS private keys masked), the Python installation and its
  libraries, the course's ``lib/`` folder (``backprop``, with the exercise's reference
  implementation taken out: redact.py), ``launcher.py`` and ``guard.py``, the MNIST folder
  when there is one, and the assignment's non-notebook files; its own /proc (read-only:
  the kernel's uid is the grading user's outside, so host-wide sysctls would otherwise be
  writable) and a minimal /dev. Nothing else of the machine is there: not the project's other folders, not
  ``solutions/``, not the gradebooks, the submissions, other learners' folders, the batch's
  state or other kernels;
* a fresh /tmp of limited size (tmpfs ``--size``), holding $HOME and the kernel's working
  folder (a copy of the assignment's files, made inside): the only place the kernel can
  write besides /dev/shm (small) and /run/kernel (1 MiB: its connection file and sockets).
  Everything there vanishes with the kernel: nothing one kernel writes is ever seen by
  another, or survives grading;
* an environment made from nothing (``--clearenv``): no variable of the grader's reaches
  learner code except the few listed in :data:`PASS_ENV`.

The kernel's settings (with the guard's key) come in through ``--file`` from a memfd and
are deleted by launcher.py before any learner code runs. The grader talks to the kernel
over unix sockets the kernel makes in /run/kernel; the grader reaches them through
``/proc/<kernel>/root``, so no folder of the machine is writable from inside.

Where bwrap is not installed or cannot start (no user namespaces), :func:`status` says why
and the kernel runs with the launcher's limits and the guard's audit hook only: grading
works, and every result says it was not sandboxed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig

UID = GID = 65534
RUN = "/run/kernel"  # inside: settings, connection file, the kernel's sockets
CODE = "/run/grading"  # inside: launcher.py and guard.py
STAGE = "/run/assignment"  # inside: the assignment's files, copied to WORK at start
DATA = "/run/mnist"  # inside: the MNIST folder (BACKPROP_DATA), read-only
HOME = "/tmp/home"
WORK = "/tmp/work"
SETTINGS = RUN + "/settings.json"
CONNECTION = RUN + "/connection.json"

SYSTEM = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_SECRET_FILES = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/security/opasswd",
)
ETC_SECRET_DIRS = ("/etc/ssh", "/etc/ssl/private", "/etc/sudoers.d")
# Variables of the grader's environment the kernel may see; the rest never reach it.
PASS_ENV = (
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_NUMERIC",
    "TZ",
    "MPLBACKEND",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "PYTHONHASHSEED",
    "JPY_PARENT_PID",
    "JPY_SESSION_NAME",
)

_STATUS: dict[str, tuple[str | None, str]] = {}


def _under(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def system_args() -> list[str]:
    """The read-only system: /usr, /etc (secrets masked), the /bin, /lib... links or dirs."""
    args: list[str] = []
    for path in SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC_SECRET_FILES:
        if os.path.isfile(path):
            args += ["--ro-bind", "/dev/null", path]
    for path in ETC_SECRET_DIRS:
        if os.path.isdir(path):
            args += ["--tmpfs", path, "--remount-ro", path]
    return args


def status(bwrap: str = "bwrap") -> tuple[str | None, str]:
    """(path of a bwrap that works here, "bwrap") or (None, "none (why not)"); probed once
    per process by starting a sandbox like the kernels' around ``true``."""
    if bwrap in _STATUS:
        return _STATUS[bwrap]
    path = shutil.which(bwrap) if bwrap else None
    if not bwrap:
        found = (None, "none (bwrap switched off)")
    elif not sys.platform.startswith("linux"):
        found = (None, "none (not Linux)")
    elif path is None:
        found = (None, "none (bwrap not found)")
    else:
        true = shutil.which("true", path="/usr/bin:/bin") or "/usr/bin/true"
        cmd = [
            path,
            *base_args(network=False, tmp_mb=1),
            *system_args(),
            "--remount-ro",
            "/",
            "--",
            true,
        ]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
            why = (proc.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
            found = (
                (path, "bwrap")
                if proc.returncode == 0
                else (None, f"none (bwrap cannot start: {why or f'exit status {proc.returncode}'})")
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            found = (None, f"none (bwrap cannot start: {exc})")
    _STATUS[bwrap] = found
    return found


def base_args(network: bool, tmp_mb: int) -> list[str]:
    """Namespaces, identity, /proc, /dev and the size-limited scratch."""
    args = [
        "--unshare-all",
        "--unshare-user",
        "--uid",
        str(UID),
        "--gid",
        str(GID),
        "--disable-userns",
        "--hostname",
        "grading",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
    ]
    if network:
        args.append("--share-net")
    # /proc read-only as a whole: the kernel's uid is the grading user's outside, which
    # sysctl permissions (/proc/sys/kernel/core_pattern...) would otherwise let through
    args += [
        "--proc",
        "/proc",
        "--remount-ro",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(16 << 20),
        "--tmpfs",
        "/dev/shm",
        "--size",
        str(int(tmp_mb) << 20),
        "--tmpfs",
        "/tmp",
        "--perms",
        "0700",
        "--size",
        str(1 << 20),
        "--tmpfs",
        RUN,
    ]
    return args


# What the kernel imports: wherever these are installed is bound (read-only) into the jail.
KERNEL_PACKAGES = (
    "ipykernel",
    "IPython",
    "jupyter_client",
    "jupyter_core",
    "zmq",
    "tornado",
    "traitlets",
    "comm",
    "numpy",
    "matplotlib",
    "ipywidgets",
    "pooch",
    "tqdm",
)


def python_dirs(kernel_python: str, project: str, keep: list[str]) -> list[str]:
    """Folders the kernel's Python needs: its installation, its library folders and those of
    the packages the kernel imports, and keep (the folder holding backprop); nothing else
    of the project, and never the grader's working folder or other sys.path entries."""
    import importlib.util

    candidates = [
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.dirname(os.path.realpath(kernel_python))),
    ]
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        candidates.append(sysconfig.get_paths().get(key, ""))
    try:
        import site

        candidates += site.getsitepackages() + [site.getusersitepackages()]
    except Exception:
        pass
    for name in KERNEL_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        for loc in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(os.path.dirname(loc))
    out = []
    for p in candidates + keep:
        if not p or not os.path.isabs(p) or not os.path.isdir(p):
            continue
        p = os.path.realpath(p)
        if any(_under(p, s) for s in SYSTEM if not os.path.islink(s)):
            continue
        if _under(p, project) and not any(_under(p, k) for k in keep):
            continue
        out.append(p)
    out = sorted(set(out), key=len)
    return [p for i, p in enumerate(out) if not any(_under(p, q) for q in out[:i])]


def data_dir() -> str | None:
    """The MNIST folder the kernel's backprop.data would use, if it exists here."""
    env = os.environ.get("BACKPROP_DATA")
    folder = (
        os.path.expanduser(env)
        if env
        else os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "backprop"
        )
    )
    return os.path.realpath(folder) if os.path.isdir(folder) else None


def font_lists() -> list[str]:
    """matplotlib's font list as this user has it cached (so no kernel builds its own)."""
    import glob

    folder = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib"
    )
    return sorted(glob.glob(os.path.join(folder, "fontlist-v*.json")))


def environment(home: str, tmp: str, data: str | None) -> dict[str, str]:
    """The kernel's environment: PASS_ENV from ours, and its own HOME, TMPDIR, PATH; data:
    the MNIST folder (BACKPROP_DATA), if the kernel may see one."""
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    bindir = os.path.dirname(os.path.realpath(sys.executable))
    env.update(
        HOME=home,
        TMPDIR=tmp,
        USER="learner",
        LOGNAME="learner",
        PATH=os.pathsep.join(dict.fromkeys([bindir, "/usr/local/bin", "/usr/bin", "/bin"])),
        MPLCONFIGDIR=os.path.join(home, ".config", "matplotlib"),
        BACKPROP_CHECKS="collect",
        PYTHONNOUSERSITE="1",
    )
    if data:
        env["BACKPROP_DATA"] = data
    env.setdefault("MPLBACKEND", "agg")
    return env


def mask_args(hidden: list[str], binds: list[str]) -> list[str]:
    """bwrap arguments that keep anything hidden invisible where it lies inside a folder
    bound into the jail (an empty read-only tmpfs over a folder, /dev/null over a file)."""
    args: list[str] = []
    hidden = sorted({os.path.realpath(h) for h in hidden}, key=len)
    for i, h in enumerate(hidden):
        if any(_under(h, outer) for outer in hidden[:i]):
            continue  # inside a hidden folder already emptied
        if os.path.exists(h) and any(_under(h, b) and h != b for b in binds):
            masked = os.path.isdir(h)
            args += ["--tmpfs", h, "--remount-ro", h] if masked else ["--ro-bind", "/dev/null", h]
    return args


def command(
    bwrap: str,
    argv: list[str],
    *,
    settings_fd: int,
    info_fd: int,
    stage: str,
    code: dict[str, str],
    library: str,
    redacted: str | None,
    hidden: list[str],
    project: str,
    network: bool,
    tmp_mb: int,
) -> list[str]:
    """The bwrap command line that runs argv (the launcher and its arguments) jailed.

    code: inside path -> host file (launcher.py, guard.py); library: the folder holding the
    backprop package, bound read-only, with redacted (a copy of the package) over it.
    """
    args = [bwrap, *base_args(network, tmp_mb), *system_args()]
    binds = python_dirs(argv[0], project, [library])
    data = data_dir()
    if data and any(_under(data, h) for h in hidden):
        data = None
    for path in binds:
        if any(_under(path, h) for h in hidden):
            continue
        args += ["--ro-bind", path, path]
    if redacted:
        args += ["--ro-bind", redacted, os.path.join(library, os.path.basename(redacted))]
    args += mask_args(hidden, binds)
    for inside, host in code.items():
        args += ["--ro-bind", host, inside]
    args += ["--ro-bind", stage, STAGE]
    if data:  # at a path of its own: where it lies here says nothing the kernel needs
        args += ["--ro-bind", data, DATA]
    env = environment(HOME, "/tmp", DATA if data else None)
    for path in font_lists():
        args += ["--ro-bind", path, os.path.join(env["MPLCONFIGDIR"], os.path.basename(path))]
    args += ["--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--file", str(settings_fd), SETTINGS, "--info-fd", str(info_fd),
             "--remount-ro", "/", "--chdir", "/tmp", "--"]  # fmt: skip
    return args + list(argv)


def read_info(fd: int, timeout: float = 30.0) -> int | None:
    """The kernel's pid (as this process sees it) from bwrap's --info-fd, None if bwrap
    ended before saying it."""
    import select
    import time

    data, deadline = b"", time.monotonic() + timeout
    while b"}" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    try:
        return int(json.loads(data.decode())["child-pid"])
    except (ValueError, KeyError):
        return None
