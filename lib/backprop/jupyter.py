"""JupyterLab set up for the course: ``python -m backprop.jupyter [--instructor]``.

Learner mode (the default), as on Binder: nbgrader's **Validate** button stays; its
Formgrader, course list, assignment list and Create Assignment panels and its menu are
switched off (an instructor's tools, confusing for a learner). ``--instructor`` switches
them back on. Either way a notebook you open and close untouched does not ask
"Save changes?":

JupyterLab writes the running kernel's ``kernelspec.display_name`` and ``language_info``
(which includes the exact Python version, e.g. 3.11.7) into the notebook's metadata when
the kernel starts; the course's notebooks cannot store every machine's Python version, so
opening one changed it. :class:`CourseContentsManager` fills in those two entries when the
server reads a notebook, with the values the kernel is about to report, so nothing changes
on open.

The settings go into the current environment (``sys.prefix``, the virtual environment),
or into ``--prefix``: ``etc/jupyter/labconfig/page_config.json`` (the file
``jupyter labextension disable --level=sys_prefix`` writes) and
``etc/jupyter/jupyter_server_config.json`` (as ``jupyter server extension disable
--sys-prefix`` does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

INSTRUCTOR_PLUGINS = tuple(
    f"@jupyter/nbgrader:{p}"
    for p in ("formgrader", "course-list", "assignment-list", "create-assignment", "menu")
)
INSTRUCTOR_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
    "nbgrader.server_extensions.assignment_list",
)
VALIDATE = "nbgrader.server_extensions.validate_assignment"


def kernel_metadata(kernel_name: str) -> dict[str, Any] | None:
    """What JupyterLab will write for a kernel: kernelspec and language_info, or None."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except Exception:
        return None
    meta: dict[str, Any] = {
        "kernelspec": {
            "display_name": spec.display_name,
            "language": spec.language,
            "name": kernel_name,
        }
    }
    if spec.language == "python" and "ipykernel" in " ".join(spec.argv):
        from ipykernel.ipkernel import IPythonKernel  # the kernel runs this interpreter's

        meta["language_info"] = dict(IPythonKernel.language_info)
    return meta


class CourseContentsManager(AsyncLargeFileManager):
    """Jupyter's file contents manager, handing out notebooks with the running kernel's
    ``kernelspec`` and ``language_info`` already in place (see the module's docstring)."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if content and model.get("type") == "notebook" and model.get("content") is not None:
            meta = model["content"].metadata
            name = meta.get("kernelspec", {}).get("name")
            found = kernel_metadata(name) if name else None
            if found:
                meta.update(found)
        return model


def _write_json(path: Path, update: dict[str, Any]) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    for key, value in update.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def configure(prefix: Path, instructor: bool = False) -> list[Path]:
    """Write the settings into prefix/etc/jupyter; returns the files written."""
    etc = prefix / "etc" / "jupyter"
    # the files `jupyter labextension disable --level=sys_prefix` and `jupyter server
    # extension disable --sys-prefix` write (the latter takes precedence over the .d files)
    page, server = etc / "labconfig" / "page_config.json", etc / "jupyter_server_config.json"
    off = not instructor
    _write_json(
        page,
        {
            "disabledExtensions": {p: off for p in INSTRUCTOR_PLUGINS},
            "lockedExtensions": {p: off for p in INSTRUCTOR_PLUGINS},
        },
    )
    _write_json(
        server,
        {
            "ServerApp": {
                "contents_manager_class": "backprop.jupyter.CourseContentsManager",
                "jpserver_extensions": {
                    **{e: instructor for e in INSTRUCTOR_SERVER_EXTENSIONS},
                    VALIDATE: True,
                },
            }
        },
    )
    return [page, server]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backprop.jupyter",
        description=(
            "Set JupyterLab up for the course: learners get nbgrader's Validate button only; "
            "--instructor brings back the formgrader and the Create Assignment panel."
        ),
    )
    parser.add_argument(
        "--instructor", action="store_true", help="switch nbgrader's instructor tools back on"
    )
    parser.add_argument(
        "--prefix",
        type=Path,
        default=Path(sys.prefix),
        help="the environment to configure (default: this one, %(default)s)",
    )
    args = parser.parse_args(argv)
    for path in configure(args.prefix, args.instructor):
        print(f"wrote {path}")
    mode = "instructor" if args.instructor else "learner"
    print(
        f"JupyterLab is in {mode} mode for this environment. "
        + (
            "`python -m backprop.jupyter` switches the instructor tools off again."
            if args.instructor
            else "Instructors: `python -m backprop.jupyter --instructor` switches nbgrader's "
            "formgrader and Create Assignment back on."
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
