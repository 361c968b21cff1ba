"""The live training view: loss and accuracy curves redrawn at every evaluation while
``backprop.train`` runs.

    LiveTrainingView(total_steps)   pass its ``on_eval`` to ``train``
    draw_training(history)          the two plots, a matplotlib Figure
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from ..i18n import _
from ..training import History
from .common import DPI, FONT_SIZE, image, label_axes, png, sentence


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def draw_training(history: History, total_steps: int | None = None) -> Figure:
    """Loss per step (raw and smoothed) and train/test accuracy per evaluation; the
    step axes run to ``total_steps`` if given, else to the last step recorded."""
    fig = Figure(figsize=(10, 3.6), dpi=DPI)
    ax, ax2 = fig.subplots(1, 2)
    loss = np.asarray(history.loss, dtype=float)
    steps = np.arange(len(loss))
    if len(loss):
        ax.plot(steps, loss, color="#9db4d6", lw=0.8, label=_("each step"))
        k = max(1, min(100, len(loss) // 20))
        if k > 1 and len(loss) >= k:
            smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
            mid = (k - 1) // 2  # centre each mean on its window
            ax.plot(
                steps[mid : mid + len(smooth)],
                smooth,
                color="#1f4e99",
                lw=2,
                label=_("mean of {k} steps").format(k=k),
            )
        ax.legend(fontsize=FONT_SIZE - 1, loc="upper right")
    label_axes(ax, _("step"), _("loss"), _("training loss"))
    ax.set_ylim(bottom=0)
    if history.eval_steps:
        ax2.plot(
            history.eval_steps,
            history.train_acc,
            "-o",
            color="#1f4e99",
            ms=4,
            label=_("train {accuracy:.1%}").format(accuracy=history.train_acc[-1]),
        )
        ax2.plot(
            history.eval_steps,
            history.test_acc,
            "-s",
            color="#d35400",
            ms=4,
            label=_("test {accuracy:.1%}").format(accuracy=history.test_acc[-1]),
        )
        ax2.legend(fontsize=FONT_SIZE - 1, loc="lower right")
    label_axes(ax2, _("step"), _("accuracy"), _("accuracy"))
    ax2.set_ylim(0, 1.0)
    ax2.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    right = max(total_steps or 0, len(loss), 1)
    for a in (ax, ax2):
        a.set_xlim(0, right)
        a.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


class LiveTrainingView:
    """Loss and accuracy curves that update while ``train`` runs.

        view = LiveTrainingView(total_steps=10_000)   # shows itself in a notebook
        history = train(net, x_train, t_train, x_test, t_test,
                        steps=10_000, on_eval=view.on_eval)

    ``widget`` is an ``ipywidgets.VBox`` with a progress bar, a status line and
    the plot; each ``on_eval`` redraws that same plot in place and counts itself
    in ``calls``. Created in a notebook it displays itself (pass ``display=False``
    to show ``view.widget`` yourself); outside one it only keeps the widgets up
    to date.
    """

    def __init__(self, total_steps: int | None = None, *, display: bool = True) -> None:
        self.total_steps = total_steps
        self.progress = widgets.IntProgress(
            value=0,
            min=0,
            max=max(int(total_steps or 1), 1),
            description=_("training"),
            layout=widgets.Layout(width="420px"),
        )
        if total_steps is None:
            self.progress.layout.display = "none"
        self.status = widgets.HTML(sentence(_("waiting for the first evaluation…")))
        self.status.add_class("bp-training-status")
        self.image = image()
        self.image.add_class("bp-training-plot")
        self.widget = widgets.VBox([widgets.HBox([self.progress, self.status]), self.image])
        self.widget.add_class("bp-live-training")
        self.calls = 0
        self._draw(History())  # empty axes until the first evaluation
        if display and _in_notebook():
            from IPython.display import display as show

            show(self.widget)

    def on_eval(self, history: History) -> None:
        """Pass as ``train(..., on_eval=view.on_eval)``; called with the History so far."""
        self.calls += 1
        done = len(history.loss)
        if self.total_steps:
            self.progress.value = min(done, self.progress.max)
        parts = [
            _("step {done:,}").format(done=done)
            + (f" / {self.total_steps:,}" if self.total_steps else "")
        ]
        if len(history.loss):
            parts.append(_("loss {loss:.3f}").format(loss=history.loss[-1]))
        if history.train_acc:
            parts.append(_("train accuracy {accuracy:.1%}").format(accuracy=history.train_acc[-1]))
        if history.test_acc:
            parts.append(_("test accuracy {accuracy:.1%}").format(accuracy=history.test_acc[-1]))
        self._draw(history)  # the plot first: once the status says a step, its plot is there
        self.status.value = sentence(" · ".join(parts))

    def _draw(self, history: History) -> None:
        self.image.value = png(draw_training(history, self.total_steps))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
