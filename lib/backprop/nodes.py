"""Add, multiply, divide and exp nodes of a computational graph.

The smallest layers there are (the sigmoid is built from them in notebook 2). Each works
on Python numbers and on numpy arrays of the same shape; ``backward`` returns the
gradients of the inputs in the order ``forward`` took them.

Example: the apple-shopping graph (2 apples at 100 each, 10% tax)::

    >>> mul_apple, mul_tax = MulLayer(), MulLayer()
    >>> price = mul_tax.forward(mul_apple.forward(100, 2), 1.1)   # 220
    >>> d_apple_total, d_tax = mul_tax.backward(1)                # 1.1, 200
    >>> d_apple, d_count = mul_apple.backward(d_apple_total)      # 2.2, 110
"""

from __future__ import annotations

from typing import Any

import numpy as np

Value = Any  # a number or a numpy array


class MulLayer:
    """z = x * y.  dz/dx = y and dz/dy = x, so backward swaps the inputs."""

    def __init__(self) -> None:
        self.x: Value = None
        self.y: Value = None

    def forward(self, x: Value, y: Value) -> Value:
        """x, y: numbers or arrays of one shape. Returns x * y (same shape)."""
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Value) -> tuple[Value, Value]:
        """dout: dL/dz, shape of z. Returns (dL/dx, dL/dy), shapes of x and y."""
        return dout * self.y, dout * self.x


class AddLayer:
    """z = x + y.  dz/dx = dz/dy = 1, so backward hands dout to both inputs."""

    def forward(self, x: Value, y: Value) -> Value:
        """x, y: numbers or arrays of one shape. Returns x + y."""
        return x + y

    def backward(self, dout: Value) -> tuple[Value, Value]:
        """dout: dL/dz. Returns (dL/dx, dL/dy) = (dout, dout)."""
        return dout * 1, dout * 1


class DivLayer:
    """z = x / y.  dz/dx = 1 / y and dz/dy = -x / y**2.

    The book draws a "/" node with one input that computes 1 / x; here the node divides
    two inputs, and 1 / y is ``DivLayer().forward(1, y)`` (its dx is then simply unused).
    """

    def __init__(self) -> None:
        self.x: Value = None
        self.y: Value = None

    def forward(self, x: Value, y: Value) -> Value:
        """x, y: numbers or arrays of one shape (y nonzero). Returns x / y (same shape)."""
        self.x, self.y = x, y
        return x / y

    def backward(self, dout: Value) -> tuple[Value, Value]:
        """dout: dL/dz, shape of z. Returns (dL/dx, dL/dy) = (dout / y, -dout * x / y**2)."""
        return dout / self.y, -dout * self.x / self.y**2


class ExpLayer:
    """z = exp(x).  dz/dx = exp(x) = z, so backward reuses the output of forward."""

    def __init__(self) -> None:
        self.out: Value = None

    def forward(self, x: Value) -> Value:
        """x: a number or an array. Returns exp(x), same shape; keeps it for backward."""
        self.out = np.exp(x)
        return self.out

    def backward(self, dout: Value) -> Value:
        """dout: dL/dz, shape of z. Returns dL/dx = dout * exp(x), shape of x."""
        return dout * self.out
