"""TwoLayerNet: Affine -> ReLU -> Affine -> Softmax-with-Loss.

Shapes, with N the batch size, D = input_size, H = hidden_size, C = output_size:

    x       (N, D)         t  class indices (N,) or one-hot (N, C)
    W1      (D, H)         b1 (H,)
    W2      (H, C)         b2 (C,)
    scores  (N, C)         loss: a float
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping

import numpy as np

from .activations import Relu
from .affine import Affine
from .gradcheck import numerical_gradient
from .losses import SoftmaxWithLoss


class Parameters(MutableMapping):
    """The net's parameters by name (``W1``, ``b1``, ...).

    The layers hold the very same arrays. Updating an array in place
    (``params['W1'] -= lr * grad``) is seen by the layers because it is the same
    array; assigning a new one (``params['W1'] = W``) rebinds it in its layer too,
    so the layers can never go on using stale parameters.

    Notebook 6 has learners write their network with a plain ``dict``, where only
    in-place updates reach the layers (the "stale-parameter trap"), and says why this
    reference differs: the trap raises no error, so a library should rule it out.
    In-place updates behave the same in both designs.
    """

    def __init__(self, bind: Callable[[str, np.ndarray], None]) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._bind = bind

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self._arrays[name] = value
        self._bind(name, value)

    def __delitem__(self, name: str) -> None:
        raise TypeError("parameters cannot be deleted: the layers need them")

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.shape}" for k, v in self._arrays.items())
        return f"Parameters({shapes})"


class LayerStack:
    """What every network of the course shares: ``layers`` (run in order) and
    ``last_layer`` (the loss), ``params`` by name. Subclasses build them and add
    ``gradient``."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x: (N, D). Returns class scores (N, C), before softmax."""
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        """x: (N, D); t: (N,) indices or (N, C) one-hot. Returns the mean loss."""
        return self.last_layer.forward(self.predict(x), t)

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int = 10_000) -> float:
        """Fraction of rows of x whose highest score is the target class."""
        t = np.asarray(t)
        labels = np.argmax(t, axis=1) if t.ndim == 2 else t
        correct = 0
        for start in range(0, x.shape[0], batch_size):
            scores = self.predict(x[start:start + batch_size])
            correct += int(np.sum(np.argmax(scores, axis=1) == labels[start:start + batch_size]))
        return correct / x.shape[0]

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """The same gradients by central differences: slow, for checking only.

        Needs float64 parameters (``dtype=np.float64``, the default).
        """
        return {name: numerical_gradient(lambda _: self.loss(x, t), param)
                for name, param in self.params.items()}


class TwoLayerNet(LayerStack):
    """A two-layer fully connected classifier with ReLU, trained by backprop.

    ``params`` maps ``W1 b1 W2 b2`` to arrays; ``layers`` holds ``Affine1``,
    ``Relu1``, ``Affine2`` in order, and ``last_layer`` the loss layer.
    ``dtype`` is float64 by default (what gradient checks need); pass
    ``np.float32`` for faster training.
    """

    _owners = {"W1": ("Affine1", "W"), "b1": ("Affine1", "b"),
               "W2": ("Affine2", "W"), "b2": ("Affine2", "b")}

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 weight_init_std: float = 0.01, *, seed: int | None = None,
                 dtype: type = np.float64) -> None:
        rng = np.random.default_rng(seed)
        self.layers: OrderedDict[str, object] = OrderedDict()
        # The first layer's input is the data: no gradient is needed for it.
        self.layers["Affine1"] = Affine(None, None, need_dx=False)
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(None, None)
        self.last_layer = SoftmaxWithLoss()
        self.params = {
            "W1": (weight_init_std * rng.standard_normal((input_size, hidden_size))).astype(dtype),
            "b1": np.zeros(hidden_size, dtype=dtype),
            "W2": (weight_init_std * rng.standard_normal((hidden_size, output_size))).astype(dtype),
            "b2": np.zeros(output_size, dtype=dtype),
        }

    @property
    def params(self) -> Parameters:
        return self._params

    @params.setter
    def params(self, values: dict[str, np.ndarray]) -> None:
        # Assigning a whole dict rebinds every layer as well.
        self._params = Parameters(self._bind)
        for name, value in values.items():
            self._params[name] = value

    def _bind(self, name: str, value: np.ndarray) -> None:
        layer, attr = self._owners[name]
        setattr(self.layers[layer], attr, value)

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of the loss for every parameter, by backpropagation.

        Returns a dict with the keys and shapes of ``params``.
        """
        self.loss(x, t)
        dout = self.last_layer.backward(1.0)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)  # None after Affine1: see need_dx
        grads = {}
        for name, (layer, attr) in self._owners.items():
            grads[name] = getattr(self.layers[layer], "d" + attr)
        return grads
