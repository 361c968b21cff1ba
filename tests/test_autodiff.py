"""The reference autodiff engine (backprop.autodiff) against numerical gradients."""

from __future__ import annotations

import numpy as np
import pytest
from backprop.autodiff import GradientTape, Tensor, Variable
from backprop.gradcheck import numerical_gradient, rel_error


def tape_grads(f, *arrays):
    xs = [Tensor(a) for a in arrays]
    with GradientTape() as tape:
        tape.watch(*xs)
        out = f(*xs)
    return out, [g.value for g in tape.gradient(out, xs)]


def numeric(f, arrays, i):
    def g(v):
        vals = [Tensor(a) for a in arrays]
        vals[i] = Tensor(v)
        return float(f(*vals).value.sum())

    return numerical_gradient(g, np.array(arrays[i], dtype=np.float64))


FUNCTIONS = [
    ("broadcast add/mul", lambda a, b: ((a + b) * b * a).sum(), [(3, 4), (4,)]),
    ("matmul", lambda a, b: ((a @ b) ** 2).sum(), [(3, 4), (4, 2)]),
    ("exp log", lambda a, b: ((a * b).exp() + 1.0).log().sum(), [(2, 3), (2, 3)]),
    ("relu sub div", lambda a, b: ((a - b).relu() / (b * b + 1.0) + -a).sum(), [(5,), (5,)]),
    ("sum axis", lambda a, b: (a.sum(axis=0) * b).sum(axis=0, keepdims=True).sum(), [(3, 4), (4,)]),
    ("power", lambda a, b: (a * a + 1.0) ** -1.5 * b, [(4,), (4,)]),
    ("transpose", lambda a, b: (a.T @ b).sum(), [(3, 2), (3, 4)]),
]


@pytest.mark.parametrize("label,f,shapes", FUNCTIONS)
def test_reference_matches_numerical_gradients(label, f, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) + 0.1 for s in shapes]
    _, grads = tape_grads(f, *arrays)
    for i, (a, g) in enumerate(zip(arrays, grads, strict=False)):
        assert g.shape == a.shape
        assert rel_error(g, numeric(f, arrays, i)) < 1e-7, (label, i)


def test_seed_examples():
    x = Tensor(5.0)
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x**2
        z = y**2
        w = z**2
    assert [float(tape.gradient(t, x).value) for t in (w, z, y)] == [625000.0, 500.0, 10.0]
    for f, first, second in ((lambda x: x**2, 10.0, 2.0), (lambda x: x**5, 3125.0, 2500.0)):
        with GradientTape() as outer:
            outer.watch(x)
            with GradientTape() as inner:
                inner.watch(x)
                y = f(x)
            dy = inner.gradient(y, x)
        assert float(dy.value) == first and float(outer.gradient(dy, x).value) == second
    ones = Tensor(np.ones((2, 2)))
    with GradientTape() as tape:
        tape.watch(ones)
        z = ones.sum() ** 2
    assert np.array_equal(tape.gradient(z, ones).value, np.full((2, 2), 8.0))


def test_persistent_watch_and_variables():
    x = Tensor(3.0)
    with GradientTape() as tape:
        tape.watch(x)
        y = x * x
    assert float(tape.gradient(y, x).value) == 6.0
    with pytest.raises(RuntimeError):
        tape.gradient(y, x)
    v, c = Variable([1.0, 2.0]), Tensor([3.0, 4.0])
    with GradientTape() as tape:
        out = (v * c).sum()
    gv, gc = tape.gradient(out, [v, c])
    assert np.array_equal(gv.value, [3.0, 4.0]) and gc is None
    with GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(c)
        out = (v * c).sum()
    got = tape.gradient(out, {"v": v, "c": c})
    assert got["v"] is None and np.array_equal(got["c"].value, [1.0, 2.0])


def test_gradient_inside_the_block_is_not_recorded():
    x = Tensor([1.0, 2.0])
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        s = (x * x).sum()
        n = len(tape._records)
        tape.gradient(s, x)
        assert len(tape._records) == n
