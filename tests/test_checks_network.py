"""The TwoLayerNet check of notebook 6. Learner-style networks (a plain dict of params shared
with backprop's Affine, Relu and SoftmaxWithLoss, as the notebook's __init__ builds them):
wrong gradients fail with the mistake named, right ones written differently pass, forged
records fail without raising."""

from __future__ import annotations

from collections import OrderedDict

import backprop as bp
import numpy as np
import pytest
from backprop import Affine, Relu, SoftmaxWithLoss
from backprop.checks import check_two_layer_net
from backprop.checks.core import SPECS, judge_observed
from hypothesis import given, settings
from hypothesis import strategies as st


class Net:
    """As notebook 6 writes it."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, seed=None):
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": weight_init_std * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(self.params["W1"], self.params["b1"])
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t)

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        return {
            "W1": self.layers["Affine1"].dW,
            "b1": self.layers["Affine1"].db,
            "W2": self.layers["Affine2"].dW,
            "b2": self.layers["Affine2"].db,
        }


class NetListOrder(Net):  # written differently: explicit list, names looked up by key
    def gradient(self, x, t):
        self.loss(x, t)
        d = self.last_layer.backward()
        for name in ["Affine2", "Relu1", "Affine1"]:
            d = self.layers[name].backward(d)
        a1, a2 = self.layers["Affine1"], self.layers["Affine2"]
        return dict(
            zip(
                ["W1", "b1", "W2", "b2"],
                [a1.dW.copy(), a1.db.copy(), a2.dW.copy(), a2.db.copy()],
                strict=False,
            )
        )


class NetNoForward(Net):
    def gradient(self, x, t):
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        return {
            "W1": self.layers["Affine1"].dW,
            "b1": self.layers["Affine1"].db,
            "W2": self.layers["Affine2"].dW,
            "b2": self.layers["Affine2"].db,
        }


class NetNotChained(Net):  # forgot dout: Relu1 gets the loss layer's gradient, not Affine2's
    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(self.layers.values()):
            layer.backward(dout)
            if isinstance(layer, Relu):
                dout = layer.backward(dout)
        return {
            "W1": self.layers["Affine1"].dW,
            "b1": self.layers["Affine1"].db,
            "W2": self.layers["Affine2"].dW,
            "b2": self.layers["Affine2"].db,
        }


class NetSkipsRelu(Net):
    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        dout = self.layers["Affine2"].backward(dout)
        self.layers["Affine1"].backward(dout)
        return {
            "W1": self.layers["Affine1"].dW,
            "b1": self.layers["Affine1"].db,
            "W2": self.layers["Affine2"].dW,
            "b2": self.layers["Affine2"].db,
        }


class NetDividesAgain(Net):
    def gradient(self, x, t):
        grads = super().gradient(x, t)
        return {k: v / len(x) for k, v in grads.items()}


class NetSwapped(Net):
    def gradient(self, x, t):
        g = super().gradient(x, t)
        return {"W1": g["W1"], "b1": g["b1"], "W2": g["W2"], "b2": g["b1"]}


class NetSoftmaxPredict(Net):
    def predict(self, x):
        s = super().predict(x)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def loss(self, x, t):
        return self.last_layer.forward(super().predict(x), t)


class NetCopies(Net):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.layers["Affine1"].W = self.params["W1"].copy()
        self.layers["Affine2"].W = self.params["W2"].copy()


class NetRaises(Net):
    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in self.layers.values():  # forward order: shapes do not fit
            dout = layer.backward(dout)
        return {}


@pytest.mark.parametrize("cls", [Net, NetListOrder])
def test_right_networks_pass(cls):
    check_two_layer_net(cls, seed=0).assert_ok()
    check_two_layer_net(cls, seed=1, one_hot=True, hidden_size=5).assert_ok()


@pytest.mark.parametrize(
    "cls, name, mistake",
    [
        (NetNoForward, "fresh", "stale_state"),
        (NetNotChained, "W1", "not_chained"),
        (NetSkipsRelu, "W1", "relu_skipped"),
        (NetSkipsRelu, "b1", "relu_skipped"),
        (NetDividesAgain, "W2", "batch_size_twice"),
        (NetSwapped, "b2", "swapped_b1"),
        (NetSoftmaxPredict, "predict", "softmax_in_predict"),
        (NetRaises, "W1", "error"),
    ],
)
def test_wrong_networks_are_named(cls, name, mistake):
    report = check_two_layer_net(cls, seed=0)
    assert name in report and not report[name].ok, str(report)
    if mistake:
        assert report[name].mistake == mistake, str(report)
    assert len(report[name].message) > 15


def test_copied_params_are_named():
    report = check_two_layer_net(NetCopies, seed=0)
    assert report["predict"].mistake == "copied_params", str(report)


def test_stale_forward_is_named_fresh():
    class NetCachedGrads(Net):
        cache = None

        def gradient(self, x, t):
            if self.cache is None:
                self.cache = {k: np.array(v, copy=True) for k, v in super().gradient(x, t).items()}
            return self.cache

    report = check_two_layer_net(NetCachedGrads, seed=0)
    assert report["W1"].ok
    assert report["fresh"].mistake == "stale_state", str(report)


def test_reference_is_refused():
    report = check_two_layer_net(bp.TwoLayerNet, seed=0)
    assert not report.ok and "called backprop's reference" in str(report)


def test_learner_error_names_the_line():
    report = check_two_layer_net(NetRaises, seed=0)
    assert "test_checks_network.py" in report["W1"].message


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 6),
    h=st.integers(2, 6),
    c=st.integers(2, 5),
    one_hot=st.booleans(),
)
def test_right_network_passes_on_any_data(seed, n, h, c, one_hot):
    check_two_layer_net(
        Net, seed=seed, batch_size=n, hidden_size=h, output_size=c, one_hot=one_hot
    ).assert_ok()


@pytest.mark.parametrize(
    "observed",
    [
        {},
        {"predict": "x", "loss": [1, 2], "grads": "nope"},
        {
            "predict": None,
            "loss": None,
            "grads": {"W1": "a", "b1": None},
            "after": 3,
            "grads_again": 5,
            "grads_updated": {},
        },
        {"error": {"step": "create", "raised": "boom"}},
        {"grads": {"W1": [[1]], "b1": [1], "W2": [1], "b2": "s"}, "after": ["x", None]},
    ],
)
def test_forged_records_fail_and_do_not_raise(observed):
    spec = SPECS["two_layer_net"]
    assert not judge_observed(spec, spec.inputs(), observed).ok
    assert not spec.verify(spec.inputs(), observed).ok
