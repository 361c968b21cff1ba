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

One module per widget: ``graphs`` (the graphs as data, and forward and backward
through them) and ``graph_explorer``, ``learning_rate_explorer``,
``depth_explorer``, ``training_view``; ``graph_drawing`` draws a graph for the
first; ``common`` holds what they share.
"""

from .common import fmt
from .depth_explorer import (
    ACTIVATIONS,
    DepthExplorer,
    depth_explorer,
    describe_depth,
    gradient_norms,
)
from .graph_drawing import draw_graph
from .graph_explorer import GraphExplorer, graph_explorer
from .graphs import GRAPHS, graph_values
from .learning_rate_explorer import (
    DESCENT_W_BEST,
    LearningRateExplorer,
    descent_cost,
    descent_grad,
    describe_descent,
    gradient_descent,
    learning_rate_explorer,
)
from .training_view import LiveTrainingView

__all__ = [
    "ACTIVATIONS",
    "DESCENT_W_BEST",
    "GRAPHS",
    "DepthExplorer",
    "GraphExplorer",
    "LearningRateExplorer",
    "LiveTrainingView",
    "depth_explorer",
    "descent_cost",
    "descent_grad",
    "describe_depth",
    "describe_descent",
    "draw_graph",
    "fmt",
    "gradient_descent",
    "gradient_norms",
    "graph_explorer",
    "graph_values",
    "learning_rate_explorer",
]
