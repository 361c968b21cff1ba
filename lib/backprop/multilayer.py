"""MultiLayerNet: a fully connected classifier of any depth.

Affine -> activation -> ... -> Affine -> activation -> Affine -> Softmax-with-Loss, with
L = len(hidden_sizes) + 1 Affine layers. Shapes, with N the batch size, D = input_size,
H_1 ... H_{L-1} = hidden_sizes, C = output_size (and H_0 = D, H_L = C):

    x       (N, D)              t  class indices (N,) or one-hot (N, C)
    W<l>    (H_{l-1}, H_l)      b<l> (H_l,)          for l = 1 ... L
    scores  (N, C)              loss: a float

Initial weights are Gaussian with standard deviation ``weight_init``: "he" gives
sqrt(2 / H_{l-1}) (for ReLU), "xavier" sqrt(1 / H_{l-1}) (for sigmoid and tanh), a float
gives that value for every layer. Biases start at 0.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .activations import Relu, Sigmoid, Tanh
from .affine import Affine
from .i18n import _
from .losses import SoftmaxWithLoss
from .network import LayerStack, _bind_owner

ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid, "tanh": Tanh}


def init_std(n_in: int, weight_init: str | float) -> float:
    """The standard deviation of a layer's initial weights, for n_in inputs per unit."""
    if isinstance(weight_init, str):
        kind = weight_init.lower()
        if kind == "he":
            return float(np.sqrt(2.0 / n_in))
        if kind == "xavier":
            return float(np.sqrt(1.0 / n_in))
        raise ValueError(
            _("weight_init must be 'he', 'xavier' or a number, not {value!r}").format(
                value=weight_init
            )
        )
    return float(weight_init)


class MultiLayerNet(LayerStack):
    """A fully connected network with ``len(hidden_sizes)`` hidden layers.

    ``params`` maps ``W1 b1 ... WL bL`` to arrays; ``layers`` holds ``Affine1``,
    ``Activation1``, ..., ``AffineL`` in order (one activation layer object per hidden
    layer: each keeps its own forward state), and ``last_layer`` the loss layer;
    ``n_layers`` is L, the number of Affine layers.
    activation: ``"relu"``, ``"sigmoid"`` or ``"tanh"``, after every hidden Affine.
    weight_init: ``"he"``, ``"xavier"`` or a number (see the module's docstring).
    seed: seeds the initial weights (None: a fresh seed each time). dtype: float64 by
    default (what gradient checks need); ``np.float32`` trains faster.
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: list[int],
        output_size: int,
        activation: str = "relu",
        weight_init: str | float = "he",
        *,
        seed: int | None = None,
        dtype: type = np.float64,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(
                _("activation must be one of {names}, not {value!r}").format(
                    names=sorted(ACTIVATIONS), value=activation
                )
            )
        rng = np.random.default_rng(seed)
        sizes = [input_size, *hidden_sizes, output_size]
        self.n_layers = len(sizes) - 1
        self.layers = OrderedDict()
        self._owners = {}
        values: dict[str, np.ndarray] = {}
        for l in range(1, self.n_layers + 1):
            n_in, n_out = sizes[l - 1], sizes[l]
            std = init_std(n_in, weight_init)
            values[f"W{l}"] = (std * rng.standard_normal((n_in, n_out))).astype(dtype)
            values[f"b{l}"] = np.zeros(n_out, dtype=dtype)
            self.layers[f"Affine{l}"] = Affine(None, None, need_dx=l > 1)  # no dx of the data
            self._owners[f"W{l}"], self._owners[f"b{l}"] = (f"Affine{l}", "W"), (f"Affine{l}", "b")
            if l < self.n_layers:
                self.layers[f"Activation{l}"] = ACTIVATIONS[activation]()
        self.last_layer = SoftmaxWithLoss()
        self.params = values

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
