"""Notebook 4's checks: BiasAdd and Affine, wrong answers named, right ones passing."""

from __future__ import annotations

import numpy as np
import pytest
from backprop.checks import check_affine, check_bias_add


class BiasAdd:
    def forward(self, x, b):
        return x + b

    def backward(self, dout):
        return dout * 1, dout.sum(axis=0)


class BiasEinsum:
    def forward(self, x, b):
        return np.add(x, b[None, :])

    def backward(self, dout):
        return dout.copy(), np.einsum("nm->m", dout)


class BiasMean(BiasAdd):
    def backward(self, dout):
        return dout * 1, dout.mean(axis=0)


class BiasNotSummed(BiasAdd):
    def backward(self, dout):
        return dout * 1, dout


class BiasNoDout(BiasAdd):
    def backward(self, dout):
        return np.ones_like(dout), np.ones_like(dout).sum(axis=0)


class BiasFirstRow(BiasAdd):
    def backward(self, dout):
        return dout * 1, dout[0]


@pytest.mark.parametrize("cls", [BiasAdd, BiasEinsum])
@pytest.mark.parametrize("seed, n, m", [(0, 4, 5), (3, 1, 2), (9, 7, 3)])
def test_right_bias_adds_pass(cls, seed, n, m):
    assert check_bias_add(cls, seed=seed, batch_size=n, size=m).ok


@pytest.mark.parametrize(
    "cls, key",
    [
        (BiasMean, "db_mean"),
        (BiasNotSummed, "not_summed"),
        (BiasNoDout, "no_dout"),
        (BiasFirstRow, "mismatch"),
    ],
)
def test_wrong_bias_adds_are_named(cls, key):
    report = check_bias_add(cls, seed=0)
    assert key in report.mistakes, str(report)
    with pytest.raises(AssertionError, match="db"):
        report.assert_ok("db")


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.shape, self.x = x.shape, x.reshape(x.shape[0], -1)
        return self.x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
        return (dout @ self.W.T).reshape(self.shape)


class Accumulates(Affine):
    dW = db = 0

    def backward(self, dout):
        self.dW = self.dW + self.x.T @ dout
        self.db = self.db + dout.sum(axis=0)
        return (dout @ self.W.T).reshape(self.shape)


class CopiesW(Affine):
    def __init__(self, W, b):
        super().__init__(W.copy(), b)


class NoReshape(Affine):
    def backward(self, dout):
        super().backward(dout)
        return dout @ self.W.T


def test_right_affine_passes_flat_and_nd():
    assert check_affine(Affine, seed=0).ok
    assert check_affine(Affine, seed=2, x_shape=(3, 2, 2, 2), out_size=8).ok


@pytest.mark.parametrize(
    "cls, name, key, shape",
    [
        (Accumulates, "backward twice", "accumulates", (4, 5)),
        (CopiesW, "second call", "copied_params", (4, 5)),
        (NoReshape, "dx", "shape", (3, 2, 2, 2)),
    ],
)
def test_wrong_affines_are_named(cls, name, key, shape):
    report = check_affine(cls, seed=3, x_shape=shape, out_size=8 if len(shape) > 2 else 5)
    assert report[name].mistake == key, str(report)
