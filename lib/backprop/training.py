"""Training loops: one shuffled epoch (``train_epoch``) and a run that records loss and
accuracy as it goes (``train``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .optim import SGD


@dataclass
class History:
    """What a training run recorded.

    ``loss`` has one entry per step; ``train_acc`` and ``test_acc`` one per
    evaluation, taken at the steps listed in ``eval_steps``.
    """

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The row indices of one epoch: a fresh permutation of 0..n-1 cut into consecutive
    batches of batch_size (the last one smaller if batch_size does not divide n)."""
    order = rng.permutation(n)
    return [order[start : start + batch_size] for start in range(0, n, batch_size)]


def train_epoch(
    net, x: np.ndarray, t: np.ndarray, batch_size: int, lr: float, rng: np.random.Generator
) -> list[float]:
    """One epoch of mini-batch SGD: every row of x is used exactly once, in a random order.

    net: anything with ``params``, ``gradient(x, t)`` and ``last_layer.loss`` (a
    TwoLayerNet). x: (N, D); t: (N,) labels or (N, C) one-hot; neither is changed.
    rng: the generator that shuffles (``np.random.default_rng(seed)``).
    Returns the loss of each batch, before its update; net.params is updated in place.
    """
    losses = []
    for idx in epoch_batches(x.shape[0], batch_size, rng):
        grads = net.gradient(x[idx], t[idx])
        losses.append(float(net.last_layer.loss))
        for key, grad in grads.items():
            net.params[key] -= lr * grad
    return losses


def train(
    net,
    x_train: np.ndarray,
    t_train: np.ndarray,
    x_test: np.ndarray,
    t_test: np.ndarray,
    *,
    optimizer: SGD | None = None,
    steps: int = 10_000,
    batch_size: int = 100,
    eval_every: int = 600,
    seed: int | None = 0,
    progress: bool = True,
    on_eval: Callable[[History], None] | None = None,
) -> History:
    """Train ``net`` by mini-batch SGD for ``steps`` steps and return its History.

    net: anything with ``params``, ``gradient(x, t)``, ``last_layer.loss`` and
    ``accuracy(x, t)`` (a TwoLayerNet or MultiLayerNet). x_train, x_test: (N, D);
    t_train, t_test: (N,) labels or (N, C) one-hot.

    Each epoch shuffles the rows of x_train (a new permutation per epoch, drawn from
    ``np.random.default_rng(seed)``) and each step takes the next ``batch_size`` of them
    (the last batch of an epoch may be smaller), computes the gradient by backprop and
    lets ``optimizer`` (an SGD, or anything with ``update(params, grads)``; default
    ``SGD(lr=0.1)``) update ``net.params``. The loss recorded for a step is
    ``net.last_layer.loss``, which ``net.gradient`` has just computed on that batch,
    before the update. Every ``eval_every`` steps, starting at step 0, and at the last
    step, it measures train and test accuracy and calls ``on_eval(history)`` if given.
    progress: show a progress bar.
    """
    optimizer = optimizer or SGD(lr=0.1)
    rng = np.random.default_rng(seed)
    history = History()
    n = x_train.shape[0]
    bar = tqdm(range(steps), disable=not progress, desc="training", unit="step")
    batches: list[np.ndarray] = []
    for step in bar:
        if not batches:
            batches = epoch_batches(n, batch_size, rng)[::-1]
        batch = batches.pop()
        x_batch, t_batch = x_train[batch], t_train[batch]
        grads = net.gradient(x_batch, t_batch)
        optimizer.update(net.params, grads)
        history.loss.append(float(net.last_layer.loss))
        if step % eval_every == 0 or step == steps - 1:
            history.eval_steps.append(step)
            history.train_acc.append(net.accuracy(x_train, t_train))
            history.test_acc.append(net.accuracy(x_test, t_test))
            bar.set_postfix(loss=f"{history.loss[-1]:.3f}", test_acc=f"{history.test_acc[-1]:.3f}")
            if on_eval is not None:
                on_eval(history)
    return history
