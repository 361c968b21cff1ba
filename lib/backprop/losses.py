"""Softmax, cross-entropy and the layer that fuses them; the identity output with half-MSE.

Shapes, with N the batch size and C the number of classes:

    x (scores, "logits")  (N, C) or (C,)
    y = softmax(x)        same shape as x; each row sums to 1
    t (targets)           one-hot, same shape as x; or class indices, (N,) or ()
    loss                  a float: mean cross-entropy over the batch
    dx                    same shape as x: dout * (y - t) / N
"""

from __future__ import annotations

import numpy as np

from .i18n import _


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis. Stable: subtracts the row maximum first, so
    logits of +-1000 give finite probabilities. Returns a new array."""
    x = np.asarray(x)
    shifted = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """log(softmax(x)) by log-sum-exp, finite even where softmax underflows to 0."""
    x = np.asarray(x)
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _as_indices(t: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Targets as class indices of shape (N,), for scores of shape (N, C).

    t is one-hot exactly when it has the shape of the scores; otherwise it holds
    class indices, one per row.
    """
    t = np.asarray(t)
    n = scores.shape[0]
    if t.shape == scores.shape or (t.ndim == 1 and t.size == scores.shape[1] and n == 1):
        return np.argmax(t.reshape(n, -1), axis=-1)
    if t.size != n:
        raise ValueError(
            _(
                "targets of shape {targets} do not fit scores of shape {scores}: "
                "give one class index per row or a one-hot array shaped like the scores"
            ).format(targets=t.shape, scores=scores.shape)
        )
    return t.reshape(n).astype(np.int64, copy=False)


def cross_entropy_error(y: np.ndarray, t: np.ndarray, eps: float = 1e-12) -> float:
    """Mean cross-entropy of probabilities y against targets t.

    y: (N, C) or (C,) probabilities. t: one-hot shaped like y, or class indices (N,) or ().
    eps keeps log(0) finite when a probability underflows to exactly 0.
    """
    y = np.asarray(y)
    y2 = y.reshape(1, -1) if y.ndim == 1 else y
    labels = _as_indices(t, y2)
    n = y2.shape[0]
    return float(-np.sum(np.log(y2[np.arange(n), labels] + eps)) / n)


class SoftmaxWithLoss:
    """Softmax followed by cross-entropy, with the simple fused gradient.

    forward(x, t) -> loss (float); backward(dout=1) -> dx = dout * (y - t) / N.
    The loss comes from log-softmax, so it is finite even for logits of +-1000.
    """

    def __init__(self) -> None:
        self.y: np.ndarray | None = None  # softmax output (N, C)
        self.t: np.ndarray | None = None  # targets as class indices (N,)
        self.loss: float | None = None
        self.x_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        """x: (N, C) or (C,) scores; t: one-hot or class indices. Returns the mean loss."""
        x = np.asarray(x)
        x2 = x.reshape(1, -1) if x.ndim == 1 else x
        labels = _as_indices(t, x2)
        self.x_shape = x.shape
        self.t = labels
        self.y = softmax(x2)
        n = x2.shape[0]
        self.loss = float(-np.sum(log_softmax(x2)[np.arange(n), labels]) / n)
        return self.loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        """dout: dL/dloss (a number, 1 by default). Returns dx, shape of x."""
        n = self.y.shape[0]
        dx = self.y.copy()
        dx[np.arange(n), self.t] -= 1
        dx *= dout / n
        return dx.reshape(self.x_shape)


class IdentityWithLoss:
    """Identity output followed by the *half* mean-squared error, for regression.

    forward(x, t) -> loss = 0.5 * (1/N) * sum over the batch of sum_k (x_nk - t_nk)**2
    (half of the mean over the batch of each sample's sum of squares; the half cancels
    the 2 of the square's derivative). backward(dout=1) -> dx = dout * (y - t) / N, with
    y = x the identity output: the same form as SoftmaxWithLoss's gradient.
    x and t: (N, K), or (K,) for one sample (N = 1).
    """

    def __init__(self) -> None:
        self.y: np.ndarray | None = None  # the output, y = x, as (N, K)
        self.t: np.ndarray | None = None  # the targets, (N, K)
        self.loss: float | None = None
        self.x_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        """x: (N, K) or (K,) predictions; t: targets of the same shape. Returns the loss."""
        x = np.asarray(x, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        if t.shape != x.shape:
            raise ValueError(
                _(
                    "targets of shape {targets} do not fit predictions of shape {predictions}"
                ).format(targets=t.shape, predictions=x.shape)
            )
        self.x_shape = x.shape
        self.y = x.reshape(1, -1) if x.ndim == 1 else x.copy()
        self.t = t.reshape(self.y.shape).copy()
        n = self.y.shape[0]
        self.loss = float(0.5 * np.sum((self.y - self.t) ** 2) / n)
        return self.loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        """dout: dL/dloss (a number). Returns dx = dout * (y - t) / N, shape of x."""
        n = self.y.shape[0]
        return (dout * (self.y - self.t) / n).reshape(self.x_shape)
