"""Ready-made checks for each layer of the course, used by the notebooks' tests
and the autograder.

Each ``check_*`` function builds a fresh layer from the class it is given, on
seeded random float64 inputs (shapes chosen so mistakes show: batch sizes of
at least 2, square weights where a transpose would otherwise go unnoticed,
N-d inputs), and returns a :class:`~backprop.gradcheck.LayerReport`::

    >>> report = check_affine(MyAffine, seed=3)
    >>> report.assert_ok("out", "dx")

While the learner's layer runs, the matching reference implementation in
``backprop`` is switched off (:func:`reference_disabled`), so a class that
merely hands the work to the reference fails instead of passing.
"""
from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import numpy as np

from . import activations, affine, losses, nodes
from .gradcheck import Check, LayerReport, check_layer


REFERENCE_USED = ("this exercise must be solved with your own code, "
                  "not by calling backprop's reference implementation")


def _refuse(*args, **kwargs):
    # This code object is lent to the reference functions, so it may use only
    # builtins: the globals it sees are those of the function it replaces.
    raise RuntimeError("this exercise must be solved with your own code, "
                       "not by calling backprop's reference implementation")


@contextlib.contextmanager
def reference_disabled(*targets: object) -> Iterator[None]:
    """Make the given reference functions and classes raise ReferenceUsed while inside.

    targets: functions, or classes (all their methods are switched off). The
    function objects themselves are changed, so every name bound to them
    (``from backprop import Affine`` included) is covered.
    """
    saved: list[tuple[types.FunctionType, types.CodeType, tuple | None]] = []
    functions: list[types.FunctionType] = []
    for target in targets:
        if isinstance(target, type):
            functions += [v for v in vars(target).values() if isinstance(v, types.FunctionType)]
        elif isinstance(target, types.FunctionType):
            functions.append(target)
    try:
        for fn in functions:
            saved.append((fn, fn.__code__, fn.__defaults__))
            fn.__code__ = _refuse.__code__
        yield
    finally:
        for fn, code, defaults in saved:
            fn.__code__ = code
            fn.__defaults__ = defaults


def _build(cls: type, *args: object) -> tuple[object, LayerReport | None]:
    """cls(*args), or a failed report saying why it could not be made."""
    try:
        return cls(*args), None
    except Exception as exc:
        name = getattr(cls, "__name__", repr(cls))
        return None, LayerReport(name, [Check("forward", False, f"creating {name}(...) raised "
                                              f"{type(exc).__name__}: {exc}", "error")])


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random numbers with |x| >= 0.1, so no entry sits on ReLU's kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.sign(x + 1e-12) * (0.1 + np.abs(x)), x)


def check_mul_layer(cls: type, seed: int = 0, shape: tuple[int, ...] = (3, 4)) -> LayerReport:
    """MulLayer: forward(x, y) = x * y; backward(dout) -> (dx, dy)."""
    rng = _rng(seed)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    with reference_disabled(nodes.MulLayer):
        layer, failed = _build(cls)
        if failed:
            return failed
        return check_layer(layer, {"x": x, "y": y}, expected_out=x * y, seed=seed, mistakes={
            "not_swapped": ("uses its own input: dz/dx is y and dz/dy is x (swap them)",
                            lambda i, out, d: {"dx": d * i["x"], "dy": d * i["y"]}),
        })


def check_add_layer(cls: type, seed: int = 0, shape: tuple[int, ...] = (3, 4)) -> LayerReport:
    """AddLayer: forward(x, y) = x + y; backward(dout) -> (dout, dout)."""
    rng = _rng(seed)
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    with reference_disabled(nodes.AddLayer):
        layer, failed = _build(cls)
        if failed:
            return failed
        return check_layer(layer, {"x": x, "y": y}, expected_out=x + y, seed=seed, mistakes={
            "multiplied": ("multiplies dout by the inputs: an add node passes dout on unchanged",
                           lambda i, out, d: {"dx": d * i["y"], "dy": d * i["x"]}),
        })


def check_relu(cls: type, seed: int = 0, shape: tuple[int, ...] = (4, 5)) -> LayerReport:
    """Relu: forward(x) = max(0, x); backward(dout) -> dout where x > 0, else 0."""
    x = _away_from_zero(_rng(seed), shape)
    with reference_disabled(activations.Relu):
        layer, failed = _build(cls)
        if failed:
            return failed
        return check_layer(layer, {"x": x}, expected_out=np.maximum(x, 0), seed=seed, mistakes={
            "mask_inverted": ("lets the gradient through where x <= 0 instead of where x > 0: "
                              "is the mask inverted?",
                              lambda i, out, d: {"dx": np.where(i["x"] > 0, 0, d)}),
            "relu_of_dout": ("applies ReLU to dout itself; the mask must come from the input x",
                             lambda i, out, d: {"dx": np.maximum(d, 0)}),
        })


def check_sigmoid(cls: type, seed: int = 0, shape: tuple[int, ...] = (4, 5)) -> LayerReport:
    """Sigmoid: forward(x) = 1 / (1 + exp(-x)); backward(dout) -> dout * y * (1 - y)."""
    x = 2 * _rng(seed).standard_normal(shape)
    y = 1 / (1 + np.exp(-x))
    with reference_disabled(activations.Sigmoid, activations.sigmoid):
        layer, failed = _build(cls)
        if failed:
            return failed
        return check_layer(layer, {"x": x}, expected_out=y, seed=seed, mistakes={
            "from_input": ("uses the input x in x * (1 - x); the local gradient is y * (1 - y) "
                           "with y the *output* of forward",
                           lambda i, out, d: {"dx": d * i["x"] * (1 - i["x"])}),
            "no_dout": ("is y * (1 - y) without the upstream gradient: multiply by dout",
                        lambda i, out, d: {"dx": y * (1 - y)}),
        })


def check_affine(cls: type, seed: int = 0, x_shape: tuple[int, ...] = (4, 5),
                 out_size: int = 5) -> LayerReport:
    """Affine(W, b): forward(x) = x.reshape(N, -1) @ W + b; backward -> dx, and sets dW, db.

    The defaults make W square (5 x 5), so a transposed product keeps its shape
    and must be caught by its values; pass an N-d x_shape such as (3, 2, 2, 2)
    to test reshaping.
    """
    rng = _rng(seed)
    x = rng.standard_normal(x_shape)
    d = int(np.prod(x_shape[1:]))
    W, b = rng.standard_normal((d, out_size)), rng.standard_normal(out_size)
    x2 = x.reshape(x_shape[0], -1)

    def wrong(i, out, dout):
        return {"dW": dout.T @ x2 if d == out_size else None,
                "dx": (dout @ W).reshape(x_shape) if d == out_size else None,
                "db": np.sum(dout, axis=0) / x_shape[0]}

    with reference_disabled(affine.Affine):
        layer, failed = _build(cls, W, b)
        if failed:
            return failed
        return check_layer(layer, {"x": x}, params={"W": "dW", "b": "db"},
                           expected_out=x2 @ W + b, seed=seed, mistakes={
            "transpose": ("is transposed: dW = x.T @ dout and dx = dout @ W.T",
                          lambda i, o, dout: {k: v for k, v in wrong(i, o, dout).items()
                                              if k != "db" and v is not None}),
            "db_mean": ("is the mean of dout over the batch; db is the sum (the loss "
                        "layer has already divided by N)",
                        lambda i, o, dout: {"db": wrong(i, o, dout)["db"]}),
        })


def check_softmax_with_loss(cls: type, seed: int = 0, batch_size: int = 4,
                            num_classes: int = 5, one_hot: bool = False,
                            scale: float = 3.0, dout: float = 1.0) -> LayerReport:
    """SoftmaxWithLoss: forward(x, t) -> mean loss; backward(dout) -> dout * (y - t) / N.

    scale sets the size of the logits: 1000 tests numerical stability (a
    numerical gradient is then meaningless in places, so only the forward
    value and finiteness are compared there). dout other than 1 catches a
    backward that ignores its argument.
    """
    rng = _rng(seed)
    x = scale * rng.standard_normal((batch_size, num_classes))
    labels = rng.integers(0, num_classes, size=batch_size)
    t = np.eye(num_classes)[labels] if one_hot else labels
    logp = losses.log_softmax(x)  # only arithmetic on the inputs: not the learner's code
    loss = -np.mean(logp[np.arange(batch_size), labels])
    y = np.exp(logp)
    onehot = np.eye(num_classes)[labels]
    with reference_disabled(losses.SoftmaxWithLoss, losses.softmax, losses.log_softmax,
                            losses.cross_entropy_error):
        layer, failed = _build(cls)
        if failed:
            return failed
        return check_layer(layer, {"x": x, "t": t}, wrt=["x"], expected_out=loss, seed=seed,
                           dout=dout,
                           threshold=1e-7 if scale < 100 else 1e-6, mistakes={
            # With dout == 1 these are indistinguishable from right answers: skip them.
            **({} if dout == 1 else {
                "ignores_dout": ("ignores dout: multiply (y - t) / N by the upstream gradient",
                                 lambda i, o, d: {"dx": (y - onehot) / batch_size}),
                "no_batch_no_dout": (f"is y - t: divide by the batch size N = {batch_size} "
                                     "and multiply by dout", lambda i, o, d: {"dx": y - onehot}),
            }),
        })
