"""Activation layers: ReLU, Sigmoid and Tanh.

All are element-wise: ``x``, ``out``, ``dout`` and ``dx`` all share one shape
(any shape). No layer changes its input or the upstream gradient.
"""

from __future__ import annotations

import numpy as np


class Relu:
    """out = max(0, x).  The local gradient is 1 where x > 0 and 0 elsewhere."""

    def __init__(self) -> None:
        self.mask: np.ndarray | None = None  # True where the input was <= 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: array of any shape. Returns a new array of the same shape."""
        x = np.asarray(x)
        self.mask = x <= 0
        return np.where(self.mask, 0, x).astype(x.dtype, copy=False)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: shape of x. Returns dx, shape of x (a new array)."""
        return np.where(self.mask, 0, dout).astype(np.result_type(dout), copy=False)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow for large |x|. Same shape as x."""
    x = np.asarray(x)
    # exp of a non-positive number never overflows: use the form that needs only that.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid:
    """out = 1 / (1 + exp(-x)).  The local gradient is out * (1 - out).

    The gradient is computed from the *output*, which forward keeps.
    """

    def __init__(self) -> None:
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: array of any shape. Returns out, same shape."""
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: shape of x. Returns dx = dout * out * (1 - out)."""
        return dout * self.out * (1.0 - self.out)


class Tanh:
    """out = tanh(x).  The local gradient is 1 - out**2, computed from the output."""

    def __init__(self) -> None:
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: array of any shape. Returns out, same shape, in (-1, 1)."""
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: shape of x. Returns dx = dout * (1 - out**2)."""
        return dout * (1.0 - self.out**2)
