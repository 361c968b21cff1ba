"""TwoLayerNet, SGD and the training loop."""

from __future__ import annotations

from collections import OrderedDict

import backprop as bp
import numpy as np
import pytest
from backprop.checks import check_two_layer_net
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


def test_plain_dict_goes_stale_where_params_rebinds(rng):
    # Notebook 6's story: Affine keeps the arrays it was given, so with a plain dict a new
    # array never reaches the layer; net.params of the reference puts it there.
    W, b = rng.standard_normal((5, 4)), np.zeros(4)
    plain, layer = {"W": W, "b": b}, bp.Affine(W, b)
    plain["W"] = plain["W"] - 1.0
    assert layer.W is W and layer.W is not plain["W"]
    x, t = _toy(rng)
    nets = [bp.TwoLayerNet(5, 4, 3, weight_init_std=0.5, seed=5) for _ in range(2)]
    losses: list[list[float]] = [[], []]
    for _ in range(20):
        for net, rebind, seen in zip(nets, (False, True), losses, strict=True):
            grads = net.gradient(x, t)
            seen.append(net.last_layer.loss)
            for k in net.params:
                if rebind:  # the stale-parameter trap with a plain dict; the same steps here
                    net.params[k] = net.params[k] - 0.5 * grads[k]
                else:
                    net.params[k] -= 0.5 * grads[k]
    assert losses[0] == losses[1]
    assert losses[1][-1] < losses[1][0] / 2
    assert all(
        nets[1].layers[layer].W is nets[1].params[k]
        for k, layer in (("W1", "Affine1"), ("W2", "Affine2"))
    )


def test_params_refuses_unknown_missing_and_deleted_names(rng):
    net = bp.TwoLayerNet(5, 4, 3, seed=1)
    with pytest.raises(KeyError, match="no parameter named 'W3'"):
        net.params["W3"] = rng.standard_normal((4, 3))
    assert list(net.params) == ["W1", "b1", "W2", "b2"]  # nothing stored
    with pytest.raises(KeyError, match="exactly the keys"):
        net.params = {"W1": net.params["W1"]}
    with pytest.raises(TypeError, match="cannot be deleted"):
        del net.params["b1"]
    deep = bp.MultiLayerNet(4, [3], 2, seed=0)
    with pytest.raises(KeyError):
        deep.params["x1"] = np.zeros((4, 3))  # Affine1 has an x, but it is no parameter
    assert deep.layers["Affine1"].x is None


class _OwnInitTwoLayerNet(bp.TwoLayerNet):
    """Notebook 6's given __init__ on top of the reference: predict, loss and gradient
    would all be inherited."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, seed=None):
        rng = np.random.default_rng(seed)
        self.layers = OrderedDict(
            Affine1=bp.Affine(None, None), Relu1=bp.Relu(), Affine2=bp.Affine(None, None)
        )
        self.last_layer = bp.SoftmaxWithLoss()
        self.params = {
            "W1": weight_init_std * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }


def test_a_subclass_of_the_reference_earns_nothing():
    # The check switches off what TwoLayerNet itself defines: _bind (which its params
    # need) and gradient must stay there, not move up into LayerStack.
    assert {"_bind", "gradient"} <= set(vars(bp.TwoLayerNet))
    report = check_two_layer_net(_OwnInitTwoLayerNet, seed=0)
    assert not report.ok
    assert "your own code" in report["predict"].message


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
    history = bp.train(
        net,
        x[:200],
        labels[:200],
        x[200:],
        labels[200:],
        steps=300,
        batch_size=20,
        eval_every=100,
        progress=False,
        on_eval=lambda h: seen.append(len(h.test_acc)),
    )
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
