"""numerical_gradient, rel_error, and the checker that names likely mistakes.

Each wrong layer below makes one classic mistake; the checker must name it.
"""

from __future__ import annotations

import backprop as bp
import numpy as np
import pytest
from backprop import checks
from backprop.gradcheck import check_layer, diagnose, numerical_diff, numerical_gradient, rel_error


def test_numerical_diff_central():
    assert numerical_diff(lambda x: x**5, 2.0) == pytest.approx(5 * 2.0**4, rel=1e-7)


def test_numerical_gradient_restores_x_and_matches(rng):
    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    g = numerical_gradient(lambda v: np.sum(v**3), x)
    assert np.array_equal(x, x0)
    assert rel_error(g, 3 * x0**2) < 1e-8
    assert g.dtype == np.float64 and g.shape == x.shape


def test_numerical_gradient_restores_x_when_f_raises():
    x = np.array([1.0, 2.0])
    with pytest.raises(ZeroDivisionError):
        numerical_gradient(lambda v: 1 / 0, x)
    assert np.array_equal(x, [1.0, 2.0])


def test_numerical_gradient_zero_d_and_refuses_float32():
    assert numerical_gradient(lambda v: float(v) ** 2, np.array(5.0)) == pytest.approx(10.0)
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda v: 0.0, np.zeros(3, dtype=np.float32))


def test_rel_error_scale():
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0
    assert rel_error([1.0], [1.0 + 1e-9]) < 1e-9
    assert rel_error([1.0], [-1.0]) == 1.0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0


# ----- deliberately wrong layers, one mistake each -------------------------------------------


def _affine(impl):
    """An Affine class whose backward is the given function (forward is right)."""

    class Wrong:
        def __init__(self, W, b):
            self.W, self.b = W, b

        def forward(self, x):
            self.x_shape = x.shape
            self.x = x.reshape(x.shape[0], -1)
            return self.x @ self.W + self.b

        backward_impl = impl

        def backward(self, dout):
            return self.backward_impl(dout)

    return Wrong


def _backward_batch(self, dout):
    self.dW = self.x.T @ dout * self.x.shape[0]
    self.db = dout.sum(0)
    return (dout @ self.W.T).reshape(self.x_shape)


def _backward_transpose_square(self, dout):
    self.dW = (self.x.T @ dout).T
    self.db = dout.sum(0)
    return (dout @ self.W).reshape(self.x_shape)


def _backward_not_summed(self, dout):
    self.dW = self.x.T @ dout
    self.db = dout
    return (dout @ self.W.T).reshape(self.x_shape)


def _backward_sign(self, dout):
    self.dW = -(self.x.T @ dout)
    self.db = dout.sum(0)
    return (dout @ self.W.T).reshape(self.x_shape)


def _backward_no_reshape(self, dout):
    self.dW = self.x.T @ dout
    self.db = dout.sum(0)
    return dout @ self.W.T


def _backward_mutates_dout(self, dout):
    self.dW = self.x.T @ dout
    dout[...] = dout * 1.0001  # writes into the caller's array
    self.db = dout.sum(0)
    return (dout @ self.W.T).reshape(self.x_shape)


@pytest.mark.parametrize(
    "backward, grad, mistake, words",
    [
        (_backward_batch, "dW", "batch_size", "divide by N"),
        (_backward_transpose_square, "dW", "transpose", "transpose"),
        (_backward_transpose_square, "dx", "transpose", "transpose"),
        (_backward_not_summed, "db", "not_summed", "sum over the batch"),
        (_backward_sign, "dW", "sign", "sign"),
    ],
)
def test_affine_mistakes_are_named(backward, grad, mistake, words):
    report = checks.check_affine(_affine(backward), seed=7)
    assert not report[grad].ok
    assert report[grad].mistake == mistake
    assert words in report[grad].message
    with pytest.raises(AssertionError, match=words):
        report.assert_ok(grad)


def test_affine_nd_without_reshape_is_named():
    report = checks.check_affine(_affine(_backward_no_reshape), x_shape=(3, 2, 2, 2), out_size=4)
    assert report["dx"].mistake == "shape"
    assert "reshape" in report["dx"].message


def test_mutated_dout_is_named():
    report = checks.check_affine(_affine(_backward_mutates_dout))
    assert report["dout unchanged"].mistake == "mutated_dout"


class ReluInPlace:
    def forward(self, x):
        self.mask = x <= 0
        x[self.mask] = 0
        return x

    def backward(self, dout):
        return np.where(self.mask, 0, dout)


def test_relu_overwriting_input_is_named():
    report = checks.check_relu(ReluInPlace)
    assert report["x unchanged"].mistake == "mutated_input"
    assert report["dx"].ok  # the gradient itself is right: only the mutation is wrong


class SigmoidFromInput:
    def forward(self, x):
        self.x = x
        return 1 / (1 + np.exp(-x))

    def backward(self, dout):
        return dout * self.x * (1 - self.x)


def test_sigmoid_from_input_is_named():
    report = checks.check_sigmoid(SigmoidFromInput)
    assert report["out"].ok
    assert report["dx"].mistake == "from_input"
    assert "output" in report["dx"].message


class SoftmaxLossNoBatch:
    def forward(self, x, t):
        shifted = x - x.max(axis=1, keepdims=True)
        self.y = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        self.t = t
        return float(-np.mean(np.log(self.y[np.arange(len(t)), t])))

    def backward(self, dout=1.0):
        dx = self.y.copy()
        dx[np.arange(len(self.t)), self.t] -= 1
        return dout * dx  # forgot / N


class SoftmaxLossNaive(SoftmaxLossNoBatch):
    def forward(self, x, t):
        self.y = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
        self.t = t
        return float(-np.mean(np.log(self.y[np.arange(len(t)), t])))

    def backward(self, dout=1.0):
        return super().backward(dout) / len(self.t)


def test_softmax_missing_batch_division_is_named():
    report = checks.check_softmax_with_loss(SoftmaxLossNoBatch, batch_size=4)
    assert report["out"].ok
    assert report["dx"].mistake == "batch_size"
    assert "N = 4" in report["dx"].message


def test_softmax_without_max_shift_is_named():
    with np.errstate(all="ignore"):
        report = checks.check_softmax_with_loss(SoftmaxLossNaive, scale=1000)
    assert report["out"].mistake == "nonfinite"
    assert checks.check_softmax_with_loss(SoftmaxLossNaive).ok  # fine for small logits


def test_delegating_to_the_reference_earns_nothing():
    class Mine(bp.Affine):
        pass

    report = checks.check_affine(Mine)
    assert not report.ok
    assert "your own code" in report["forward"].message
    with pytest.raises(AssertionError, match="your own code"):
        report.assert_ok("dx")


@pytest.mark.parametrize(
    "check, reference",
    [
        (checks.check_mul_layer, bp.MulLayer),
        (checks.check_add_layer, bp.AddLayer),
        (checks.check_relu, bp.Relu),
        (checks.check_sigmoid, bp.Sigmoid),
        (checks.check_affine, bp.Affine),
        (checks.check_softmax_with_loss, bp.SoftmaxWithLoss),
    ],
)
def test_checks_refuse_the_reference_class_itself(check, reference):
    # Handing in backprop's own class is delegation; the reference layers themselves are
    # checked directly (outside any guard) in test_layers.py.
    report = check(reference)
    assert report["forward"].mistake == "delegated"
    assert "your own code" in report["forward"].message


def test_diagnose_missing_and_passthrough(rng):
    expected = rng.standard_normal((3, 3))
    assert diagnose("dx", None, expected).mistake == "missing"
    dout = rng.standard_normal((3, 3))
    assert diagnose("dx", dout, expected, dout=dout).mistake == "passthrough"
    assert diagnose("dx", np.zeros((3, 3)), expected).mistake == "zero"
    assert diagnose("dx", expected + 1e-12, expected).ok


# ----- check_layer itself: each phase names what went wrong, and the caller's arrays survive --


class _Doubler:
    """out = 2 x, right; the subclasses below break one rule each."""

    def forward(self, x):
        self.x = x
        return 2 * x

    def backward(self, dout):
        return 2 * dout


class _ForwardRaises(_Doubler):
    def forward(self, x):
        raise ValueError("boom")


class _ForwardReturnsNone(_Doubler):
    def forward(self, x):
        self.x = x


class _ForwardWritesInput(_Doubler):
    def forward(self, x):
        x *= 2
        return x


class _BackwardWritesDout(_Doubler):
    def backward(self, dout):
        dout *= 2
        return dout


class _BackwardWritesInput(_Doubler):
    def backward(self, dout):
        self.x[...] = 0
        return 2 * dout


class _BackwardRaises(_Doubler):
    def backward(self, dout):
        raise KeyError("lost")


class _ForwardFailsWhenRunAgain(_Doubler):
    calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("only once")
        return 2 * x


@pytest.mark.parametrize(
    "layer, name, mistake, words",
    [
        (_ForwardRaises, "forward", "error", "raised ValueError: boom"),
        (_ForwardReturnsNone, "forward", "missing", "returned None"),
        (_ForwardWritesInput, "x unchanged", "mutated_input", "forward changed its input x"),
        (_BackwardWritesDout, "dout unchanged", "mutated_dout", "upstream gradient"),
        (_BackwardWritesInput, "x unchanged", "mutated_input", "backward changed the input x"),
        (_BackwardRaises, "backward", "error", "raised KeyError"),
        (_ForwardFailsWhenRunAgain, "forward", "error", "when run again"),
    ],
)
def test_check_layer_names_each_broken_rule(rng, layer, name, mistake, words):
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    x0, dout0 = x.copy(), dout.copy()
    report = check_layer(layer(), {"x": x}, dout=dout)
    failed = [c for c in report.failures if c.name == name]
    assert len(failed) == 1 and failed[0].mistake == mistake
    assert words in failed[0].message
    assert np.array_equal(x, x0) and np.array_equal(dout, dout0)


def test_check_layer_passes_a_right_layer_and_its_checks_in_order(rng):
    report = check_layer(_Doubler(), {"x": rng.standard_normal((3, 4))}, name="Doubler")
    assert report.ok
    assert [c.name for c in report.checks] == ["forward", "dx"]
    assert str(report).startswith("Doubler\n  ok   forward: runs")


class _Mul:
    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.y, dout * self.x


class _MulOneGradient(_Mul):
    def backward(self, dout):
        return dout * self.y


class _MulNoGradients(_Mul):
    def backward(self, dout):
        return None


@pytest.mark.parametrize(
    "layer, wrt, mistake",
    [
        (_MulOneGradient, None, "return_value"),
        (_MulNoGradients, None, "missing"),
        (_MulNoGradients, ["x"], None),  # one gradient asked for: the None is diagnosed as dx
    ],
)
def test_check_layer_backward_return_value(rng, layer, wrt, mistake):
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    report = check_layer(layer(), {"x": x, "y": y}, wrt=wrt)
    if mistake is None:
        assert "backward" not in report and report["dx"].mistake == "missing"
    else:
        assert report["backward"].mistake == mistake
        assert "should return (dx, dy)" in report["backward"].message


def test_check_layer_params_only_ignores_what_backward_returns(rng):
    # A first layer's Affine returns None (no dx needed): with wrt=[] only dW and db count.
    layer = bp.Affine(rng.standard_normal((4, 2)), rng.standard_normal(2), need_dx=False)
    report = check_layer(
        layer, {"x": rng.standard_normal((3, 4))}, wrt=[], params={"W": "dW", "b": "db"}
    )
    assert report.ok
    assert [c.name for c in report.checks] == ["forward", "dW", "db"]


class _AffineBadGradients(bp.Affine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.dW, self.db = "not numbers", None
        return dx


def test_check_layer_param_gradients_that_are_not_arrays(rng):
    layer = _AffineBadGradients(rng.standard_normal((4, 2)), rng.standard_normal(2))
    report = check_layer(layer, {"x": rng.standard_normal((3, 4))}, params={"W": "dW", "b": "db"})
    assert report["dx"].ok
    assert report["dW"].mistake == "not_numeric"
    assert report["db"].mistake == "missing"


def test_check_layer_names_a_layer_specific_mistake(rng):
    class Tripler(_Doubler):
        def backward(self, dout):
            return 3 * dout

    def raises(inputs, out, dout):
        raise IndexError  # a model that does not apply suspects nothing

    report = check_layer(
        Tripler(),
        {"x": rng.standard_normal((3, 4))},
        mistakes={
            "broken": ("never shown", raises),
            "three": ("used 3 instead of 2", lambda inputs, out, dout: {"dx": 3 * dout}),
        },
    )
    assert report["dx"].mistake == "three"
    assert report["dx"].message.startswith("used 3 instead of 2")


def test_check_layer_expected_out(rng):
    x = rng.standard_normal((3, 4))
    report = check_layer(_Doubler(), {"x": x}, expected_out=x)  # 2x is not x
    assert report["out"].mistake == "mismatch"
    assert "the expected value" in report["out"].message


def test_default_dout_is_not_drawn_like_the_inputs():
    # Inputs drawn from the same seed as check_layer's: were dout == x, x.T @ dout would be
    # symmetric and a transposed dW would pass.
    x = np.random.default_rng(0).standard_normal((3, 3))
    W = np.random.default_rng(1).standard_normal((3, 3))
    report = check_layer(
        _affine(_backward_transpose_square)(W, np.zeros(3)),
        {"x": x},
        params={"W": "dW", "b": "db"},
        seed=0,
    )
    assert report["dW"].mistake == "transpose"
