"""A small reverse-mode automatic differentiation engine: ``Tensor`` and ``GradientTape``.

Every operation makes a new Tensor that remembers its parents and a *local rule*
``backward(g) -> one gradient per parent`` (g = d target / d out). Local rules are written
with Tensor operations, so a second tape can record a backward pass (second derivatives).

    >>> x = Tensor(5.0)
    >>> with GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = x ** 2
    >>> float(tape.gradient(y, x).value)
    10.0

Shapes: a Tensor holds a float64 numpy array of any shape; ``+ - * /`` broadcast as numpy
does (gradients are summed back to each input's shape); ``@`` is the product of 2-d tensors
(N, K) @ (K, M) -> (N, M). A :class:`Variable` is a Tensor that a tape with
``watch_accessed_variables=True`` (the default) watches as soon as an operation uses it.
"""

from __future__ import annotations

import numpy as np

from .i18n import _

_active_tapes: list[GradientTape] = []  # tapes whose ``with`` block is running


class Tensor:
    """A float64 numpy value whose operations a GradientTape can record."""

    __array_ufunc__ = None  # numpy hands ``array * tensor`` over to Tensor.__rmul__
    trainable = False

    def __init__(self, value):
        self.value = np.array(value, dtype=np.float64)  # a copy, never a view
        self._parents: tuple = ()
        self._backward = None  # the local rule: g -> one gradient per parent

    shape = property(lambda self: self.value.shape)
    T = property(lambda self: transpose(self))

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __pow__(self, p):
        return power(self, p)

    def __neg__(self):
        return neg(self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def relu(self):
        return relu(self)

    def sum(self, axis=None, keepdims=False):
        return tensor_sum(self, axis, keepdims)

    def __repr__(self):
        return f"{type(self).__name__}({np.array2string(self.value, precision=4)})"


class Variable(Tensor):
    """A Tensor that tapes watch automatically when it is used (a model's parameter)."""

    trainable = True


def as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _make(value, parents, backward) -> Tensor:
    """The result of an operation: knows its parents and local rule; active tapes see it."""
    out = Tensor(value)
    out._parents, out._backward = tuple(parents), backward
    for tape in list(_active_tapes):
        tape._record(out)
    return out


# --- shape bookkeeping (each the other's backward) ---------------------------------------


def _sum_to_shape(value: np.ndarray, shape: tuple) -> np.ndarray:
    lead = value.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and value.shape[lead + i] != 1
    )
    return value.sum(axis=axes, keepdims=True).reshape(shape)


def sum_to(a, shape) -> Tensor:
    """a summed down to shape over the axes broadcasting added or stretched."""
    a = as_tensor(a)
    if a.shape == tuple(shape):
        return a
    return _make(_sum_to_shape(a.value, tuple(shape)), (a,), lambda g: (broadcast_to(g, a.shape),))


def broadcast_to(a, shape) -> Tensor:
    a = as_tensor(a)
    if a.shape == tuple(shape):
        return a
    return _make(np.broadcast_to(a.value, shape).copy(), (a,), lambda g: (sum_to(g, a.shape),))


def reshape(a, shape) -> Tensor:
    a = as_tensor(a)
    return _make(a.value.reshape(shape), (a,), lambda g: (reshape(g, a.shape),))


def transpose(a) -> Tensor:
    a = as_tensor(a)
    return _make(a.value.T, (a,), lambda g: (transpose(g),))


# --- the basic operations and their local rules ------------------------------------------


def add(a, b) -> Tensor:
    a, b = as_tensor(a), as_tensor(b)
    return _make(a.value + b.value, (a, b), lambda g: (sum_to(g, a.shape), sum_to(g, b.shape)))


def mul(a, b) -> Tensor:
    a, b = as_tensor(a), as_tensor(b)
    return _make(
        a.value * b.value, (a, b), lambda g: (sum_to(g * b, a.shape), sum_to(g * a, b.shape))
    )


def matmul(a, b) -> Tensor:
    a, b = as_tensor(a), as_tensor(b)
    return _make(a.value @ b.value, (a, b), lambda g: (g @ b.T, a.T @ g))


def power(a, p: float) -> Tensor:
    """a ** p for a constant number p."""
    a = as_tensor(a)
    if p == 0:
        return _make(np.ones_like(a.value), (a,), lambda g: (g * 0.0,))
    return _make(a.value**p, (a,), lambda g: (g * (p * a ** (p - 1)),))


def exp(a) -> Tensor:
    a = as_tensor(a)
    out = _make(np.exp(a.value), (a,), lambda g: (g * out,))
    return out


def log(a) -> Tensor:
    a = as_tensor(a)
    return _make(np.log(a.value), (a,), lambda g: (g / a,))


def relu(a) -> Tensor:
    a = as_tensor(a)
    mask = (a.value > 0).astype(np.float64)  # a constant: the kink has slope 0 here
    return _make(a.value * mask, (a,), lambda g: (g * mask,))


def tensor_sum(a, axis=None, keepdims=False) -> Tensor:
    a = as_tensor(a)
    kept = np.sum(a.value, axis=axis, keepdims=True).shape
    return _make(
        np.sum(a.value, axis=axis, keepdims=keepdims),
        (a,),
        lambda g: (broadcast_to(reshape(g, kept), a.shape),),
    )


# --- derived operations: made of the basic ones, so they need no rules of their own --------


def neg(a) -> Tensor:
    return mul(a, -1.0)


def sub(a, b) -> Tensor:
    return add(a, neg(b))


def div(a, b) -> Tensor:
    return mul(a, power(b, -1))


# --- the tape ------------------------------------------------------------------------------


class GradientTape:
    """Records, inside ``with GradientTape() as tape:``, operations on what it watches.

    persistent: allow several calls to :meth:`gradient` (otherwise the second one raises).
    watch_accessed_variables: watch every :class:`Variable` an operation uses; with False
    only what :meth:`watch` was given gets gradients.
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self.watch_accessed_variables = watch_accessed_variables
        self._records: list[Tensor] = []  # outputs of recorded operations, in order
        self._watched: set[Tensor] = set()
        self._tracked: set[Tensor] = set()  # watched tensors and everything made from them
        self._used = False

    def __enter__(self):
        _active_tapes.append(self)
        return self

    def __exit__(self, *exc_info):
        _active_tapes.remove(self)

    def watch(self, *tensors):
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(
                    _("can only watch a Tensor, not {type}").format(type=type(t).__name__)
                )
            self._watched.add(t)
            self._tracked.add(t)

    def _record(self, out: Tensor) -> None:
        if self.watch_accessed_variables:
            self.watch(*(p for p in out._parents if p.trainable))
        if any(p in self._tracked for p in out._parents):
            self._tracked.add(out)
            self._records.append(out)

    def gradient(self, target, sources):
        """d sum(target) / d source, for a Tensor or a list or dict of them (None: unwatched
        or not used)."""
        if self._used and not self.persistent:
            raise RuntimeError(
                _(
                    "GradientTape.gradient can only be called once on a "
                    "non-persistent tape: use GradientTape(persistent=True)"
                )
            )
        self._used = True
        active = self in _active_tapes
        if active:  # our own backward pass is not recorded on us
            _active_tapes.remove(self)
        try:
            grads = {target: Tensor(np.ones_like(target.value))}
            for out in reversed(self._records):  # reverse topological order
                g = grads.get(out)
                if g is None:
                    continue
                for parent, gp in zip(out._parents, out._backward(g), strict=False):
                    grads[parent] = grads[parent] + gp if parent in grads else gp
        finally:
            if active:
                _active_tapes.append(self)
        if not self.persistent:
            self._records = []
        pick = lambda s: grads.get(s) if s in self._watched else None  # noqa: E731
        if isinstance(sources, Tensor):
            return pick(sources)
        if isinstance(sources, dict):
            return {k: pick(s) for k, s in sources.items()}
        return [pick(s) for s in sources]
