"""The depth explorer: how the gradient's size changes through a deep stack of layers,
with each activation and weight scale.

    gradient_norms(depth, activation, init)  ||dW|| and the output spread of every block
    describe_depth(norms)                    ("vanishing" | "exploding" | "steady", a sentence)
    depth_explorer()                         the widget: depth, activation and scale controls
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from ..activations import Relu, Sigmoid, Tanh
from ..affine import Affine
from ..i18n import _
from .common import DPI, PlotExplorer, dropdown, label_axes, png, sentence, slider

#: Weight scales by name: the standard deviation of the weights of a layer with n inputs.
INITS: dict[str, Callable[[int], float]] = {
    "Xavier (1/√n)": lambda n: 1 / math.sqrt(n),
    "He (√(2/n))": lambda n: math.sqrt(2 / n),
    "0.01": lambda n: 0.01,
    "1": lambda n: 1.0,
}
ACTIVATIONS: dict[str, type] = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": Relu}

# Sizes of ||dW|| a layer can learn from with an ordinary learning rate: far below, its
# updates are lost (vanishing); far above, one step throws it away (exploding).
LEARNABLE = (1e-6, 1e3)


def gradient_norms(
    depth: int,
    activation: str = "sigmoid",
    init: str = "Xavier (1/√n)",
    width: int = 64,
    batch: int = 64,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Backprop through ``depth`` blocks of Affine + activation.

    The weights of block i (numbered from 1, the input side) are drawn in turn
    from one generator seeded with ``seed``, so a block keeps its weights when
    the depth changes. The loss is sum(out * r) for a fixed random r.

    Returns (grad_norms, act_stds), both of length ``depth``: the Frobenius norm
    of dW of each block's Affine, and the standard deviation of each block's
    output.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(_("activation must be one of {names}").format(names=sorted(ACTIVATIONS)))
    if init not in INITS:
        raise ValueError(_("init must be one of {names}").format(names=list(INITS)))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, width))
    r = rng.standard_normal((batch, width)) / batch
    scale = INITS[init](width)
    layers: list[Any] = []
    affines: list[Affine] = []
    stds = []
    out = x
    for _block in range(int(depth)):
        affine = Affine(scale * rng.standard_normal((width, width)), np.zeros(width))
        act = ACTIVATIONS[activation]()
        affines.append(affine)
        layers += [affine, act]
        out = act.forward(affine.forward(out))
        stds.append(float(np.std(out)))
    dout = r
    for layer in reversed(layers):
        dout = layer.backward(dout)
    norms = np.array([float(np.linalg.norm(a.dW)) for a in affines])
    return norms, np.array(stds)


def describe_depth(norms: np.ndarray) -> tuple[str, str]:
    """("vanishing" | "exploding" | "steady", a sentence on the layers' gradient sizes).

    Judged on the sizes themselves as well as on the first/last ratio: a stack whose
    every layer has ||dW|| near 1e23 (or 1e-35) keeps its ratio near 1 and learns nothing.
    """
    low, high = LEARNABLE
    smallest, largest = float(np.min(norms)), float(np.max(norms))
    size = _("||dW|| ranges from {smallest:.2g} to {largest:.2g}. ").format(
        smallest=smallest, largest=largest
    )
    if not np.all(np.isfinite(norms)) or largest > high:
        return "exploding", size + _(
            "Exploding gradients: one update of that size throws the weights away."
        )
    if largest < low:
        return "vanishing", size + _("Vanishing gradients: no layer gets an update that counts.")
    if len(norms) == 1:
        return "steady", size + _("One layer: nothing to compare yet; add depth.")
    first, last = norms[0], norms[-1]
    if last == 0:
        return "vanishing", size + _("Vanishing gradients: the last layer gets none.")
    ratio = first / last
    text = size + _("The gradient of layer 1 is {ratio:.2g} times that of layer {last}. ").format(
        ratio=ratio, last=len(norms)
    )
    if smallest < low or ratio < 1e-2:
        return "vanishing", text + _("Vanishing gradients: the first layers barely learn.")
    if ratio > 1e2:
        return "exploding", text + _("Exploding gradients: the first layers get huge updates.")
    return "steady", text + _("Gradients keep a usable size through the stack: every layer learns.")


def draw_depth(norms: np.ndarray, stds: np.ndarray, activation: str, init: str) -> Figure:
    """Left: ||dW|| per layer on a log scale; right: the spread of each layer's output."""
    fig = Figure(figsize=(10, 3.8), dpi=DPI)
    ax, ax2 = fig.subplots(1, 2)
    layers = np.arange(1, len(norms) + 1)
    positive = np.where(norms > 0, norms, np.nan)
    ax.semilogy(layers, positive, "-o", color="#c0262d", ms=4)
    finite = norms[(norms > 0) & np.isfinite(norms)]
    if len(finite):  # at least three decades, so steady gradients look steady
        top = finite.max()
        ax.set_ylim(min(finite.min(), top * 1e-3) / 2, top * 3)
    label_axes(
        ax,
        _("layer (1 = next to the input)"),
        _("‖dW‖ (log scale)"),
        _("gradient norm per layer: {activation}, init {init}").format(
            activation=activation, init=init
        ),
    )
    ax.grid(True, which="major", alpha=0.3)
    ax2.plot(layers, stds, "-o", color="#3b5b8c", ms=4)
    label_axes(ax2, _("layer"), _("std of the layer's output"), _("spread of the activations"))
    ax2.set_ylim(bottom=0)
    ax2.grid(True, alpha=0.3)
    for a in (ax, ax2):
        a.set_xlim(0.5, max(len(norms), 2) + 0.5)
        a.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


class DepthExplorer(PlotExplorer):
    """The widget ``depth_explorer`` returns: ``depth`` slider, ``activation``
    and ``init`` dropdowns, the plot and a ``message``; ``norms``, ``stds`` and
    ``verdict`` hold the latest numbers and judgement."""

    def __init__(
        self, depth: int = 10, activation: str = "sigmoid", init: str = "Xavier (1/√n)"
    ) -> None:
        self.depth = slider(widgets.IntSlider, _("depth"), depth, 1, 50, "360px")
        self.activation = dropdown(_("activation"), list(ACTIVATIONS), activation, "200px")
        self.init = dropdown(_("weight scale"), list(INITS), init, "260px")
        super().__init__(
            [self.depth, self.activation, self.init],
            self.update,
            "bp-depth-explorer",
            "bp-depth-verdict",
        )

    def update(self) -> None:
        """Backprop through the stack the controls describe and redraw."""
        self.norms, self.stds = gradient_norms(
            self.depth.value, self.activation.value, self.init.value
        )
        self.verdict, text = describe_depth(self.norms)
        self.image.value = png(
            draw_depth(self.norms, self.stds, self.activation.value, self.init.value)
        )
        self.message.value = sentence(text)


def depth_explorer(depth: int = 10, activation: str = "sigmoid") -> DepthExplorer:
    """Gradients through a deep stack (an ``ipywidgets.VBox``; display it).

    ``depth`` blocks of Affine (64 units, weights from a fixed seed) and an
    activation (sigmoid, tanh or relu). The plot shows ‖dW‖ of every layer on a log
    scale, and the spread of every layer's output: with sigmoid the gradient
    shrinks layer by layer towards the input; relu with He scaling keeps it.
    """
    return DepthExplorer(depth=depth, activation=activation)
