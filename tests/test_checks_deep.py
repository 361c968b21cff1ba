"""check_init_std, check_multilayer_net and check_layer_norms (notebook 8)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from backprop import Affine, Relu, Sigmoid, SoftmaxWithLoss, Tanh
from backprop.checks import check_init_std, check_layer_norms, check_multilayer_net
from backprop.checks.core import SPECS

KINDS = {"relu": Relu, "sigmoid": Sigmoid, "tanh": Tanh}


# --- init_std ---------------------------------------------------------------------------------


def std_right(n_in, weight_init):
    if weight_init == "he":
        return np.sqrt(2.0 / n_in)
    if weight_init == "xavier":
        return np.sqrt(1.0 / n_in)
    return float(weight_init)


def std_table(n_in, weight_init):
    gain = {"he": 2, "xavier": 1}.get(weight_init)
    return weight_init if gain is None else (gain / n_in) ** 0.5


def std_variance(n_in, weight_init):
    return {"he": 2 / n_in, "xavier": 1 / n_in}.get(weight_init, weight_init)


def std_swapped(n_in, weight_init):
    return {"he": np.sqrt(1 / n_in), "xavier": np.sqrt(2 / n_in)}.get(weight_init, weight_init)


def std_over_n(n_in, weight_init):
    return {"he": np.sqrt(2) / n_in, "xavier": 1 / n_in}.get(weight_init, weight_init)


def std_ignores_number(n_in, weight_init):
    return np.sqrt(2 / n_in) if weight_init == "he" else np.sqrt(1 / n_in)


@pytest.mark.parametrize("fn", [std_right, std_table])
@pytest.mark.parametrize("seed", [0, 4])
def test_right_init_std_passes(fn, seed):
    check_init_std(fn, seed=seed).assert_ok()


@pytest.mark.parametrize(
    "fn, name, mistake, words",
    [
        (std_variance, "he", "no_sqrt", "square root"),
        (std_swapped, "he", "swapped", "ReLU"),
        (std_over_n, "he", "sqrt_c_over_n", "1 / sqrt(n_in)"),
        (std_ignores_number, "number", "mismatch", "itself"),
    ],
)
def test_wrong_init_std_is_named(fn, name, mistake, words):
    report = check_init_std(fn, seed=1)
    assert report[name].mistake == mistake and words in report[name].message


# --- MultiLayerNet ----------------------------------------------------------------------------


class Net:
    """A right answer: plain dict params shared with the layers."""

    output_activation = False
    shared = False
    copies = False
    fan = "in"

    def __init__(
        self, input_size, hidden_sizes, output_size, activation="relu", weight_init="he", seed=None
    ):
        rng = np.random.default_rng(seed)
        sizes = [input_size, *hidden_sizes, output_size]
        self.n = len(sizes) - 1
        self.params, self.layers = {}, OrderedDict()
        act = KINDS[activation]()
        for l in range(1, self.n + 1):
            n_in, n_out = sizes[l - 1], sizes[l]
            fan = n_in if self.fan == "in" else n_out
            std = {"he": np.sqrt(2 / fan), "xavier": np.sqrt(1 / fan)}.get(weight_init, weight_init)
            self.params[f"W{l}"] = std * rng.standard_normal((n_in, n_out))
            self.params[f"b{l}"] = np.zeros(n_out)
            W, b = self.params[f"W{l}"], self.params[f"b{l}"]
            self.layers[f"Affine{l}"] = Affine(
                W.copy() if self.copies else W, b.copy() if self.copies else b
            )
            if l < self.n or self.output_activation:
                self.layers[f"Act{l}"] = act if self.shared else KINDS[activation]()
        self.last = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last.forward(self.predict(x), t)

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last.backward(1.0)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        return {
            f"{p}{l}": getattr(self.layers[f"Affine{l}"], "d" + p)
            for l in range(1, self.n + 1)
            for p in "Wb"
        }


class NetEinsum(Net):
    """A right answer written differently: its own matrix products, no layer objects."""

    def predict(self, x):
        self.cache = [x]
        for l in range(1, self.n + 1):
            x = np.einsum("nd,dm->nm", x, self.params[f"W{l}"]) + self.params[f"b{l}"]
            if l < self.n:
                x = (
                    np.where(x > 0, x, 0)
                    if self.act == "relu"
                    else np.tanh(x)
                    if self.act == "tanh"
                    else 1 / (1 + np.exp(-x))
                )
            self.cache.append(x)
        return x

    def __init__(self, *args, activation="relu", **kwargs):
        super().__init__(*args, activation=activation, **kwargs)
        self.act = activation

    def gradient(self, x, t):
        n = x.shape[0]
        s = self.predict(x)
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        d = p.copy()
        d[np.arange(n), t] -= 1
        d /= n
        grads = {}
        for l in range(self.n, 0, -1):
            h = self.cache[l - 1]
            grads[f"W{l}"], grads[f"b{l}"] = h.T @ d, d.sum(axis=0)
            d = d @ self.params[f"W{l}"].T
            if l > 1:
                y = h
                d = d * (
                    (y > 0)
                    if self.act == "relu"
                    else (1 - y**2)
                    if self.act == "tanh"
                    else y * (1 - y)
                )
        return grads


class OutputActivation(Net):
    output_activation = True


class SharedActivation(Net):
    shared = True


class CopiedParams(Net):
    copies = True


class FanOut(Net):
    fan = "out"


class NotReversed(Net):
    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last.backward(1.0)
        layers = list(self.layers.values())
        for layer in [layers[-1], *layers[:-1][::-1][1:], layers[-2]]:
            dout = layer.backward(dout)
        return (
            super().gradient(x, t)
            if False
            else {
                f"{p}{l}": getattr(self.layers[f"Affine{l}"], "d" + p)
                for l in range(1, self.n + 1)
                for p in "Wb"
            }
        )


class OneLayerShort(Net):
    def __init__(self, input_size, hidden_sizes, output_size, **kw):
        super().__init__(input_size, hidden_sizes[:-1] or [output_size], output_size, **kw)


class Raises(Net):
    def gradient(self, x, t):
        raise ValueError("not written yet")


@pytest.mark.parametrize("cls", [Net, NetEinsum])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize(
    "args",
    [
        {},
        {"seed": 3, "hidden_sizes": [6, 2], "weight_init": "xavier"},
        {"seed": 5, "hidden_sizes": [3], "weight_init": 0.7},
    ],
)
def test_right_nets_pass(cls, activation, args):
    check_multilayer_net(cls, activation=activation, **args).assert_ok()


@pytest.mark.parametrize(
    "cls, activation, name, mistake, words",
    [
        (OutputActivation, "relu", "loss", "activation_on_output", "last Affine"),
        (OutputActivation, "sigmoid", "loss", "activation_on_output", "last Affine"),
        (SharedActivation, "relu", "gradient", "error", "own activation object"),
        (CopiedParams, "tanh", "loss", "copied_params", "copies"),
        (FanOut, "relu", "init", "fan_out", "n_in"),
        (NotReversed, "tanh", "gradient", None, "d"),
        (OneLayerShort, "relu", "params", "missing", "Affine layers"),
        (Raises, "relu", "gradient", "error", "not written yet"),
    ],
)
def test_wrong_nets_are_named(cls, activation, name, mistake, words):
    report = check_multilayer_net(cls, activation=activation, seed=2)
    assert not report[name].ok, report
    if mistake:
        assert report[name].mistake == mistake, report[name]
    assert words in report[name].message
    with pytest.raises(AssertionError):
        report.assert_ok()


# --- layer_norms ------------------------------------------------------------------------------


def norms_right(grads):
    L = sum(k.startswith("W") for k in grads)
    return np.array([np.sqrt(np.sum(grads[f"W{l}"] ** 2)) for l in range(1, L + 1)])


def norms_sorted(grads):
    keys = sorted((k for k in grads if k[0] == "W"), key=lambda k: int(k[1:]))
    return [np.linalg.norm(grads[k]) for k in keys]


def norms_squared(grads):
    return np.array([np.sum(grads[f"W{l}"] ** 2) for l in range(1, len(grads) // 2 + 1)])


def norms_biases(grads):
    return np.array(
        [np.linalg.norm(grads[k]) for k in sorted(grads, key=lambda k: (int(k[1:]), k))]
    )


def norms_string_order(grads):
    return np.array([np.linalg.norm(grads[k]) for k in sorted(grads) if k.startswith("W")])


def norms_dict_order(grads):
    return np.array([np.linalg.norm(v) for k, v in grads.items() if k.startswith("W")])


def norms_mean_abs(grads):
    return np.array([np.abs(grads[f"W{l}"]).mean() for l in range(1, len(grads) // 2 + 1)])


def norms_in_place(grads):
    for k in grads:
        grads[k] **= 2
    return np.sqrt([grads[f"W{l}"].sum() for l in range(1, len(grads) // 2 + 1)])


@pytest.mark.parametrize("fn", [norms_right, norms_sorted])
@pytest.mark.parametrize("args", [{}, {"seed": 2, "layers": 12}])
def test_right_norms_pass(fn, args):
    check_layer_norms(fn, **args).assert_ok()


@pytest.mark.parametrize(
    "fn, name, mistake",
    [
        (norms_squared, "norms", "squared"),
        (norms_biases, "norms", "with_biases"),
        (norms_string_order, "norms", "string_order"),
        (norms_dict_order, "order", "order"),
        (norms_mean_abs, "norms", "mean_abs"),
        (norms_in_place, "grads unchanged", "mutated_input"),
    ],
)
def test_wrong_norms_are_named(fn, name, mistake):
    report = check_layer_norms(fn, seed=1)
    assert report[name].mistake == mistake, report[name]


@pytest.mark.parametrize("check", ["init_std", "multilayer_net", "layer_norms"])
@pytest.mark.parametrize(
    "observed",
    [
        {},
        {"he": "x", "params": [1], "ordered": "s", "init": 3, "loss": "a"},
        {
            "he": [None, [1, 2]],
            "params": {"W1": "x"},
            "error": {"raised": 1},
            "ordered": [[1.0]],
            "shuffled_after": {"W1": 2},
        },
        {
            "params": {f"{p}{l}": np.zeros(1) for l in range(1, 5) for p in "Wb"},
            "grads": {"W1": "q"},
            "init": {"he": {"W1": "x"}},
            "update_error": 5,
        },
    ],
)
def test_verify_survives_garbage(check, observed):
    spec = SPECS[check]
    report = spec.verify(spec.inputs(), observed)
    assert not report.ok
