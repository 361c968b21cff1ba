"""Grading a batch of submissions in parallel: ``python -m autograder grade``.

How it fits together
--------------------
The parent process

1. makes (once per version of the source notebooks) a *template course*: nbgrader's
   ``generate_assignment`` run into a gradebook of its own, which then holds the
   assignment, its notebooks and every grade, solution and source cell, and no learner;
2. finds each learner's notebooks (collect.py) and reads them as bytes;
3. hands one task per learner to a ``concurrent.futures`` executor (a process pool by
   default; anything with ``submit`` whose workers can fork will do);
4. merges each result, as it arrives, into the one gradebook of the output course
   (``<out>/gradebook.db``) through nbgrader's Gradebook API, and writes the submitted,
   autograded and feedback files where nbgrader keeps them
   (``<out>/{submitted,autograded,feedback}/<learner>/<assignment>/``), so
   ``nbgrader formgrader`` and ``nbgrader export`` run in ``<out>`` see every learner;
5. writes ``<out>/grades.csv`` and prints a summary.

A worker grades one learner in a forked child (its own session, so a timeout kills
the child, and with it the kernel, whatever state they are in) inside a scratch course:
a copy of the template's gradebook, ``source/<assignment>/`` with only the assignment's
other files, and the learner's notebooks in ``submitted/<learner>/<assignment>/``. There it
runs nbgrader's own ``autograde`` and ``generate_feedback`` through ``NbGraderAPI`` with
the course's nbgrader_config.py, reads the scores and comments back from the scratch
gradebook, and returns them with the files' contents. Nothing a worker does touches
the output course, so workers need no locks and the merge is the only writer.

Why merge through the Gradebook API rather than copy databases: a learner's
submission is a small set of rows (a SubmittedAssignment, a SubmittedNotebook per
notebook, a Grade and a Comment per cell) that ``update_or_create_submission``
creates exactly as nbgrader's autograde does; the parent then sets the same fields
nbgrader's SaveAutoGrades and AssignLatePenalties set (``auto_score``,
``needs_manual_grade``, ``auto_comment``, ``late_submission_penalty``), and leaves any
manual grading already in the gradebook alone. Re-running the batch is safe: a learner
whose files have not changed since the recorded result is skipped (``--force`` grades
again).
"""
from __future__ import annotations

import concurrent.futures as cf
import copy
import csv
import hashlib
import json
import os
import pickle
import re
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ".autograder"  # inside the output folder: records and templates


@dataclass
class Options:
    assignment: str
    out: Path
    jobs: int
    force: bool = False
    timeout: float = 900.0          # wall clock per learner, seconds
    cell_timeout: int | None = None  # per cell, seconds (None: the config's)
    memory_mb: int | None = None     # kernel address space (None: the config's)
    isolate_network: bool = True
    regexp: str | None = None
    feedback: bool = True
    quiet: bool = False


@dataclass
class Task:
    learner: str
    assignment: str
    notebooks: dict[str, bytes | None]
    timestamp: str | None
    template: str
    hide: list[str]
    options: dict
    notes: list[str] = field(default_factory=list)
    digest: str = ""


# --- configuration ------------------------------------------------------------------------------

_CONFIG_CACHE: dict = {}


def course_config():
    """The course's nbgrader configuration (nbgrader_config.py at the repository root)."""
    if "repo" not in _CONFIG_CACHE:
        from traitlets.config.loader import PyFileConfigLoader
        loader = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT))
        _CONFIG_CACHE["repo"] = loader.load_config()
    return copy.deepcopy(_CONFIG_CACHE["repo"])  # sections are shared by merge(): copy


def course_id() -> str:
    return course_config().CourseDirectory.get("course_id", "default_course")


def source_dir() -> Path:
    cfg = course_config()
    root = Path(cfg.CourseDirectory.get("root", str(ROOT)))
    return (root / cfg.CourseDirectory.get("source_directory", "source")).resolve()


def scratch_config(course: Path, db: Path, options: dict, hide: list[str]):
    cfg = course_config()
    cfg.CourseDirectory.root = str(course)
    cfg.CourseDirectory.source_directory = "source"
    cfg.CourseDirectory.release_directory = "release"
    cfg.CourseDirectory.submitted_directory = "submitted"
    cfg.CourseDirectory.autograded_directory = "autograded"
    cfg.CourseDirectory.feedback_directory = "feedback"
    cfg.CourseDirectory.db_url = f"sqlite:///{db}"
    if options.get("cell_timeout"):
        cfg.Execute.timeout = int(options["cell_timeout"])
    if options.get("memory_mb"):
        cfg.GuardedExecute.memory_limit_mb = int(options["memory_mb"])
    cfg.GuardedExecute.isolate_network = bool(options.get("isolate_network", True))
    cfg.GuardedExecute.hide_paths = list(cfg.GuardedExecute.get("hide_paths", [])) + hide
    cfg.NbGraderAPI.log_level = "WARN"
    return cfg


# --- the template course --------------------------------------------------------------------------

def _digest_files(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and ".ipynb_checkpoints" not in p.parts:
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    for name in ("nbgrader_config.py", "autograder/nbgrader_config.py"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()[:16]


def make_template(assignment: str, state: Path) -> Path:
    """A course holding only the assignment: generate_assignment into its own gradebook."""
    src = source_dir() / assignment
    if not src.is_dir():
        raise SystemExit(f"no assignment {assignment!r}: {src} does not exist")
    key = _digest_files(src)
    tmpl = state / "templates" / f"{assignment}-{key}"
    if (tmpl / "ready").exists():
        return tmpl
    shutil.rmtree(tmpl, ignore_errors=True)
    (tmpl / "source" / assignment).mkdir(parents=True)
    for p in src.rglob("*"):  # the assignment's other files: kernels need those
        if p.is_file() and p.suffix != ".ipynb" and ".ipynb_checkpoints" not in p.parts:
            dest = tmpl / "source" / assignment / p.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dest)
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    cfg = course_config()
    cfg.CourseDirectory.root = str(tmpl)
    cfg.CourseDirectory.source_directory = str(source_dir())
    cfg.CourseDirectory.release_directory = "release"
    cfg.CourseDirectory.db_url = f"sqlite:///{tmpl / 'gradebook.db'}"
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    res = api.generate_assignment(assignment, force=True, create=True)
    if not res["success"]:
        raise SystemExit(f"nbgrader generate_assignment {assignment} failed:\n"
                         f"{res.get('error') or res.get('log')}")
    (tmpl / "ready").write_text(key)
    return tmpl


def assignment_cells(db: Path, assignment: str) -> dict[str, list[tuple[str, float]]]:
    """notebook -> [(grade_id, max_score)] in notebook order."""
    from nbgrader.api import Gradebook
    out = {}
    with Gradebook(f"sqlite:///{db}", course_id()) as gb:
        a = gb.find_assignment(assignment)
        for nb in a.notebooks:
            order = [c.name for c in nb.source_cells]
            cells = sorted(nb.grade_cells, key=lambda c: order.index(c.name)
                           if c.name in order else len(order))
            out[nb.name] = [(c.name, float(c.max_score)) for c in cells]
    return out


# --- the worker ---------------------------------------------------------------------------------

_SUSPICIOUS = [
    (re.compile(r"\bos\._exit\b|\bos\.abort\b|\bos\.kill"), "ends the process"),
    (re.compile(r"\b(np|numpy)(\.\w+)+\s*=[^=]"), "assigns to numpy"),
    (re.compile(r"\bbackprop(\.\w+)+\s*=[^=]|\b(gradcheck|checks|LayerReport|Check)\.\w+\s*=[^=]"),
     "assigns to backprop"),
    (re.compile(r"setattr\(\s*(np|numpy|backprop|builtins)"), "patches a module"),
    (re.compile(r"__code__|__globals__|\bgc\.get_objects|\bsys\.modules\b|\bctypes\b"),
     "reaches into the interpreter"),
    (re.compile(r"get_ipython\(\)\.(run_|events|ast_|input_transform|set_custom_exc|compile)"),
     "changes how cells run"),
    (re.compile(r"\bimport builtins\b|__builtins__"), "touches builtins"),
    (re.compile(r"sys\.settrace|sys\.setprofile|addaudithook|setitimer|signal\.alarm"),
     "installs hooks"),
]


def suspicious(nb) -> list[str]:
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("locked"):
            continue
        for pat, what in _SUSPICIOUS:
            if pat.search(cell.source) and what not in found:
                found.append(what)
    return found


def _zero_grades(cells: dict[str, list[tuple[str, float]]]) -> dict:
    return {nb: {gid: {"auto_score": 0.0, "max_score": mx, "needs_manual_grade": False}
                 for gid, mx in grades} for nb, grades in cells.items()}


def _grade_in_child(task: Task) -> dict:
    """Runs in the forked child: the scratch course, nbgrader autograde and feedback."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from .notebooks import read_submission

    t0 = time.monotonic()
    scratch = Path(task.options["scratch"])
    try:
        log = open(scratch / "log.txt", "w+b")
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        course, db = scratch / "course", scratch / "db" / "gradebook.db"
        tmpl = Path(task.template)
        shutil.copytree(tmpl / "source", course / "source")
        db.parent.mkdir()
        shutil.copyfile(tmpl / "gradebook.db", db)
        cells = task.options.get("cells") or assignment_cells(db, task.assignment)
        result = {"learner": task.learner, "assignment": task.assignment, "status": "graded",
                  "reasons": list(task.notes), "flags": [], "notebooks": {},
                  "timestamp": task.timestamp, "digest": task.digest}
        sub = course / "submitted" / task.learner / task.assignment
        sub.mkdir(parents=True)
        valid = []
        for nb_id in cells:
            data = task.notebooks.get(nb_id)
            entry = {"submitted": data, "autograded": None, "feedback": None,
                     "grades": _zero_grades(cells)[nb_id], "comments": {},
                     "late_penalty": None}
            result["notebooks"][nb_id] = entry
            if data is None:
                result["reasons"].append(f"{nb_id}: not handed in")
                continue
            s = read_submission(data)
            if s.error:
                result["reasons"].append(f"{nb_id}: {s.error}")
                continue
            result["reasons"] += [f"{nb_id}: {r}" for r in s.repairs]
            result["flags"] += [f for f in suspicious(s.nb) if f not in result["flags"]]
            nbformat.write(s.nb, str(sub / f"{nb_id}.ipynb"))
            valid.append(nb_id)
        if task.timestamp:
            (sub / "timestamp.txt").write_text(task.timestamp)
        if not valid:
            result["status"] = "missing" if all(task.notebooks.get(n) is None for n in cells) \
                else "invalid"
            return result

        if task.options.get("kernel_dir"):
            os.environ["AUTOGRADER_KERNEL_DIR"] = task.options["kernel_dir"]
        cfg = scratch_config(course, db, task.options, task.hide)
        api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
        res = api.autograde(task.assignment, task.learner, force=True, create=True)
        if not res["success"]:
            result["status"] = "error"
            result["reasons"].append("nbgrader autograde failed: " + _last_error(res))
            return result
        if task.options.get("feedback", True):
            fb = generate_feedback(api, task.assignment, task.learner)
            if not fb["success"]:
                result["reasons"].append("feedback could not be made: " + _last_error(fb))
        with Gradebook(f"sqlite:///{db}", course_id()) as gb:
            for nb_id in valid:
                entry = result["notebooks"][nb_id]
                try:
                    snb = gb.find_submission_notebook(nb_id, task.assignment, task.learner)
                except MissingEntry:
                    continue
                entry["late_penalty"] = snb.late_submission_penalty
                for g in snb.grades:
                    entry["grades"][g.name] = {"auto_score": g.auto_score,
                                               "max_score": float(g.max_score),
                                               "needs_manual_grade": g.needs_manual_grade}
                entry["comments"] = {c.name: c.auto_comment for c in snb.comments}
        for nb_id in valid:
            entry = result["notebooks"][nb_id]
            graded = course / "autograded" / task.learner / task.assignment / f"{nb_id}.ipynb"
            if graded.exists():
                entry["autograded"] = graded.read_text()
                # again on the graded notebook, where "locked" is the gradebook's word
                result["flags"] += [f for f in suspicious(nbformat.reads(
                    entry["autograded"], as_version=4)) if f not in result["flags"]]
                meta = json.loads(entry["autograded"]).get("metadata", {}).get("autograder", {})
                result["reasons"] += [f"{nb_id}: {p}" for p in meta.get("problems", [])]
                result["reasons"] += [f"{nb_id}: {p}" for p in meta.get("cells", [])]
                if meta.get("sandbox"):  # what the kernel ran in (jail.py)
                    result["sandbox"] = meta["sandbox"]
                if meta.get("problems"):
                    result["status"] = "partial"
            html = course / "feedback" / task.learner / task.assignment / f"{nb_id}.html"
            if html.exists():
                entry["feedback"] = html.read_text()
        if len(valid) < len(cells):
            result["status"] = "partial"
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_WARM: dict = {}  # what _warm_up prepared in the worker, inherited by every forked child


def generate_feedback(api, assignment: str, learner: str) -> dict:
    """nbgrader generate_feedback for one learner, as NbGraderAPI.generate_feedback runs it,
    but rendering with the worker's exporter, whose templates are already compiled."""
    from nbconvert.writers import FilesWriter
    from nbgrader.converters import GenerateFeedback
    from nbgrader.utils import capture_log, temp_attrs
    from traitlets.config import Config

    class WarmGenerateFeedback(GenerateFeedback):
        def start(self):  # BaseConverter.start, with the prepared exporter
            exporter = _WARM.get("exporter")
            if exporter is None:
                return super().start()
            self.init_notebooks()
            self.writer = FilesWriter(parent=self, config=self.config)
            exporter._preprocessors = []
            self.exporter = exporter
            for pp in self.preprocessors:
                self.exporter.register_preprocessor(pp)
            here = os.getcwd()
            os.chdir(self.coursedir.root)
            try:
                self.convert_notebooks()
            finally:
                os.chdir(here)

    c = Config()
    c.HTMLExporter.template_name = "feedback"
    with temp_attrs(api.coursedir, assignment_id=assignment, student_id=learner):
        app = WarmGenerateFeedback(coursedir=api.coursedir, parent=api)
        app.update_config(c)
        app.force = True
        return capture_log(app)


def _last_error(res: dict) -> str:
    text = (res.get("error") or "") + "\n" + (res.get("log") or "")
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    errors = [l for l in lines if "ERROR" in l or "Error" in l]
    return (errors[-1] if errors else (lines[-1] if lines else "unknown error"))[:300]


def _failed(task: Task, status: str, reason: str, seconds: float) -> dict:
    return {"learner": task.learner, "assignment": task.assignment, "status": status,
            "reasons": list(task.notes) + [reason], "flags": [], "timestamp": task.timestamp,
            "digest": task.digest, "notebooks": {
                nb_id: {"submitted": data, "autograded": None, "feedback": None,
                        "grades": None, "comments": {}, "late_penalty": None}
                for nb_id, data in task.notebooks.items()}, "seconds": seconds}


def grade_task(task: Task) -> dict:
    """Grade one learner; always returns a result, whatever the submission does.

    The work runs in a forked child in a session of its own. On the deadline the whole
    session is killed; the grading kernel, started by the child with a parent-death
    signal, goes with it. So does it when the worker stops (:func:`_stop_children`).
    """
    t0 = time.monotonic()
    # The scratch course lives in the batch's work folder (hidden from every kernel) and is
    # removed here, by the parent, however the child ends.
    base = task.options.get("scratch_base") or None
    if base:
        os.makedirs(base, exist_ok=True)
    task.options = {**task.options, "scratch": tempfile.mkdtemp(prefix="grade-", dir=base)}
    try:
        return _fork_and_grade(task, t0)
    finally:
        shutil.rmtree(task.options["scratch"], ignore_errors=True)


_CHILDREN: dict[int, str] = {}  # grading children running in this process -> scratch folder
PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> None:
    """Have Linux send sig to this process when its parent ends."""
    if sys.platform.startswith("linux"):
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def _kill_tree(pid: int) -> None:
    """SIGKILL pid's session and every process below pid, each stopped first so that none
    forks away. Below are the kernels' bwrap: a sandbox caught while bwrap still sets it up
    would miss its parent-death signal, so it is killed here by name, not by inheritance;
    a jailed kernel is PID 1 of its namespace: whatever runs inside goes with it."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            os.kill(p, signal.SIGSTOP)
        except (ProcessLookupError, PermissionError):
            continue
        found.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            tasks = []
        for tid in tasks:  # a child belongs to the thread that started it
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split() if int(c) not in found]
            except (OSError, ValueError):
                pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for p in found:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _stop_children() -> None:
    """Kill every grading child of this process with all it started (kernels and their
    jails included), wait for them, and remove their scratch folders."""
    for pid, scratch in list(_CHILDREN.items()):
        _kill_tree(pid)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        shutil.rmtree(scratch, ignore_errors=True)
        _CHILDREN.pop(pid, None)


def _stop_worker(signum, frame) -> None:
    """SIGTERM in a worker: the batch is stopping. Its grading child goes, then it ends."""
    _stop_children()
    os._exit(128 + signum)


def _fork_and_grade(task: Task, t0: float) -> dict:
    rfd, wfd = os.pipe()
    worker = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        status = 0
        try:
            os.close(rfd)
            os.setsid()
            _die_with_parent(signal.SIGKILL)
            if os.getppid() != worker:  # the worker was stopped while forking
                os._exit(1)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            try:
                result = _grade_in_child(task)
            except BaseException:
                result = _failed(task, "error", "the grader failed: " +
                                 traceback.format_exc().strip().splitlines()[-1], 0)
            result["seconds"] = time.monotonic() - t0
            data = pickle.dumps(result)
            view = memoryview(data)
            while view:
                n = os.write(wfd, view)
                view = view[n:]
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(wfd)
    _CHILDREN[pid] = task.options["scratch"]
    chunks, deadline, timed_out = [], t0 + float(task.options.get("timeout") or 900), False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([rfd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(rfd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(rfd)
    if timed_out:
        _kill_tree(pid)
    _, status = os.waitpid(pid, 0)
    _CHILDREN.pop(pid, None)
    seconds = time.monotonic() - t0
    if timed_out:
        return _failed(task, "timeout", f"grading took longer than {task.options.get('timeout')}"
                       " s (an infinite loop that ignores interrupts?) and was stopped", seconds)
    try:
        return pickle.loads(b"".join(chunks))
    except Exception:
        why = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exit status {os.WEXITSTATUS(status)}")
        return _failed(task, "error", f"the grading process died ({why})", seconds)


def _warm_up() -> None:
    """Pool initializer: do once, before the forks, what every child would do first.

    Imports, SQLAlchemy's mapper set-up, nbformat's schema, and a feedback page rendered
    once (pygments, the templates, markdown): each child then starts with all of that
    already in memory instead of paying for it again.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, _stop_worker)   # and stops the workers with SIGTERM
    _die_with_parent(signal.SIGTERM)
    import nbformat
    from nbconvert.exporters import HTMLExporter
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
    from nbgrader.apps import NbGraderAPI  # noqa: F401
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory

    from . import notebooks  # noqa: F401
    from . import jail
    jail.status(os.environ.get("AUTOGRADER_BWRAP", "bwrap"))  # probed here, not in each child
    cfg = course_config()
    try:
        from nbgrader.api import Gradebook
        with Gradebook("sqlite://"):  # SQLAlchemy's mappers, configured once
            pass
        grade = {"grade": True, "solution": False, "locked": True, "grade_id": "t",
                 "points": 1, "score": 1, "comment": "", "schema_version": 3}
        nb = new_notebook(cells=[
            new_markdown_cell("# Title\n\nSome *text* and $x^2$."),
            new_code_cell("import numpy as np\nprint(np.ones(2))", metadata={"nbgrader": grade},
                          outputs=[new_output("stream", name="stdout", text="[1. 1.]\n"),
                                   new_output("error", ename="AssertionError", evalue="x",
                                              traceback=["\x1b[0;31mAssertionError\x1b[0m: x"])])])
        nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3",
                                  "language": "python"}
        nbformat.validate(nb)
        from traitlets.config import Config
        c = Config()
        c.HTMLExporter.template_name = "feedback"
        gf = GenerateFeedback(coursedir=CourseDirectory(config=cfg), config=cfg)
        gf.update_config(c)
        exporter = HTMLExporter(parent=gf, config=gf.config)
        exporter.from_notebook_node(nb, resources={"nbgrader": {
            "score": 1, "max_score": 1, "late_penalty": 0, "notebook": "n", "assignment": "a",
            "student": "s"}})
        _WARM["exporter"] = exporter  # templates compiled: the children render with it
    except Exception:  # warming up is only an optimisation
        pass


# --- the parent: merge, files, csv --------------------------------------------------------------

def _write(path: Path, data: bytes | str | None) -> None:
    if data is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.chmod(path, 0o644)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


def ensure_output_course(out: Path, assignment: str, tmpl: Path) -> str:
    """The output folder as an nbgrader course whose gradebook knows the assignment."""
    out.mkdir(parents=True, exist_ok=True)
    cfg_file = out / "nbgrader_config.py"
    if not cfg_file.exists():
        cfg_file.write_text(
            "# nbgrader configuration of this grading output (written by python -m autograder):\n"
            "# the course's settings, with this folder as the course root. Run nbgrader's own\n"
            "# commands here: nbgrader formgrader, nbgrader export, nbgrader generate_feedback.\n"
            "from pathlib import Path\n"
            f"load_subconfig({str(ROOT / 'autograder' / 'nbgrader_config.py')!r})  # noqa: F821\n"
            "c = get_config()  # noqa: F821\n"
            "HERE = Path(__file__).resolve().parent\n"
            "c.CourseDirectory.root = str(HERE)\n"
            f"c.CourseDirectory.source_directory = {str(source_dir())!r}\n"
            "c.CourseDirectory.release_directory = 'release'\n"
            "c.CourseDirectory.db_url = f\"sqlite:///{HERE / 'gradebook.db'}\"\n"
            "# nbgrader export writes here, not over our grades.csv\n"
            "c.ExportPlugin.to = 'nbgrader_export.csv'\n")
    db = out / "gradebook.db"
    url = f"sqlite:///{db}"
    if not db.exists():
        shutil.copyfile(tmpl / "gradebook.db", db)
        return url
    from nbgrader.api import Gradebook, MissingEntry
    with Gradebook(url, course_id()) as gb, \
            Gradebook(f"sqlite:///{tmpl / 'gradebook.db'}", course_id()) as tg:
        want = {(nb.name, c.name, c.checksum) for nb in tg.find_assignment(assignment).notebooks
                for c in nb.source_cells}
        try:
            have = {(nb.name, c.name, c.checksum)
                    for nb in gb.find_assignment(assignment).notebooks for c in nb.source_cells}
        except MissingEntry:
            have = set()
    if want != have:  # nbgrader's own bookkeeping brings the gradebook up to date
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        cfg = course_config()
        cfg.CourseDirectory.root = str(out)
        cfg.CourseDirectory.source_directory = str(source_dir())
        cfg.CourseDirectory.release_directory = "release"
        cfg.CourseDirectory.db_url = url
        api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
        res = api.generate_assignment(assignment, force=True, create=True)
        if not res["success"]:
            raise SystemExit(f"the gradebook {db} holds another version of {assignment} with "
                             "submissions graded against it; grade into a new --out folder.\n"
                             + _last_error(res))
    return url


def merge(url: str, out: Path, result: dict, cells: dict) -> dict:
    """Write one learner's result into the gradebook and the course folders; its csv row."""
    from nbgrader.api import Gradebook
    learner, assignment = result["learner"], result["assignment"]
    for nb_id, entry in result["notebooks"].items():
        base = Path(learner) / assignment
        _write(out / "submitted" / base / f"{nb_id}.ipynb", entry.get("submitted"))
        _write(out / "autograded" / base / f"{nb_id}.ipynb", entry.get("autograded"))
        _write(out / "feedback" / base / f"{nb_id}.html", entry.get("feedback"))
    if result.get("timestamp"):
        _write(out / "submitted" / learner / assignment / "timestamp.txt", result["timestamp"])
    row = {"learner": learner, "assignment": assignment}
    total = max_total = 0.0
    flagged = result["status"] != "graded" or bool(result.get("flags"))
    with Gradebook(url, course_id()) as gb, warnings.catch_warnings():
        # nbgrader 0.9's models make SQLAlchemy 2 warn about autoflush; harmless
        warnings.simplefilter("ignore")
        gb.update_or_create_student(learner)
        ts = result.get("timestamp")
        kwargs = {}
        if ts:
            try:
                from nbgrader.utils import parse_utc
                kwargs["timestamp"] = parse_utc(ts)
            except Exception:
                pass
        gb.update_or_create_submission(assignment, learner, **kwargs)
        for nb_id, grades in cells.items():
            entry = result["notebooks"].get(nb_id) or {}
            got = entry.get("grades") or _zero_grades(cells)[nb_id]
            snb = gb.find_submission_notebook(nb_id, assignment, learner)
            snb.flagged = flagged
            snb.late_submission_penalty = entry.get("late_penalty")
            for grade in snb.grades:
                g = got.get(grade.name) or {"auto_score": 0.0, "needs_manual_grade": False}
                grade.auto_score = g["auto_score"]
                grade.needs_manual_grade = bool(g["needs_manual_grade"]) or (
                    grade.manual_score is not None)
                score = grade.manual_score if grade.manual_score is not None else grade.auto_score
                row[grade.name] = score
                total += score or 0.0
                max_total += float(grade.max_score)
            for comment in snb.comments:
                if comment.name in (entry.get("comments") or {}):
                    comment.auto_comment = entry["comments"][comment.name]
            total -= entry.get("late_penalty") or 0.0
        gb.db.commit()
    reasons = list(dict.fromkeys(result.get("reasons", [])))
    if result.get("flags"):
        reasons.append("flagged for review: " + ", ".join(result["flags"]))
    row.update(score=round(total, 6), max_score=max_total, status=result["status"],
               reason="; ".join(reasons), seconds=round(result.get("seconds", 0.0), 1),
               digest=result.get("digest", ""),
               sandbox=result.get("sandbox") or sandbox_status())
    return row


def sandbox_status() -> str:
    """What grading kernels run in here: "bwrap", or "none (why not)" (jail.py)."""
    from . import jail
    return jail.status(os.environ.get("AUTOGRADER_BWRAP", "bwrap"))[1]


def write_csv(out: Path, state: Path) -> Path:
    rows, columns = [], []
    for rec in sorted((state / "records").glob("*/*.json")):
        row = json.loads(rec.read_text())
        rows.append(row)
        for key in row.get("_columns", []):
            if key not in columns:
                columns.append(key)
    rows.sort(key=lambda r: (r["assignment"], r["learner"]))
    path = out / "grades.csv"
    fields = ["learner", "student_id", "assignment", "score", "max_score", *columns, "status",
              "reason", "sandbox"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow(row)
    return path


def _digest(notebooks: dict[str, bytes | None]) -> str:
    h = hashlib.sha256()
    for k in sorted(notebooks):
        h.update(k.encode())
        h.update(notebooks[k] or b"<none>")
    return h.hexdigest()[:16]


def run(submissions: Path, opts: Options, executor: cf.Executor | None = None) -> int:
    """Grade every learner found in submissions; returns how many the grader itself failed
    on (status "error"); learners whose work could not be graded are not counted."""
    t_start = time.monotonic()
    out = opts.out.resolve()
    state = out / STATE
    state.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if opts.quiet else (lambda *a: print(*a, flush=True))

    import nbgrader.apps.api  # noqa: F401  (before the workers fork: they inherit it)
    sandbox = sandbox_status()
    if sandbox != "bwrap":
        say(f"WARNING: grading kernels are NOT sandboxed here: {sandbox}. Learner code "
            "can read and write what this user can; install bubblewrap (bwrap).")
    own = executor is None
    stopped = False
    with _StopOnSignals():
        try:
            if own:  # the workers warm up while the template is made
                executor = cf.ProcessPoolExecutor(max_workers=max(1, opts.jobs),
                                                  initializer=_warm_up)
                for _ in range(max(1, opts.jobs)):
                    executor.submit(int)
            return _run(submissions, opts, executor, out, state, say, t_start)
        except _Stopped as stop:
            stopped = True
            _stop_workers(executor)
            name = signal.Signals(stop.signum).name
            say(f"\nstopped by {name}: grading processes and kernels ended, temporary "
                "folders removed. Run the same command again to go on: learners already "
                "graded are skipped.")
            raise SystemExit(128 + stop.signum) from None
        finally:
            if own and executor is not None:
                executor.shutdown(wait=not stopped, cancel_futures=True)


class _Stopped(BaseException):
    """SIGTERM or SIGINT reached the batch (raised in the main thread)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _StopOnSignals:
    """While active, SIGTERM and SIGINT (Ctrl-C) raise :class:`_Stopped` in the main thread;
    once one arrived, more of them are ignored while the batch cleans up."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __enter__(self):
        self.old, self.fired = {}, False
        try:
            for sig in self.SIGNALS:
                self.old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            pass
        return self

    def _handle(self, signum, frame):
        if self.fired:
            return
        self.fired = True
        raise _Stopped(signum)

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        return False


def _stop_workers(executor) -> None:
    """End the workers (each kills its grading child, the kernel with it, and removes the
    child's scratch folder) within a few seconds, and any grading child of this process."""
    procs = list((getattr(executor, "_processes", None) or {}).values())
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except (ProcessLookupError, TypeError):
            pass
    deadline = time.monotonic() + 4.0
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(1.0)
    _stop_children()  # a thread executor's children are this process's own


def _run(submissions, opts, executor, out, state, say, t_start) -> int:
    from tqdm import tqdm

    from .collect import CollectError, collect, open_submissions
    tmpl = make_template(opts.assignment, state)
    cells = assignment_cells(tmpl / "gradebook.db", opts.assignment)
    url = ensure_output_course(out, opts.assignment, tmpl)

    work = Path(tempfile.mkdtemp(prefix="autograder-batch-"))
    kernels = Path(tempfile.mkdtemp(prefix="autograder-kernels-"))  # not hidden: kernels live here
    try:
        try:
            opened = open_submissions(submissions.resolve(), work / "collect")
            found, unmatched = collect(opened, list(cells), opts.regexp)
        except CollectError as exc:  # SUBMISSIONS itself: nothing to grade, say why
            print(f"python -m autograder grade: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        for note in unmatched:
            say(f"warning: {note}")
        hide = sorted({str(out), str(source_dir()), str(submissions.resolve()), str(work),
                       str(ROOT / "gradebook.db"), str(ROOT / "submitted"),
                       str(ROOT / "autograded"), str(ROOT / "feedback")})
        options = {"scratch_base": str(work / "scratch"), "cells": cells,
                   "kernel_dir": str(kernels),
                   "timeout": opts.timeout, "cell_timeout": opts.cell_timeout,
                   "memory_mb": opts.memory_mb, "isolate_network": opts.isolate_network,
                   "feedback": opts.feedback}
        tasks, skipped = [], 0
        records = state / "records" / opts.assignment
        records.mkdir(parents=True, exist_ok=True)
        # Task.learner is the learner's nbgrader id (collect.student_id: safe in paths, globs
        # and the gradebook); grades.csv shows the name as handed in (names[id]).
        names, refused = {}, []
        for learner, entry in sorted(found.items()):
            sid = entry.folder
            names[sid] = learner
            notebooks = entry.read(list(cells))      # None: not handed in, or refused
            digest = _digest(notebooks)
            task = Task(sid, opts.assignment, notebooks, entry.timestamp, str(tmpl), hide,
                        options, entry.notes, digest)
            if entry.refused(notebooks):  # all it handed in was refused: no kernel needed
                row = merge(url, out, _failed(task, "invalid", "nothing that could be graded "
                                              "was handed in", 0.0), cells)
                row.update(learner=learner, student_id=sid,
                           _columns=[gid for nb in cells.values() for gid, _ in nb])
                (records / f"{sid}.json").write_text(json.dumps(row, indent=1))
                refused.append((learner, row["status"], row["reason"]))
                continue
            rec = records / f"{sid}.json"
            if rec.exists() and not opts.force:
                try:
                    if json.loads(rec.read_text()).get("digest") == digest:
                        skipped += 1
                        continue
                except ValueError:
                    pass
            tasks.append(task)
        opened.close()  # every notebook has been read
        say(f"{opts.assignment}: {len(found)} learners found, {len(tasks)} to grade"
            + (f", {skipped} already graded (--force grades them again)" if skipped else "")
            + f"; {opts.jobs} worker{'s' if opts.jobs != 1 else ''}")

        columns = [gid for nb in cells.values() for gid, _ in nb]
        failed: list[tuple[str, str, str]] = refused
        graded = 0
        futures = {executor.submit(grade_task, t): t for t in tasks}
        bar = tqdm(total=len(futures), unit="learner", disable=opts.quiet or not futures,
                   desc=f"grading {opts.assignment}", file=sys.stderr)
        for fut in cf.as_completed(futures):
            task = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # the executor itself failed for this one
                result = _failed(task, "error", f"the worker failed: {exc!r}", 0.0)
            row = merge(url, out, result, cells)
            row.update(learner=names.get(task.learner, task.learner), student_id=task.learner)
            row["_columns"] = columns
            (records / f"{task.learner}.json").write_text(json.dumps(row, indent=1))
            if row["status"] == "graded":
                graded += 1
            else:
                failed.append((row["learner"], row["status"], row["reason"]))
            bar.set_postfix_str(f"{task.learner} {row['score']:g}/{row['max_score']:g}")
            bar.update()
        bar.close()
        csv_path = write_csv(out, state)
    except _Stopped:  # the workers go first: nothing is writing in these folders after
        _stop_workers(executor)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(kernels, ignore_errors=True)

    elapsed = time.monotonic() - t_start
    say(f"\n{opts.assignment}: graded {graded}, with problems {len(failed)}, skipped {skipped}, "
        f"in {elapsed:.1f} s ({elapsed / max(1, len(tasks)):.1f} s per learner)")
    for learner, status, reason in failed:
        say(f"  {learner}: {status}: {reason}")
    say(f"grades: {csv_path}\ngradebook: {out / 'gradebook.db'} "
        f"(cd {out} && nbgrader formgrader / nbgrader export)")
    unjailed = _unsandboxed(state / "records" / opts.assignment)
    if unjailed:
        say(f"WARNING: {sum(unjailed.values())} learner(s) graded WITHOUT a sandbox: "
            + "; ".join(f"{why}: {n}" for why, n in unjailed.items())
            + " (the sandbox column of grades.csv)")
    return sum(1 for _, status, _ in failed if status == "error")


def _unsandboxed(records: Path) -> dict[str, int]:
    """How many recorded learners were graded by kernels without the jail, by reason."""
    counts: dict[str, int] = {}
    for rec in records.glob("*.json"):
        try:
            why = json.loads(rec.read_text()).get("sandbox")
        except ValueError:
            continue
        if why and why != "bwrap":
            counts[why] = counts.get(why, 0) + 1
    return counts
