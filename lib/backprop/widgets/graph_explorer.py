"""The computational-graph explorer: sliders for a graph's inputs, the graph drawn with
every edge's value and gradient, and the same numbers in a table.

    graph_explorer(graph, mul_layer, add_layer)  the widget, computed with your layers
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..i18n import _
from .common import GRAD_COLOR, VALUE_COLOR, fmt, image, png, slider
from .graph_drawing import draw_graph
from .graphs import GraphInput, GraphSpec, evaluate, graph_spec


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.allclose(float(a), float(b), rtol=1e-6, atol=1e-9))
    except (TypeError, ValueError):
        return False


def _table_html(
    spec: GraphSpec,
    values: Mapping[str, Any],
    grads: Mapping[str, Any],
    wrong: Sequence[str],
    error: str | None,
    checked: bool,
) -> str:
    """Every edge's value and gradient as an HTML table, and a line under it: the error,
    or (``checked``) whether the numbers match the reference layers."""
    rows = []
    for edge in spec.edges:
        v = fmt(values[edge]) if edge in values else "?"
        g = fmt(grads[edge]) if edge in grads else "?"
        mark = (
            ' <span style="color:#c0262d">'
            + html.escape(_("✗ differs from the reference layers"))
            + "</span>"
            if edge in wrong
            else ""
        )
        rows.append(
            f'<tr data-edge="{edge}"><td style="padding:1px 12px 1px 0"><code>{edge}</code></td>'
            f'<td class="bp-value" style="padding:1px 12px; color:{VALUE_COLOR}">{edge} = {v}</td>'
            f'<td class="bp-grad" style="padding:1px 12px; color:{GRAD_COLOR}">d {edge} = {g}'
            f"{mark}</td></tr>"
        )
    th = 'style="text-align:left; padding:1px 12px 1px 0"'
    edge_h, value_h = html.escape(_("edge")), html.escape(_("value"))
    grad_h = html.escape(_("gradient d edge = ∂{output}/∂edge").format(output=spec.output))
    head = f"<tr><th {th}>{edge_h}</th><th {th}>{value_h}</th><th {th}>{grad_h}</th></tr>"
    if error:
        error_h = html.escape(_("Error:"))
        status = (
            f'<div class="bp-status" style="color:#c0262d"><b>{error_h}</b> '
            f"{html.escape(error)}</div>"
        )
    elif checked and wrong:
        status = (
            '<div class="bp-status" style="color:#c0262d">'
            + html.escape(
                _(
                    "On {count} edge(s) your "
                    "layers give other values or gradients than the reference layers (marked ✗)."
                ).format(count=len(wrong))
            )
            + "</div>"
        )
    elif checked:
        status = (
            '<div class="bp-status" style="color:#1b7a2e">'
            + html.escape(_("All values and gradients match the reference layers ✓"))
            + "</div>"
        )
    else:
        status = ""
    return (
        f'<table class="bp-graph-table" style="font-size:14px; border-collapse:collapse">'
        f"{head}{''.join(rows)}</table>{status}"
    )


def _slider(i: GraphInput) -> widgets.ValueWidget:
    """The slider for one input, with as many decimals as its step has: 100, 1.10, -2.5."""
    cls = widgets.IntSlider if i.integer else widgets.FloatSlider
    traits: dict[str, Any] = {"step": i.step}
    if not i.integer:
        decimals = max(0, -math.floor(math.log10(i.step) + 1e-9))
        traits["readout_format"] = f".{decimals}f"
    s = slider(cls, _(i.label), i.default, i.lo, i.hi, "360px", "2px 24px 2px 0", **traits)
    s.add_class(f"bp-slider-{i.name}")
    return s


class GraphExplorer(widgets.VBox):
    """The widget ``graph_explorer`` returns: sliders, the drawn graph, and a
    table of values and gradients. ``sliders`` maps input names to sliders,
    ``image`` shows the graph, ``table`` is the HTML table, ``result`` the
    latest ``(values, grads, error)`` and ``wrong`` the edges that differ from
    the reference layers."""

    def __init__(
        self,
        graph: str | GraphSpec = "apple",
        mul_layer: type | None = None,
        add_layer: type | None = None,
    ) -> None:
        self.spec = graph_spec(graph)
        self.mul_layer, self.add_layer = mul_layer, add_layer
        self.checked = mul_layer is not None or add_layer is not None
        self.sliders: dict[str, widgets.ValueWidget] = {}
        for i in self.spec.inputs:
            self.sliders[i.name] = _slider(i)
            self.sliders[i.name].observe(self._on_change, names="value")
        self.image = image()
        self.table = widgets.HTML()
        self.table.add_class("bp-graph-values")
        controls = widgets.Box(
            list(self.sliders.values()), layout=widgets.Layout(flex_flow="row wrap")
        )
        super().__init__([controls, self.image, self.table])
        self.add_class("bp-graph-explorer")
        self.update()

    def inputs(self) -> dict[str, float]:
        """The sliders' values by input name."""
        return {name: s.value for name, s in self.sliders.items()}

    def _on_change(self, _change: Any = None) -> None:
        self.update()

    def update(self) -> None:
        """Recompute forward and backward with the layer classes, and redraw."""
        values, grads, error = evaluate(self.spec, self.inputs(), self.mul_layer, self.add_layer)
        wrong: list[str] = []
        if self.checked:
            ref_values, ref_grads, _ = evaluate(self.spec, self.inputs(), None, None)
            for edge in self.spec.edges:
                bad_value = edge in values and not _same(values[edge], ref_values[edge])
                bad_grad = edge in grads and not _same(grads[edge], ref_grads[edge])
                if bad_value or bad_grad:
                    wrong.append(edge)
        self.result = (values, grads, error)
        self.wrong = wrong
        self.image.value = png(draw_graph(self.spec, values, grads, wrong))
        self.table.value = _table_html(self.spec, values, grads, wrong, error, self.checked)


def graph_explorer(
    graph: str = "apple", mul_layer: type | None = None, add_layer: type | None = None
) -> GraphExplorer:
    """An interactive computational graph (an ``ipywidgets.VBox``; display it).

    graph: "apple" (2 apples at 100, tax 1.1: price 220), "apple_orange"
        (2 apples at 100 and 3 oranges at 150, tax 1.1: price 715) or "xyz"
        (f = (x + y) z at x=-2, y=5, z=-4: f = -12).
    mul_layer, add_layer: classes to build the nodes from; default the
        reference ``MulLayer`` and ``AddLayer``. Pass your own and every value
        and gradient shown is what your code computes; those that differ from
        the reference layers are marked ✗.

    Each slider sets one input; on release the graph is computed forward and
    backward again and redrawn. Under the drawing a table lists every edge
    as ``apple = 100`` and ``d apple = 2.2``.
    """
    return GraphExplorer(graph, mul_layer=mul_layer, add_layer=add_layer)
