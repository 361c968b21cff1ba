"""A synthetic class for notebook 01_computational_graphs, for the class report's tests.

30 learners: 20 start from the reference solution and carry two or three planted mistakes
each (their checks name them: ``MISTAKES``); two hand in the reference as it is; four write
correct answers each in a style of their own; a pair of near-copies (the same code, a
comment, a blank line and one renamed variable apart) sharing a mistake; a pair with the same
code consistently renamed; one whose DivLayer cell does not parse (its test cell raises
NameError) and one whose ExpLayer.backward never returns (its test cell is stopped).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "01_computational_graphs"
COURSE_NB = REPO / "course" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SOLUTION_NB = REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def _strip(source: str) -> str:
    return "\n".join(
        line for line in source.split("\n") if "### BEGIN" not in line and "### END" not in line
    )


def reference() -> dict[str, str]:
    nb = nbformat.read(SOLUTION_NB, as_version=4)
    return {
        c.metadata.nbgrader["grade_id"]: _strip(c.source)
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }


REF = reference()


def edit(cell: str, old: str, new: str) -> dict[str, str]:
    """The reference answer of one cell with one planted edit (old must be there)."""
    assert old in REF[cell], (cell, old)
    return {cell: REF[cell].replace(old, new)}


#: name -> (cell edits, the mistake keys its checks name). FanOut is the reference's, built
#: from the learner's MulLayer and AddLayer: it inherits their mistakes, which its checks name
#: too (no_dout; dy_from_mul for swapped inputs; an unnamed mismatch for an AddLayer that
#: multiplies). A MulLayer and an AddLayer both wrong give FanOut a mismatch of their own
#: (not dy_from_mul): PLANTED combines mul_swap with add_mul nowhere.
BUGS = {
    "mul_no_dout": (
        edit(
            "mul_layer_impl",
            "dx = dout * self.y  # dz/dx = y\n        dy = dout * self.x  # dz/dy = x",
            "dx = self.y\n        dy = self.x",
        ),
        {"no_dout"},
    ),
    "mul_swap": (
        edit(
            "mul_layer_impl",
            "dx = dout * self.y  # dz/dx = y\n        dy = dout * self.x  # dz/dy = x",
            "dx = dout * self.x\n        dy = dout * self.y",
        ),
        {"not_swapped", "dy_from_mul"},
    ),
    "add_mul": (
        {
            "add_layer_impl": REF["add_layer_impl"]
            .replace("return x + y\n", "self.x, self.y = x, y\n        return x + y\n")
            .replace("dx = dout * 1", "dx = dout * self.y")
            .replace("dy = dout * 1", "dy = dout * self.x")
        },
        {"multiplied", "mismatch"},
    ),
    "div_not_squared": (edit("div_layer_impl", "self.y ** 2", "self.y"), {"not_squared"}),
    "div_swap": (edit("div_layer_impl", "dx = dout / self.y", "dx = dout * self.y"), {"swapped"}),
    "div_sign": (edit("div_layer_impl", "dy = -dout", "dy = dout"), {"sign"}),
    "exp_input": (
        edit("exp_layer_impl", "return dout * self.out", "return dout * np.log(self.out)"),
        {"from_input"},
    ),
    "exp_of_dout": (
        edit("exp_layer_impl", "return dout * self.out", "return np.exp(dout)"),
        {"exp_of_dout"},
    ),
    "exp_power": (
        edit(
            "exp_layer_impl",
            "return dout * self.out",
            "x = np.log(self.out)\n        return dout * x * np.exp(x - 1)",
        ),
        {"power_rule"},
    ),
    "exp_state": (
        edit(
            "exp_layer_impl", "return dout * self.out", "self.out *= dout\n        return self.out"
        ),
        {"state_changed"},
    ),
    "exp_mutate": (
        edit("exp_layer_impl", "return dout * self.out", "dout *= self.out\n        return dout"),
        {"mutated_dout"},
    ),
}

#: the 20 planted learners: their bugs, in three different cells at most
PLANTED = [
    ("mul_no_dout", "div_not_squared"),
    ("mul_no_dout", "exp_of_dout"),
    ("mul_no_dout", "div_swap", "exp_state"),
    ("mul_swap", "div_sign"),
    ("mul_swap", "exp_input"),
    ("mul_swap", "div_not_squared"),
    ("add_mul", "exp_power"),
    ("div_swap", "exp_of_dout"),
    ("add_mul", "exp_mutate"),
    ("add_mul", "div_not_squared", "exp_input"),
    ("div_not_squared", "exp_of_dout"),
    ("div_swap", "exp_mutate"),
    ("div_sign", "exp_power"),
    ("mul_no_dout", "add_mul"),
    ("mul_swap", "exp_state"),
    ("mul_no_dout", "exp_mutate"),
    ("div_not_squared", "exp_state"),
    ("mul_no_dout", "div_sign", "exp_input"),
    ("add_mul", "div_swap"),
    ("mul_swap", "div_sign", "exp_of_dout"),
]

# --- correct answers written differently: one style per honest learner --------------------

HONEST = [
    {
        "mul_layer_impl": """class MulLayer:
    def __init__(self):
        self.cache = None

    def forward(self, x, y):
        self.cache = (x, y)
        return x * y

    def backward(self, dout):
        a, b = self.cache
        return dout * b, dout * a
""",
        "add_layer_impl": """class AddLayer:
    def forward(self, x, y):
        total = x + y
        return total

    def backward(self, dout):
        return dout, dout
""",
        "fan_out_impl": """class FanOut:
    def __init__(self):
        self.nodes = (AddLayer(), MulLayer())

    def forward(self, x, y):
        add, mul = self.nodes
        return mul.forward(add.forward(x, y), x)

    def backward(self, dout):
        add, mul = self.nodes
        d_sum, d_x_direct = mul.backward(dout)
        d_x_sum, d_y = add.backward(d_sum)
        return d_x_sum + d_x_direct, d_y
""",
        "div_layer_impl": """class DivLayer:
    def forward(self, x, y):
        self.cache = (x, y)
        return x / y

    def backward(self, dout):
        a, b = self.cache
        return dout / b, -dout * a / (b * b)
""",
        "exp_layer_impl": """class ExpLayer:
    def forward(self, x):
        result = np.exp(x)
        self.cache = result
        return result

    def backward(self, dout):
        return self.cache * dout
""",
    },
    {
        "mul_layer_impl": """class MulLayer:
    def forward(self, x, y):
        self.inputs = [np.asarray(x, dtype=float), np.asarray(y, dtype=float)]
        return np.multiply(*self.inputs)

    def backward(self, dout):
        first, second = self.inputs
        grads = [np.multiply(dout, second), np.multiply(dout, first)]
        return tuple(grads)
""",
        "add_layer_impl": """class AddLayer:
    def forward(self, x, y):
        return np.add(x, y)

    def backward(self, dout):
        g = np.array(dout, dtype=float, copy=True)
        return g, g.copy()
""",
        "fan_out_impl": """class FanOut:
    def forward(self, x, y):
        self.saved = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        a, b = self.saved
        return np.multiply(np.add(a, b), a)

    def backward(self, dout):
        a, b = self.saved
        return np.multiply(dout, 2.0 * a + b), np.multiply(dout, a)
""",
        "div_layer_impl": """class DivLayer:
    def forward(self, x, y):
        self.inputs = [np.asarray(x, dtype=float), np.asarray(y, dtype=float)]
        return np.divide(*self.inputs)

    def backward(self, dout):
        num, den = self.inputs
        return np.divide(dout, den), np.negative(np.divide(np.multiply(dout, num), den ** 2))
""",
        "exp_layer_impl": """class ExpLayer:
    def forward(self, x):
        self.value = np.exp(np.asarray(x, dtype=float))
        return self.value.copy()

    def backward(self, dout):
        return np.multiply(dout, self.value)
""",
    },
    {
        "mul_layer_impl": """class MulLayer:
    def forward(self, x, y):
        self.saved = {"left": x, "right": y}
        return self.saved["left"] * self.saved["right"]

    def backward(self, dout):
        grad_left = self.saved["right"] * dout
        grad_right = self.saved["left"] * dout
        return grad_left, grad_right
""",
        "add_layer_impl": """class AddLayer:
    def forward(self, x, y):
        return sum([x, y])

    def backward(self, dout):
        grads = []
        for _ in range(2):
            grads.append(dout * 1.0)
        return grads[0], grads[1]
""",
        "fan_out_impl": """class FanOut:
    def __init__(self):
        self.layers = {"plus": AddLayer(), "times": MulLayer()}

    def forward(self, x, y):
        s = self.layers["plus"].forward(x, y)
        return self.layers["times"].forward(s, x)

    def backward(self, dout):
        ds, dx_times = self.layers["times"].backward(dout)
        dx_plus, dy = self.layers["plus"].backward(ds)
        total = dx_plus + dx_times
        return total, dy
""",
        "div_layer_impl": """class DivLayer:
    def forward(self, x, y):
        self.saved = {"num": x, "den": y}
        return self.saved["num"] / self.saved["den"]

    def backward(self, dout):
        inv = 1.0 / self.saved["den"]
        grad_num = dout * inv
        grad_den = -dout * self.saved["num"] * inv * inv
        return grad_num, grad_den
""",
        "exp_layer_impl": """class ExpLayer:
    def forward(self, x):
        self.saved = {"e": np.exp(x)}
        return self.saved["e"]

    def backward(self, dout):
        grad = dout * self.saved["e"]
        return grad
""",
    },
    {
        "mul_layer_impl": """class MulLayer:
    def __init__(self):
        self.x = None
        self.y = None

    def forward(self, x, y):
        out = x * y
        self.x, self.y = x, y
        return out

    def backward(self, dout):
        local_x = self.y
        local_y = self.x
        return local_x * dout, local_y * dout
""",
        "add_layer_impl": """class AddLayer:
    def forward(self, x, y):
        out = x + y
        return out

    def backward(self, dout):
        ones = np.ones_like(dout)
        return ones * dout, ones * dout
""",
        "fan_out_impl": """class FanOut:
    def forward(self, x, y):
        self.x = x
        self.y = y
        z = x + y
        return z * x

    def backward(self, dout):
        z = self.x + self.y
        dz = dout * self.x
        dx = dz + dout * z
        dy = dz
        return dx, dy
""",
        "div_layer_impl": """class DivLayer:
    def forward(self, x, y):
        out = x / y
        self.x, self.y, self.out = x, y, out
        return out

    def backward(self, dout):
        dx = dout / self.y
        dy = -dx * self.out
        return dx, dy
""",
        "exp_layer_impl": """class ExpLayer:
    def forward(self, x):
        out = np.exp(x)
        self.out = out
        return out

    def backward(self, dout):
        local = self.out
        return local * dout
""",
    },
]

# the near-copies: an unusual answer (a shared mistake in ExpLayer) and its copy
COPY_A = {
    "mul_layer_impl": """class MulLayer:
    def forward(self, x, y):
        self.pair = [x, y]
        product = self.pair[0] * self.pair[1]
        return product

    def backward(self, dout):
        g0 = dout * self.pair[1]
        g1 = dout * self.pair[0]
        return g0, g1
""",
    "add_layer_impl": """class AddLayer:
    def forward(self, x, y):
        self.n = 2
        return x + y

    def backward(self, dout):
        return tuple(dout for _ in range(self.n))
""",
    "fan_out_impl": """class FanOut:
    def __init__(self):
        self.a = AddLayer()
        self.m = MulLayer()

    def forward(self, x, y):
        self.keep = x
        return self.m.forward(self.a.forward(x, y), self.keep)

    def backward(self, dout):
        up, side = self.m.backward(dout)
        left, right = self.a.backward(up)
        return left + side, right
""",
    "div_layer_impl": """class DivLayer:
    def forward(self, x, y):
        self.pair = [x, y]
        quotient = self.pair[0] / self.pair[1]
        return quotient

    def backward(self, dout):
        g0 = dout / self.pair[1]
        g1 = -(dout * self.pair[0]) / (self.pair[1] * self.pair[1])
        return g0, g1
""",
    "exp_layer_impl": """class ExpLayer:
    def forward(self, x):
        self.pair = [x, np.exp(x)]
        return self.pair[1]

    def backward(self, dout):
        return dout * self.pair[0] * np.exp(self.pair[0] - 1)
""",
}
COPY_B = {
    **COPY_A,
    "mul_layer_impl": COPY_A["mul_layer_impl"]
    .replace("product", "result")
    .replace("g0 = dout", "# gradients\n        g0 = dout"),
    "div_layer_impl": COPY_A["div_layer_impl"].replace("quotient", "q") + "\n",
    "fan_out_impl": COPY_A["fan_out_impl"].replace(
        "self.m.backward(dout)\n", "self.m.backward(dout)  # mul first\n"
    ),
}

# the renamed pair: another answer, then every name of it consistently changed
RENAMED_A = {
    "mul_layer_impl": """class MulLayer:
    def forward(self, x, y):
        self.memo = (x, y, x * y)
        return self.memo[2]

    def backward(self, dout):
        first, second, _ = self.memo
        return second * dout, first * dout
""",
    "add_layer_impl": """class AddLayer:
    def forward(self, x, y):
        self.memo = (x, y)
        return self.memo[0] + self.memo[1]

    def backward(self, dout):
        same = dout + 0
        return same, same + 0
""",
    "fan_out_impl": """class FanOut:
    def __init__(self):
        self.chain = [AddLayer(), MulLayer()]

    def forward(self, x, y):
        inner = self.chain[0].forward(x, y)
        return self.chain[1].forward(inner, x)

    def backward(self, dout):
        inner_grad, first_grad = self.chain[1].backward(dout)
        second_grad, y_grad = self.chain[0].backward(inner_grad)
        return first_grad + second_grad, y_grad
""",
    "div_layer_impl": """class DivLayer:
    def forward(self, x, y):
        self.memo = (x, y, x / y)
        return self.memo[2]

    def backward(self, dout):
        first, second, ratio = self.memo
        return dout / second, -dout * ratio / second
""",
    "exp_layer_impl": """class ExpLayer:
    def forward(self, x):
        self.memo = np.exp(x)
        return self.memo

    def backward(self, dout):
        return self.memo * dout
""",
}
_RENAMES = [
    ("memo", "stash"),
    ("first_grad", "g_a"),
    ("second_grad", "g_b"),
    ("first", "lhs"),
    ("second", "rhs"),
    ("inner_grad", "g_in"),
    ("inner", "mid"),
    ("same", "passed"),
    ("chain", "parts"),
    ("ratio", "quot"),
    ("y_grad", "g_y"),
]


def _renamed(cells: dict[str, str]) -> dict[str, str]:
    out = {}
    for gid, src in cells.items():
        for old, new in _RENAMES:
            src = src.replace(old, new)
        out[gid] = src
    return out


@dataclass
class Learner:
    name: str
    cells: dict[str, str]  # answer cells that are not the reference's
    mistakes: set[str] = field(default_factory=set)  # named mistake keys planted
    crash: tuple[str, tuple[str, ...]] | None = None  # (test cell, the keys that say so)


def _planted() -> list[Learner]:
    out = []
    for i, bugs in enumerate(PLANTED):
        cells, keys = {}, set()
        for b in bugs:
            cell_edits, k = BUGS[b]
            cells.update(cell_edits)
            keys |= k
        out.append(Learner(f"planted{i:02d}", cells, keys))
    return out


CLASS = [
    *_planted(),
    Learner("reference_a", {}),
    Learner("reference_b", {}),
    *(Learner(f"honest{i}", cells) for i, cells in enumerate(HONEST)),
    Learner("copy_a", COPY_A, {"power_rule"}),
    Learner("copy_b", COPY_B, {"power_rule"}),
    Learner("renamed_a", RENAMED_A),
    Learner("renamed_b", _renamed(RENAMED_A)),
    Learner(
        "crashes <em>O'Neil & co",
        edit("div_layer_impl", "self.y ** 2", "(self.y ** 2"),
        crash=("test_div_layer", ("error",)),
    ),
    Learner(
        "hangs",
        edit("exp_layer_impl", "return dout * self.out", "while True:\n            pass"),
        # a cell that never ends: stopped at its time limit, or its kernel killed when it
        # no longer answers; either way the report must show it, under that key
        crash=("test_exp_layer", ("timeout", "kernel_died")),
    ),
]
FLAGGED = {frozenset({"copy_a", "copy_b"}), frozenset({"renamed_a", "renamed_b"})}
HONEST_NAMES = [f"honest{i}" for i in range(len(HONEST))]


def sources(learner: Learner) -> dict[str, str]:
    """Every answer cell of the learner, grade_id -> source."""
    return {**REF, **learner.cells}


def notebook(learner: Learner) -> nbformat.NotebookNode:
    """The released notebook with the learner's answers filled in."""
    nb = copy.deepcopy(nbformat.read(COURSE_NB, as_version=4))
    answers = sources(learner)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in answers:
            cell.source = answers[meta["grade_id"]]
    return nb


def expected_mistakes() -> dict[str, set[str]]:
    """mistake key -> the learners planted with it."""
    out: dict[str, set[str]] = {}
    for learner in CLASS:
        for key in learner.mistakes:
            out.setdefault(key, set()).add(learner.name)
    return out
