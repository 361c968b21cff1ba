"""Interactive pieces for the notebooks, built on ipywidgets and matplotlib only.

    graph_explorer(graph, mul_layer, add_layer)  a computational graph with sliders;
                                                 forward values and gradients on every edge
    graph_values(graph, inputs, mul_layer, add_layer)
                                                 the same numbers as a plain dict
    learning_rate_explorer()                     gradient descent on a 1-D cost
    depth_explorer()                             gradient norms through a deep stack of layers
    LiveTrainingView(total_steps)                loss and accuracy curves while ``train`` runs

Every plot is drawn with matplotlib's object-oriented API (no pyplot, so no
figure is left open) and shown as a PNG in an ``ipywidgets.Image``. That works
with any ``%matplotlib`` backend, updates in place instead of adding outputs,
and needs no system packages. Outside a notebook the widgets still build and
update, which is how the tests drive them.
"""
from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from .activations import Relu, Sigmoid, Tanh
from .affine import Affine
from .nodes import AddLayer, MulLayer

__all__ = [
    "GRAPHS",
    "DepthExplorer",
    "GraphExplorer",
    "LearningRateExplorer",
    "LiveTrainingView",
    "depth_explorer",
    "describe_descent",
    "gradient_descent",
    "gradient_norms",
    "graph_explorer",
    "graph_values",
    "learning_rate_explorer",
]

VALUE_COLOR = "#1b7a2e"     # forward values: dark green, above each edge
GRAD_COLOR = "#c0262d"      # gradients: red, below each edge
NODE_FACE = "#eef3fb"
NODE_EDGE = "#3b5b8c"
FONT_SIZE = 11
DPI = 100


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


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _image(**layout: str) -> widgets.Image:
    return widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto",
                                                             **layout))


# --------------------------------------------------------------------------------------
# Computational graphs
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GraphInput:
    """One input of a graph and the slider that sets it."""

    name: str
    label: str
    default: float
    lo: float
    hi: float
    step: float
    integer: bool = False


@dataclass(frozen=True)
class GraphOp:
    """One node: ``output = kind(inputs[0], inputs[1])``, kind "mul" or "add"."""

    node: str
    kind: str
    inputs: tuple[str, str]
    output: str


@dataclass(frozen=True)
class GraphSpec:
    """A computational graph and how to draw it.

    Every edge is named after the quantity it carries. ``pos`` places the
    nodes: inputs under their own names, operations under ``GraphOp.node``,
    and the final result under ``"out"``. ``label_at`` says where along an edge
    (0 = its start, 1 = its end) its value and gradient are written.
    """

    name: str
    title: str
    inputs: tuple[GraphInput, ...]
    ops: tuple[GraphOp, ...]
    output: str
    pos: Mapping[str, tuple[float, float]]
    figsize: tuple[float, float]
    label_at: Mapping[str, float] = field(default_factory=dict)

    @property
    def edges(self) -> list[str]:
        """Every quantity in forward order: the inputs, then each node's output."""
        names = [i.name for i in self.inputs]
        for op in self.ops:
            names.append(op.output)
        return names

    def producer(self, edge: str) -> str:
        for op in self.ops:
            if op.output == edge:
                return op.node
        return edge  # an input: its own node

    def consumer(self, edge: str) -> str:
        for op in self.ops:
            if edge in op.inputs:
                return op.node
        return "out"


GRAPHS: dict[str, GraphSpec] = {
    "apple": GraphSpec(
        name="apple",
        title="price = apple × apple_num × tax",
        inputs=(
            GraphInput("apple", "apple (price of one)", 100, 0, 300, 10),
            GraphInput("apple_num", "apple_num (count)", 2, 0, 10, 1, integer=True),
            GraphInput("tax", "tax", 1.1, 0.5, 2.0, 0.05),
        ),
        ops=(
            GraphOp("mul_apple", "mul", ("apple", "apple_num"), "apples_total"),
            GraphOp("mul_tax", "mul", ("apples_total", "tax"), "price"),
        ),
        output="price",
        pos={"apple": (0.0, 2.2), "apple_num": (0.0, 0.6), "mul_apple": (3.2, 1.4),
             "tax": (3.2, -0.6), "mul_tax": (6.4, 1.4), "out": (9.0, 1.4)},
        figsize=(9.5, 4.0),
        label_at={"apple": 0.32, "apple_num": 0.32},
    ),
    "apple_orange": GraphSpec(
        name="apple_orange",
        title="price = (apple × apple_num + orange × orange_num) × tax",
        inputs=(
            GraphInput("apple", "apple (price of one)", 100, 0, 300, 10),
            GraphInput("apple_num", "apple_num (count)", 2, 0, 10, 1, integer=True),
            GraphInput("orange", "orange (price of one)", 150, 0, 300, 10),
            GraphInput("orange_num", "orange_num (count)", 3, 0, 10, 1, integer=True),
            GraphInput("tax", "tax", 1.1, 0.5, 2.0, 0.05),
        ),
        ops=(
            GraphOp("mul_apple", "mul", ("apple", "apple_num"), "apples_total"),
            GraphOp("mul_orange", "mul", ("orange", "orange_num"), "oranges_total"),
            GraphOp("add", "add", ("apples_total", "oranges_total"), "fruit_total"),
            GraphOp("mul_tax", "mul", ("fruit_total", "tax"), "price"),
        ),
        output="price",
        pos={"apple": (0.0, 6.0), "apple_num": (0.0, 4.0), "mul_apple": (3.4, 5.0),
             "orange": (0.0, 2.0), "orange_num": (0.0, 0.0), "mul_orange": (3.4, 1.0),
             "add": (6.8, 3.0), "tax": (6.8, 0.0), "mul_tax": (10.0, 3.0), "out": (12.8, 3.0)},
        figsize=(12.0, 6.6),
        label_at={"apple": 0.45, "apple_num": 0.45, "orange": 0.45, "orange_num": 0.45,
                  "apples_total": 0.4, "oranges_total": 0.4, "tax": 0.3},
    ),
    "xyz": GraphSpec(
        name="xyz",
        title="f = (x + y) × z",
        inputs=(
            GraphInput("x", "x", -2, -10, 10, 0.5),
            GraphInput("y", "y", 5, -10, 10, 0.5),
            GraphInput("z", "z", -4, -10, 10, 0.5),
        ),
        ops=(
            GraphOp("add", "add", ("x", "y"), "q"),
            GraphOp("mul", "mul", ("q", "z"), "f"),
        ),
        output="f",
        pos={"x": (0.0, 2.2), "y": (0.0, 0.6), "add": (3.2, 1.4),
             "z": (3.2, -0.6), "mul": (6.4, 1.4), "out": (9.0, 1.4)},
        figsize=(9.5, 4.0),
        label_at={"x": 0.32, "y": 0.32},
    ),
}


def _spec(graph: str | GraphSpec) -> GraphSpec:
    if isinstance(graph, GraphSpec):
        return graph
    try:
        return GRAPHS[graph]
    except KeyError:
        raise ValueError(f"unknown graph {graph!r}: choose one of {sorted(GRAPHS)}") from None


def _evaluate(spec: GraphSpec, inputs: Mapping[str, float] | None,
              mul_layer: type | None, add_layer: type | None, catch: bool = True
              ) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """Forward and backward through fresh layer objects.

    Returns (values, grads, error): as many values and gradients as could be
    computed, and None or a message saying which call failed and how. With
    ``catch=False`` a failing layer's exception propagates instead (and a
    layer that returns the wrong kind of thing raises TypeError).
    """
    mul_layer = MulLayer if mul_layer is None else mul_layer
    add_layer = AddLayer if add_layer is None else add_layer
    known = {i.name for i in spec.inputs}
    given = dict(inputs or {})
    unknown = set(given) - known
    if unknown:
        raise ValueError(f"graph {spec.name!r} has no input(s) {sorted(unknown)}; "
                         f"its inputs are {[i.name for i in spec.inputs]}")
    values: dict[str, Any] = {i.name: given.get(i.name, i.default) for i in spec.inputs}
    for i in spec.inputs:
        if i.integer and float(values[i.name]).is_integer():
            values[i.name] = int(values[i.name])
    grads: dict[str, Any] = {}
    layers: dict[str, Any] = {}

    def where(op: GraphOp, method: str) -> str:
        cls = mul_layer if op.kind == "mul" else add_layer
        return f"{getattr(cls, '__name__', cls)}.{method} (node {op.node})"

    def failed(message: str) -> tuple[dict[str, Any], dict[str, Any], str]:
        if not catch:
            raise TypeError(message)
        return values, grads, message

    for op in spec.ops:
        cls = mul_layer if op.kind == "mul" else add_layer
        try:
            layer = layers[op.node] = cls()
            values[op.output] = layer.forward(values[op.inputs[0]], values[op.inputs[1]])
        except Exception as e:  # the learner's code: report it, don't crash the widget
            if not catch:
                raise
            return values, grads, f"{where(op, 'forward')} raised {type(e).__name__}: {e}"
        if values[op.output] is None:
            return failed(f"{where(op, 'forward')} returned None: did you forget `return`?")

    grads[spec.output] = 1
    for op in reversed(spec.ops):
        try:
            result = layers[op.node].backward(grads[op.output])
        except Exception as e:
            if not catch:
                raise
            return values, grads, f"{where(op, 'backward')} raised {type(e).__name__}: {e}"
        try:
            dx, dy = result
        except (TypeError, ValueError):
            return failed(f"{where(op, 'backward')} returned {result!r}; "
                          "it should return a pair (dx, dy)")
        grads[op.inputs[0]], grads[op.inputs[1]] = dx, dy
    return values, grads, None


def graph_values(graph: str | GraphSpec = "apple", inputs: Mapping[str, float] | None = None,
                 mul_layer: type | None = None, add_layer: type | None = None) -> dict[str, Any]:
    """Forward and backward through one of the course's graphs.

    graph: "apple", "apple_orange" or "xyz".
    inputs: values for some or all inputs, e.g. ``{"apple_num": 3}``; the others
        keep their defaults (apple 100, apple_num 2, tax 1.1; orange 150,
        orange_num 3; x -2, y 5, z -4).
    mul_layer, add_layer: the classes to build the nodes from (default the
        reference ``MulLayer`` and ``AddLayer``); pass your own to see what
        they compute.

    Returns ``{"output": name, "values": {edge: forward value},
    "grads": {edge: d output / d edge}}`` with every edge, inputs first. An
    exception from a layer propagates unchanged; a layer that returns None
    from forward, or anything but a pair from backward, raises TypeError.

    >>> r = graph_values("apple")
    >>> round(r["values"]["price"], 6), round(r["grads"]["apple"], 6), r["grads"]["tax"]
    (220.0, 2.2, 200)
    """
    spec = _spec(graph)
    values, grads, _ = _evaluate(spec, inputs, mul_layer, add_layer, catch=False)
    return {"output": spec.output, "values": values,
            "grads": {edge: grads[edge] for edge in spec.edges}}


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.allclose(float(a), float(b), rtol=1e-6, atol=1e-9))
    except (TypeError, ValueError):
        return False


def draw_graph(graph: str | GraphSpec, values: Mapping[str, Any],
               grads: Mapping[str, Any], wrong: Sequence[str] = ()) -> Figure:
    """The graph as a matplotlib Figure: inputs and output as boxes, nodes as
    circles, each edge an arrow with its value above (green) and its gradient
    below (red). Edges named in ``wrong`` get a "✗" by their gradient.

    Artists carry gids ("node:NAME", "node-label:NAME", "value:EDGE",
    "grad:EDGE") so tests can find them.
    """
    spec = _spec(graph)
    fig = Figure(figsize=spec.figsize, dpi=DPI)
    ax = fig.add_axes((0.01, 0.02, 0.98, 0.84))
    ax.set_axis_off()
    xs = [p[0] for p in spec.pos.values()]
    ys = [p[1] for p in spec.pos.values()]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)

    fig.text(0.5, 0.955, spec.title, ha="center", va="center", fontsize=FONT_SIZE + 2)
    fig.text(0.5, 0.895, "green above an edge: its value      red below: the gradient "
             f"∂{spec.output}/∂(edge)", ha="center", va="center", fontsize=FONT_SIZE - 1,
             color="#444444")

    radius = 0.36
    half_w, half_h = 0.72, 0.3  # boxes of inputs and output

    def shape_edge(node: str, towards: tuple[float, float]) -> tuple[float, float]:
        """Where a line from the node's centre towards ``towards`` leaves its shape."""
        x, y = spec.pos[node]
        dx, dy = towards[0] - x, towards[1] - y
        d = math.hypot(dx, dy) or 1.0
        if node in {op.node for op in spec.ops}:
            return x + radius * dx / d, y + radius * dy / d
        # a box: scale the direction until it hits a side
        t = min(half_w / abs(dx) if dx else math.inf, half_h / abs(dy) if dy else math.inf)
        return x + t * dx, y + t * dy

    # nodes
    for i in spec.inputs:
        x, y = spec.pos[i.name]
        ax.add_patch(FancyBboxPatch((x - half_w, y - half_h), 2 * half_w, 2 * half_h,
                                    boxstyle="round,pad=0.02", fc="#f7f7f7", ec="#777777",
                                    gid=f"node:{i.name}"))
        ax.text(x, y, i.name, ha="center", va="center", fontsize=FONT_SIZE,
                gid=f"node-label:{i.name}")
    x, y = spec.pos["out"]
    ax.add_patch(FancyBboxPatch((x - half_w, y - half_h), 2 * half_w, 2 * half_h,
                                boxstyle="round,pad=0.02", fc="#fff6df", ec="#b58900",
                                gid="node:out"))
    ax.text(x, y, spec.output, ha="center", va="center", fontsize=FONT_SIZE,
            fontweight="bold", gid="node-label:out")
    for op in spec.ops:
        x, y = spec.pos[op.node]
        ax.add_patch(Circle((x, y), radius, fc=NODE_FACE, ec=NODE_EDGE, lw=1.5,
                            gid=f"node:{op.node}"))
        ax.text(x, y, "×" if op.kind == "mul" else "+", ha="center", va="center",
                fontsize=FONT_SIZE + 7, color=NODE_EDGE, gid=f"node-label:{op.node}")

    # edges
    input_names = {i.name for i in spec.inputs}
    for edge in spec.edges:
        src, dst = spec.producer(edge), spec.consumer(edge)
        p0 = shape_edge(src, spec.pos[dst])
        p1 = shape_edge(dst, spec.pos[src])
        ax.annotate("", xy=p1, xytext=p0,
                    arrowprops=dict(arrowstyle="-|>", color="#555555", lw=1.3,
                                    shrinkA=0, shrinkB=0, mutation_scale=14))
        t = spec.label_at.get(edge, 0.5)
        mx, my = p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1])
        box = dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.9)
        value_text = fmt(values[edge]) if edge in values else "?"
        if edge not in input_names:  # inputs are named in their boxes; name the others here
            value_text = f"{edge} = {value_text}"
        grad_text = fmt(grads[edge]) if edge in grads else "?"
        if edge in wrong:
            grad_text += " ✗"
        ax.annotate(value_text, (mx, my), xytext=(0, 9), textcoords="offset points",
                    ha="center", va="bottom", fontsize=FONT_SIZE, color=VALUE_COLOR,
                    fontweight="bold", bbox=box, gid=f"value:{edge}")
        ax.annotate(grad_text, (mx, my), xytext=(0, -9), textcoords="offset points",
                    ha="center", va="top", fontsize=FONT_SIZE, color=GRAD_COLOR,
                    fontweight="bold", bbox=box, gid=f"grad:{edge}")
    return fig


def _table_html(spec: GraphSpec, values: Mapping[str, Any], grads: Mapping[str, Any],
                wrong: Sequence[str], error: str | None, checked: bool) -> str:
    rows = []
    for edge in spec.edges:
        v = fmt(values[edge]) if edge in values else "?"
        g = fmt(grads[edge]) if edge in grads else "?"
        mark = (' <span style="color:#c0262d">✗ differs from the reference layers</span>'
                if edge in wrong else "")
        rows.append(
            f'<tr data-edge="{edge}"><td style="padding:1px 12px 1px 0"><code>{edge}</code></td>'
            f'<td class="bp-value" style="padding:1px 12px; color:{VALUE_COLOR}">{edge} = {v}</td>'
            f'<td class="bp-grad" style="padding:1px 12px; color:{GRAD_COLOR}">d {edge} = {g}'
            f"{mark}</td></tr>")
    th = 'style="text-align:left; padding:1px 12px 1px 0"'
    head = (f'<tr><th {th}>edge</th><th {th}>value</th>'
            f'<th {th}>gradient d edge = ∂{spec.output}/∂edge</th></tr>')
    if error:
        status = (f'<div class="bp-status" style="color:#c0262d"><b>Error:</b> '
                  f"{html.escape(error)}</div>")
    elif checked and wrong:
        status = (f'<div class="bp-status" style="color:#c0262d">On {len(wrong)} edge(s) your '
                  "layers give other values or gradients than the reference layers (marked ✗)."
                  "</div>")
    elif checked:
        status = ('<div class="bp-status" style="color:#1b7a2e">All values and gradients '
                  "match the reference layers ✓</div>")
    else:
        status = ""
    return (f'<table class="bp-graph-table" style="font-size:14px; border-collapse:collapse">'
            f"{head}{''.join(rows)}</table>{status}")


class GraphExplorer(widgets.VBox):
    """The widget ``graph_explorer`` returns: sliders, the drawn graph, and a
    table of values and gradients. ``sliders`` maps input names to sliders,
    ``image`` shows the graph, ``table`` is the HTML table, ``result`` the
    latest ``(values, grads, error)``."""

    def __init__(self, graph: str | GraphSpec = "apple", mul_layer: type | None = None,
                 add_layer: type | None = None) -> None:
        self.spec = _spec(graph)
        self.mul_layer, self.add_layer = mul_layer, add_layer
        self.checked = mul_layer is not None or add_layer is not None
        self.sliders: dict[str, widgets.ValueWidget] = {}
        style = {"description_width": "initial"}
        for i in self.spec.inputs:
            cls = widgets.IntSlider if i.integer else widgets.FloatSlider
            kwargs = dict(value=i.default, min=i.lo, max=i.hi, step=i.step, description=i.label,
                          continuous_update=False, style=style,
                          layout=widgets.Layout(width="360px", margin="2px 24px 2px 0"))
            if not i.integer:  # as many decimals as the step has: 100, 1.10, -2.5
                decimals = max(0, -math.floor(math.log10(i.step) + 1e-9))
                kwargs["readout_format"] = f".{decimals}f"
            slider = cls(**kwargs)
            slider.add_class(f"bp-slider-{i.name}")
            slider.observe(self._on_change, names="value")
            self.sliders[i.name] = slider
        self.image = _image()
        self.table = widgets.HTML()
        self.table.add_class("bp-graph-values")
        controls = widgets.Box(list(self.sliders.values()),
                               layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([controls, self.image, self.table])
        self.add_class("bp-graph-explorer")
        self.update()

    def inputs(self) -> dict[str, float]:
        return {name: s.value for name, s in self.sliders.items()}

    def _on_change(self, _change: Any = None) -> None:
        self.update()

    def update(self) -> None:
        """Recompute forward and backward with the layer classes, and redraw."""
        values, grads, error = _evaluate(self.spec, self.inputs(), self.mul_layer,
                                         self.add_layer)
        wrong: list[str] = []
        if self.checked:
            ref_values, ref_grads, _ = _evaluate(self.spec, self.inputs(), None, None)
            for edge in self.spec.edges:
                bad_value = edge in values and not _same(values[edge], ref_values[edge])
                bad_grad = edge in grads and not _same(grads[edge], ref_grads[edge])
                if bad_value or bad_grad:
                    wrong.append(edge)
        self.result = (values, grads, error)
        self.wrong = wrong
        fig = draw_graph(self.spec, values, grads, wrong)
        self.image.value = _png(fig)
        self.table.value = _table_html(self.spec, values, grads, wrong, error, self.checked)


def graph_explorer(graph: str = "apple", mul_layer: type | None = None,
                   add_layer: type | None = None) -> GraphExplorer:
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


# --------------------------------------------------------------------------------------
# Learning rate
# --------------------------------------------------------------------------------------

#: Three points that lie almost on t = 2 x; the cost is the MSE of the line y = w x.
DESCENT_X = np.array([1.0, 2.0, 3.0])
DESCENT_T = np.array([2.1, 3.9, 6.2])
DESCENT_W0 = -1.0
DESCENT_W_BEST = float(DESCENT_X @ DESCENT_T / (DESCENT_X @ DESCENT_X))


def descent_cost(w: Any) -> Any:
    """MSE of y = w x on (DESCENT_X, DESCENT_T), for a number or an array of w."""
    w = np.asarray(w, dtype=float)
    return np.mean((w[..., None] * DESCENT_X - DESCENT_T) ** 2, axis=-1)


def descent_grad(w: float) -> float:
    """d cost / d w = 2 mean((w x - t) x)."""
    return float(2 * np.mean((w * DESCENT_X - DESCENT_T) * DESCENT_X))


def gradient_descent(lr: float, steps: int, w0: float = DESCENT_W0) -> np.ndarray:
    """w_0 .. w_steps of w <- w - lr * d cost/dw. Stops early (shorter array) once
    |w| passes 1e100, which only a diverging run does."""
    ws = [float(w0)]
    w = float(w0)
    for _ in range(int(steps)):
        w = w - lr * descent_grad(w)
        ws.append(w)
        if not abs(w) < 1e100:
            break
    return np.array(ws)


def describe_descent(ws: Sequence[float], w_best: float = DESCENT_W_BEST) -> tuple[str, str]:
    """("converged" | "crawled" | "diverged", a sentence saying what happened)."""
    ws = np.asarray(ws, dtype=float)
    d0 = abs(ws[0] - w_best)
    dist = np.abs(ws - w_best)
    n = len(ws) - 1
    w_last = ws[-1]
    if not np.isfinite(w_last) or dist[-1] >= d0:
        return "diverged", (
            f"Diverged: each step overshoots the minimum by more than the last; after {n} "
            f"steps w = {w_last:.3g}, farther from w* = {w_best:.3f} than where it started. "
            "Lower the learning rate.")
    close = np.nonzero(dist <= 1e-3 * d0)[0]
    zigzag = n >= 2 and bool(np.any(np.diff(np.sign(ws - w_best)) != 0))
    if len(close):
        text = (f"Converged: after {close[0]} steps w reached the minimum w* = {w_best:.3f} "
                f"(to 0.1% of its starting distance); now w = {w_last:.4f}.")
        if zigzag:
            text += (" It zig-zags across the minimum because each step overshoots; with a "
                     "much larger learning rate the overshoots grow instead of shrinking.")
        return "converged", text
    done = 100 * (1 - dist[-1] / d0)
    if zigzag:
        return "crawled", (
            f"Crawling: after {n} steps w = {w_last:.4f} has come {done:.0f}% of the way to "
            f"the minimum w* = {w_best:.3f}, zig-zagging across it because each step "
            "overshoots. A smaller learning rate would get there sooner; a larger one diverges.")
    return "crawled", (
        f"Crawling: after {n} steps w = {w_last:.4f} has come only {done:.0f}% of the way "
        f"to the minimum w* = {w_best:.3f}. Raise the learning rate or take more steps.")


def draw_descent(ws: np.ndarray, lr: float) -> Figure:
    fig = Figure(figsize=(10, 3.8), dpi=DPI)
    ax, ax2 = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=(1.4, 1)))
    lo, hi = -2.0, 6.0
    grid = np.linspace(lo, hi, 300)
    cost = descent_cost(grid)
    ax.plot(grid, cost, color="#3b5b8c", lw=2, label="cost(w)")
    ax.axvline(DESCENT_W_BEST, color="#999999", ls=":", lw=1)
    inside = (ws >= lo) & (ws <= hi) & np.isfinite(ws)
    shown = ws[: np.argmin(inside) if not inside.all() else len(ws)]
    ax.plot(shown, descent_cost(shown), "-o", color="#c0262d", ms=4, lw=1,
            label="w after each step")
    ax.plot(ws[:1], descent_cost(ws[:1]), "s", color="black", ms=7, label="start")
    if len(shown) < len(ws):
        ax.text(0.5, 0.55, f"w leaves the plot at step {len(shown)}", transform=ax.transAxes,
                ha="center", va="center", fontsize=FONT_SIZE, color="#c0262d")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, cost.max() * 1.05)
    ax.set_xlabel("w", fontsize=FONT_SIZE)
    ax.set_ylabel("cost = MSE of y = w·x", fontsize=FONT_SIZE)
    ax.set_title(f"learning rate {lr:.3g}", fontsize=FONT_SIZE + 1)
    ax.legend(fontsize=FONT_SIZE - 1, loc="upper center")
    ax.tick_params(labelsize=FONT_SIZE - 1)

    costs = descent_cost(ws[np.isfinite(ws)])
    ax2.semilogy(np.arange(len(costs)), costs, "-o", color="#c0262d", ms=3, lw=1)
    ax2.axhline(float(descent_cost(DESCENT_W_BEST)), color="#999999", ls=":", lw=1,
                label="lowest cost")
    ax2.set_xlabel("step", fontsize=FONT_SIZE)
    ax2.set_ylabel("cost (log scale)", fontsize=FONT_SIZE)
    ax2.set_title("cost after each step", fontsize=FONT_SIZE + 1)
    ax2.legend(fontsize=FONT_SIZE - 1, loc="best")
    ax2.tick_params(labelsize=FONT_SIZE - 1)
    fig.tight_layout()
    return fig


class LearningRateExplorer(widgets.VBox):
    """The widget ``learning_rate_explorer`` returns. ``lr`` and ``steps`` are its
    sliders, ``verdict`` the latest "converged" / "crawled" / "diverged",
    ``message`` the HTML sentence under the plot."""

    def __init__(self, lr: float = 0.01, steps: int = 20) -> None:
        style = {"description_width": "initial"}
        self.lr = widgets.FloatLogSlider(value=lr, base=10, min=-3, max=0, step=0.05,
                                         description="learning rate", readout_format=".3g",
                                         continuous_update=False, style=style,
                                         layout=widgets.Layout(width="420px"))
        self.steps = widgets.IntSlider(value=steps, min=1, max=100, description="steps",
                                       continuous_update=False, style=style,
                                       layout=widgets.Layout(width="360px"))
        self.image = _image()
        self.message = widgets.HTML()
        self.message.add_class("bp-descent-verdict")
        for w in (self.lr, self.steps):
            w.observe(lambda _change: self.update(), names="value")
        super().__init__([widgets.HBox([self.lr, self.steps]), self.image, self.message])
        self.add_class("bp-learning-rate-explorer")
        self.update()

    def update(self) -> None:
        ws = gradient_descent(self.lr.value, self.steps.value)
        self.path = ws
        self.verdict, text = describe_descent(ws)
        self.image.value = _png(draw_descent(ws, self.lr.value))
        color = {"converged": "#1b7a2e", "crawled": "#9a6700", "diverged": "#c0262d"}
        self.message.value = (f'<div style="font-size:14px; color:{color[self.verdict]}">'
                              f"{html.escape(text)}</div>")


def learning_rate_explorer(lr: float = 0.01, steps: int = 20) -> LearningRateExplorer:
    """Gradient descent on a one-parameter cost (an ``ipywidgets.VBox``; display it).

    The cost is the mean squared error of the line y = w x on three points;
    descent starts at w = -1. A log-scale slider sets the learning rate and
    another the number of steps. The left plot shows the cost curve and where
    each step landed, the right one the cost per step, and a sentence under
    them says whether the run converged, is still crawling, or diverged.
    """
    return LearningRateExplorer(lr=lr, steps=steps)


# --------------------------------------------------------------------------------------
# Depth
# --------------------------------------------------------------------------------------

INITS: dict[str, Callable[[int], float]] = {
    "Xavier (1/√n)": lambda n: 1 / math.sqrt(n),
    "He (√(2/n))": lambda n: math.sqrt(2 / n),
    "0.01": lambda n: 0.01,
    "1": lambda n: 1.0,
}
ACTIVATIONS: dict[str, type] = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": Relu}


def gradient_norms(depth: int, activation: str = "sigmoid", init: str = "Xavier (1/√n)",
                   width: int = 64, batch: int = 64, seed: int = 0
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
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")
    if init not in INITS:
        raise ValueError(f"init must be one of {list(INITS)}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, width))
    r = rng.standard_normal((batch, width)) / batch
    scale = INITS[init](width)
    layers: list[Any] = []
    affines: list[Affine] = []
    stds = []
    out = x
    for _ in range(int(depth)):
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


# Sizes of ||dW|| a layer can learn from with an ordinary learning rate: far below, its
# updates are lost (vanishing); far above, one step throws it away (exploding).
LEARNABLE = (1e-6, 1e3)


def describe_depth(norms: np.ndarray) -> tuple[str, str]:
    """("vanishing" | "exploding" | "steady", a sentence on the layers' gradient sizes).

    Judged on the sizes themselves as well as on the first/last ratio: a stack whose
    every layer has ||dW|| near 1e23 (or 1e-35) keeps its ratio near 1 and learns nothing.
    """
    low, high = LEARNABLE
    smallest, largest = float(np.min(norms)), float(np.max(norms))
    size = f"||dW|| ranges from {smallest:.2g} to {largest:.2g}. "
    if not np.all(np.isfinite(norms)) or largest > high:
        return "exploding", size + ("Exploding gradients: one update of that size throws "
                                    "the weights away.")
    if largest < low:
        return "vanishing", size + "Vanishing gradients: no layer gets an update that counts."
    if len(norms) == 1:
        return "steady", size + "One layer: nothing to compare yet; add depth."
    first, last = norms[0], norms[-1]
    if last == 0:
        return "vanishing", size + "Vanishing gradients: the last layer gets none."
    ratio = first / last
    text = size + f"The gradient of layer 1 is {ratio:.2g} times that of layer {len(norms)}. "
    if smallest < low or ratio < 1e-2:
        return "vanishing", text + "Vanishing gradients: the first layers barely learn."
    if ratio > 1e2:
        return "exploding", text + "Exploding gradients: the first layers get huge updates."
    return "steady", text + "Gradients keep a usable size through the stack: every layer learns."


def draw_depth(norms: np.ndarray, stds: np.ndarray, activation: str, init: str) -> Figure:
    fig = Figure(figsize=(10, 3.8), dpi=DPI)
    ax, ax2 = fig.subplots(1, 2)
    layers = np.arange(1, len(norms) + 1)
    positive = np.where(norms > 0, norms, np.nan)
    ax.semilogy(layers, positive, "-o", color="#c0262d", ms=4)
    finite = norms[(norms > 0) & np.isfinite(norms)]
    if len(finite):  # at least three decades, so steady gradients look steady
        top = finite.max()
        ax.set_ylim(min(finite.min(), top * 1e-3) / 2, top * 3)
    ax.set_xlabel("layer (1 = next to the input)", fontsize=FONT_SIZE)
    ax.set_ylabel("‖dW‖ (log scale)", fontsize=FONT_SIZE)
    ax.set_title(f"gradient norm per layer: {activation}, init {init}", fontsize=FONT_SIZE + 1)
    ax.tick_params(labelsize=FONT_SIZE - 1)
    ax.grid(True, which="major", alpha=0.3)
    ax2.plot(layers, stds, "-o", color="#3b5b8c", ms=4)
    ax2.set_xlabel("layer", fontsize=FONT_SIZE)
    ax2.set_ylabel("std of the layer's output", fontsize=FONT_SIZE)
    ax2.set_title("spread of the activations", fontsize=FONT_SIZE + 1)
    ax2.set_ylim(bottom=0)
    ax2.tick_params(labelsize=FONT_SIZE - 1)
    ax2.grid(True, alpha=0.3)
    for a in (ax, ax2):
        a.set_xlim(0.5, max(len(norms), 2) + 0.5)
        a.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


class DepthExplorer(widgets.VBox):
    """The widget ``depth_explorer`` returns: ``depth`` slider, ``activation``
    and ``init`` dropdowns, the plot and a ``message``."""

    def __init__(self, depth: int = 10, activation: str = "sigmoid",
                 init: str = "Xavier (1/√n)") -> None:
        style = {"description_width": "initial"}
        self.depth = widgets.IntSlider(value=depth, min=1, max=50, description="depth",
                                       continuous_update=False, style=style,
                                       layout=widgets.Layout(width="360px"))
        self.activation = widgets.Dropdown(options=list(ACTIVATIONS), value=activation,
                                           description="activation", style=style,
                                           layout=widgets.Layout(width="200px"))
        self.init = widgets.Dropdown(options=list(INITS), value=init,
                                     description="weight scale", style=style,
                                     layout=widgets.Layout(width="260px"))
        self.image = _image()
        self.message = widgets.HTML()
        self.message.add_class("bp-depth-verdict")
        for w in (self.depth, self.activation, self.init):
            w.observe(lambda _change: self.update(), names="value")
        super().__init__([widgets.HBox([self.depth, self.activation, self.init]),
                          self.image, self.message])
        self.add_class("bp-depth-explorer")
        self.update()

    def update(self) -> None:
        self.norms, self.stds = gradient_norms(self.depth.value, self.activation.value,
                                               self.init.value)
        self.verdict, text = describe_depth(self.norms)
        self.image.value = _png(draw_depth(self.norms, self.stds, self.activation.value,
                                           self.init.value))
        self.message.value = f'<div style="font-size:14px">{html.escape(text)}</div>'


def depth_explorer(depth: int = 10, activation: str = "sigmoid") -> DepthExplorer:
    """Gradients through a deep stack (an ``ipywidgets.VBox``; display it).

    ``depth`` blocks of Affine (64 units, weights from a fixed seed) and an
    activation (sigmoid, tanh or relu). The plot shows ‖dW‖ of every layer on a log
    scale, and the spread of every layer's output: with sigmoid the gradient
    shrinks layer by layer towards the input; relu with He scaling keeps it.
    """
    return DepthExplorer(depth=depth, activation=activation)


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------

def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def draw_training(history: Any, total_steps: int | None = None) -> Figure:
    """Loss per step (raw and smoothed) and train/test accuracy per evaluation."""
    fig = Figure(figsize=(10, 3.6), dpi=DPI)
    ax, ax2 = fig.subplots(1, 2)
    loss = np.asarray(history.loss, dtype=float)
    steps = np.arange(len(loss))
    if len(loss):
        ax.plot(steps, loss, color="#9db4d6", lw=0.8, label="each step")
        k = max(1, min(100, len(loss) // 20))
        if k > 1 and len(loss) >= k:
            smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
            mid = (k - 1) // 2  # centre each mean on its window
            ax.plot(steps[mid:mid + len(smooth)], smooth, color="#1f4e99", lw=2,
                    label=f"mean of {k} steps")
        ax.legend(fontsize=FONT_SIZE - 1, loc="upper right")
    ax.set_xlabel("step", fontsize=FONT_SIZE)
    ax.set_ylabel("loss", fontsize=FONT_SIZE)
    ax.set_title("training loss", fontsize=FONT_SIZE + 1)
    ax.set_ylim(bottom=0)
    ax2.set_title("accuracy", fontsize=FONT_SIZE + 1)
    if history.eval_steps:
        ax2.plot(history.eval_steps, history.train_acc, "-o", color="#1f4e99", ms=4,
                 label=f"train {history.train_acc[-1]:.1%}")
        ax2.plot(history.eval_steps, history.test_acc, "-s", color="#d35400", ms=4,
                 label=f"test {history.test_acc[-1]:.1%}")
        ax2.legend(fontsize=FONT_SIZE - 1, loc="lower right")
    ax2.set_xlabel("step", fontsize=FONT_SIZE)
    ax2.set_ylabel("accuracy", fontsize=FONT_SIZE)
    ax2.set_ylim(0, 1.0)
    ax2.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    right = max(total_steps or 0, len(loss), 1)
    for a in (ax, ax2):
        a.set_xlim(0, right)
        a.tick_params(labelsize=FONT_SIZE - 1)
        a.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


@dataclass
class _EmptyHistory:
    loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    eval_steps: list = field(default_factory=list)


class LiveTrainingView:
    """Loss and accuracy curves that update while ``train`` runs.

        view = LiveTrainingView(total_steps=10_000)   # shows itself in a notebook
        history = train(net, x_train, t_train, x_test, t_test,
                        steps=10_000, on_eval=view.on_eval)

    ``widget`` is an ``ipywidgets.VBox`` with a progress bar, a status line and
    the plot; each ``on_eval`` redraws that same plot in place. Created in a
    notebook it displays itself (pass ``display=False`` to show ``view.widget``
    yourself); outside one it only keeps the widgets up to date.
    """

    def __init__(self, total_steps: int | None = None, *, display: bool = True) -> None:
        self.total_steps = total_steps
        self.progress = widgets.IntProgress(value=0, min=0, max=max(int(total_steps or 1), 1),
                                            description="training",
                                            layout=widgets.Layout(width="420px"))
        if total_steps is None:
            self.progress.layout.display = "none"
        self.status = widgets.HTML('<div style="font-size:14px">waiting for the first '
                                   "evaluation…</div>")
        self.status.add_class("bp-training-status")
        self.image = _image()
        self.image.add_class("bp-training-plot")
        self.widget = widgets.VBox([widgets.HBox([self.progress, self.status]), self.image])
        self.widget.add_class("bp-live-training")
        self.calls = 0
        self._draw(_EmptyHistory())  # empty axes until the first evaluation
        if display and _in_notebook():
            from IPython.display import display as show
            show(self.widget)

    def on_eval(self, history: Any) -> None:
        """Pass as ``train(..., on_eval=view.on_eval)``; called with the History so far."""
        self.calls += 1
        done = len(history.loss)
        if self.total_steps:
            self.progress.value = min(done, self.progress.max)
        parts = [f"step {done:,}" + (f" / {self.total_steps:,}" if self.total_steps else "")]
        if len(history.loss):
            parts.append(f"loss {history.loss[-1]:.3f}")
        if history.train_acc:
            parts.append(f"train accuracy {history.train_acc[-1]:.1%}")
        if history.test_acc:
            parts.append(f"test accuracy {history.test_acc[-1]:.1%}")
        self._draw(history)  # the plot first: once the status says a step, its plot is there
        self.status.value = f'<div style="font-size:14px">{" · ".join(parts)}</div>'

    def _draw(self, history: Any) -> None:
        self.image.value = _png(draw_training(history, self.total_steps))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
