"""Add and multiply nodes of a computational graph.

The two smallest layers there are. Each works on Python numbers and on numpy
arrays of the same shape; ``backward`` returns the gradients of the inputs in
the order ``forward`` took them.

Example: the apple-shopping graph (2 apples at 100 each, 10% tax)::

    >>> mul_apple, mul_tax = MulLayer(), MulLayer()
    >>> price = mul_tax.forward(mul_apple.forward(100, 2), 1.1)   # 220
    >>> d_apple_total, d_tax = mul_tax.backward(1)                # 1.1, 200
    >>> d_apple, d_count = mul_apple.backward(d_apple_total)      # 2.2, 110
"""
from __future__ import annotations

from typing import Any

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
