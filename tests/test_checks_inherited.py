"""A learner's class may not inherit the answers from backprop's shared base classes.

``TwoLayerNet`` gets ``predict``, ``loss`` and ``accuracy`` from ``backprop.network.LayerStack``.
While a check runs the learner's code, ``reference_disabled`` switches off the methods of the
reference class and of every base class backprop defines, so a subclass of ``bp.TwoLayerNet``
that keeps the notebook's ``__init__`` and writes nothing else fails, and everything is
restored afterwards (notebook 8's ``MultiLayerNet`` shares ``LayerStack``).
"""

from __future__ import annotations

from collections import UserDict

import backprop as bp
import numpy as np
import pytest
from backprop.checks import check_two_layer_net, reference_disabled
from backprop.checks.running import REFUSED
from backprop.network import LayerStack
from test_checks_network import Net


class Inherits(bp.TwoLayerNet):
    """The notebook's __init__ (as test_checks_network's Net writes it) and a do-nothing
    _bind; predict and loss come from LayerStack."""

    __init__ = Net.__init__

    def _bind(self, name, value):
        pass  # the layers were given the arrays themselves


class WritesNothing(bp.TwoLayerNet):
    pass


def test_inherited_predict_and_loss_are_refused():
    report = check_two_layer_net(Inherits, seed=0)
    for name in ("predict", "loss"):
        assert report[name].mistake == "delegated", str(report)
        assert "called backprop's reference implementation" in report[name].message


def test_a_subclass_that_writes_nothing_fails():
    report = check_two_layer_net(WritesNothing, seed=0)
    assert not report.ok
    assert report["predict"].mistake == "delegated", str(report)


def test_the_bases_are_switched_off_inside_and_restored_after():
    x = np.ones((2, 4))
    with reference_disabled(bp.TwoLayerNet):
        with pytest.raises(RuntimeError, match=REFUSED):
            LayerStack.predict(None, x)
        with pytest.raises(RuntimeError, match=REFUSED):
            bp.MultiLayerNet(4, [3], 2, seed=0).predict(x)
    net = bp.MultiLayerNet(4, [3], 2, seed=0)
    assert net.predict(x).shape == (2, 2)
    assert bp.TwoLayerNet(4, 3, 2, seed=0).loss(x, np.array([0, 1])) > 0


def test_a_base_named_twice_is_restored():
    with reference_disabled(bp.TwoLayerNet, bp.MultiLayerNet, LayerStack):
        pass
    assert bp.TwoLayerNet(4, 3, 2, seed=0).predict(np.ones((1, 4))).shape == (1, 2)


def test_classes_from_other_libraries_are_left_alone():
    class Mine(UserDict):  # UserDict's methods are Python functions too, in collections
        def own(self):
            return 1

    with reference_disabled(Mine):
        with pytest.raises(RuntimeError, match=REFUSED):
            Mine().own()
        assert UserDict({"a": 1})["a"] == 1
        assert Mine({"a": 1})["a"] == 1
