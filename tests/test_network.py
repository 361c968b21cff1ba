"""TwoLayerNet, SGD and the training loop."""
from __future__ import annotations

import numpy as np
import pytest

import backprop as bp
from backprop.gradcheck import diagnose, rel_error


def _toy(rng, n=6, d=5, c=3):
    return rng.standard_normal((n, d)), rng.integers(0, c, size=n)


@pytest.mark.parametrize("one_hot", [False, True])
def test_gradient_matches_numerical(rng, one_hot):
    net = bp.TwoLayerNet(5, 4, 3, weight_init_std=1.0, seed=3)
    x, labels = _toy(rng)
    t = np.eye(3)[labels] if one_hot else labels
    grads, numeric = net.gradient(x, t), net.numerical_gradient(x, t)
    assert set(grads) == {"W1", "b1", "W2", "b2"}
    for name in grads:
        check = diagnose(name, grads[name], numeric[name], batch_size=x.shape[0])
        assert check.ok, check.message


def test_square_shapes_catch_transposes(rng):
    net = bp.TwoLayerNet(4, 4, 4, weight_init_std=1.0, seed=0)
    x, t = _toy(rng, n=4, d=4, c=4)
    grads, numeric = net.gradient(x, t), net.numerical_gradient(x, t)
    assert all(rel_error(grads[k], numeric[k]) < 1e-7 for k in grads)
    assert rel_error(grads["W1"].T, numeric["W1"]) > 1e-3


def test_params_shared_with_layers_in_place_and_reassigned(rng):
    net = bp.TwoLayerNet(5, 4, 3, seed=1)
    x, t = _toy(rng)
    assert net.layers["Affine1"].W is net.params["W1"]
    net.params["W1"] *= 10  # in place
    assert net.layers["Affine1"].W is net.params["W1"]
    new = rng.standard_normal((5, 4))
    net.params["W1"] = new  # rebinding: the layer follows
    assert net.layers["Affine1"].W is new
    net.params = {k: v.copy() for k, v in net.params.items()}  # whole dict
    assert net.layers["Affine2"].b is net.params["b2"]
    grads = net.gradient(x, t)
    assert rel_error(grads["W1"], net.numerical_gradient(x, t)["W1"]) < 1e-7


def test_gradient_twice_same_and_inputs_untouched(rng):
    net = bp.TwoLayerNet(5, 4, 3, weight_init_std=1.0, seed=2)
    x, t = _toy(rng)
    x0 = x.copy()
    first = {k: v.copy() for k, v in net.gradient(x, t).items()}
    second = net.gradient(x, t)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert np.array_equal(x, x0)


def test_sgd_updates_in_place(rng):
    net = bp.TwoLayerNet(5, 4, 3, weight_init_std=1.0, seed=4)
    x, t = _toy(rng)
    ids = {k: id(v) for k, v in net.params.items()}
    loss0 = net.loss(x, t)
    opt = bp.SGD(lr=0.1)
    for _ in range(50):
        opt.update(net.params, net.gradient(x, t))
    assert {k: id(v) for k, v in net.params.items()} == ids
    assert net.loss(x, t) < loss0 / 2


def test_train_records_history_and_learns():
    rng = np.random.default_rng(0)
    centers = 3 * rng.standard_normal((3, 8))
    labels = rng.integers(0, 3, size=300)
    x = (centers[labels] + rng.standard_normal((300, 8))).astype(np.float32)
    net = bp.TwoLayerNet(8, 16, 3, weight_init_std=0.1, seed=0, dtype=np.float32)
    seen = []
    history = bp.train(net, x[:200], labels[:200], x[200:], labels[200:], steps=300,
                       batch_size=20, eval_every=100, progress=False,
                       on_eval=lambda h: seen.append(len(h.test_acc)))
    assert len(history.loss) == 300
    assert history.eval_steps == [0, 100, 200, 299]
    assert seen == [1, 2, 3, 4]
    assert history.test_acc[-1] > 0.9 > history.test_acc[0] - 0.5
    assert np.mean(history.loss[-20:]) < np.mean(history.loss[:20]) / 3
    assert net.params["W1"].dtype == np.float32


def test_float32_net_refuses_numerical_gradient(rng):
    net = bp.TwoLayerNet(5, 4, 3, dtype=np.float32)
    x, t = _toy(rng)
    with pytest.raises(TypeError, match="float64"):
        net.numerical_gradient(x.astype(np.float32), t)
