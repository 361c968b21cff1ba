"""The reference MultiLayerNet: shapes, initialisation, and gradients against numerical ones."""

from __future__ import annotations

import backprop as bp
import numpy as np
import pytest
from backprop.checks import check_multilayer_net
from backprop.multilayer import init_std


def _data(rng, n=6, d=4, c=3):
    return rng.standard_normal((n, d)), rng.integers(0, c, size=n)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("weight_init", ["he", "xavier", 0.5])
def test_gradient_matches_numerical(activation, weight_init, rng):
    net = bp.MultiLayerNet(4, [5, 4, 3], 3, activation=activation, weight_init=weight_init, seed=1)
    x, t = _data(rng)
    grads, numeric = net.gradient(x, t), net.numerical_gradient(x, t)
    assert set(grads) == set(net.params) == {f"{p}{l}" for p in "Wb" for l in range(1, 5)}
    for key in grads:
        assert grads[key].shape == net.params[key].shape
        assert bp.rel_error(grads[key], numeric[key]) < 1e-6, key


@pytest.mark.parametrize("hidden", [[], [7], [6, 5, 4, 3, 2]])
def test_shapes_and_layers(hidden, rng):
    net = bp.MultiLayerNet(8, hidden, 3, seed=0)
    sizes = [8, *hidden, 3]
    for l in range(1, len(sizes)):
        assert net.params[f"W{l}"].shape == (sizes[l - 1], sizes[l])
        assert net.params[f"b{l}"].shape == (sizes[l],)
        assert net.layers[f"Affine{l}"].W is net.params[f"W{l}"]
    acts = [k for k in net.layers if k.startswith("Activation")]
    assert len(acts) == len(hidden)
    assert len({id(net.layers[k]) for k in acts}) == len(acts)  # one object per layer
    x, t = _data(rng, n=5, d=8)
    assert net.predict(x).shape == (5, 3)
    assert np.isfinite(net.loss(x, t))
    assert 0.0 <= net.accuracy(x, t) <= 1.0


@pytest.mark.parametrize("kind, factor", [("he", 2.0), ("xavier", 1.0)])
def test_init_scales(kind, factor):
    net = bp.MultiLayerNet(400, [300, 200], 10, weight_init=kind, seed=0)
    for l, n_in in enumerate([400, 300, 200], start=1):
        assert abs(net.params[f"W{l}"].std() / np.sqrt(factor / n_in) - 1) < 0.03
        assert not net.params[f"b{l}"].any()
    assert init_std(50, "he") == pytest.approx(0.2)
    assert init_std(25, "xavier") == pytest.approx(0.2)
    assert init_std(25, 0.01) == 0.01
    with pytest.raises(ValueError):
        init_std(3, "lecun")
    with pytest.raises(ValueError):
        bp.MultiLayerNet(3, [2], 2, activation="softplus")


def test_params_assignment_rebinds_and_in_place_update_is_seen(rng):
    net = bp.MultiLayerNet(4, [5, 4], 3, activation="tanh", seed=2)
    x, t = _data(rng)
    before = net.loss(x, t)
    net.params["W2"] = net.params["W2"] * 0
    assert net.layers["Affine2"].W is net.params["W2"]
    net.params["W3"] -= 1.0
    assert net.loss(x, t) != before


def test_training_reduces_the_loss(rng):
    centres = 3 * rng.standard_normal((3, 5))
    t = rng.integers(0, 3, size=300)
    x = centres[t] + rng.standard_normal((300, 5))
    net = bp.MultiLayerNet(5, [16, 16], 3, activation="relu", seed=0)
    first = net.loss(x, t)
    r = np.random.default_rng(0)
    for _ in range(10):
        bp.train_epoch(net, x, t, batch_size=30, lr=0.1, rng=r)
    assert net.loss(x, t) < first / 4
    assert net.accuracy(x, t) > 0.9


def test_epoch_batches_is_a_permutation():
    batches = bp.epoch_batches(23, 5, np.random.default_rng(0))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert sorted(np.concatenate(batches).tolist()) == list(range(23))
    assert np.array_equal(np.concatenate(batches), np.random.default_rng(0).permutation(23))


class _OwnInitMultiLayerNet(bp.MultiLayerNet):
    """A learner's __init__ on top of the reference, inheriting everything else."""

    def __init__(
        self, input_size, hidden_sizes, output_size, activation="relu", weight_init="he", seed=None
    ):
        rng = np.random.default_rng(seed)
        sizes = [input_size, *hidden_sizes, output_size]
        self.n_layers = len(sizes) - 1
        self.layers, self._owners, values = {}, {}, {}
        for l in range(1, self.n_layers + 1):
            self.layers[f"Affine{l}"] = bp.Affine(None, None)
            if l < self.n_layers:
                self.layers[f"Activation{l}"] = {
                    "relu": bp.Relu,
                    "sigmoid": bp.Sigmoid,
                    "tanh": bp.Tanh,
                }[activation]()
            self._owners[f"W{l}"], self._owners[f"b{l}"] = (f"Affine{l}", "W"), (f"Affine{l}", "b")
            std = np.sqrt((2.0 if weight_init == "he" else 1.0) / sizes[l - 1])
            values[f"W{l}"] = std * rng.standard_normal((sizes[l - 1], sizes[l]))
            values[f"b{l}"] = np.zeros(sizes[l])
        self.last_layer = bp.SoftmaxWithLoss()
        self.params = values


def test_a_subclass_of_the_reference_earns_nothing():
    # The check switches off what MultiLayerNet itself defines: _bind (which its params
    # need) and gradient must stay there, not move up into LayerStack.
    assert {"_bind", "gradient"} <= set(vars(bp.MultiLayerNet))
    report = check_multilayer_net(_OwnInitMultiLayerNet, seed=0)
    assert not report.ok
    assert "your own code" in report["params"].message  # refused as it is created
