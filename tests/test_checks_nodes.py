"""The node checks of notebooks 1 and 2: MulLayer, AddLayer, FanOut, DivLayer, ExpLayer and
the sigmoid built node by node. Wrong answers, written as a learner would write them, fail
with the mistake named; right answers written differently pass; forged records fail."""

from __future__ import annotations

import backprop as bp
import numpy as np
import pytest
from backprop.checks import (
    check_add_layer,
    check_div_layer,
    check_exp_layer,
    check_fan_out,
    check_mul_layer,
    check_sigmoid_graph,
)
from backprop.checks.core import SPECS, judge_observed
from hypothesis import given, settings
from hypothesis import strategies as st

PROTOCOL2 = ("x unchanged", "y unchanged", "dout unchanged", "backward twice", "second call")
PROTOCOL1 = ("x unchanged", "dout unchanged", "backward twice", "second call")


def mistakes(report) -> set[str]:
    return set(report.mistakes)


# --- learner-style nodes, right ---------------------------------------------------------------


class Mul:
    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.y, dout * self.x


class MulMultiply:  # written with np.multiply and a stored tuple
    def forward(self, x, y):
        self.saved = (x, y)
        return np.multiply(x, y)

    def backward(self, dout):
        x, y = self.saved
        return np.multiply(y, dout), np.multiply(x, dout)


class Add:
    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout * 1, dout * 1


class AddCopy:
    def forward(self, x, y):
        return np.add(x, y)

    def backward(self, dout):
        return np.array(dout, copy=True), np.array(dout, copy=True)


class FanOut:
    def __init__(self):
        self.add, self.mul = Add(), Mul()

    def forward(self, x, y):
        return self.mul.forward(self.add.forward(x, y), x)

    def backward(self, dout):
        dq, dx_mul = self.mul.backward(dout)
        dx_add, dy = self.add.backward(dq)
        return dx_add + dx_mul, dy


class FanOutAlgebra:  # no nodes at all: f = x**2 + x*y
    def forward(self, x, y):
        self.x, self.y = x, y
        return x**2 + x * y

    def backward(self, dout):
        return dout * (2 * self.x + self.y), dout * self.x


class Div:
    def forward(self, x, y):
        self.x, self.y = x, y
        return x / y

    def backward(self, dout):
        return dout / self.y, -dout * self.x / self.y**2


class DivFromOutput:  # dy = -dout * z / y, from the output
    def forward(self, x, y):
        self.y = y
        self.out = np.divide(x, y)
        return self.out

    def backward(self, dout):
        return dout * (1 / self.y), -dout * self.out / self.y


class Exp:
    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, dout):
        return dout * self.out


class ExpFromInput:  # keeps x and calls exp again
    def forward(self, x):
        self.x = x
        return np.e**x

    def backward(self, dout):
        return np.exp(self.x) * dout


class SigmoidGraph:
    def __init__(self):
        self.mul, self.exp, self.add, self.div = Mul(), Exp(), Add(), Div()

    def forward(self, x):
        e = self.exp.forward(self.mul.forward(x, -1.0))
        return self.div.forward(1.0, self.add.forward(e, 1.0))

    def backward(self, dout):
        _, dv = self.div.backward(dout)
        de, _ = self.add.backward(dv)
        dx, _ = self.mul.backward(self.exp.backward(de))
        return dx


class SigmoidGraphReference:  # the course's nodes, as notebook 2 imports them
    def __init__(self):
        self.nodes = bp.MulLayer(), bp.ExpLayer(), bp.AddLayer(), bp.DivLayer()

    def forward(self, x):
        mul, exp, add, div = self.nodes
        return div.forward(1.0, add.forward(exp.forward(mul.forward(x, -1.0)), 1.0))

    def backward(self, dout):
        mul, exp, add, div = self.nodes
        dv = div.backward(dout)[1]
        return mul.backward(exp.backward(add.backward(dv)[0]))[0]


RIGHT = [
    (check_mul_layer, Mul),
    (check_mul_layer, MulMultiply),
    (check_add_layer, Add),
    (check_add_layer, AddCopy),
    (check_fan_out, FanOut),
    (check_fan_out, FanOutAlgebra),
    (check_div_layer, Div),
    (check_div_layer, DivFromOutput),
    (check_exp_layer, Exp),
    (check_exp_layer, ExpFromInput),
    (check_sigmoid_graph, SigmoidGraph),
    (check_sigmoid_graph, SigmoidGraphReference),
]


@pytest.mark.parametrize("check, target", RIGHT, ids=[t.__name__ for _, t in RIGHT])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2), (5,)])
def test_right_answers_pass(check, target, shape):
    report = check(target, seed=3, shape=shape)
    assert report.ok, str(report)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_right_answers_pass_any_seed(seed):
    for check, target in RIGHT:
        report = check(target, seed=seed)
        assert report.ok, str(report)


# --- learner-style nodes, wrong -----------------------------------------------------------


class MulNoDout(Mul):
    def backward(self, dout):
        return self.y, self.x


class MulNotSwapped(Mul):
    def backward(self, dout):
        return dout * self.x, dout * self.y


class MulInPlace(Mul):
    def backward(self, dout):
        dout *= self.y
        return dout, dout * self.x / self.y


class AddNoDout(Add):
    def backward(self, dout):
        return np.ones_like(dout), np.ones_like(dout)


class AddMultiplies:
    def forward(self, x, y):
        self.x, self.y = x, y
        return x + y

    def backward(self, dout):
        return dout * self.y, dout * self.x


class FanOutOnlyMul(FanOut):
    def backward(self, dout):
        dq, dx_mul = self.mul.backward(dout)
        _, dy = self.add.backward(dq)
        return dx_mul, dy


class FanOutOnlyAdd(FanOut):
    def backward(self, dout):
        dq, _ = self.mul.backward(dout)
        dx_add, dy = self.add.backward(dq)
        return dx_add, dy


class FanOutNoDout(FanOut):
    def backward(self, dout):
        return FanOut.backward(self, np.ones_like(dout))


class FanOutAccumulates:
    """Keeps a running total of x's gradient on self, the way a += would."""

    def __init__(self):
        self.inner, self.dx = FanOut(), 0

    def forward(self, x, y):
        return self.inner.forward(x, y)

    def backward(self, dout):
        dx, dy = self.inner.backward(dout)
        self.dx = self.dx + dx
        return self.dx, dy


class DivNoDout(Div):
    def backward(self, dout):
        return 1 / self.y, -self.x / self.y**2


class DivSign(Div):
    def backward(self, dout):
        return dout / self.y, dout * self.x / self.y**2


class DivNotSquared(Div):
    def backward(self, dout):
        return dout / self.y, -dout * self.x / self.y


class DivLikeMul(Div):
    def backward(self, dout):
        return dout * self.y, dout * self.x


class DivDelegates:
    def forward(self, x, y):
        self.layer = bp.DivLayer()
        return self.layer.forward(x, y)

    def backward(self, dout):
        return self.layer.backward(dout)


class ExpNoDout(Exp):
    def backward(self, dout):
        return self.out


class ExpFromX:
    def forward(self, x):
        self.x = x
        return np.exp(x)

    def backward(self, dout):
        return dout * self.x


class ExpPowerRule(ExpFromX):
    def backward(self, dout):
        return dout * self.x * np.exp(self.x - 1)


class ExpStale:
    out = None

    def forward(self, x):
        if self.out is None:
            self.out = np.exp(x)
        return np.exp(x)

    def backward(self, dout):
        return dout * self.out


class ExpMutates(Exp):
    def backward(self, dout):
        self.out *= dout
        return self.out


class ExpRaises(Exp):
    def backward(self, dout):
        return dout * self.output


class SigmoidNoMinus(SigmoidGraph):
    def backward(self, dout):
        _, dv = self.div.backward(dout)
        de, _ = self.add.backward(dv)
        return self.exp.backward(de)  # forgot the (* -1) node


class SigmoidNoDout(SigmoidGraph):
    def backward(self, dout):
        return SigmoidGraph.backward(self, np.ones_like(dout))


class SigmoidDivOnce(SigmoidGraph):
    def backward(self, dout):
        dv = -dout / self.div.y  # divided by v once, not by v squared
        de, _ = self.add.backward(dv)
        dx, _ = self.mul.backward(self.exp.backward(de))
        return dx


class SigmoidExpFromInput(SigmoidGraph):
    def backward(self, dout):
        _, dv = self.div.backward(dout)
        de, _ = self.add.backward(dv)
        dx, _ = self.mul.backward(de * self.mul.x * -1.0)
        return dx


class SigmoidDelegates:
    def forward(self, x):
        self.s = bp.Sigmoid()
        return self.s.forward(x)

    def backward(self, dout):
        return self.s.backward(dout)


WRONG = [
    (check_mul_layer, MulNoDout, ("dx", "dy"), "no_dout"),
    (check_mul_layer, MulNotSwapped, ("dx", "dy"), "not_swapped"),
    (check_mul_layer, MulInPlace, ("dout unchanged",), "mutated_dout"),
    (check_add_layer, AddNoDout, ("dx", "dy"), "no_dout"),
    (check_add_layer, AddMultiplies, ("dx", "dy"), "multiplied"),
    (check_fan_out, FanOutOnlyMul, ("dx",), "not_added"),
    (check_fan_out, FanOutOnlyAdd, ("dx",), "not_added_add"),
    (check_fan_out, FanOutNoDout, ("dx", "dy"), "no_dout"),
    (check_fan_out, FanOutAccumulates, ("backward twice",), "state_changed"),
    (check_div_layer, DivNoDout, ("dx", "dy"), "no_dout"),
    (check_div_layer, DivSign, ("dy",), "sign"),
    (check_div_layer, DivNotSquared, ("dy",), "not_squared"),
    (check_div_layer, DivLikeMul, ("dx", "dy"), "swapped"),
    (check_div_layer, DivDelegates, ("out",), "delegated"),
    (check_exp_layer, ExpNoDout, ("dx",), "no_dout"),
    (check_exp_layer, ExpFromX, ("dx",), "from_input"),
    (check_exp_layer, ExpPowerRule, ("dx",), "power_rule"),
    (check_exp_layer, ExpStale, ("second call",), "stale_state"),
    (check_exp_layer, ExpMutates, ("backward twice",), "state_changed"),
    (check_exp_layer, ExpRaises, ("dx",), "error"),
    (check_sigmoid_graph, SigmoidNoMinus, ("dx",), "no_minus_one"),
    (check_sigmoid_graph, SigmoidNoDout, ("dx",), "no_dout"),
    (check_sigmoid_graph, SigmoidDivOnce, ("dx",), "div_not_squared"),
    (check_sigmoid_graph, SigmoidExpFromInput, ("dx",), "exp_from_input"),
    (check_sigmoid_graph, SigmoidDelegates, ("out",), "delegated"),
]


@pytest.mark.parametrize(
    "check, target, names, key", WRONG, ids=[f"{t.__name__}-{k}" for _, t, _, k in WRONG]
)
def test_wrong_answers_fail_with_the_mistake_named(check, target, names, key):
    report = check(target, seed=1)
    assert not report.ok
    assert key in mistakes(report), str(report)
    with pytest.raises(AssertionError) as info:
        report.assert_ok(*names)
    message = str(info.value)
    assert len(message) > 40 and ("FAIL" in message)
    failed = [c for c in report.failures if c.mistake == key]
    assert all(len(c.message) > 30 for c in failed)


def test_exception_names_the_learners_line():
    report = check_exp_layer(ExpRaises, seed=0)
    text = str(report)
    assert "AttributeError" in text and "self.output" in text and "test_checks_nodes.py" in text


def test_fan_out_message_says_gradients_add():
    report = check_fan_out(FanOutOnlyMul, seed=2)
    assert "sum" in report["dx"].message and "twice" in report["dx"].message


def test_sigmoid_graph_is_judged_against_the_sigmoid():
    report = check_sigmoid_graph(SigmoidGraph, seed=4, scale=6.0)
    assert report.ok
    x = check_sigmoid_graph.spec.inputs(seed=4, scale=6.0)["forward"]["x"]
    s = bp.Sigmoid()
    y = s.forward(x)
    g = SigmoidGraph()
    assert np.allclose(g.forward(x), y)
    assert np.allclose(g.backward(np.ones_like(x)), s.backward(np.ones_like(x)))


# --- forged and garbage records ---------------------------------------------------------------

GARBAGE = [
    {},
    {"out": "220"},
    {"out": None, "grads": None},
    {"error": "boom"},
    {"out": [1, 2], "grads": "dx", "after_forward": 3, "dout_after": "x"},
    {"out": np.ones((3, 4)), "grads": [np.ones((3, 4))] * 5},
    {
        "out": {"a": 1},
        "grads": [[1, 2], [3]],
        "grads_again": 7,
        "after_forward": {"x": "s"},
        "after_backward": [],
    },
    {"error": {"step": "backward", "raised": "not a Raised"}, "out": np.zeros((3, 4))},
]


@pytest.mark.parametrize(
    "name", ["mul_layer", "add_layer", "fan_out", "div_layer", "exp_layer", "sigmoid_graph"]
)
@pytest.mark.parametrize("observed", GARBAGE)
def test_forged_records_fail_and_never_raise(name, observed):
    spec = SPECS[name]
    report = judge_observed(spec, spec.inputs(seed=0), observed)
    assert not report.ok


@pytest.mark.parametrize(
    "check", [check_div_layer, check_exp_layer, check_fan_out, check_sigmoid_graph]
)
def test_inputs_are_deterministic_and_json_args(check):
    import json

    args = {"seed": 5, "shape": [2, 3]}
    json.dumps(args)
    a, b = check.spec.inputs(**args), check.spec.inputs(**args)
    assert all(np.array_equal(a["forward"][k], b["forward"][k]) for k in a["forward"])


def test_div_inputs_keep_the_denominator_away_from_zero():
    for seed in range(20):
        inp = check_div_layer.spec.inputs(seed=seed, shape=(6, 6))
        assert np.min(np.abs(inp["forward"]["y"])) >= 0.5
        assert np.min(np.abs(inp["forward2"]["y"])) >= 0.5


# --- the reference nodes ----------------------------------------------------------------------


def test_reference_div_and_exp_nodes():
    assert check_div_layer(bp.DivLayer, seed=0).ok is False  # switched off while checked
    rng = np.random.default_rng(0)
    x, y, dout = (
        rng.standard_normal((3, 3)),
        rng.standard_normal((3, 3)) + 3,
        rng.standard_normal((3, 3)),
    )
    div = bp.DivLayer()
    assert np.allclose(div.forward(x, y), x / y)
    dx, dy = div.backward(dout)
    assert np.allclose(dx, dout / y) and np.allclose(dy, -dout * x / y**2)
    exp = bp.ExpLayer()
    assert np.allclose(exp.forward(x), np.exp(x)) and np.allclose(
        exp.backward(dout), dout * np.exp(x)
    )
    assert div.forward(1, 4) == 0.25 and div.backward(1.0) == (0.25, -1 / 16)
