"""Optimizers: update parameters in place from their gradients."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

import numpy as np


class SGD:
    """Stochastic gradient descent: p <- p - lr * grad, for every parameter.

    Updates each array in place, so layers that hold the same arrays see the
    new values at once.
    """

    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def update(
        self, params: MutableMapping[str, np.ndarray], grads: Mapping[str, np.ndarray]
    ) -> None:
        """params, grads: dicts with the same keys; each grad has its param's shape."""
        for name, grad in grads.items():
            params[name] -= self.lr * grad
