"""The checks of notebook 2: numerical_diff, numerical_gradient and gradient_descent. Wrong
answers, written as a learner would write them, fail with the mistake named; right answers
written differently pass; forged records fail without raising."""

from __future__ import annotations

import json

import backprop as bp
import numpy as np
import pytest
from backprop.checks import check_gradient_descent, check_numerical_diff, check_numerical_gradient
from backprop.checks.core import SPECS, judge_observed
from hypothesis import given, settings
from hypothesis import strategies as st

# --- numerical_diff ---------------------------------------------------------------------------


def numerical_diff(f, x, h=1e-4):
    return (f(x + h) - f(x - h)) / (2 * h)


def diff_halves(f, x, h=1e-4):  # written differently: average of two one-sided slopes
    return 0.5 * ((f(x + h) - f(x)) / h + (f(x) - f(x - h)) / h)


def diff_forward(f, x, h=1e-4):
    return (f(x + h) - f(x)) / h


def diff_no_half(f, x, h=1e-4):
    return (f(x + h) - f(x - h)) / h


def diff_fixed_h(f, x, h=1e-4):
    h = 1e-4
    return (f(x + h) - f(x - h)) / (2 * h)


def diff_returns_nothing(f, x, h=1e-4):
    (f(x + h) - f(x - h)) / (2 * h)


def diff_raises(f, x, h=1e-4):
    return (f(x + h) - f(x - h)) / (2 * step)  # noqa: F821


def diff_reference(f, x, h=1e-4):
    return bp.numerical_diff(f, x, h)


@pytest.mark.parametrize("target", [numerical_diff, diff_halves])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_numerical_diff_right_answers_pass(target, seed):
    report = check_numerical_diff(target, seed=seed, cases=4)
    assert report.ok, str(report)


@pytest.mark.parametrize(
    "target, name, key",
    [
        (diff_forward, "central", "forward"),
        (diff_forward, "h", "forward"),
        (diff_no_half, "central", "no_half"),
        (diff_fixed_h, "h", "ignores_h"),
        (diff_returns_nothing, "central", "missing"),
        (diff_raises, "central", "error"),
        (diff_reference, "central", "delegated"),
    ],
)
def test_numerical_diff_wrong_answers_are_named(target, name, key):
    report = check_numerical_diff(target, seed=0)
    assert report[name].mistake == key, str(report)
    with pytest.raises(AssertionError, match=name):
        report.assert_ok(name)


def test_numerical_diff_fixed_h_passes_central_only():
    report = check_numerical_diff(diff_fixed_h, seed=0)
    assert report["central"].ok and not report["h"].ok
    assert "step h you are given" in report["h"].message


def test_numerical_diff_error_names_the_line():
    message = check_numerical_diff(diff_raises, seed=0)["central"].message
    assert "NameError" in message and "step" in message and "test_checks_numerical.py" in message


# --- numerical_gradient -----------------------------------------------------------------------


def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        original = x[idx]
        x[idx] = original + h
        f_plus = f(x)
        x[idx] = original - h
        f_minus = f(x)
        x[idx] = original
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


def grad_nditer(f, x, h=1e-5):  # written differently: np.nditer with multi_index
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        i = it.multi_index
        keep = float(x[i])
        x[i] = keep + h
        up = f(x)
        x[i] = keep - h
        down = f(x)
        x[i] = keep
        grad[i] = (up - down) / (2 * h)
        it.iternext()
    return grad


def grad_flat_view(f, x, h=1e-5):  # written differently: a flat view, reshaped at the end
    flat = x.reshape(-1)
    out = np.empty(flat.size)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + h
        up = f(x)
        flat[i] = keep - h
        down = f(x)
        flat[i] = keep
        out[i] = (up - down) / (2 * h)
    return out.reshape(x.shape)


def grad_not_restored(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        x[idx] += h
        f_plus = f(x)
        x[idx] -= 2 * h
        f_minus = f(x)
        x[idx] += h
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad


def grad_on_copy(f, x, h=1e-5):
    return numerical_gradient(f, x.copy(), h)


def grad_forward(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        original = x[idx]
        base = f(x)
        x[idx] = original + h
        grad[idx] = (f(x) - base) / h
        x[idx] = original
    return grad


def grad_flat_result(f, x, h=1e-5):
    return grad_flat_view(f, x, h).ravel()


def grad_range_len(f, x, h=1e-5):  # only works for 1-d x
    grad = np.zeros(len(x))
    for i in range(len(x)):
        original = x[i]
        x[i] = original + h
        f_plus = f(x)
        x[i] = original - h
        f_minus = f(x)
        x[i] = original
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def grad_float32(f, x, h=1e-5):
    return numerical_gradient(f, x, h).astype(np.float32)


def grad_fixed_h(f, x, h=1e-5):
    return numerical_gradient(f, x, 1e-5)


def grad_into_x(f, x, h=1e-5):  # writes the gradient over x and returns it
    x[...] = numerical_gradient(f, x.copy(), h)
    return x


@pytest.mark.parametrize("target", [numerical_gradient, grad_nditer, grad_flat_view])
@pytest.mark.parametrize("shape", [(3, 4), (2, 2, 3), (5,)])
def test_numerical_gradient_right_answers_pass(target, shape):
    report = check_numerical_gradient(target, seed=2, shape=shape)
    assert report.ok, str(report)


@pytest.mark.parametrize(
    "target, name, key",
    [
        (grad_not_restored, "x restored", "not_restored"),
        (grad_on_copy, "x restored", "copied_x"),
        (grad_forward, "values", "forward"),
        (grad_flat_result, "shapes", "shape"),
        (grad_flat_result, "values", "shape"),
        (grad_range_len, "shapes", "shape"),
        (grad_float32, "shapes", "dtype"),
        (grad_fixed_h, "values", "ignores_h"),
    ],
)
def test_numerical_gradient_wrong_answers_are_named(target, name, key):
    report = check_numerical_gradient(target, seed=0)
    assert report[name].mistake == key, str(report)
    with pytest.raises(AssertionError, match=name):
        report.assert_ok(name)


def test_numerical_gradient_writing_into_x_is_named():
    report = check_numerical_gradient(grad_into_x, seed=0)
    assert report["x restored"].mistake == "not_restored", str(report)
    assert "assign back the value you saved" in report["x restored"].message


# --- gradient_descent -------------------------------------------------------------------------


def gradient_descent(f, init_x, lr=0.01, step_num=100):
    x = np.array(init_x, dtype=np.float64)
    for _ in range(step_num):
        x -= lr * numerical_gradient(f, x)
    return x


def gd_functional(f, init_x, lr=0.01, step_num=100):  # written differently: new arrays
    x = init_x.copy()
    i = 0
    while i < step_num:
        x = x - lr * grad_nditer(f, x)
        i += 1
    return x


def gd_mutates(f, init_x, lr=0.01, step_num=100):
    x = init_x
    for _ in range(step_num):
        x -= lr * numerical_gradient(f, x)
    return x


def gd_uphill(f, init_x, lr=0.01, step_num=100):
    x = init_x.copy()
    for _ in range(step_num):
        x += lr * numerical_gradient(f, x)
    return x


def gd_extra_step(f, init_x, lr=0.01, step_num=100):
    x = init_x.copy()
    for _ in range(step_num + 1):
        x = x - lr * numerical_gradient(f, x)
    return x


def gd_one_short(f, init_x, lr=0.01, step_num=100):
    x = init_x.copy()
    for _ in range(1, step_num):
        x = x - lr * numerical_gradient(f, x)
    return x


def gd_no_lr(f, init_x, lr=0.01, step_num=100):
    x = init_x.copy()
    for _ in range(step_num):
        x = x - numerical_gradient(f, x)
    return x


def gd_default_lr(f, init_x, lr=0.1, step_num=100):
    x = init_x.copy()
    for _ in range(step_num):
        x = x - lr * numerical_gradient(f, x)
    return x


def gd_returns_init_when_zero(f, init_x, lr=0.01, step_num=100):
    if step_num == 0:
        return init_x
    return gradient_descent(f, init_x, lr, step_num)


def gd_capped(f, init_x, lr=0.01, step_num=100):  # "safety" clipping spoils divergence
    x = init_x.copy()
    for _ in range(step_num):
        x = np.clip(x - lr * numerical_gradient(f, x), -10, 10)
    return x


@pytest.mark.parametrize("target", [gradient_descent, gd_functional])
@pytest.mark.parametrize("seed, size", [(0, 2), (4, 3), (9, 1)])
def test_gradient_descent_right_answers_pass(target, seed, size):
    report = check_gradient_descent(target, seed=seed, size=size)
    assert report.ok, str(report)


@pytest.mark.parametrize(
    "target, name, key",
    [
        (gd_mutates, "init_x unchanged", "mutated_input"),
        (gd_uphill, "step", "uphill"),
        (gd_extra_step, "step", "two_steps"),
        (gd_extra_step, "steps", "off_by_one_more"),
        (gd_one_short, "steps", "off_by_one"),
        (gd_no_lr, "step", "no_lr"),
        (gd_default_lr, "learning rate", "default_lr"),
        (gd_returns_init_when_zero, "steps", "returned_input"),
        (gd_capped, "learning rate", "mismatch"),
    ],
)
def test_gradient_descent_wrong_answers_are_named(target, name, key):
    report = check_gradient_descent(target, seed=0)
    assert report[name].mistake == key, str(report)
    with pytest.raises(AssertionError, match=name):
        report.assert_ok(name)


def test_gradient_descent_uses_the_learners_numerical_gradient_message():
    def broken(f, init_x, lr=0.01, step_num=100):
        return init_x - lr * undefined_gradient(f, init_x)  # noqa: F821

    report = check_gradient_descent(broken, seed=0)
    assert report["step"].mistake == "error" and "NameError" in report["step"].message


# --- all three: determinism, JSON-able arguments, forged records ------------------------------


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_right_answers_pass_any_seed(seed):
    assert check_numerical_diff(numerical_diff, seed=seed).ok
    assert check_numerical_gradient(numerical_gradient, seed=seed, shape=(2, 3)).ok
    assert check_gradient_descent(gradient_descent, seed=seed).ok


GARBAGE = [
    {},
    {"default": "3"},
    {"default": [None], "given": 5},
    {"default": [[1, 2]] * 3, "given": ["x"] * 6},
    {"default": np.ones(2), "x_after": "x", "others": "o", "closure": None},
    {
        "one": "a",
        "many": [1],
        "slope": {"k": 1},
        "zero_steps": None,
        "one_x0_after": "z",
        "lr_zero": np.ones((7, 7)),
        "defaults": [],
    },
    {"closure_arg_is_x": "yes", "returned_x": "no", "zero_steps_is_x0": 0},
]


@pytest.mark.parametrize("name", ["numerical_diff", "numerical_gradient", "gradient_descent"])
@pytest.mark.parametrize("observed", GARBAGE)
def test_forged_records_fail_and_never_raise(name, observed):
    spec = SPECS[name]
    report = judge_observed(spec, spec.inputs(seed=0), observed)
    assert not report.ok


@pytest.mark.parametrize(
    "check, args",
    [
        (check_numerical_diff, {"seed": 3, "cases": 2}),
        (check_numerical_gradient, {"seed": 3, "shape": [2, 2]}),
        (check_gradient_descent, {"seed": 3, "size": 4}),
    ],
)
def test_inputs_are_deterministic_from_json_args(check, args):
    json.dumps(args)
    a, b = check.spec.inputs(**args), check.spec.inputs(**args)
    assert json.dumps(a, default=lambda v: v.tolist()) == json.dumps(
        b, default=lambda v: v.tolist()
    )
