"""Every reference layer: known values, and backward against numerical gradients."""

from __future__ import annotations

import backprop as bp
import numpy as np
import pytest
from backprop.checks import reference_disabled
from backprop.gradcheck import check_layer, numerical_gradient, rel_error
from hypothesis import given
from hypothesis import strategies as st


def test_apple_graph():
    mul_apple, mul_tax = bp.MulLayer(), bp.MulLayer()
    price = mul_tax.forward(mul_apple.forward(100, 2), 1.1)
    assert price == pytest.approx(220)
    d_apple_total, d_tax = mul_tax.backward(1)
    d_apple, d_count = mul_apple.backward(d_apple_total)
    assert (d_apple, d_count, d_tax) == pytest.approx((2.2, 110, 200))


def test_apple_orange_graph():
    mul_apple, mul_orange, add, mul_tax = bp.MulLayer(), bp.MulLayer(), bp.AddLayer(), bp.MulLayer()
    total = add.forward(mul_apple.forward(100, 2), mul_orange.forward(150, 3))
    price = mul_tax.forward(total, 1.1)
    assert price == pytest.approx(715)
    d_total, d_tax = mul_tax.backward(1)
    d_apples, d_oranges = add.backward(d_total)
    assert mul_apple.backward(d_apples) == pytest.approx((2.2, 110))
    assert mul_orange.backward(d_oranges) == pytest.approx((3.3, 165))
    assert d_tax == pytest.approx(650)


def test_xyz_graph():
    add, mul = bp.AddLayer(), bp.MulLayer()
    f = mul.forward(add.forward(-2, 5), -4)
    assert f == -12
    dq, dz = mul.backward(1)
    dx, dy = add.backward(dq)
    assert (dx, dy, dz) == (-4, -4, 3)


def _away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    return x + np.sign(x) * 0.05


shapes = st.tuples(st.integers(2, 6), st.integers(1, 6))


@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_mul_add_layers_random(shape, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    for layer in (bp.MulLayer(), bp.AddLayer()):
        check_layer(layer, {"x": x, "y": y}, seed=seed).assert_ok()


@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_div_exp_layers_random(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    y = np.sign(rng.standard_normal(shape) + 1e-12) * (0.5 + np.abs(rng.standard_normal(shape)))
    check_layer(bp.DivLayer(), {"x": x, "y": y}, seed=seed).assert_ok()
    check_layer(bp.ExpLayer(), {"x": x}, seed=seed).assert_ok()
    div, exp = bp.DivLayer(), bp.ExpLayer()
    assert div.forward(x, y).shape == shape and exp.forward(x).shape == shape
    dx, dy = div.backward(np.ones(shape))
    assert dx.shape == dy.shape == shape and exp.backward(np.ones(shape)).shape == shape


def test_sigmoid_from_nodes_matches_sigmoid(rng):
    x = 3 * rng.standard_normal((4, 5))
    mul, exp, add, div = bp.MulLayer(), bp.ExpLayer(), bp.AddLayer(), bp.DivLayer()
    y = div.forward(1.0, add.forward(exp.forward(mul.forward(x, -1.0)), 1.0))
    dout = rng.standard_normal(x.shape)
    dx = mul.backward(exp.backward(add.backward(div.backward(dout)[1])[0]))[0]
    s = bp.Sigmoid()
    assert np.allclose(y, s.forward(x)) and np.allclose(dx, s.backward(dout))


@given(
    shape=st.tuples(st.integers(2, 5), st.integers(1, 5), st.integers(1, 3)),
    seed=st.integers(0, 2**32 - 1),
)
def test_activations_random(shape, seed):
    rng = np.random.default_rng(seed)
    x = _away_from_zero(rng, shape)
    check_layer(bp.Relu(), {"x": x}, expected_out=np.maximum(x, 0), seed=seed).assert_ok()
    check_layer(bp.Sigmoid(), {"x": x}, expected_out=1 / (1 + np.exp(-x)), seed=seed).assert_ok()


def test_sigmoid_extreme_inputs_are_finite():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = bp.sigmoid(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]))
    assert np.all(np.isfinite(y))
    assert y[0] == 0.0 and y[2] == 0.5 and y[-1] == 1.0


@given(
    n=st.integers(2, 6), d=st.integers(1, 6), m=st.integers(1, 6), seed=st.integers(0, 2**32 - 1)
)
def test_affine_random(n, d, m, seed):
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((n, d)), rng.standard_normal((d, m)), rng.standard_normal(m)
    check_layer(
        bp.Affine(W, b), {"x": x}, params={"W": "dW", "b": "db"}, expected_out=x @ W + b, seed=seed
    ).assert_ok()


@pytest.mark.parametrize("x_shape", [(3, 2, 2, 2), (2, 1, 4, 4), (5, 5)])
def test_affine_nd_and_square(x_shape, rng):
    d = int(np.prod(x_shape[1:]))
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal((d, d)), rng.standard_normal(d)
    layer = bp.Affine(W, b)
    report = check_layer(layer, {"x": x}, params={"W": "dW", "b": "db"})
    report.assert_ok()
    assert layer.backward(np.ones((x_shape[0], d))).shape == x_shape


def test_affine_sees_in_place_updates(rng):
    W, b = rng.standard_normal((3, 2)), np.zeros(2)
    layer = bp.Affine(W, b)
    x = rng.standard_normal((4, 3))
    before = layer.forward(x)
    W *= 2
    assert np.allclose(layer.forward(x), 2 * before)


@given(
    n=st.integers(2, 8), c=st.integers(2, 6), one_hot=st.booleans(), seed=st.integers(0, 2**32 - 1)
)
def test_softmax_with_loss_random(n, c, one_hot, seed):
    rng = np.random.default_rng(seed)
    x = 3 * rng.standard_normal((n, c))
    labels = rng.integers(0, c, size=n)
    t = np.eye(c)[labels] if one_hot else labels
    report = check_layer(bp.SoftmaxWithLoss(), {"x": x, "t": t}, wrt=["x"], dout=1.7, seed=seed)
    report.assert_ok()


def test_softmax_with_loss_gradient_formula(rng):
    x, labels = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    layer = bp.SoftmaxWithLoss()
    layer.forward(x, labels)
    y = bp.softmax(x)
    assert np.allclose(layer.backward(2.0), 2.0 * (y - np.eye(3)[labels]) / 4)


@pytest.mark.parametrize("scale", [1000.0, -1000.0])
def test_softmax_extreme_logits(scale):
    x = np.array([[scale, 0.0, -scale], [1.0, 2.0, 3.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = bp.softmax(x)
        layer = bp.SoftmaxWithLoss()
        loss = layer.forward(x, np.array([2, 0]))
        dx = layer.backward()
    assert np.all(np.isfinite(y)) and np.allclose(y.sum(axis=1), 1)
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    # the wrong class gets a loss of about 2000 for row 0 when scale > 0: finite, not inf
    assert loss == pytest.approx((2 * abs(scale) if scale > 0 else 0) / 2 + 0.5 * 2.4076, rel=1e-3)


def test_cross_entropy_accepts_one_hot_and_indices():
    y = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])
    assert bp.cross_entropy_error(y, np.array([1, 0])) == pytest.approx(
        -(np.log(0.7) + np.log(0.5)) / 2
    )
    assert bp.cross_entropy_error(y, np.eye(3)[[1, 0]]) == pytest.approx(
        bp.cross_entropy_error(y, np.array([1, 0]))
    )
    assert bp.cross_entropy_error(y[0], 1) == pytest.approx(-np.log(0.7))
    assert np.isfinite(bp.cross_entropy_error(np.array([[1.0, 0.0]]), np.array([1])))


def test_layers_do_not_mutate_and_can_repeat(rng):
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    for layer in (bp.Relu(), bp.Sigmoid()):
        x0, d0 = x.copy(), dout.copy()
        layer.forward(x)
        first = layer.backward(dout)
        layer.forward(x + 1)
        layer.forward(x)
        assert np.array_equal(layer.backward(dout), first)
        assert np.array_equal(x, x0) and np.array_equal(dout, d0)


def test_relu_fan_out_gradients_add(rng):
    """A ReLU output feeding two branches: the caller sums the branch gradients."""
    x = _away_from_zero(rng, (4, 3))
    W1, W2 = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    relu, a1, a2 = bp.Relu(), bp.Affine(W1, np.zeros(2)), bp.Affine(W2, np.zeros(2))

    def f(x_):
        h = relu.forward(x_)
        return np.sum(a1.forward(h)) + 2 * np.sum(a2.forward(h))

    f(x)
    dh = a1.backward(np.ones((4, 2))) + a2.backward(2 * np.ones((4, 2)))
    dx = relu.backward(dh)
    assert rel_error(dx, numerical_gradient(f, x.copy())) < 1e-7


def test_reference_disabled_restores_everything(rng):
    with reference_disabled(bp.Affine, bp.softmax):
        with pytest.raises(RuntimeError, match="your own code"):
            bp.Affine(np.eye(2), np.zeros(2))
        with pytest.raises(RuntimeError):
            bp.softmax(np.zeros(3))
    layer = bp.Affine(np.eye(2), np.zeros(2))
    assert np.allclose(layer.forward(np.ones((1, 2))), 1)
    assert np.allclose(bp.softmax(np.zeros(2)), 0.5)


def test_affine_without_dx(rng):
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    full, first = bp.Affine(W, b), bp.Affine(W, b, need_dx=False)
    full.forward(x), first.forward(x)
    dout = rng.standard_normal((4, 2))
    assert first.backward(dout) is None and full.backward(dout) is not None
    assert np.array_equal(first.dW, full.dW) and np.array_equal(first.db, full.db)


def test_identity_with_loss_is_half_mse_with_gradient_y_minus_t_over_n(rng):
    x, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    layer = bp.IdentityWithLoss()
    assert layer.forward(x, t) == pytest.approx(0.5 * np.sum((x - t) ** 2) / 5)
    numeric = numerical_gradient(lambda _: layer.forward(x, t), x)  # x perturbed in place
    layer.forward(x, t)
    assert rel_error(layer.backward(1.0), numeric) < 1e-7
    assert np.allclose(layer.backward(2.5), 2.5 * (x - t) / 5)
