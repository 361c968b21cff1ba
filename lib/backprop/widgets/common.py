"""What the widgets share: colours and font sizes, number formatting, a matplotlib Figure
as the PNG an ``ipywidgets.Image`` shows, their sliders and drop-down lists, and
``PlotExplorer``, the layout of the learning-rate and depth explorers."""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

VALUE_COLOR = "#1b7a2e"  # forward values: dark green, above each edge
GRAD_COLOR = "#c0262d"  # gradients: red, below each edge
FONT_SIZE = 11  # points, for axis labels and graph labels; titles are a point larger
DPI = 100  # pixels per inch of every figure, drawn and shown at this size
#: Controls whose description is shown in full, not cut to a fixed width.
CONTROL_STYLE = {"description_width": "initial"}


def fmt(v: Any) -> str:
    """A number as short text: 6 significant digits, no float noise ("2.2", not
    "2.2000000000000006"); anything that is not a real number as "?"."""
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.item()
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "?"
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f == 0:
        return "0"
    return f"{f:.6g}"


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes at ``DPI`` dots per inch."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def image(**layout: str) -> widgets.Image:
    """An empty PNG image widget that shrinks to the notebook's width; ``layout`` adds
    CSS layout properties."""
    return widgets.Image(
        format="png", layout=widgets.Layout(max_width="100%", height="auto", **layout)
    )


def slider(
    cls: type[widgets.ValueWidget],
    description: str,
    value: float,
    lo: float,
    hi: float,
    width: str,
    margin: str | None = None,
    **traits: Any,
) -> widgets.ValueWidget:
    """A ``cls`` slider (IntSlider, FloatSlider, FloatLogSlider) from ``lo`` to ``hi`` that
    reports its value on release, not while it is dragged. ``width`` and ``margin`` are CSS
    lengths; ``traits`` (``step``, ``readout_format``, ...) go to ``cls`` as they are."""
    return cls(
        value=value,
        min=lo,
        max=hi,
        description=description,
        continuous_update=False,
        style=CONTROL_STYLE,
        layout=widgets.Layout(width=width, margin=margin),
        **traits,
    )


def dropdown(description: str, options: list[str], value: str, width: str) -> widgets.Dropdown:
    """A drop-down list of ``options`` showing ``value``, ``width`` wide (a CSS length)."""
    return widgets.Dropdown(
        options=options,
        value=value,
        description=description,
        style=CONTROL_STYLE,
        layout=widgets.Layout(width=width),
    )


def sentence(text: str, color: str | None = None) -> str:
    """``text``, HTML-escaped, as a 14 px line, in ``color`` if one is given."""
    style = "font-size:14px" + (f"; color:{color}" if color else "")
    return f'<div style="{style}">{html.escape(text)}</div>'


def label_axes(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    """Axis labels and a title at the widgets' font sizes; tick labels a point smaller."""
    ax.set_xlabel(xlabel, fontsize=FONT_SIZE)
    ax.set_ylabel(ylabel, fontsize=FONT_SIZE)
    ax.set_title(title, fontsize=FONT_SIZE + 1)
    ax.tick_params(labelsize=FONT_SIZE - 1)


class PlotExplorer(widgets.VBox):
    """A row of controls, a plot under them and a sentence under the plot, all redrawn
    by ``update`` whenever a control's value changes.

    ``image`` is the plot, ``message`` the sentence (an ``ipywidgets.HTML``). The
    ``explorer_class`` and ``message_class`` CSS classes let a page find them.
    """

    def __init__(
        self,
        controls: Sequence[widgets.ValueWidget],
        update: Callable[[], None],
        explorer_class: str,
        message_class: str,
    ) -> None:
        self.image = image()
        self.message = widgets.HTML()
        self.message.add_class(message_class)
        for control in controls:
            control.observe(lambda _change: update(), names="value")
        super().__init__([widgets.HBox(list(controls)), self.image, self.message])
        self.add_class(explorer_class)
        update()
