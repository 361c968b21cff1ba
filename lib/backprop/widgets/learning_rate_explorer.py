"""The learning-rate explorer: gradient descent on a one-parameter cost, and whether it
converges, crawls or diverges.

    gradient_descent(lr, steps)  the weights a run passes through
    describe_descent(ws)         ("converged" | "crawled" | "diverged", a sentence)
    learning_rate_explorer()     the widget: learning-rate and steps sliders, two plots
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from ..i18n import _
from .common import DPI, FONT_SIZE, PlotExplorer, label_axes, png, sentence, slider

#: Three points that lie almost on t = 2 x; the cost is the MSE of the line y = w x.
DESCENT_X = np.array([1.0, 2.0, 3.0])
DESCENT_T = np.array([2.1, 3.9, 6.2])
DESCENT_W0 = -1.0
DESCENT_W_BEST = float(DESCENT_X @ DESCENT_T / (DESCENT_X @ DESCENT_X))
VERDICT_COLORS = {"converged": "#1b7a2e", "crawled": "#9a6700", "diverged": "#c0262d"}


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
    for _step in range(int(steps)):
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
        return "diverged", _(
            "Diverged: each step overshoots the minimum by more than the last; after {n} "
            "steps w = {w_last:.3g}, farther from w* = {w_best:.3f} than where it started. "
            "Lower the learning rate."
        ).format(n=n, w_last=w_last, w_best=w_best)
    close = np.nonzero(dist <= 1e-3 * d0)[0]
    zigzag = n >= 2 and bool(np.any(np.diff(np.sign(ws - w_best)) != 0))
    if len(close):
        text = _(
            "Converged: after {steps} steps w reached the minimum w* = {w_best:.3f} "
            "(to a thousandth of its starting distance); now w = {w_last:.4f}."
        ).format(steps=close[0], w_best=w_best, w_last=w_last)
        if zigzag:
            text += _(
                " It zig-zags across the minimum because each step overshoots; with a "
                "much larger learning rate the overshoots grow instead of shrinking."
            )
        return "converged", text
    done = 1 - dist[-1] / d0
    if zigzag:
        return "crawled", _(
            "Crawling: after {n} steps w = {w_last:.4f} has come {done:.0%} of the way to "
            "the minimum w* = {w_best:.3f}, zig-zagging across it because each step "
            "overshoots. A smaller learning rate would get there sooner; a larger one diverges."
        ).format(n=n, w_last=w_last, done=done, w_best=w_best)
    return "crawled", _(
        "Crawling: after {n} steps w = {w_last:.4f} has come only {done:.0%} of the way "
        "to the minimum w* = {w_best:.3f}. Raise the learning rate or take more steps."
    ).format(n=n, w_last=w_last, done=done, w_best=w_best)


def draw_descent(ws: np.ndarray, lr: float) -> Figure:
    """Left: the cost curve and where each step of ``ws`` landed (until one leaves the
    plot); right: the cost after each step, on a log scale."""
    fig = Figure(figsize=(10, 3.8), dpi=DPI)
    ax, ax2 = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=(1.4, 1)))
    lo, hi = -2.0, 6.0
    grid = np.linspace(lo, hi, 300)
    cost = descent_cost(grid)
    ax.plot(grid, cost, color="#3b5b8c", lw=2, label=_("cost(w)"))
    ax.axvline(DESCENT_W_BEST, color="#999999", ls=":", lw=1)
    inside = (ws >= lo) & (ws <= hi) & np.isfinite(ws)
    shown = ws[: np.argmin(inside) if not inside.all() else len(ws)]
    ax.plot(
        shown, descent_cost(shown), "-o", color="#c0262d", ms=4, lw=1, label=_("w after each step")
    )
    ax.plot(ws[:1], descent_cost(ws[:1]), "s", color="black", ms=7, label=_("start"))
    if len(shown) < len(ws):
        ax.text(
            0.5,
            0.55,
            _("w leaves the plot at step {step}").format(step=len(shown)),
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=FONT_SIZE,
            color="#c0262d",
        )
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, cost.max() * 1.05)
    label_axes(ax, "w", _("cost = MSE of y = w·x"), _("learning rate {lr:.3g}").format(lr=lr))
    ax.legend(fontsize=FONT_SIZE - 1, loc="upper center")

    costs = descent_cost(ws[np.isfinite(ws)])
    ax2.semilogy(np.arange(len(costs)), costs, "-o", color="#c0262d", ms=3, lw=1)
    ax2.axhline(
        float(descent_cost(DESCENT_W_BEST)), color="#999999", ls=":", lw=1, label=_("lowest cost")
    )
    label_axes(ax2, _("step"), _("cost (log scale)"), _("cost after each step"))
    ax2.legend(fontsize=FONT_SIZE - 1, loc="best")
    fig.tight_layout()
    return fig


class LearningRateExplorer(PlotExplorer):
    """The widget ``learning_rate_explorer`` returns. ``lr`` and ``steps`` are its
    sliders, ``path`` the latest run's weights, ``verdict`` its "converged" /
    "crawled" / "diverged", ``message`` the HTML sentence under the plot."""

    def __init__(self, lr: float = 0.01, steps: int = 20) -> None:
        self.lr = slider(
            widgets.FloatLogSlider,
            _("learning rate"),
            lr,
            -3,
            0,
            "420px",
            base=10,
            step=0.05,
            readout_format=".3g",
        )
        self.steps = slider(widgets.IntSlider, _("steps"), steps, 1, 100, "360px")
        super().__init__(
            [self.lr, self.steps], self.update, "bp-learning-rate-explorer", "bp-descent-verdict"
        )

    def update(self) -> None:
        """Run gradient descent with the sliders' settings and redraw."""
        ws = gradient_descent(self.lr.value, self.steps.value)
        self.path = ws
        self.verdict, text = describe_descent(ws)
        self.image.value = png(draw_descent(ws, self.lr.value))
        self.message.value = sentence(text, VERDICT_COLORS[self.verdict])


def learning_rate_explorer(lr: float = 0.01, steps: int = 20) -> LearningRateExplorer:
    """Gradient descent on a one-parameter cost (an ``ipywidgets.VBox``; display it).

    The cost is the mean squared error of the line y = w x on three points;
    descent starts at w = -1. A log-scale slider sets the learning rate and
    another the number of steps. The left plot shows the cost curve and where
    each step landed, the right one the cost per step, and a sentence under
    them says whether the run converged, is still crawling, or diverged.
    """
    return LearningRateExplorer(lr=lr, steps=steps)
