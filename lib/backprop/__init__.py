"""Backprop from Scratch: the reference implementations the course builds up to.

Every layer has ``forward`` and ``backward``; none changes its inputs or the
upstream gradient. Names follow *Deep Learning from Scratch*:

    nodes        MulLayer, AddLayer, DivLayer, ExpLayer
    activations  Relu, Sigmoid, Tanh, sigmoid
    affine       Affine
    losses       softmax, log_softmax, cross_entropy_error, SoftmaxWithLoss, IdentityWithLoss
    network      TwoLayerNet
    autodiff     Tensor, Variable, GradientTape (reverse-mode autodiff, notebook 9)
    multilayer   MultiLayerNet, init_std
    optim        SGD
    training     train_epoch, epoch_batches, train, History
    gradcheck    numerical_diff, numerical_gradient, rel_error, check_layer
    diagnosis    Check, LayerReport, diagnose (what a check found, the mistake named)
    checks       check_* for each layer (used by the notebooks' tests)
    data         load_mnist
"""

from .activations import Relu, Sigmoid, Tanh, sigmoid
from .affine import Affine
from .autodiff import GradientTape, Tensor, Variable
from .gradcheck import check_layer, numerical_diff, numerical_gradient, rel_error
from .losses import IdentityWithLoss, SoftmaxWithLoss, cross_entropy_error, log_softmax, softmax
from .multilayer import MultiLayerNet, init_std
from .network import TwoLayerNet
from .nodes import AddLayer, DivLayer, ExpLayer, MulLayer
from .optim import SGD
from .training import History, epoch_batches, train, train_epoch

__all__ = [
    "AddLayer",
    "Affine",
    "GradientTape",
    "Tensor",
    "Variable",
    "DivLayer",
    "ExpLayer",
    "History",
    "IdentityWithLoss",
    "MulLayer",
    "MultiLayerNet",
    "Relu",
    "SGD",
    "Sigmoid",
    "SoftmaxWithLoss",
    "Tanh",
    "TwoLayerNet",
    "check_layer",
    "cross_entropy_error",
    "epoch_batches",
    "init_std",
    "log_softmax",
    "numerical_diff",
    "numerical_gradient",
    "rel_error",
    "sigmoid",
    "softmax",
    "train",
    "train_epoch",
]
__version__ = "0.1.0"
