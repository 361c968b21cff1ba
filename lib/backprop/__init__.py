"""Backprop from Scratch: the reference implementations the course builds up to.

Every layer has ``forward`` and ``backward``; none changes its inputs or the
upstream gradient. Names follow *Deep Learning from Scratch*:

    nodes        MulLayer, AddLayer
    activations  Relu, Sigmoid, sigmoid
    affine       Affine
    losses       softmax, log_softmax, cross_entropy_error, SoftmaxWithLoss
    network      TwoLayerNet
    optim        SGD
    training     train, History
    gradcheck    numerical_diff, numerical_gradient, rel_error, check_layer
    checks       check_* for each layer (used by the notebooks' tests)
    data         load_mnist
"""
from .activations import Relu, Sigmoid, sigmoid
from .affine import Affine
from .gradcheck import check_layer, numerical_diff, numerical_gradient, rel_error
from .network import TwoLayerNet
from .nodes import AddLayer, MulLayer
from .optim import SGD
from .losses import SoftmaxWithLoss, cross_entropy_error, log_softmax, softmax
from .training import History, train

__all__ = [
    "AddLayer", "Affine", "History", "MulLayer", "Relu", "SGD", "Sigmoid", "SoftmaxWithLoss",
    "TwoLayerNet", "check_layer", "cross_entropy_error", "log_softmax", "numerical_diff",
    "numerical_gradient", "rel_error", "sigmoid", "softmax", "train",
]
__version__ = "0.1.0"
