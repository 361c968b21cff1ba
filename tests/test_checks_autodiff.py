"""The autodiff checks (notebook 9): right answers pass, learners' wrong answers fail named."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from backprop.checks import (
    check_autodiff_net,
    check_autodiff_op,
    check_autodiff_seeds,
    check_autodiff_tape,
)
from backprop.checks.autodiff_ops import _op_inputs, _verify_op
from backprop.checks.autodiff_seeds import _net_inputs, _seed_inputs, _verify_net, _verify_seeds
from backprop.checks.autodiff_tape import _tape_inputs, _verify_tape

NB = Path(__file__).resolve().parents[1] / "solutions/09_autodiff/09_autodiff.ipynb"
KEEP = {"setup", "tensor_code", "add_mul", "matmul_impl", "unary_ops", "gradient_tape", "net_impl"}


def engine(**replace: str) -> dict:
    """The solution's engine in a fresh namespace, with some definitions replaced."""
    ns: dict = {"__name__": "learner"}
    for cell in nbformat.read(NB, as_version=4).cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") in KEEP:
            exec(compile(cell.source, "<cell>", "exec"), ns)
    for src in replace.values():
        exec(compile(src, "<learner>", "exec"), ns)
    return ns


def test_the_solution_passes_everything():
    ns = engine()
    for op in ("add", "mul", "matmul", "pow", "exp", "log", "relu", "sum"):
        for seed in (0, 4):
            assert check_autodiff_op(ns["Tensor"], op=op, seed=seed).ok, op
    assert check_autodiff_tape(ns["GradientTape"], seed=0).ok
    assert check_autodiff_tape(ns["GradientTape"], seed=7, n=4).ok
    assert check_autodiff_seeds(ns["GradientTape"], at=5.0, shape=[2, 2]).ok
    assert check_autodiff_net(ns["tape_gradient"], seed=0).ok


def test_right_answers_written_differently_pass():
    ns = engine(
        mul="""
def mul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    def rule(g):
        return sum_to(b * g, a.shape), sum_to(a * g, b.shape)
    return _make(np.multiply(a.value, b.value), [a, b], rule)
""",
        matmul="""
def matmul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    return _make(np.einsum('nk,km->nm', a.value, b.value), (a, b),
                 lambda g: (matmul(g, transpose(b)), matmul(transpose(a), g)))
""",
        relu="""
def relu(a):
    a = as_tensor(a)
    return _make(np.where(a.value > 0, a.value, 0.0), (a,),
                 lambda g: (g * np.where(a.value > 0, 1.0, 0.0),))
""",
    )
    for op in ("mul", "matmul", "relu"):
        assert check_autodiff_op(ns["Tensor"], op=op, seed=1).ok, op
    assert check_autodiff_tape(ns["GradientTape"], seed=1).ok


OP_MISTAKES = [
    (
        "mul",
        "da",
        "not_swapped",
        """
def mul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    return _make(a.value * b.value, (a, b), lambda g: (sum_to(g * a, a.shape), sum_to(g * b, b.shape)))
""",
    ),
    (
        "mul",
        "da",
        "no_dout",
        """
def mul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    return _make(a.value * b.value, (a, b), lambda g: (sum_to(b * np.ones(g.shape), a.shape), sum_to(a * np.ones(g.shape), b.shape)))
""",
    ),
    (
        "add",
        "db",
        "broadcast",
        """
def add(a, b):
    a, b = as_tensor(a), as_tensor(b)
    return _make(a.value + b.value, (a, b), lambda g: (g, g))
""",
    ),
    (
        "mul",
        "tensor",
        "not_tensor",
        """
def mul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    return _make(a.value * b.value, (a, b), lambda g: (_sum_to_shape(g.value * b.value, a.shape), _sum_to_shape(g.value * a.value, b.shape)))
""",
    ),
    (
        "matmul",
        "da",
        "transpose",
        """
def matmul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    return _make(a.value @ b.value, (a, b), lambda g: (g @ b, a.T @ g))
""",
    ),
    (
        "matmul",
        "db",
        "order",
        """
def matmul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    return _make(a.value @ b.value, (a, b), lambda g: (g @ b.T, g.T @ a))
""",
    ),
    (
        "pow",
        "da",
        "power_not_lowered",
        """
def power(a, p):
    a = as_tensor(a)
    return _make(a.value ** p, (a,), lambda g: (g * (p * a ** p),))
""",
    ),
    (
        "pow",
        "da",
        "no_p",
        """
def power(a, p):
    a = as_tensor(a)
    return _make(a.value ** p, (a,), lambda g: (g * a ** (p - 1),))
""",
    ),
    (
        "exp",
        "da",
        "from_input",
        """
def exp(a):
    a = as_tensor(a)
    return _make(np.exp(a.value), (a,), lambda g: (g * a,))
""",
    ),
    (
        "exp",
        "da",
        "no_dout",
        """
def exp(a):
    a = as_tensor(a)
    out = _make(np.exp(a.value), (a,), lambda g: (out * 1.0,))
    return out
""",
    ),
    (
        "log",
        "da",
        "times_a",
        """
def log(a):
    a = as_tensor(a)
    return _make(np.log(a.value), (a,), lambda g: (g * a,))
""",
    ),
    (
        "relu",
        "da",
        "mask_inverted",
        """
def relu(a):
    a = as_tensor(a)
    return _make(np.maximum(a.value, 0), (a,), lambda g: (g * (a.value <= 0),))
""",
    ),
    (
        "relu",
        "da",
        "relu_of_g",
        """
def relu(a):
    a = as_tensor(a)
    return _make(np.maximum(a.value, 0), (a,), lambda g: (relu(g),))
""",
    ),
    (
        "sum",
        "da",
        "broadcast",
        """
def tensor_sum(a, axis=None, keepdims=False):
    a = as_tensor(a)
    return _make(np.sum(a.value, axis=axis, keepdims=keepdims), (a,), lambda g: (g,))
""",
    ),
    (
        "mul",
        "parents",
        "parents",
        """
def mul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    return _make(a.value * b.value, (Tensor(a.value), Tensor(b.value)), lambda g: (sum_to(g * b, a.shape), sum_to(g * a, b.shape)))
""",
    ),
    (
        "mul",
        "unchanged",
        "mutated_dout",
        """
def mul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    def rule(g):
        g.value *= 1.0001
        return sum_to(g * b, a.shape), sum_to(g * a, b.shape)
    return _make(a.value * b.value, (a, b), rule)
""",
    ),
]


@pytest.mark.parametrize("op,name,key,src", OP_MISTAKES)
def test_op_mistakes_are_named(op, name, key, src):
    ns = engine(wrong=src)
    report = check_autodiff_op(ns["Tensor"], op=op, seed=0)
    assert not report[name].ok
    assert report[name].mistake == key, str(report[name])
    assert len(report[name].message) > 20
    with pytest.raises(AssertionError):
        report.assert_ok(name)


def test_an_exception_names_the_learners_line():
    ns = engine(
        wrong="""
def exp(a):
    a = as_tensor(a)
    return _make(np.exp(a.value), (a,), lambda g: (g * undefined_name,))
"""
    )
    report = check_autodiff_op(ns["Tensor"], op="exp", seed=0)
    assert report["da"].mistake == "error" and "undefined_name" in report["da"].message


TAPE = "GradientTape"
REPLAY = """
def gradient(self, target, sources):
    if self._used and not self.persistent:
        raise RuntimeError("once")
    self._used = True
    active = self in _active_tapes
    if active:
        _active_tapes.remove(self)
    grads = {target: Tensor(np.ones_like(target.value))}
    for out in RECORDS:
        g = grads.get(out)
        if g is None:
            continue
        for parent, gp in zip(out._parents, out._backward(UPSTREAM)):
            ACCUMULATE
    if active:
        _active_tapes.append(self)
    if not self.persistent and DROP:
        self._records = []
    pick = lambda s: grads.get(s) if s in self._watched else None
    if isinstance(sources, Tensor):
        return pick(sources)
    if isinstance(sources, dict):
        return {k: pick(s) for k, s in sources.items()}
    return [pick(s) for s in sources]
GradientTape.gradient = gradient
"""


def replay(
    records="reversed(self._records)",
    upstream="g",
    drop="True",
    accumulate="grads[parent] = grads[parent] + gp if parent in grads else gp",
    persistent_check=True,
):
    src = (
        REPLAY.replace("RECORDS", records)
        .replace("UPSTREAM", upstream)
        .replace("ACCUMULATE", accumulate)
        .replace("DROP", drop)
    )
    if not persistent_check:
        src = src.replace("if self._used and not self.persistent:", "if False:")
    return src


TAPE_MISTAKES = [
    ("fan_out", "overwrites", replay(accumulate="grads[parent] = gp")),
    ("diamond", "overwrites", replay(accumulate="grads[parent] = gp")),
    ("chain", "order", replay(records="self._records")),
    ("chain", "no_dout", replay(upstream="Tensor(np.ones_like(g.value))")),
    (
        "vector_target",
        "zero_start",
        replay().replace(
            "Tensor(np.ones_like(target.value))", "Tensor(np.zeros_like(target.value))"
        ),
    ),
    ("not_persistent", "not_refused", replay(persistent_check=False)),
    (
        "persistent",
        "not_persistent",
        replay(drop="True or True").replace("if not self.persistent and True or True:", "if True:"),
    ),
    (
        "variables_on",
        "accessed_variables",
        """
def _record(self, out):
    if any(p in self._tracked for p in out._parents):
        self._tracked.add(out)
        self._records.append(out)
GradientTape._record = _record
""",
    ),
    (
        "variables_off",
        "accessed_variables",
        """
def _record(self, out):
    self.watch(*(p for p in out._parents if p.trainable))
    if any(p in self._tracked for p in out._parents):
        self._tracked.add(out)
        self._records.append(out)
GradientTape._record = _record
""",
    ),
    ("unwatched", "unwatched", replay().replace("if s in self._watched else None", "")),
]


@pytest.mark.parametrize("name,key,src", TAPE_MISTAKES)
def test_tape_mistakes_are_named(name, key, src):
    ns = engine(wrong=src)
    report = check_autodiff_tape(ns[TAPE], seed=0)
    assert not report[name].ok
    assert report[name].mistake == key, str(report[name])


def test_rules_on_value_lose_the_second_derivative():
    ns = engine(
        wrong="""
def power(a, p):
    a = as_tensor(a)
    return _make(a.value ** p, (a,), lambda g: (Tensor(g.value * p * a.value ** (p - 1)),))
"""
    )
    report = check_autodiff_seeds(ns[TAPE], at=5.0, shape=[2, 2])
    assert report["x2"].ok and not report["x2_second"].ok


def test_net_with_a_wrong_op_fails():
    ns = engine(
        wrong="""
def two_layer_loss(params, x, t):
    h = (x @ params["W1"] + params["b1"]).relu()
    s = h @ params["W2"] + params["b2"]
    n, c = s.shape
    shifted = s - s.value.max(axis=1, keepdims=True)
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()
    return -(log_probs * np.eye(c)[t]).sum()
"""
    )
    report = check_autodiff_net(ns["tape_gradient"], seed=0)
    assert report["dW1"].mistake == "batch_size"


@pytest.mark.parametrize(
    "inputs,verify,args",
    [
        (_op_inputs, _verify_op, {"op": "matmul"}),
        (_op_inputs, _verify_op, {"op": "add"}),
        (_tape_inputs, _verify_tape, {}),
        (_seed_inputs, _verify_seeds, {}),
        (_net_inputs, _verify_net, {}),
    ],
)
@pytest.mark.parametrize(
    "garbage",
    [
        {},
        {"cases": "x", "square": "s", "grads": [1, 2], "w": {"a": 1}, "second": [None, "x"]},
        {
            "cases": [{"grads": ["a", None], "out": "z"}],
            "not_persistent": {"first": "q"},
            "persistent": [1, 2, 3],
            "grads": {"W1": "nan"},
        },
    ],
)
def test_verify_survives_garbage(inputs, verify, args, garbage):
    report = verify(inputs(**args), garbage)
    assert not report.ok


def test_grading_round_trip(monkeypatch):
    """Collect in 'grading' mode, then verify from the record alone, as the grader does."""
    from backprop.checks import core, running

    ns = engine()
    calls = [
        ("autodiff_op", ns["Tensor"], {"op": "matmul", "seed": 0}),
        ("autodiff_tape", ns["GradientTape"], {"seed": 0}),
        ("autodiff_seeds", ns["GradientTape"], {"at": 5.0, "shape": [2, 2]}),
        ("autodiff_net", ns["tape_gradient"], {"seed": 0}),
    ]
    monkeypatch.setenv(running.MODE_ENV, "collect")
    for name, target, args in calls:
        pending = core.run(core.SPECS[name], target, args)
        rec = {**pending._record, "names": []}
        item = core.Planned(name, "Target", args, ())
        assert core.verify_record(item, rec).ok, name
