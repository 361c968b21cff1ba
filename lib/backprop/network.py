"""TwoLayerNet: Affine -> ReLU -> Affine -> Softmax-with-Loss.

Shapes, with N the batch size, D = input_size, H = hidden_size, C = output_size:

    x       (N, D)         t  class indices (N,) or one-hot (N, C)
    W1      (D, H)         b1 (H,)
    W2      (H, C)         b2 (C,)
    scores  (N, C)         loss: a float
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np

from .activations import Relu
from .affine import Affine
from .gradcheck import numerical_gradient
from .i18n import _
from .losses import SoftmaxWithLoss


class Parameters(MutableMapping):
    """The net's parameters by name (``W1``, ``b1``, ...), held by its layers as well.

    The layers hold the very same arrays, not copies. An update in place
    (``params['W1'] -= lr * grad``, ``params['W1'][...] = W``) changes that one array,
    so the layers see it; assigning a new array (``params['W1'] = W``) puts ``W`` into
    its layer too (``bind``), so the layers never go on computing with stale
    parameters. (``-=`` on an entry also assigns: Python stores the result of the
    in-place update back under its name, which is the same array.)

    Why: with a plain ``dict`` only in-place updates reach the layers, and assigning
    a new array leaves them with the old one: training then stops without any error
    (the "stale-parameter trap" notebook 6 shows with the learner's own network).
    A mistake that raises nothing should be ruled out by a library.

    bind(name, value) puts value into the layer owning name, and raises KeyError for a
    name no layer owns; only then is the entry stored. Entries cannot be deleted.
    """

    def __init__(self, bind: Callable[[str, np.ndarray], None]) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._bind = bind

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self._bind(name, value)  # first: a name no layer owns is refused, not stored
        self._arrays[name] = value

    def __delitem__(self, name: str) -> None:
        raise TypeError(_("parameters cannot be deleted: the layers need them"))

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.shape}" for k, v in self._arrays.items())
        return f"Parameters({shapes})"


class LayerStack:
    """What every network of the course shares: ``params``, ``predict``, ``loss``,
    ``accuracy`` and ``numerical_gradient``.

    Subclasses build ``layers`` (an OrderedDict, run in order), ``last_layer`` (the
    loss layer) and ``_owners`` (parameter name -> (layer name, attribute), e.g.
    ``"W1": ("Affine1", "W")``, in the order of ``params``), then assign ``params``.
    They define ``_bind`` (parameter name, array -> into its layer) and ``gradient``
    themselves. The checks switch off a reference class's methods and those of its
    backprop bases, this class included (``checks.running.reference_disabled``; under
    grading, the redacted copy empties both: ``autograder/kernel/redact.py``), so a
    learner's subclass inherits no answers.
    """

    layers: OrderedDict[str, Any]
    last_layer: Any
    _owners: Mapping[str, tuple[str, str]]

    @property
    def params(self) -> Parameters:
        """The parameters by name, shared with the layers (see :class:`Parameters`)."""
        return self._params

    @params.setter
    def params(self, values: Mapping[str, np.ndarray]) -> None:
        # Assigning a whole dict rebinds every layer (by _bind); it must name every parameter.
        if set(values) != set(self._owners):
            raise KeyError(
                _("params needs exactly the keys {keys}, got {got}").format(
                    keys=", ".join(self._owners), got=", ".join(values) or _("none")
                )
            )
        self._params = Parameters(self._bind)
        for name in self._owners:
            self._params[name] = values[name]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x: (N, D). Returns class scores (N, C), before softmax."""
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x: np.ndarray, t: np.ndarray) -> float:
        """x: (N, D); t: (N,) indices or (N, C) one-hot. Returns the mean loss."""
        return self.last_layer.forward(self.predict(x), t)

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int = 10_000) -> float:
        """Fraction of rows of x whose highest score is the target class.

        batch_size: rows scored at a time, to bound the memory a large x needs.
        """
        t = np.asarray(t)
        labels = np.argmax(t, axis=1) if t.ndim == 2 else t
        correct = 0
        for start in range(0, x.shape[0], batch_size):
            scores = self.predict(x[start : start + batch_size])
            correct += int(np.sum(np.argmax(scores, axis=1) == labels[start : start + batch_size]))
        return correct / x.shape[0]

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """The same gradients by central differences: slow, for checking only.

        Needs float64 parameters (``dtype=np.float64``, the default).
        """
        return {
            name: numerical_gradient(lambda _: self.loss(x, t), param)
            for name, param in self.params.items()
        }


def _bind_owner(net: LayerStack, name: str, value: np.ndarray) -> None:
    """Put value into the layer attribute that holds parameter name (KeyError if none)."""
    if name not in net._owners:
        raise KeyError(
            _("no parameter named {name!r}: there are {names}").format(
                name=name, names=", ".join(net._owners)
            )
        )
    layer, attr = net._owners[name]
    setattr(net.layers[layer], attr, value)


class TwoLayerNet(LayerStack):
    """A two-layer fully connected classifier with ReLU, trained by backprop.

    ``params`` maps ``W1 b1 W2 b2`` to arrays; ``layers`` holds ``Affine1``,
    ``Relu1``, ``Affine2`` in order, and ``last_layer`` the loss layer.
    Weights start Gaussian with standard deviation ``weight_init_std``, biases at 0;
    ``seed`` seeds them (None: a fresh seed each time). ``dtype`` is float64 by
    default (what gradient checks need); pass ``np.float32`` for faster training.
    """

    _owners = {
        "W1": ("Affine1", "W"),
        "b1": ("Affine1", "b"),
        "W2": ("Affine2", "W"),
        "b2": ("Affine2", "b"),
    }

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        *,
        seed: int | None = None,
        dtype: type = np.float64,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.layers = OrderedDict()
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

    def _bind(self, name: str, value: np.ndarray) -> None:
        _bind_owner(self, name, value)

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of the loss for every parameter, by backpropagation.

        Returns a dict with the keys and shapes of ``params``.
        """
        self.loss(x, t)
        dout = self.last_layer.backward(1.0)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)  # None after Affine1: see need_dx
        return {
            name: getattr(self.layers[layer], "d" + attr)
            for name, (layer, attr) in self._owners.items()
        }
