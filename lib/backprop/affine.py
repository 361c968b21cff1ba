"""The Affine (fully connected) layer: out = x @ W + b.

Shapes, with N the batch size, D the input size and M the output size:

    x    (N, D) or (N, d1, ..., dk) with d1 * ... * dk = D
    W    (D, M)
    b    (M,)
    out  (N, M)
    dout (N, M)
    dx   same shape as x
    dW   (D, M)   = x.T @ dout
    db   (M,)     = dout summed over the batch
"""

from __future__ import annotations

import numpy as np


class Affine:
    """Holds references to W and b, so updating the arrays in place (as SGD
    does) is seen by the layer. After ``backward``, ``dW`` and ``db`` hold the
    parameter gradients.

    ``need_dx=False`` is for a first layer, whose input is data: nothing upstream
    wants dx, so ``backward`` skips that product (a third of its work) and
    returns None.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, *, need_dx: bool = True) -> None:
        self.W = W
        self.b = b
        self.need_dx = need_dx
        self.x: np.ndarray | None = None  # input reshaped to (N, D)
        self.x_shape: tuple[int, ...] | None = None
        self.dW: np.ndarray | None = None
        self.db: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, D) or (N, d1, ..., dk). Returns out (N, M)."""
        x = np.asarray(x)
        self.x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)  # a view: x itself is not changed
        return self.x @ self.W + self.b

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, M). Sets dW (D, M) and db (M,); returns dx, shape of x
        (None when the layer was made with need_dx=False)."""
        self.dW = self.x.T @ dout
        self.db = np.sum(dout, axis=0)
        if not self.need_dx:
            return None
        return (dout @ self.W.T).reshape(self.x_shape)
