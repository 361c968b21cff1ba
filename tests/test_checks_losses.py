"""The checks of notebook 5: softmax, cross_entropy_error, the softmax Jacobian,
SoftmaxWithLoss and IdentityWithLoss. Wrong answers, written as a learner would write them,
fail with the mistake named; right answers written differently pass; forged records fail."""

from __future__ import annotations

import backprop as bp
import numpy as np
import pytest
from backprop.checks import (
    check_cross_entropy_error,
    check_identity_with_loss,
    check_softmax,
    check_softmax_jacobian,
    check_softmax_with_loss,
)
from backprop.checks.core import SPECS, judge_observed
from backprop.gradcheck import numerical_gradient
from hypothesis import given, settings
from hypothesis import strategies as st


def failed(report, name):
    return report[name].mistake if name in report and not report[name].ok else None


# --- softmax ------------------------------------------------------------------------------------


def softmax_right(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def softmax_logsumexp(x):  # written differently: through log-softmax
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return np.exp(x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def softmax_loop(x):  # row by row
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        e = np.exp(x - x.max())
        return e / e.sum()
    return np.stack([softmax_loop(row) for row in x])


def softmax_naive(x):
    e = np.exp(x)
    return e / np.sum(e, axis=-1, keepdims=True)


def softmax_global_max(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e, axis=-1, keepdims=True)


def softmax_whole_sum(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e)


def softmax_axis1(x):  # fine for a batch, raises for one row
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def softmax_inplace(x):
    x -= np.max(x, axis=-1, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=-1, keepdims=True)


def softmax_axis0(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


@pytest.mark.parametrize("fn", [softmax_right, softmax_logsumexp, softmax_loop])
def test_softmax_right_answers_pass(fn):
    check_softmax(fn, seed=3).assert_ok()


@pytest.mark.parametrize(
    "fn, name, mistake",
    [
        (softmax_naive, "stable", "not_shifted"),
        (softmax_global_max, "stable", "global_max"),
        (softmax_whole_sum, "batch", "not_per_row"),
        (softmax_axis0, "batch", "wrong_axis"),
        (softmax_axis1, "single row", "error"),
        (softmax_inplace, "x unchanged", "mutated_input"),
    ],
)
def test_softmax_wrong_answers_are_named(fn, name, mistake):
    report = check_softmax(fn, seed=0)
    assert failed(report, name) == mistake, str(report)
    assert len(report[name].message) > 20


def test_softmax_refuses_the_reference():
    assert failed(check_softmax(bp.softmax, seed=0), "batch") == "delegated"


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 6), c=st.integers(2, 7))
def test_softmax_check_passes_right_answers_on_any_data(seed, n, c):
    check_softmax(softmax_right, seed=seed, batch_size=n, num_classes=c).assert_ok()


# --- cross_entropy_error ---------------------------------------------------------------------


def ce_right(y, t, eps=1e-12):
    y, t = np.asarray(y, dtype=np.float64), np.asarray(t)
    if y.ndim == 1:
        t = t.reshape(1, -1) if t.shape == y.shape else t.reshape(1)
        y = y.reshape(1, -1)
    if t.shape == y.shape:
        t = t.argmax(axis=1)
    return float(-np.mean(np.log(y[np.arange(y.shape[0]), t] + eps)))


def ce_one_hot_everywhere(y, t, eps=1e-12):  # written differently: indices turned into one-hot
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    t = np.asarray(t)
    hot = t.reshape(y.shape) if t.size == y.size else np.eye(y.shape[1])[t.reshape(-1)]
    return float(-np.einsum("nk,nk->", hot, np.log(y + eps)) / y.shape[0])


def ce_sum(y, t, eps=1e-12):
    y = np.atleast_2d(y)
    t = np.asarray(t)
    hot = t.reshape(y.shape) if t.size == y.size else np.eye(y.shape[1])[t.reshape(-1)]
    return float(-np.sum(hot * np.log(y + eps)))


def ce_no_eps(y, t):
    y = np.atleast_2d(y)
    t = np.asarray(t)
    hot = t.reshape(y.shape) if t.size == y.size else np.eye(y.shape[1])[t.reshape(-1)]
    return float(-np.sum(hot * np.log(y)) / y.shape[0])


def ce_positive(y, t, eps=1e-12):
    return -ce_right(y, t, eps)


def ce_one_hot_only(y, t, eps=1e-12):
    y = np.atleast_2d(y)
    t = np.atleast_2d(t)
    return float(-np.sum(t * np.log(y + eps)) / y.shape[0])


def ce_no_single(y, t, eps=1e-12):
    n = y.shape[0]
    if np.shape(t) == y.shape:
        t = np.argmax(t, axis=1)
    return float(-np.sum(np.log(y[np.arange(n), t] + eps)) / n)


@pytest.mark.parametrize("fn", [ce_right, ce_one_hot_everywhere])
def test_cross_entropy_right_answers_pass(fn):
    check_cross_entropy_error(fn, seed=2).assert_ok()


@pytest.mark.parametrize(
    "fn, name, mistake",
    [
        (ce_sum, "one-hot", "batch_size"),
        (ce_no_eps, "eps", "nonfinite"),
        (ce_positive, "indices", "sign"),
        (ce_one_hot_only, "indices", "error"),
        (ce_no_single, "single sample", "error"),
    ],
)
def test_cross_entropy_wrong_answers_are_named(fn, name, mistake):
    with np.errstate(all="ignore"):
        report = check_cross_entropy_error(fn, seed=0)
    assert failed(report, name) == mistake, str(report)


# --- softmax Jacobian --------------------------------------------------------------------------


def jac_loop(x):
    y = softmax_right(x)
    c = y.size
    return np.array([[y[i] * ((i == j) - y[j]) for j in range(c)] for i in range(c)])


def jac_matrix(x):
    y = softmax_right(x)
    return np.diag(y) - np.outer(y, y)


def jac_diag_only(x):
    y = softmax_right(x)
    return np.diag(y * (1 - y))


def jac_plus(x):
    y = softmax_right(x)
    return np.diag(y) + np.outer(y, y) - 2 * np.diag(y * y)


def jac_diag_y(x):
    y = softmax_right(x)
    return np.diag(y) * 1.0 - np.outer(y, y) * (1 - np.eye(y.size))


def jac_wrong_shape(x):
    y = softmax_right(x)
    return y * (1 - y)


@pytest.mark.parametrize("fn", [jac_loop, jac_matrix])
def test_jacobian_right_answers_pass(fn):
    check_softmax_jacobian(fn, seed=1).assert_ok()


@pytest.mark.parametrize(
    "fn, name, mistake",
    [
        (jac_diag_only, "off-diagonal", "off_zero"),
        (jac_plus, "off-diagonal", "sign"),
        (jac_diag_y, "diagonal", "diag_missing_term"),
        (jac_wrong_shape, "diagonal", "shape"),
    ],
)
def test_jacobian_wrong_answers_are_named(fn, name, mistake):
    report = check_softmax_jacobian(fn, seed=0)
    assert failed(report, name) == mistake, str(report)


def test_jacobian_diagonal_passes_alone_when_only_off_diagonal_is_wrong():
    report = check_softmax_jacobian(jac_plus, seed=0)
    assert report["diagonal"].ok


# --- SoftmaxWithLoss -----------------------------------------------------------------------------


class SWL:
    def forward(self, x, t):
        n, c = x.shape
        self.t = np.eye(c)[t] if np.ndim(t) == 1 else np.asarray(t, dtype=float)
        self.y = softmax_right(x)
        m = x.max(axis=1, keepdims=True)
        logy = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))
        self.loss = float(-np.sum(self.t * logy) / n)
        return self.loss

    def backward(self, dout=1):
        return dout * (self.y - self.t) / self.y.shape[0]


class SWLIndices(SWL):  # written differently: keeps class indices, subtracts 1 by fancy indexing
    def forward(self, x, t):
        loss = super().forward(x, t)
        self.labels = self.t.argmax(axis=1)
        return loss

    def backward(self, dout=1):
        dx = self.y.copy()
        dx[np.arange(len(dx)), self.labels] -= 1
        return dx * (dout / len(dx))


class SWLNoDout(SWL):
    def backward(self, dout=1):
        return (self.y - self.t) / self.y.shape[0]


class SWLMutates(SWL):
    def backward(self, dout=1):
        self.y -= self.t
        return dout * self.y / self.y.shape[0]


class SWLNoN(SWL):
    def backward(self, dout=1):
        return dout * (self.y - self.t)


class SWLEps(SWL):
    def forward(self, x, t):
        super().forward(x, t)
        self.loss = float(-np.sum(self.t * np.log(self.y + 1e-12)) / x.shape[0])
        return self.loss


@pytest.mark.parametrize("cls", [SWL, SWLIndices])
def test_softmax_with_loss_right_answers_pass(cls):
    check_softmax_with_loss(cls, seed=0, scale=1.0).assert_ok()
    check_softmax_with_loss(cls, seed=1, scale=1000).assert_ok("forward", "out")


@pytest.mark.parametrize(
    "cls, name, mistake, kwargs",
    [
        (SWLNoDout, "dx", "ignores_dout", {"scale": 1.0}),
        (SWLMutates, "backward twice", "state_changed", {"scale": 1.0}),
        (SWLNoN, "dx", "batch_size", {"scale": 1.0}),
        (SWLEps, "out", None, {"scale": 1000}),
    ],
)
def test_softmax_with_loss_wrong_answers_are_named(cls, name, mistake, kwargs):
    with np.errstate(all="ignore"):
        report = check_softmax_with_loss(cls, seed=0, **kwargs)
    assert name in report and not report[name].ok, str(report)
    if mistake:
        assert report[name].mistake in (mistake, "no_batch_no_dout"), str(report)


# --- IdentityWithLoss ----------------------------------------------------------------------------


class Identity:
    def forward(self, x, t):
        self.x, self.t = x, t
        return float(0.5 * np.sum((x - t) ** 2) / x.shape[0])

    def backward(self, dout=1):
        return dout * (self.x - self.t) / self.x.shape[0]


class IdentityEinsum:
    def forward(self, x, t):
        self.diff = np.subtract(x, t)
        self.n = len(x)
        return float(np.einsum("nk,nk->", self.diff, self.diff) / (2 * self.n))

    def backward(self, dout=1):
        return self.diff * (dout / self.n)


class IdentityNoDout(Identity):
    def backward(self, dout=1):
        return (self.x - self.t) / self.x.shape[0]


class IdentityNoHalf(Identity):
    def backward(self, dout=1):
        return 2 * dout * (self.x - self.t) / self.x.shape[0]


class IdentityPlainMSE(Identity):
    def forward(self, x, t):
        super().forward(x, t)
        return float(np.sum((x - t) ** 2) / x.shape[0])


class IdentityAllEntries(Identity):
    def forward(self, x, t):
        super().forward(x, t)
        return float(0.5 * np.mean((x - t) ** 2))

    def backward(self, dout=1):
        return dout * (self.x - self.t) / self.x.size


class IdentitySign(Identity):
    def backward(self, dout=1):
        return dout * (self.t - self.x) / self.x.shape[0]


class IdentityAccumulates(Identity):
    grad = None

    def backward(self, dout=1):
        g = dout * (self.x - self.t) / self.x.shape[0]
        self.grad = g if self.grad is None else self.grad + g
        return self.grad


@pytest.mark.parametrize("cls", [Identity, IdentityEinsum])
def test_identity_right_answers_pass(cls):
    check_identity_with_loss(cls, seed=0).assert_ok()


@pytest.mark.parametrize(
    "cls, name, mistake",
    [
        (IdentityNoDout, "dx", "no_dout"),
        (IdentityNoHalf, "dx", "no_half"),
        (IdentityPlainMSE, "out", "plain_mse"),
        (IdentityAllEntries, "out", "all_entries"),
        (IdentityAllEntries, "dx", "all_entries"),
        (IdentitySign, "dx", "sign"),
        (IdentityAccumulates, "backward twice", "state_changed"),
    ],
)
def test_identity_wrong_answers_are_named(cls, name, mistake):
    report = check_identity_with_loss(cls, seed=0)
    assert failed(report, name) == mistake, str(report)
    assert len(report[name].message) > 20


def test_reference_identity_with_loss():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    layer = bp.IdentityWithLoss()
    loss = layer.forward(x, t)
    assert np.isclose(loss, 0.5 * np.sum((x - t) ** 2) / 4)
    numeric = numerical_gradient(lambda _: layer.forward(x, t), x)
    layer.forward(x, t)
    assert np.allclose(layer.backward(1.0), numeric, rtol=1e-6, atol=1e-9)
    assert np.allclose(layer.backward(2.5), 2.5 * (x - t) / 4)
    one = bp.IdentityWithLoss()
    one.forward(x[0], t[0])
    assert one.backward().shape == (3,)


# --- forged records ----------------------------------------------------------------------------

FORGED = [
    {},
    {"out": "nan"},
    {"x": "a string", "row": [1, 2], "big": None, "out": {"a": 1}},
    {"error": "boom", "grads": 3, "one-hot": "x", "after": 5, "x_after": "?"},
    {"out": [None, "s"], "after": [1]},
]


@pytest.mark.parametrize(
    "name",
    [
        "softmax",
        "cross_entropy_error",
        "softmax_jacobian",
        "softmax_with_loss",
        "identity_with_loss",
    ],
)
@pytest.mark.parametrize("observed", FORGED)
def test_forged_records_fail_and_do_not_raise(name, observed):
    spec = SPECS[name]
    report = spec.verify(spec.inputs(), observed)
    assert not report.ok
    judged = judge_observed(spec, spec.inputs(), observed)
    assert not judged.ok
