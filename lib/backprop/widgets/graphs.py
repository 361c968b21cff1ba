"""The course's computational graphs as data, and forward and backward through them.

GRAPHS                 "apple", "apple_orange" and "xyz", each a ``GraphSpec``
graph_values(...)      every edge's value and gradient, from the reference layers or yours
evaluate(...)          the same, reporting a failing layer instead of raising
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..i18n import N_, _
from ..nodes import AddLayer, MulLayer


@dataclass(frozen=True)
class GraphInput:
    """One input of a graph and the slider that sets it: shown as ``label``, starting at
    ``default``, from ``lo`` to ``hi`` in steps of ``step``; whole numbers if ``integer``.
    ``label`` is marked with ``N_`` and translated where the slider is built."""

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
    nodes (in data units): inputs under their own names, operations under
    ``GraphOp.node``, and the final result under ``"out"``. ``figsize`` is in
    inches. ``label_at`` says where along an edge (0 = its start, 1 = its end)
    its value and gradient are written; 0.5 where it does not say.
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
        return [i.name for i in self.inputs] + [op.output for op in self.ops]

    def producer(self, edge: str) -> str:
        """The node an edge starts at: the operation computing it, or the input itself."""
        for op in self.ops:
            if op.output == edge:
                return op.node
        return edge

    def consumer(self, edge: str) -> str:
        """The node an edge ends at: the operation using it, or ``"out"``."""
        for op in self.ops:
            if edge in op.inputs:
                return op.node
        return "out"


def _two_nodes(
    name: str, title: str, inputs: tuple[GraphInput, ...], ops: tuple[GraphOp, ...]
) -> GraphSpec:
    """A graph of two nodes drawn left to right: the first two inputs go into the
    first node, its output and the third input into the second, whose output is the
    result."""
    a, b, c = (i.name for i in inputs)
    first, second = ops
    pos = {
        a: (0.0, 2.2),
        b: (0.0, 0.6),
        first.node: (3.2, 1.4),
        c: (3.2, -0.6),
        second.node: (6.4, 1.4),
        "out": (9.0, 1.4),
    }
    return GraphSpec(
        name=name,
        title=title,
        inputs=inputs,
        ops=ops,
        output=second.output,
        pos=pos,
        figsize=(9.5, 4.0),
        label_at={a: 0.32, b: 0.32},
    )


_APPLE = GraphInput("apple", N_("apple (price of one)"), 100, 0, 300, 10)
_APPLE_NUM = GraphInput("apple_num", N_("apple_num (count)"), 2, 0, 10, 1, integer=True)
_TAX = GraphInput("tax", N_("tax"), 1.1, 0.5, 2.0, 0.05)
_MUL_APPLE = GraphOp("mul_apple", "mul", ("apple", "apple_num"), "apples_total")

GRAPHS: dict[str, GraphSpec] = {
    "apple": _two_nodes(
        "apple",
        "price = apple × apple_num × tax",
        (_APPLE, _APPLE_NUM, _TAX),
        (_MUL_APPLE, GraphOp("mul_tax", "mul", ("apples_total", "tax"), "price")),
    ),
    "apple_orange": GraphSpec(
        name="apple_orange",
        title="price = (apple × apple_num + orange × orange_num) × tax",
        inputs=(
            _APPLE,
            _APPLE_NUM,
            GraphInput("orange", N_("orange (price of one)"), 150, 0, 300, 10),
            GraphInput("orange_num", N_("orange_num (count)"), 3, 0, 10, 1, integer=True),
            _TAX,
        ),
        ops=(
            _MUL_APPLE,
            GraphOp("mul_orange", "mul", ("orange", "orange_num"), "oranges_total"),
            GraphOp("add", "add", ("apples_total", "oranges_total"), "fruit_total"),
            GraphOp("mul_tax", "mul", ("fruit_total", "tax"), "price"),
        ),
        output="price",
        pos={
            "apple": (0.0, 6.0),
            "apple_num": (0.0, 4.0),
            "mul_apple": (3.4, 5.0),
            "orange": (0.0, 2.0),
            "orange_num": (0.0, 0.0),
            "mul_orange": (3.4, 1.0),
            "add": (6.8, 3.0),
            "tax": (6.8, 0.0),
            "mul_tax": (10.0, 3.0),
            "out": (12.8, 3.0),
        },
        figsize=(12.0, 6.6),
        label_at={
            "apple": 0.45,
            "apple_num": 0.45,
            "orange": 0.45,
            "orange_num": 0.45,
            "apples_total": 0.4,
            "oranges_total": 0.4,
            "tax": 0.3,
        },
    ),
    "xyz": _two_nodes(
        "xyz",
        "f = (x + y) × z",
        (
            GraphInput("x", "x", -2, -10, 10, 0.5),
            GraphInput("y", "y", 5, -10, 10, 0.5),
            GraphInput("z", "z", -4, -10, 10, 0.5),
        ),
        (GraphOp("add", "add", ("x", "y"), "q"), GraphOp("mul", "mul", ("q", "z"), "f")),
    ),
}


def graph_spec(graph: str | GraphSpec) -> GraphSpec:
    """``graph`` itself if it is a GraphSpec, else the one of GRAPHS it names."""
    if isinstance(graph, GraphSpec):
        return graph
    try:
        return GRAPHS[graph]
    except KeyError:
        raise ValueError(
            _("unknown graph {graph!r}: choose one of {names}").format(
                graph=graph, names=sorted(GRAPHS)
            )
        ) from None


def _input_values(spec: GraphSpec, inputs: Mapping[str, float] | None) -> dict[str, Any]:
    """Every input's value: the given ones, the defaults for the others; whole numbers as
    int for integer inputs. An unknown input name raises ValueError."""
    known = {i.name for i in spec.inputs}
    given = dict(inputs or {})
    unknown = set(given) - known
    if unknown:
        raise ValueError(
            _("graph {graph!r} has no input(s) {unknown}; its inputs are {inputs}").format(
                graph=spec.name, unknown=sorted(unknown), inputs=[i.name for i in spec.inputs]
            )
        )
    values: dict[str, Any] = {i.name: given.get(i.name, i.default) for i in spec.inputs}
    for i in spec.inputs:
        if i.integer and float(values[i.name]).is_integer():
            values[i.name] = int(values[i.name])
    return values


def evaluate(
    spec: GraphSpec,
    inputs: Mapping[str, float] | None,
    mul_layer: type | None,
    add_layer: type | None,
    catch: bool = True,
) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """Forward and backward through fresh layer objects.

    Returns (values, grads, error): as many values and gradients as could be
    computed, and None or a message saying which call failed and how. With
    ``catch=False`` a failing layer's exception propagates instead (and a
    layer that returns the wrong kind of thing raises TypeError).
    """
    mul_layer = MulLayer if mul_layer is None else mul_layer
    add_layer = AddLayer if add_layer is None else add_layer
    values = _input_values(spec, inputs)
    grads: dict[str, Any] = {}
    layers: dict[str, Any] = {}

    def where(op: GraphOp, method: str) -> str:
        cls = mul_layer if op.kind == "mul" else add_layer
        return _("{layer}.{method} (node {node})").format(
            layer=getattr(cls, "__name__", cls), method=method, node=op.node
        )

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
            return (
                values,
                grads,
                _("{where} raised {type}: {error}").format(
                    where=where(op, "forward"), type=type(e).__name__, error=e
                ),
            )
        if values[op.output] is None:
            return failed(
                _("{where} returned None: did you forget `return`?").format(
                    where=where(op, "forward")
                )
            )

    grads[spec.output] = 1
    for op in reversed(spec.ops):
        try:
            result = layers[op.node].backward(grads[op.output])
        except Exception as e:
            if not catch:
                raise
            return (
                values,
                grads,
                _("{where} raised {type}: {error}").format(
                    where=where(op, "backward"), type=type(e).__name__, error=e
                ),
            )
        try:
            dx, dy = result
        except (TypeError, ValueError):
            return failed(
                _("{where} returned {result!r}; it should return a pair (dx, dy)").format(
                    where=where(op, "backward"), result=result
                )
            )
        grads[op.inputs[0]], grads[op.inputs[1]] = dx, dy
    return values, grads, None


def graph_values(
    graph: str | GraphSpec = "apple",
    inputs: Mapping[str, float] | None = None,
    mul_layer: type | None = None,
    add_layer: type | None = None,
) -> dict[str, Any]:
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
    spec = graph_spec(graph)
    values, grads, _ = evaluate(spec, inputs, mul_layer, add_layer, catch=False)
    return {
        "output": spec.output,
        "values": values,
        "grads": {edge: grads[edge] for edge in spec.edges},
    }
