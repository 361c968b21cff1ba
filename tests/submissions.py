"""Learner submissions built from the course: the reference answers, and wrong answers with
one realistic mistake each (tests of the grader, the exchange and the formgrader share them)."""

from __future__ import annotations

import copy

import nbformat

from autograder.template import solution_sources

# Per batch: 2 workers; a cell may run 10 s, a learner 60 s, a kernel 1 GiB.
GRADE_ARGS = ["--jobs", "2", "--timeout", "60", "--cell-timeout", "10", "--memory-mb", "1024"]


def grade_ids(nb) -> list[str]:
    return [
        c.metadata.nbgrader["grade_id"]
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")
    ]


def filled(
    release,
    assignment: str,
    overrides: dict[str, str] | None = None,
    append: dict[str, str] | None = None,
):
    """The release with every solution cell answered (reference unless overridden)."""
    nb = copy.deepcopy(release)
    answers = {**solution_sources(assignment), **(overrides or {})}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and gid in answers:
            cell.source = answers[gid]
            if append and gid in append:
                cell.source += "\n" + append[gid]
    return nb


def dumps(nb) -> bytes:
    return nbformat.writes(nb).encode()


# --- wrong answers: (solution cell, find, replace), failing test cells, words in feedback ----
# Each is the reference with one realistic mistake made in it.

WRONG = {
    "01_computational_graphs": {
        "mul_not_swapped": (
            [
                ("mul_layer_impl", "dx = dout * self.y", "dx = dout * self.x"),
                ("mul_layer_impl", "dy = dout * self.x", "dy = dout * self.y"),
            ],
            {"test_mul_backward", "test_fan_out"},
            "uses its own input: dz/dx is y and dz/dy is x",
        ),
        "add_forward_multiplies": (
            [("add_layer_impl", "return x + y", "return x * y")],
            {"test_add_forward", "test_fan_out"},
            "AddLayer: FAIL out",
        ),
    },
    "03_activations": {
        "sigmoid_backward_from_input": (
            [
                ("sigmoid_impl", "self.out = np.where", "self.x = x\n        self.out = np.where"),
                (
                    "sigmoid_impl",
                    "return dout * self.out * (1.0 - self.out)",
                    "return dout * self.x * (1.0 - self.x)",
                ),
            ],
            {"test_sigmoid_backward"},
            "uses the input x in x * (1 - x)",
        ),
        "relu_overwrites_input": (
            [("relu_impl", "out = x.copy()", "out = x")],
            {"test_relu_edge_cases"},
            "forward changed its input x in place",
        ),
    },
    "04_affine_layer": {
        "dW_transposed": (
            [("affine_impl", "self.dW = self.x.T @ dout", "self.dW = dout.T @ self.x")],
            {"test_affine_dw", "test_affine_nd_input"},
            "is the transpose of the right answer",
        ),
        "x_at_dout": (
            [("affine_impl", "self.dW = self.x.T @ dout", "self.dW = self.x @ dout")],
            {
                "test_affine_dx",
                "test_affine_dw",
                "test_affine_db",
                "test_affine_nd_input",
                "test_affine_state",
            },
            "backward raised ValueError: matmul",
        ),
        "db_not_summed": (
            [("affine_impl", "self.db = dout.sum(axis=0)", "self.db = dout")],
            {"test_affine_db"},
            "sum over the batch axis (axis=0)",
        ),
        "db_mean": (
            [("affine_impl", "self.db = dout.sum(axis=0)", "self.db = dout.mean(axis=0)")],
            {"test_affine_db"},
            "is the mean of dout over the batch",
        ),
        "dx_not_reshaped": (
            [("affine_impl", "return dx.reshape(self.x_shape)", "return dx")],
            {"test_affine_nd_input"},
            "has shape (3, 8) but should have (3, 2, 2, 2)",
        ),
        "W_copied": (
            [("affine_impl", "self.W = W\n", "self.W = W.copy()\n")],
            {"test_affine_state"},
            "keep the arrays themselves",
        ),
    },
    "05_softmax_with_loss": {
        "softmax_no_max_shift": (
            [("softmax_impl", "shifted = x - np.max(x, axis=-1, keepdims=True)", "shifted = x")],
            {"test_softmax_stable"},
            "subtract each row's maximum",
        ),
        "loss_backward_missing_N": (
            [
                (
                    "softmax_with_loss_impl",
                    "return dout * (self.y - self.t) / batch_size",
                    "return dout * (self.y - self.t)",
                )
            ],
            {"test_softmax_with_loss_dx"},
            "too large by a factor of exactly N",
        ),
    },
}

# Correct answers written differently: full marks.
VARIANTS = {
    "01_computational_graphs": {
        "mul_layer_impl": """class MulLayer:
    def __init__(self):
        self.a = self.b = None

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        return grad * self.b, grad * self.a
""",
        "add_layer_impl": """class AddLayer:
    def forward(self, left, right):
        return np.add(left, right)

    def backward(self, grad):
        return np.multiply(grad, 1), np.multiply(grad, 1)
""",
    },
    "03_activations": {
        "relu_impl": """class Relu:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = x <= 0
        return np.where(self.mask, 0.0, x)

    def backward(self, dout):
        return np.where(self.mask, 0.0, dout)
""",
        "sigmoid_impl": """class Sigmoid:
    def __init__(self):
        self.out = None

    def forward(self, x):
        self.out = 0.5 * (1.0 + np.tanh(0.5 * x))   # the same function, never overflows
        return self.out

    def backward(self, dout):
        y = self.out
        return dout * (y - y * y)
""",
    },
    "04_affine_layer": {
        "affine_impl": """class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b
        self.inp = self.shape = self.dW = self.db = None

    def forward(self, x):
        self.shape = np.shape(x)
        self.inp = np.reshape(x, (self.shape[0], -1))
        return np.einsum("nd,dm->nm", self.inp, self.W) + self.b

    def backward(self, grad):
        self.dW = np.einsum("nd,nm->dm", self.inp, grad)
        self.db = np.einsum("nm->m", grad)
        return np.einsum("nm,dm->nd", grad, self.W).reshape(self.shape)
"""
    },
}


def wrong_answer(assignment: str, edits) -> dict[str, str]:
    sources = solution_sources(assignment)
    for cell, old, new in edits:
        assert old in sources[cell], f"{assignment}/{cell}: {old!r} not in the reference"
        sources[cell] = sources[cell].replace(old, new)
    return sources
