"""The interactive widgets: the numbers they compute, that they use the learner's
classes, that moving a control updates what is shown, and that the graph
drawings keep their labels apart."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import backprop as bp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from backprop import widgets as bw  # noqa: E402
from backprop.widgets.graphs import evaluate  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.text import Text  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- graph_values ----------------------------------------------------------------------


def test_apple_values_and_grads():
    r = bw.graph_values("apple")
    assert r["output"] == "price"
    assert r["values"]["price"] == pytest.approx(220)
    assert r["values"]["apples_total"] == pytest.approx(200)
    g = r["grads"]
    assert (g["apple"], g["apple_num"], g["tax"]) == pytest.approx((2.2, 110, 200))
    assert g["price"] == 1 and g["apples_total"] == pytest.approx(1.1)


def test_apple_orange_values_and_grads():
    r = bw.graph_values("apple_orange")
    assert r["values"]["price"] == pytest.approx(715)
    assert r["values"]["fruit_total"] == pytest.approx(650)
    g = r["grads"]
    assert g["apple"] == pytest.approx(2.2)
    assert g["apple_num"] == pytest.approx(110)
    assert g["orange"] == pytest.approx(3.3)
    assert g["orange_num"] == pytest.approx(165)
    assert g["tax"] == pytest.approx(650)


def test_xyz_values_and_grads():
    r = bw.graph_values("xyz")
    assert r["output"] == "f"
    assert r["values"]["f"] == pytest.approx(-12)
    assert r["values"]["q"] == pytest.approx(3)
    g = r["grads"]
    assert (g["x"], g["y"], g["z"]) == pytest.approx((-4, -4, 3))


def test_inputs_override_defaults():
    r = bw.graph_values("apple", {"apple_num": 3})
    assert r["values"]["price"] == pytest.approx(330)
    assert r["grads"]["tax"] == pytest.approx(300)
    assert r["values"]["apple"] == 100  # the others keep their defaults


def test_every_edge_has_a_value_and_a_gradient():
    for name, spec in bw.GRAPHS.items():
        r = bw.graph_values(name)
        assert list(r["values"]) == spec.edges == list(r["grads"])


def test_unknown_graph_and_input_are_refused():
    with pytest.raises(ValueError, match="unknown graph"):
        bw.graph_values("banana")
    with pytest.raises(ValueError, match="no input"):
        bw.graph_values("apple", {"banana": 1})


class SwappedMul(bp.MulLayer):
    """A typical mistake: the gradients not swapped (dx = dout * x)."""

    def backward(self, dout):
        return dout * self.x, dout * self.y


class DoubleAdd(bp.AddLayer):
    def backward(self, dout):
        return 2 * dout, 2 * dout


class StubMul:
    """What a learner's notebook holds before the exercise is done."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        raise NotImplementedError()


def test_graph_values_uses_the_given_classes():
    r = bw.graph_values("apple", mul_layer=SwappedMul)
    assert r["values"]["price"] == pytest.approx(220)  # forward is still right
    assert r["grads"]["tax"] == pytest.approx(1.1)  # backward is not
    r = bw.graph_values("xyz", add_layer=DoubleAdd)
    assert r["grads"]["x"] == pytest.approx(-8)
    with pytest.raises(NotImplementedError):
        bw.graph_values("apple", mul_layer=StubMul)

    class NoReturn(bp.MulLayer):
        def backward(self, dout):
            dout * self.y

    with pytest.raises(TypeError, match="should return a pair"):
        bw.graph_values("apple", mul_layer=NoReturn)


# --- graph_explorer --------------------------------------------------------------------


@pytest.mark.parametrize("graph", sorted(bw.GRAPHS))
def test_graph_explorer_builds(graph):
    import ipywidgets as widgets

    ex = bw.graph_explorer(graph)
    assert isinstance(ex, widgets.VBox)
    assert bytes(ex.image.value).startswith(PNG_MAGIC)
    assert set(ex.sliders) == {i.name for i in bw.GRAPHS[graph].inputs}
    for edge, grad in bw.graph_values(graph)["grads"].items():
        assert f"d {edge} = {bw.fmt(grad)}" in ex.table.value


@pytest.mark.slow
def test_graph_explorer_shows_reference_gradients():
    table = bw.graph_explorer("apple").table.value
    for text in ("d apple = 2.2", "d apple_num = 110", "d tax = 200", "price = 220"):
        assert text in table
    table = bw.graph_explorer("apple_orange").table.value
    for text in ("d orange = 3.3", "d orange_num = 165", "d tax = 650", "price = 715"):
        assert text in table
    table = bw.graph_explorer("xyz").table.value
    for text in ("d x = -4", "d y = -4", "d z = 3", "f = -12"):
        assert text in table


def test_moving_a_slider_recomputes_and_redraws():
    ex = bw.graph_explorer("apple")
    before = bytes(ex.image.value)
    ex.sliders["apple_num"].value = 3
    assert "d tax = 300" in ex.table.value
    assert "price = 330" in ex.table.value
    assert "d apple = 3.3" in ex.table.value
    assert bytes(ex.image.value) != before
    ex.sliders["tax"].value = 1.5
    assert "d apple_num = 150" in ex.table.value


def test_xyz_slider():
    ex = bw.graph_explorer("xyz")
    ex.sliders["z"].value = 2
    assert "d x = 2" in ex.table.value and "d z = 3" in ex.table.value


def test_a_broken_mul_layer_shows_wrong_gradients():
    good = bw.graph_explorer("apple")
    bad = bw.graph_explorer("apple", mul_layer=SwappedMul)
    assert "d apple = 2.2" in good.table.value
    assert "d apple = 2.2" not in bad.table.value
    assert "d tax = 1.1" in bad.table.value  # what the swapped layer computes
    assert bytes(bad.image.value) != bytes(good.image.value)
    assert "✗" in bad.table.value and set(bad.wrong) >= {"apple", "apple_num", "tax"}
    # the slider still drives the learner's layer
    bad.sliders["apple_num"].value = 3
    assert "d tax = 1.1" in bad.table.value and "price = 330" in bad.table.value


def test_a_correct_learner_layer_is_confirmed():
    class MyMul:
        def forward(self, x, y):
            self.x, self.y = x, y
            return x * y

        def backward(self, dout):
            return dout * self.y, dout * self.x

    ex = bw.graph_explorer("apple_orange", mul_layer=MyMul, add_layer=bp.AddLayer)
    assert "match the reference layers" in ex.table.value and not ex.wrong


def test_an_unfinished_layer_reports_instead_of_crashing():
    ex = bw.graph_explorer("apple", mul_layer=StubMul)
    assert "NotImplementedError" in ex.table.value
    assert "price = 220" in ex.table.value  # forward values are still shown
    assert "d apple = ?" in ex.table.value
    assert bytes(ex.image.value).startswith(PNG_MAGIC)

    class NoReturn(bp.MulLayer):
        def backward(self, dout):
            dout * self.y

    ex = bw.graph_explorer("apple", mul_layer=NoReturn)
    assert "should return a pair" in ex.table.value


def _label_collisions(fig):
    """Pairs of texts that overlap, value/gradient labels that cover a node, and
    texts that stick out of the figure."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [
        (t.get_gid() or t.get_text(), t.get_window_extent(renderer))
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip()
    ]
    nodes = [
        (a.get_gid(), a.get_window_extent(renderer))
        for a in fig.findobj()
        if (a.get_gid() or "").startswith("node:")
    ]
    bad = [(a, b) for (a, ba), (b, bb) in itertools.combinations(texts, 2) if ba.overlaps(bb)]
    bad += [
        (t, n)
        for t, bt in texts
        if t.startswith(("value:", "grad:"))
        for n, bn in nodes
        if bt.overlaps(bn)
    ]
    width, height = fig.canvas.get_width_height()
    bad += [
        (t, "outside") for t, b in texts if b.x0 < 0 or b.y0 < 0 or b.x1 > width or b.y1 > height
    ]
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("graph", sorted(bw.GRAPHS))
def test_graph_labels_do_not_overlap(graph):
    spec = bw.GRAPHS[graph]
    rng = np.random.default_rng(0)
    settings = [{}]
    settings.append({i.name: i.lo for i in spec.inputs})
    settings.append({i.name: i.hi for i in spec.inputs})
    for _ in range(5):
        settings.append(
            {
                i.name: float(rng.choice(np.arange(i.lo, i.hi + i.step / 2, i.step)))
                for i in spec.inputs
            }
        )
    for inputs in settings:
        values, grads, _ = evaluate(spec, inputs, None, None)
        assert _label_collisions(bw.draw_graph(spec, values, grads)) == [], inputs


def test_label_collision_check_finds_collisions():
    """The check above is not vacuous: in a tighter layout, with labels at the edges'
    midpoints, labels do collide."""
    import dataclasses

    tight = {
        "apple": (0.0, 4.4),
        "apple_num": (0.0, 3.0),
        "mul_apple": (3.0, 3.7),
        "orange": (0.0, 1.6),
        "orange_num": (0.0, 0.2),
        "mul_orange": (3.0, 0.9),
        "add": (6.0, 2.3),
        "tax": (6.0, 0.2),
        "mul_tax": (9.0, 2.3),
        "out": (11.6, 2.3),
    }
    spec = dataclasses.replace(
        bw.GRAPHS["apple_orange"], pos=tight, figsize=(11.0, 5.2), label_at={}
    )
    values, grads, _ = evaluate(spec, None, None, None)
    assert _label_collisions(bw.draw_graph(spec, values, grads))


def test_graph_fonts_are_legible():
    values, grads, _ = evaluate(bw.GRAPHS["apple"], None, None, None)
    fig = bw.draw_graph("apple", values, grads)
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip()]
    assert sizes and min(sizes) >= 10


def test_fmt():
    assert bw.fmt(2.2000000000000006) == "2.2"
    assert bw.fmt(110.00000000000001) == "110"
    assert bw.fmt(-0.0) == "0"
    assert bw.fmt(np.float64(3.3)) == "3.3"
    assert bw.fmt(np.array([650.0])) == "650"
    assert bw.fmt(None) == "?" and bw.fmt("x") == "?"
    assert bw.fmt(float("nan")) == "nan"


# --- learning_rate_explorer -------------------------------------------------------------


def test_gradient_descent_verdicts():
    assert bw.describe_descent(bw.gradient_descent(0.1, 20))[0] == "converged"
    assert bw.describe_descent(bw.gradient_descent(0.001, 20))[0] == "crawled"
    assert bw.describe_descent(bw.gradient_descent(0.5, 20))[0] == "diverged"
    ws = bw.gradient_descent(1.0, 1000)  # stops early instead of overflowing
    assert len(ws) < 1001 and bw.describe_descent(ws)[0] == "diverged"


def test_gradient_descent_finds_the_least_squares_slope():
    ws = bw.gradient_descent(0.05, 200)
    assert ws[-1] == pytest.approx(bw.DESCENT_W_BEST, abs=1e-6)
    w = bw.DESCENT_W_BEST
    h = 1e-5
    numeric = (bw.descent_cost(w + h) - bw.descent_cost(w - h)) / (2 * h)
    assert numeric == pytest.approx(0, abs=1e-6)
    assert bw.descent_grad(0.5) == pytest.approx(
        (bw.descent_cost(0.5 + h) - bw.descent_cost(0.5 - h)) / (2 * h), rel=1e-6
    )


@pytest.mark.slow
def test_learning_rate_explorer_updates():
    import ipywidgets as widgets

    ex = bw.learning_rate_explorer()
    assert isinstance(ex, widgets.VBox)
    assert bytes(ex.image.value).startswith(PNG_MAGIC)
    first = bytes(ex.image.value)
    ex.lr.value = 0.5
    assert ex.verdict == "diverged" and "Diverged" in ex.message.value
    assert bytes(ex.image.value) != first
    ex.lr.value = 0.1
    assert ex.verdict == "converged" and "Converged" in ex.message.value
    ex.lr.value = 0.001
    assert ex.verdict == "crawled" and "Crawling" in ex.message.value
    ex.steps.value = 5
    assert len(ex.path) == 6


# --- depth_explorer ---------------------------------------------------------------------


def test_gradient_norms_vanish_with_sigmoid_not_with_relu_he():
    norms, stds = bw.gradient_norms(20, "sigmoid")
    assert norms.shape == stds.shape == (20,)
    assert norms[0] < 1e-6 * norms[-1]
    norms, _ = bw.gradient_norms(20, "relu", "He (√(2/n))")
    assert 0.05 < norms[0] / norms[-1] < 20
    # a block keeps its weights when the stack grows, so shorter stacks share its start
    assert bw.gradient_norms(5, "relu")[1] == pytest.approx(bw.gradient_norms(8, "relu")[1][:5])


@pytest.mark.slow
def test_depth_explorer_updates():
    import ipywidgets as widgets

    ex = bw.depth_explorer()
    assert isinstance(ex, widgets.VBox)
    assert bytes(ex.image.value).startswith(PNG_MAGIC)
    assert ex.verdict == "vanishing" and len(ex.norms) == 10
    ex.depth.value = 25
    assert len(ex.norms) == 25
    ex.activation.value = "relu"
    ex.init.value = "He (√(2/n))"
    assert ex.verdict == "steady" and "every layer learns" in ex.message.value
    ex.depth.value = 1
    assert "One layer" in ex.message.value


# --- LiveTrainingView -------------------------------------------------------------------


def fake_history(steps: int, eval_every: int) -> list[bp.History]:
    """The History as ``train`` hands it to on_eval at each evaluation."""
    h = bp.History()
    snapshots = []
    for s in range(steps):
        h.loss.append(2.3 * np.exp(-s / 50) + 0.1)
        if s % eval_every == 0 or s == steps - 1:
            acc = 0.95 - 0.85 * np.exp(-s / 40)
            h.eval_steps.append(s)
            h.train_acc.append(acc)
            h.test_acc.append(acc - 0.01)
            snapshots.append(
                bp.History(list(h.loss), list(h.train_acc), list(h.test_acc), list(h.eval_steps))
            )
    return snapshots


@pytest.mark.slow
def test_live_training_view_updates_in_place(capsys):
    import ipywidgets as widgets

    view = bw.LiveTrainingView(total_steps=300)
    assert isinstance(view.widget, widgets.VBox)
    images = []
    for h in fake_history(300, 60):
        view.on_eval(h)
        images.append(bytes(view.image.value))
    assert view.calls == 6
    assert all(i.startswith(PNG_MAGIC) for i in images) and len(set(images)) == 6
    assert view.progress.value == 300 and view.progress.max == 300
    assert "step 300 / 300" in view.status.value
    assert "test accuracy 94.0%" in view.status.value
    assert capsys.readouterr().out == ""  # outside a notebook nothing is printed


@pytest.mark.slow
def test_live_training_view_without_total():
    view = bw.LiveTrainingView()
    view.on_eval(fake_history(1, 1)[0])
    assert view.progress.layout.display == "none"
    assert "step 1" in view.status.value
    view.on_eval(bp.History())  # nothing recorded yet: still draws
    assert bytes(view.image.value).startswith(PNG_MAGIC)


@pytest.mark.slow
def test_live_training_view_with_train():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4))
    t = (x[:, 0] > 0).astype(int)
    net = bp.TwoLayerNet(4, 8, 2, seed=0)
    view = bw.LiveTrainingView(total_steps=50)
    history = bp.train(
        net,
        x,
        t,
        x,
        t,
        steps=50,
        batch_size=20,
        eval_every=10,
        progress=False,
        on_eval=view.on_eval,
    )
    assert view.calls == len(history.eval_steps) == 6
    assert view.progress.value == 50


# --- notebook 1's naming and layout ---------------------------------------------------------


def test_edges_are_named_as_in_notebook_1():
    # notebook 1 calls 100 the apple price and 200 apples_total: the widget agrees
    assert bw.GRAPHS["apple"].edges == ["apple", "apple_num", "tax", "apples_total", "price"]
    assert bw.GRAPHS["apple_orange"].edges == [
        "apple",
        "apple_num",
        "orange",
        "orange_num",
        "tax",
        "apples_total",
        "oranges_total",
        "fruit_total",
        "price",
    ]


@pytest.mark.parametrize("graph", sorted(bw.GRAPHS))
def test_labels_of_a_drawn_graph_are_apart(graph):
    r = bw.graph_values(graph)
    fig = bw.draw_graph(graph, r["values"], r["grads"])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = [
        t
        for t in fig.axes[0].texts
        if str(t.get_gid()).startswith(("value:", "grad:", "node-label:"))
    ]
    boxes = [(t.get_gid(), t.get_window_extent(renderer)) for t in texts]
    assert len(boxes) >= 2 * len(bw.GRAPHS[graph].edges)
    # labels closer than 12 pixels (at the widget's DPI) read as one crowded block
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            gap = max(
                box_a.x0 - box_b.x1, box_b.x0 - box_a.x1, box_a.y0 - box_b.y1, box_b.y0 - box_a.y1
            )
            assert gap >= 12, f"{graph}: labels {a} and {b} are {gap:.0f} px apart"


def test_table_header_cells_are_spaced():
    # without padding the header reads "edgevalue" in the rendered table
    import re

    table = bw.graph_explorer("xyz").table.value
    heads = re.findall(r"<th([^>]*)>(.*?)</th>", table)
    assert [h for _, h in heads][:2] == ["edge", "value"]
    assert all("padding" in style for style, _ in heads)


def test_depth_verdict_judges_the_sizes_not_only_the_ratio():
    from backprop.widgets import ACTIVATIONS, describe_depth

    assert describe_depth(np.full(10, 1e23))[0] == "exploding"  # ratio 1, yet useless
    assert describe_depth(np.full(10, 1e-35))[0] == "vanishing"
    assert describe_depth(np.array([np.inf, 1.0]))[0] == "exploding"
    assert describe_depth(np.linspace(1, 2, 10))[0] == "steady"
    assert "tanh" in ACTIVATIONS
