"""Hostile and broken submissions: each learner's file and what grading it must give
(the grader's tests, local and on a Dask cluster, share them)."""

from __future__ import annotations

import copy
import json

import nbformat
from helpers import REPO
from submissions import dumps, filled

from autograder.template import solution_sources

SOLUTIONS = REPO / "solutions"


def hostile_cases(assignment: str, release) -> dict[str, tuple[bytes, str]]:
    """learner -> (file contents, expectation). Expectations:
    'full': full marks; 'zeros': the same score as the learner 'control_zeros' (a wrong
    answer), the hostile part earning nothing; 'nothing': 0 points; 'timeout'."""
    cls = {"04_affine_layer": "Affine", "01_computational_graphs": "MulLayer"}[assignment]
    answers = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution")]
    sol = next(c.metadata.nbgrader["grade_id"] for c in answers if f"class {cls}" in c.source)
    # the assignment's other answer cells stay unanswered where a case replaces this one
    others = {
        c.metadata.nbgrader["grade_id"]: c.source
        for c in answers
        if c.metadata.nbgrader["grade_id"] != sol
    }
    mod = {"04_affine_layer": "affine", "01_computational_graphs": "nodes"}[assignment]
    # the control: forward right, backward all zeros (the gradient checks fail)
    if assignment == "04_affine_layer":
        zeros = """class Affine:
    def __init__(self, W, b):
        self.W, self.b, self.dW, self.db = W, b, None, None
    def forward(self, x):
        self.x = x
        return x.reshape(x.shape[0], -1) @ self.W + self.b
    def backward(self, dout):
        self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)
        return np.zeros_like(self.x)
"""
    else:
        zeros = """class MulLayer:
    def forward(self, x, y):
        return x * y
    def backward(self, dout):
        return 0 * dout, 0 * dout
"""
    ref = solution_sources(assignment)[sol]
    cases: dict[str, tuple[bytes, str]] = {}

    def add(name, nb_or_bytes, expect):
        data = nb_or_bytes if isinstance(nb_or_bytes, bytes) else dumps(nb_or_bytes)
        cases[name] = (data, expect)

    add("control_zeros", filled(release, assignment, {**others, sol: zeros}), "control")
    add("invalid_json", b'{"cells": [ {"cell_type": "code", oops', "nothing")
    add("empty_file", b"", "nothing")
    add(
        "nbformat_5",
        json.dumps({"nbformat": 5, "nbformat_minor": 0, "cells": [], "metadata": {}}).encode(),
        "nothing",
    )
    # An nbformat 3 notebook (an old Jupyter) with the right answers: converted, full marks.
    v3 = nbformat.convert(filled(release, assignment), 3)
    add("nbformat_3", nbformat.writes(v3, version=3).encode(), "full")
    # Test cells (and the setup cell) deleted, answers right: everything put back, full marks.
    nb = filled(release, assignment)
    nb.cells = [
        c
        for c in nb.cells
        if not (
            c.metadata.get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")
        )
        and "import numpy" not in c.source
    ]
    add("deleted_tests", nb, "full")
    # Test cells emptied and given 100 points, 'grade' switched off, answer wrong: nothing gained.
    nb = filled(release, assignment, {**others, sol: zeros})
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            c.source = "print('all tests passed')"
            meta.update(points=100, locked=False)
            if meta["grade_id"].endswith(("forward", "dx")):
                meta["grade"] = False
    add("edited_tests", nb, "zeros")
    # Duplicated cells, right answers: full marks.
    nb = filled(release, assignment)
    nb.cells = [
        c
        for cell in nb.cells
        for c in ([cell, copy.deepcopy(cell)] if cell.cell_type == "code" else [cell])
    ]
    for c in nb.cells:
        c.pop("id", None)
    nb.nbformat_minor = 4
    add("duplicated_cells", nb, "full")
    # Infinite loop after the class: that cell is interrupted, the tests pass.
    add("infinite_loop", filled(release, assignment, append={sol: "while True:\n    pass"}), "full")
    # os._exit / sys.exit / a crash after the class: the kernel survives or is replaced.
    add("os_exit", filled(release, assignment, append={sol: "import os\nos._exit(0)"}), "full")
    add("sys_exit", filled(release, assignment, append={sol: "import sys\nsys.exit()"}), "full")
    crash = filled(release, assignment)
    idx = next(
        i
        for i, c in enumerate(crash.cells)
        if c.metadata.get("nbgrader", {}).get("grade_id") == sol
    )
    crash.cells.insert(
        idx + 1,
        nbformat.v4.new_code_cell(
            "import ctypes\nctypes.string_at(0)  # segfault: the kernel dies"
        ),
    )
    add("segfault", crash, "full")
    add(
        "os_exit_in_backward",
        filled(
            release,
            assignment,
            {
                **others,
                sol: ref.replace(
                    "def backward(self, dout):",
                    "def backward(self, dout):\n        import os; os._exit(3)",
                ),
            },
        ),
        "forward_only" if assignment == "04_affine_layer" else "some",
    )
    # A memory bomb, stopped by the kernel's memory cap (in the jail the kernel then dies in
    # the next cells: a row with a reason, no more; see autograder/README.md); megabytes of
    # printing, capped.
    add(
        "memory_bomb",
        filled(
            release,
            assignment,
            append={
                sol: (
                    "def bomb():\n    blocks = []\n    while True:\n"
                    "        blocks.append(bytearray(64 * 1024 * 1024))\nbomb()"
                )
            },
        ),
        "row",
    )
    add(
        "megabytes_of_printing",
        filled(
            release,
            assignment,
            append={sol: ("print('x' * 20_000_000)\nfor i in range(200_000):\n    print(i)")},
        ),
        "full",
    )
    # Monkeypatching numpy and the test helpers, with a wrong answer: nothing gained.
    add(
        "monkeypatch",
        filled(
            release,
            assignment,
            {
                **others,
                sol: zeros
                + """
import numpy, numpy as np, backprop, backprop.gradcheck, backprop.checks
np.allclose = lambda *a, **k: True
np.isclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
numpy.allclose.__wrapped__.__code__ = (lambda a, b, rtol=1e-05, atol=1e-08, equal_nan=False: True).__code__
backprop.gradcheck.rel_error = lambda *a, **k: 0.0
backprop.gradcheck.LayerReport.assert_ok = lambda self, *names: None
backprop.gradcheck.diagnose.__code__ = (lambda *a, **k: backprop.gradcheck.Check("x", True, "ok")).__code__
""",
            },
        ),
        "zeros",
    )
    add(
        "shadowed_names",
        filled(
            release,
            assignment,
            {
                **others,
                sol: zeros
                + """
zip = lambda *a: []
range = lambda *a: []
all = lambda *a: True
def check_affine(*a, **k):
    class Fine:
        failures = []
        def assert_ok(self, *n): pass
        def __getitem__(self, k): return self
    return Fine()
check_mul_layer = check_affine
""",
            },
        ),
        "zeros",
    )
    add(
        "run_cell_hijack",
        filled(
            release,
            assignment,
            {
                **others,
                sol: zeros
                + """
ip = get_ipython()
_run_cell, _run_cell_async = ip.run_cell, ip.run_cell_async
def _wrap(code):
    body = "\\n".join("    " + l for l in code.splitlines()) or "    pass"
    return "try:\\n" + body + "\\nexcept BaseException:\\n    pass\\n"
def run_cell(raw_cell, store_history=False, silent=False, shell_futures=True, cell_id=None, **_):
    return _run_cell(_wrap(raw_cell), store_history=store_history, silent=silent,
                     shell_futures=shell_futures)
async def run_cell_async(raw_cell, store_history=False, silent=False, shell_futures=True, *,
                         transformed_cell=None, preprocessing_exc_tuple=None, cell_id=None, **_):
    code = _wrap(raw_cell)  # IPython 9 wants the transformed cell passed in
    return await _run_cell_async(code, store_history=store_history, silent=silent,
                                 shell_futures=shell_futures,
                                 transformed_cell=ip.transform_cell(code),
                                 preprocessing_exc_tuple=None)
ip.run_cell, ip.run_cell_async = run_cell, run_cell_async
""",
            },
        ),
        "zeros",
    )
    add(
        "displayhook_credit",
        filled(
            release,
            assignment,
            {
                **others,
                sol: zeros.replace("def forward(self, x", "def forward(self, x")
                .replace(
                    "return x.reshape(",
                    "import sys; sys.displayhook(1000)\n        return x.reshape(",
                )
                .replace("return x * y", "import sys; sys.displayhook(1000)\n        return x * y"),
            },
        ),
        "zeros",
    )
    # Handing the work to backprop's reference implementation: nothing.
    add(
        "delegate_subclass",
        filled(
            release,
            assignment,
            {**others, sol: (f"import backprop\nclass {cls}(backprop.{cls}):\n    pass\n")},
        ),
        "nothing",
    )
    add(
        "delegate_code_copy",
        filled(
            release,
            assignment,
            {
                **others,
                sol: f"""
import types, backprop
from backprop import {mod}
class {cls}:
    pass
for _name, _fn in vars({mod}.{cls}).items():
    if isinstance(_fn, types.FunctionType):
        setattr({cls}, _name, types.FunctionType(_fn.__code__, vars({mod}), _name, _fn.__defaults__))
""",
            },
        ),
        "nothing",
    )
    add(
        "delegate_exec_source",
        filled(
            release,
            assignment,
            {
                **others,
                sol: f"""
import inspect
from backprop import {mod}
exec(compile(inspect.getsource({mod}), {mod}.__file__, "exec"))
""",
            },
        ),
        "nothing",
    )
    # Code that runs while the checks call it: under grading the kernel only collects, so
    # whatever it patches, traces or forges there, the verdict is reached outside.
    add(
        "patches_during_the_call",
        filled(
            release,
            assignment,
            {
                **others,
                sol: zeros.replace(
                    "    def backward(self, dout):",
                    """    def backward(self, dout):
        import numpy, backprop.gradcheck, backprop.checks.core as core, backprop.checks.layer as layer
        numpy.allclose = numpy.array_equal = lambda *a, **k: True
        backprop.gradcheck.rel_error = lambda *a, **k: 0.0
        backprop.gradcheck.LayerReport.ok = property(lambda self: True)
        backprop.gradcheck.LayerReport.assert_ok = lambda self, *n: None
        core.judge_observed = lambda spec, made, observed: backprop.gradcheck.LayerReport("x")
        layer.verify_layer = lambda *a, **k: backprop.gradcheck.LayerReport("x")""",
                    1,
                ),
            },
        ),
        "zeros",
    )
    add(
        "trace_hook_edits_the_checker",
        filled(
            release,
            assignment,
            {
                **others,
                sol: zeros
                + """
import sys
def _tracer(frame, event, arg):
    if frame.f_code.co_filename.endswith(("gradcheck.py", "layer.py", "core.py")):
        for name in ("ok", "err", "bad"):
            if name in frame.f_locals:
                frame.f_locals[name] = True if name == "ok" else ([] if name == "bad" else 0.0)
        return _tracer
    return None
sys.settrace(_tracer)
import threading; threading.settrace(_tracer)
""",
            },
        ),
        "zeros",
    )
    add(
        "switches_the_refusal_off",
        filled(
            release,
            assignment,
            {
                **others,
                sol: f"""
import backprop, types
from backprop import {mod}
_saved = {{k: v.__code__ for k, v in vars({mod}.{cls}).items() if isinstance(v, types.FunctionType)}}
def _restore():
    for k, code in _saved.items():
        getattr({mod}.{cls}, k).__code__ = code
class {cls}:
    def __init__(self, *args):
        _restore()
        self._ref = {mod}.{cls}(*args)
    def __getattr__(self, name):
        _restore()
        return getattr(self._ref, name)
    def forward(self, *a):
        _restore()
        return self._ref.forward(*a)
    def backward(self, dout):
        _restore()
        return self._ref.backward(dout)
""",
            },
        ),
        "nothing",
    )
    add(
        "forges_records",
        filled(
            release,
            assignment,
            {
                **others,
                sol: zeros
                + """
import json
import backprop.checks.core as core
from IPython.display import display
def _forged(self, *names):
    record = {**self._record, "names": list(names), "observed": '{"out": 1, "grads": [0]}'}
    for _ in range(3):
        display({core.RECORD_MIME: json.dumps(record), "text/plain": "ok"}, raw=True)
core.Pending.assert_ok = _forged
print("Success! All tests passed.")
""",
            },
        ),
        "at_most_zeros",
    )
    add(
        "leaves_grading_mode",
        filled(
            release,
            assignment,
            {
                **others,
                sol: ref
                + (
                    "\nimport os\nos.environ.pop('BACKPROP_CHECKS', None)\n"
                    "os.environ['BACKPROP_CHECKS'] = 'off'\n"
                ),
            },
        ),
        "nothing",
    )
    # Reading the hidden tests from disk, and printing them into the feedback.
    add(
        "reads_hidden_tests",
        filled(
            release,
            assignment,
            append={
                sol: f'''
import glob, os
for pattern in ["{SOLUTIONS}/*/*.ipynb", "{REPO}/*.db", "../*/*.ipynb", "../../*/*/*.ipynb",
                "**/*.ipynb", "/tmp/*/course/*/*/*/*.ipynb", "/tmp/*/*/*.db", "/tmp/*/*.db",
                "/tmp/*/*/out-*/*.db", "/tmp/*/*/*/out-*/*.db", "../../../*.db"]:
    for path in glob.glob(pattern, recursive=True)[:50]:
        try:
            print(path, open(path, errors="replace").read()[:200000])
        except Exception as exc:
            print("refused:", path, type(exc).__name__)
print(os.listdir("."))
'''
            },
        ),
        "full",
    )
    return cases
