"""A copy of the ``backprop`` package with the exercise's reference implementation taken out.

While a learner's notebook is graded, the kernel must not be able to import, read or run
backprop's own version of what the learner is asked to build (``MulLayer`` in the first
notebook, ``Affine`` in the fourth...). The grader builds a copy of the package in which
every top-level function or class that (a) is named in the set of names the exercise is
about and (b) the package exports (``backprop.__all__``) keeps its signature and docstring
but has its body, every method of a class, replaced by::

    raise RuntimeError("not available while grading: write your own")

A named class's base classes defined in the package are emptied too (in their own modules),
so a learner's subclass of the reference cannot inherit the answers from a shared base:
``TwoLayerNet``'s ``predict`` and ``loss`` are those of ``backprop.network.LayerStack``. Only
the classes the exercise names and their bases are touched: a base's other subclasses (notebook
8's ``MultiLayerNet``) stop working only while an exercise that names a sibling is graded.

Everything else is copied unchanged, so ``import backprop`` and ``import backprop.checks``
work as before: module-level code may still name the redacted classes, it just cannot
run them. The jail (jail.py) mounts the copy read-only over the real package; without a
jail the copy is put first on the kernel's ``PYTHONPATH``.

Copies are cached by the names and the package's contents under a folder the caller
chooses (``python -m autograder grade``: one per batch), built in a temporary folder and
renamed into place, so parallel graders never see half a copy.
"""

from __future__ import annotations

import ast
import compileall
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MESSAGE = "not available while grading: write your own"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".ipynb_checkpoints")


def exported_names(package: Path) -> set[str]:
    """The names the package exports: its ``__all__``, else what its __init__ imports."""
    init = Path(package) / "__init__.py"
    try:
        tree = ast.parse(init.read_text())
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    found_all = False
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, (ast.AnnAssign, ast.AugAssign))
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value:
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            found_all = True
            names |= {v for v in value if isinstance(v, str)}
    if found_all:
        return names
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names if a.name != "*"}
    return names


def _raise() -> ast.stmt:
    return ast.Raise(
        exc=ast.Call(
            func=ast.Name("RuntimeError", ast.Load()), args=[ast.Constant(MESSAGE)], keywords=[]
        ),
        cause=None,
    )


def _docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return [first]
    return []


def _empty_function(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    fn.body = _docstring(fn.body) + [_raise()]


def _empty_class(cls: ast.ClassDef) -> None:
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _empty_function(node)
        elif isinstance(node, ast.ClassDef):
            _empty_class(node)
    # a class without methods of its own (a subclass, a dataclass) cannot even be made
    if not any(
        isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "__init__"
        for n in cls.body
    ):
        init = ast.parse("def __init__(self, *args, **kwargs):\n    pass").body[0]
        _empty_function(init)
        cls.body.append(init)


def redact_source(source: str, names: set[str]) -> str | None:
    """The module's source with the named top-level functions and classes emptied, or None
    when nothing in it is named (or it is not valid Python: then it is copied as it is)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    changed = False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            _empty_function(node)
            changed = True
        elif isinstance(node, ast.ClassDef) and node.name in names:
            _empty_class(node)
            changed = True
    if not changed:
        return None
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


@dataclass
class _Module:
    """What one module of the package defines and imports, as far as base classes need
    (``from ... import`` only: a base reached through ``import backprop.x`` is not followed)."""

    classes: dict[str, list[ast.expr]] = field(default_factory=dict)  # name -> its bases
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, name)
    modules: dict[str, str] = field(default_factory=dict)  # name -> a module of the package


def _module_name(package: Path, py: Path) -> str:
    """The dotted name of py inside package: "network", "widgets.common", "" for __init__."""
    parts = py.relative_to(package).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _source_module(package: Path, module: str, py: Path, node: ast.ImportFrom) -> str | None:
    """The package-relative module a ``from ... import`` reads from; None if outside."""
    if node.level == 0:
        name = node.module or ""
        if name != package.name and not name.startswith(package.name + "."):
            return None
        return name[len(package.name) + 1 :]
    parts = module.split(".") if module else []
    if py.name != "__init__.py":
        parts = parts[:-1]  # a module's imports are relative to the package it is in
    if node.level - 1 > len(parts):
        return None
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _index(package: Path) -> dict[str, _Module]:
    """Every module of the package (valid Python only): its classes and its imports."""
    index: dict[str, _Module] = {}
    for py in sorted(package.rglob("*.py")):
        try:
            tree = ast.parse(py.read_text())
        except (OSError, SyntaxError, ValueError):
            continue
        name = _module_name(package, py)
        mod = index[name] = _Module()
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                mod.classes[node.name] = node.bases
            elif isinstance(node, ast.ImportFrom):
                source = _source_module(package, name, py, node)
                for alias in node.names if source is not None else ():
                    local = alias.asname or alias.name
                    mod.imported[local] = (source, alias.name)
                    mod.modules[local] = ".".join(filter(None, (source, alias.name)))
    return index


def _resolve(index: dict[str, _Module], module: str, base: ast.expr) -> tuple[str, str] | None:
    """The package's class a base expression of a class in module names, as (module, name);
    None for anything else (``object``, another library's class, a computed base)."""
    if isinstance(base, ast.Name):
        name = base.id
    elif (
        isinstance(base, ast.Attribute)
        and isinstance(base.value, ast.Name)
        and base.value.id in index[module].modules
    ):  # network.LayerStack
        module, name = index[module].modules[base.value.id], base.attr
    else:
        return None
    for _ in range(len(index) + 1):  # follow re-exports (``from .network import ...``)
        mod = index.get(module)
        if mod is None:
            return None
        if name in mod.classes:
            return module, name
        if name not in mod.imported:
            return None
        module, name = mod.imported[name]
    return None


def inherited_bases(package: Path, names: set[str]) -> dict[str, set[str]]:
    """The package's base classes of its top-level classes named in names, transitively:
    module name ("network") -> the names of those classes defined there (``LayerStack``)."""
    index = _index(Path(package))
    todo = [(m, n) for m, mod in index.items() for n in mod.classes if n in names]
    found: dict[str, set[str]] = {}
    while todo:
        module, name = todo.pop()
        for base in index[module].classes[name]:
            owner = _resolve(index, module, base)
            if owner is not None and owner[1] not in found.setdefault(owner[0], set()):
                found[owner[0]].add(owner[1])
                todo.append(owner)
    return found


def _tree_digest(package: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(package.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"):
            h.update(str(p.relative_to(package)).encode() + b"\0")
            h.update(p.read_bytes())
    return h.hexdigest()


def redacted_package(package: Path, names, cache: Path) -> Path | None:
    """A redacted copy of package (a folder) for these names, under cache; None when the
    package exports none of them (nothing to take out: the real package will do)."""
    package = Path(package)
    targets = set(names) & exported_names(package)
    if not targets:
        return None
    key = hashlib.sha256((_tree_digest(package) + "\0" + "\0".join(sorted(targets))).encode())
    final = Path(cache) / f"redacted-{key.hexdigest()[:16]}"
    copy = final / package.name
    if (final / "ready").exists():
        return copy
    Path(cache).mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".redacting-", dir=cache))
    try:
        shutil.copytree(package, build / package.name, ignore=_IGNORE)
        bases = inherited_bases(build / package.name, targets)
        for py in (build / package.name).rglob("*.py"):
            here = bases.get(_module_name(build / package.name, py), set())
            new = redact_source(py.read_text(), targets | here)
            if new is not None:
                stat = py.stat()
                py.write_text(new)
                os.utime(py, (stat.st_atime, stat.st_mtime + 1))
        # compiled here once: the kernel sees the copy read-only and could not cache it
        compileall.compile_dir(str(build / package.name), quiet=2)
        for p in build.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        (build / "ready").write_text(" ".join(sorted(targets)) + "\n")
        os.chmod(build, 0o755)
        try:
            os.rename(build, final)
        except OSError:  # another grader made the same copy first: use that one
            if not (final / "ready").exists():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return copy
