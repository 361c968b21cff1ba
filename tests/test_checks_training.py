"""check_sgd_step and check_train_epoch (notebook 7): wrong answers named, right ones pass."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from backprop.checks import check_sgd_step, check_train_epoch
from backprop.checks.core import SPECS

# --- sgd_step ---------------------------------------------------------------------------------


def step_loop(params, grads, lr):
    for key, grad in grads.items():
        params[key] -= lr * grad


def step_keys(params, grads, lr):
    for key in params:
        np.subtract(params[key], lr * grads[key], out=params[key])


def step_slice(params, grads, lr):
    for key in grads:
        params[key][...] = params[key] - lr * grads[key]


def step_rebind(params, grads, lr):
    for key, p in params.items():
        p = p - lr * grads[key]


def step_new_array(params, grads, lr):
    for key in grads:
        params[key] = params[key] - lr * grads[key]


def step_plus(params, grads, lr):
    for key in grads:
        params[key] += lr * grads[key]


def step_no_lr(params, grads, lr):
    for key in grads:
        params[key] -= grads[key]


def step_mutates_grads(params, grads, lr):
    for key in grads:
        grads[key] *= lr
        params[key] -= grads[key]


def step_float64(params, grads, lr):
    for key in grads:
        params[key] = (params[key] - lr * grads[key]).astype(np.float64)


def step_raises(params, grads, lr):
    for key in grads:
        params[key] -= lr * grads[key + "x"]


@pytest.mark.parametrize("fn", [step_loop, step_keys, step_slice])
@pytest.mark.parametrize("seed", [0, 5])
def test_right_sgd_steps_pass(fn, seed):
    check_sgd_step(fn, seed=seed).assert_ok()
    check_sgd_step(
        fn, seed=seed, shapes={"W1": [5, 5], "b1": [5], "W2": [5, 2]}, lr=0.37
    ).assert_ok()


@pytest.mark.parametrize(
    "fn, name, mistake, words",
    [
        (step_rebind, "values", "no_update", "rebind"),
        (step_new_array, "in place", "copied_params", "new array"),
        (step_plus, "values", "sign", "subtract"),
        (step_no_lr, "values", "no_lr", "learning rate"),
        (step_mutates_grads, "grads unchanged", "mutated_input", "leave the gradients"),
        (step_float64, "dtype", "dtype", "float32"),
        (step_raises, "values", "error", "KeyError"),
    ],
)
def test_wrong_sgd_steps_are_named(fn, name, mistake, words):
    report = check_sgd_step(fn, seed=1)
    assert not report[name].ok
    assert report[name].mistake == mistake
    assert words in report[name].message
    with pytest.raises(AssertionError):
        report.assert_ok(name)


# --- train_epoch ------------------------------------------------------------------------------


def _step(net, grads, lr):
    for key, grad in grads.items():
        net.params[key] -= lr * grad


def epoch_right(net, x, t, batch_size, lr, rng):
    order = rng.permutation(x.shape[0])
    losses = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        grads = net.gradient(x[idx], t[idx])
        losses.append(float(net.last_layer.loss))
        _step(net, grads, lr)
    return losses


def epoch_shuffle_split(net, x, t, batch_size, lr, rng):
    idx = np.arange(len(x))
    rng.shuffle(idx)
    losses = []
    for batch in np.array_split(idx, range(batch_size, len(x), batch_size)):
        loss = net.loss(x[batch], t[batch])
        grads = net.gradient(x[batch], t[batch])
        _step(net, grads, lr)
        losses.append(loss)
    return np.array(losses)


def epoch_with_replacement(net, x, t, batch_size, lr, rng):
    losses = []
    for _ in range(int(np.ceil(len(x) / batch_size))):
        idx = rng.integers(0, len(x), size=batch_size)
        grads = net.gradient(x[idx], t[idx])
        losses.append(net.last_layer.loss)
        _step(net, grads, lr)
    return losses


def epoch_drops_last(net, x, t, batch_size, lr, rng):
    order = rng.permutation(len(x))
    losses = []
    for i in range(len(x) // batch_size):
        idx = order[i * batch_size : (i + 1) * batch_size]
        grads = net.gradient(x[idx], t[idx])
        losses.append(net.last_layer.loss)
        _step(net, grads, lr)
    return losses


def epoch_unshuffled(net, x, t, batch_size, lr, rng):
    losses = []
    for start in range(0, len(x), batch_size):
        grads = net.gradient(x[start : start + batch_size], t[start : start + batch_size])
        losses.append(net.last_layer.loss)
        _step(net, grads, lr)
    return losses


def epoch_global_rng(net, x, t, batch_size, lr, rng):
    return epoch_right(net, x, t, batch_size, lr, np.random.default_rng())


def epoch_reseeded(net, x, t, batch_size, lr, rng):
    # a copy of the generator: every call starts from the same state, the same order
    return epoch_right(net, x, t, batch_size, lr, copy.deepcopy(rng))


def epoch_labels_separately(net, x, t, batch_size, lr, rng):
    ix, it = rng.permutation(len(x)), rng.permutation(len(x))
    losses = []
    for s in range(0, len(x), batch_size):
        grads = net.gradient(x[ix[s : s + batch_size]], t[it[s : s + batch_size]])
        losses.append(net.last_layer.loss)
        _step(net, grads, lr)
    return losses


def epoch_shuffles_data(net, x, t, batch_size, lr, rng):
    order = rng.permutation(len(x))
    x[:], t[:] = x[order], t[order]
    losses = []
    for s in range(0, len(x), batch_size):
        grads = net.gradient(x[s : s + batch_size], t[s : s + batch_size])
        losses.append(net.last_layer.loss)
        _step(net, grads, lr)
    return losses


def epoch_loss_after(net, x, t, batch_size, lr, rng):
    order = rng.permutation(len(x))
    losses = []
    for s in range(0, len(x), batch_size):
        idx = order[s : s + batch_size]
        grads = net.gradient(x[idx], t[idx])
        _step(net, grads, lr)
        losses.append(net.loss(x[idx], t[idx]))
    return losses


def epoch_no_return(net, x, t, batch_size, lr, rng):
    epoch_right(net, x, t, batch_size, lr, rng)


def epoch_no_update(net, x, t, batch_size, lr, rng):
    order = rng.permutation(len(x))
    losses = []
    for s in range(0, len(x), batch_size):
        idx = order[s : s + batch_size]
        net.gradient(x[idx], t[idx])
        losses.append(net.last_layer.loss)
    return losses


def epoch_new_arrays(net, x, t, batch_size, lr, rng):
    order = rng.permutation(len(x))
    losses = []
    for s in range(0, len(x), batch_size):
        idx = order[s : s + batch_size]
        grads = net.gradient(x[idx], t[idx])
        losses.append(net.last_layer.loss)
        for k in grads:
            net.params[k] = net.params[k] - lr * grads[k]
    return losses


def epoch_raises(net, x, t, batch_size, lr, rng):
    return [net.gradient(x, t)["W"].missing]


@pytest.mark.parametrize("fn", [epoch_right, epoch_shuffle_split])
@pytest.mark.parametrize(
    "args",
    [{}, {"seed": 3, "n": 24, "batch_size": 6}, {"seed": 9, "n": 17, "batch_size": 5, "lr": 0.2}],
)
def test_right_epochs_pass(fn, args):
    check_train_epoch(fn, **args).assert_ok()


@pytest.mark.parametrize(
    "fn, name, mistake, words",
    [
        (epoch_with_replacement, "batches", "with_replacement", "replacement"),
        (epoch_drops_last, "batches", "dropped_last", "last"),
        (epoch_unshuffled, "batches", "not_shuffled", "shuffle"),
        (epoch_global_rng, "batches", "unseeded", "rng passed in"),
        (epoch_reseeded, "batches", "reseeded", "new permutation"),
        (epoch_labels_separately, "batches", "labels_mismatched", "same indices"),
        (epoch_shuffles_data, "data unchanged", "mutated_input", "in place"),
        (epoch_loss_after, "losses", "loss_after_update", "before the step"),
        (epoch_no_return, "losses", "missing", "return"),
        (epoch_no_update, "params", "no_update", "sgd_step"),
        (epoch_new_arrays, "params", "copied_params", "in place"),
        (epoch_raises, "batches", "error", "AttributeError"),
    ],
)
def test_wrong_epochs_are_named(fn, name, mistake, words):
    report = check_train_epoch(fn, seed=2)
    assert not report[name].ok, report
    assert report[name].mistake == mistake, report[name]
    assert words in report[name].message
    with pytest.raises(AssertionError):
        report.assert_ok()


@pytest.mark.parametrize("check", ["sgd_step", "train_epoch"])
@pytest.mark.parametrize(
    "observed",
    [
        {},
        {"main": "x", "losses1": "nope", "batches_x1": [1, 2], "batches_t1": "a"},
        {
            "main": {"params": {"W": "s"}, "arrays": None, "same": [1]},
            "f32": {"params": 3},
            "losses1": [1.0, 2.0],
            "batches_x1": [[["a"]]],
            "batches_t1": [[1]],
            "params1": {"W": "x"},
            "same1": "y",
            "x_after": None,
        },
    ],
)
def test_verify_survives_garbage(check, observed):
    spec = SPECS[check]
    report = spec.verify(spec.inputs(), observed)
    assert not report.ok
