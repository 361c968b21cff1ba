"""Drawing a computational graph: inputs and the output as boxes, operations as circles,
every edge an arrow with its value above it and its gradient below.

    draw_graph(graph, values, grads, wrong)  the drawing, a matplotlib Figure
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from ..i18n import _
from .common import DPI, FONT_SIZE, GRAD_COLOR, VALUE_COLOR, fmt
from .graphs import GraphSpec, graph_spec

NODE_FACE = "#eef3fb"  # the circle of an operation
NODE_EDGE = "#3b5b8c"  # its outline and its × or +
RADIUS = 0.36  # of an operation's circle, in data units
HALF_W, HALF_H = 0.72, 0.3  # half the width and height of an input's or the output's box


def _boundary(spec: GraphSpec, node: str, towards: tuple[float, float]) -> tuple[float, float]:
    """Where a line from the node's centre towards ``towards`` leaves its shape."""
    x, y = spec.pos[node]
    dx, dy = towards[0] - x, towards[1] - y
    d = math.hypot(dx, dy) or 1.0
    if node in {op.node for op in spec.ops}:
        return x + RADIUS * dx / d, y + RADIUS * dy / d
    # a box: scale the direction until it hits a side
    t = min(HALF_W / abs(dx) if dx else math.inf, HALF_H / abs(dy) if dy else math.inf)
    return x + t * dx, y + t * dy


def _draw_box(
    ax: Axes, spec: GraphSpec, node: str, text: str, colors: tuple[str, str], **font: Any
) -> None:
    """An input's or the output's box, face and edge in ``colors``, with ``text`` in it."""
    x, y = spec.pos[node]
    ax.add_patch(
        FancyBboxPatch(
            (x - HALF_W, y - HALF_H),
            2 * HALF_W,
            2 * HALF_H,
            boxstyle="round,pad=0.02",
            fc=colors[0],
            ec=colors[1],
            gid=f"node:{node}",
        )
    )
    ax.text(
        x, y, text, ha="center", va="center", fontsize=FONT_SIZE, gid=f"node-label:{node}", **font
    )


def _draw_nodes(ax: Axes, spec: GraphSpec) -> None:
    """Inputs and the output as boxes, operations as circles with × or + in them."""
    for i in spec.inputs:
        _draw_box(ax, spec, i.name, i.name, ("#f7f7f7", "#777777"))
    _draw_box(ax, spec, "out", spec.output, ("#fff6df", "#b58900"), fontweight="bold")
    for op in spec.ops:
        x, y = spec.pos[op.node]
        ax.add_patch(
            Circle((x, y), RADIUS, fc=NODE_FACE, ec=NODE_EDGE, lw=1.5, gid=f"node:{op.node}")
        )
        ax.text(
            x,
            y,
            "×" if op.kind == "mul" else "+",
            ha="center",
            va="center",
            fontsize=FONT_SIZE + 7,
            color=NODE_EDGE,
            gid=f"node-label:{op.node}",
        )


def _draw_edges(
    ax: Axes,
    spec: GraphSpec,
    values: Mapping[str, Any],
    grads: Mapping[str, Any],
    wrong: Sequence[str],
) -> None:
    """Each edge an arrow, its value above it (green) and its gradient below (red)."""
    input_names = {i.name for i in spec.inputs}
    for edge in spec.edges:
        src, dst = spec.producer(edge), spec.consumer(edge)
        p0 = _boundary(spec, src, spec.pos[dst])
        p1 = _boundary(spec, dst, spec.pos[src])
        ax.annotate(
            "",
            xy=p1,
            xytext=p0,
            arrowprops=dict(
                arrowstyle="-|>", color="#555555", lw=1.3, shrinkA=0, shrinkB=0, mutation_scale=14
            ),
        )
        t = spec.label_at.get(edge, 0.5)
        mx, my = p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1])
        box = dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.9)
        value_text = fmt(values[edge]) if edge in values else "?"
        if edge not in input_names:  # inputs are named in their boxes; name the others here
            value_text = f"{edge} = {value_text}"
        grad_text = fmt(grads[edge]) if edge in grads else "?"
        if edge in wrong:
            grad_text += " ✗"
        for kind, text, dy, va, color in (
            ("value", value_text, 9, "bottom", VALUE_COLOR),
            ("grad", grad_text, -9, "top", GRAD_COLOR),
        ):
            ax.annotate(
                text,
                (mx, my),
                xytext=(0, dy),
                textcoords="offset points",
                ha="center",
                va=va,
                fontsize=FONT_SIZE,
                color=color,
                fontweight="bold",
                bbox=box,
                gid=f"{kind}:{edge}",
            )


def draw_graph(
    graph: str | GraphSpec,
    values: Mapping[str, Any],
    grads: Mapping[str, Any],
    wrong: Sequence[str] = (),
) -> Figure:
    """The graph as a matplotlib Figure: inputs and output as boxes, nodes as
    circles, each edge an arrow with its value above (green) and its gradient
    below (red). Edges named in ``wrong`` get a "✗" by their gradient.

    Artists carry gids ("node:NAME", "node-label:NAME", "value:EDGE",
    "grad:EDGE") so tests can find them.
    """
    spec = graph_spec(graph)
    fig = Figure(figsize=spec.figsize, dpi=DPI)
    ax = fig.add_axes((0.01, 0.02, 0.98, 0.84))
    ax.set_axis_off()
    xs = [p[0] for p in spec.pos.values()]
    ys = [p[1] for p in spec.pos.values()]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    fig.text(0.5, 0.955, spec.title, ha="center", va="center", fontsize=FONT_SIZE + 2)
    fig.text(
        0.5,
        0.895,
        _("green above an edge: its value      red below: the gradient ∂{output}/∂(edge)").format(
            output=spec.output
        ),
        ha="center",
        va="center",
        fontsize=FONT_SIZE - 1,
        color="#444444",
    )
    _draw_nodes(ax, spec)
    _draw_edges(ax, spec, values, grads, wrong)
    return fig
