"""python -m autograder report RESULTS [--out FILE] [--threshold R]

The class report: one self-contained HTML page (``RESULTS/report.html``: plots embedded as
PNG data, CSS inline, no script, opens from disk) with, per assignment graded into RESULTS,
the score distribution, each test cell's pass rate, the named mistakes ranked by how many
learners made them (one example message each, and who), the test cells that crashed, timed
out or never ran, a per-learner table ordered by score, and the similarity flags
(similarity.py). It reads ``grades.csv``, ``mistakes.csv`` (one row per failed check of a
test cell of a learner; without it the mistakes sections say so), ``autograded/`` and, from
the repository, ``course/`` (the points of each test cell, the given templates) and
``solutions/`` (the reference). Learners' names and messages are untrusted text: the
template escapes everything. The page names learners: it is for instructors only.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import similarity
from .config import ROOT as REPO

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: mistake keys that say a test cell did not run to its end, not what the code got wrong
CRASH_KEYS = ("error", "timeout", "kernel_died", "not_run")
#: keys that say a check failed without naming why (listed apart from the named mistakes)
UNNAMED_KEYS = ("", "mismatch")
#: statuses of grades.csv whose notebooks were run (the others have no cell results)
RAN = ("graded", "partial")

#: Human titles of the mistake keys the checks in lib/backprop name (unknown keys: the key).
TITLES = {
    "error": "the test cell raised an error",
    "timeout": "the test cell ran past its time limit",
    "kernel_died": "the kernel died in the test cell",
    "not_run": "a check never ran",
    "mismatch": "a wrong value whose cause the checks could not name",
    "missing": "nothing returned (None)",
    "return_value": "returned the wrong number of values",
    "shape": "a result of the wrong shape",
    "transpose": "a transposed matrix in the backward pass",
    "not_summed": "a gradient not summed over the batch",
    "not_numeric": "not an array of numbers",
    "nonfinite": "nan or inf in a result",
    "batch_size": "forgot to divide by the batch size N",
    "batch_size_twice": "divided by the batch size N once too often",
    "sign": "a gradient with the wrong sign",
    "passthrough": "passed dout on unchanged",
    "zero": "a gradient left at zero",
    "no_dout": "forgot to multiply by dout (the chain rule)",
    "mutated_input": "changed an input in place",
    "mutated_dout": "changed dout in place",
    "accumulates": "adds to a gradient (+=) instead of setting it",
    "state_changed": "backward changes what forward stored",
    "stale_state": "state left over from an earlier call",
    "copied_params": "copied the parameters",
    "copied_x": "worked on a copy of x",
    "not_swapped": "MulLayer: dx and dy not swapped",
    "swapped": "used the multiply rule where another applies",
    "multiplied": "AddLayer: multiplied dout by an input",
    "not_squared": "a square missing from the derivative",
    "from_input": "local gradient computed from the input instead of the output",
    "exp_of_dout": "took exp of dout",
    "power_rule": "used a power rule on exp",
    "dy_from_mul": "took the multiply node's gradient for the wrong input",
    "no_minus_one": "lost the minus sign of a node",
    "div_not_squared": "divide node: y not squared",
    "exp_from_input": "exp node: exp of its input instead of its output",
    "mask_inverted": "ReLU mask inverted",
    "relu_of_dout": "ReLU applied to dout",
    "sigmoid_rule": "used the sigmoid's rule for tanh",
    "db_mean": "db as a mean instead of a sum",
    "ignores_dout": "ignores dout",
    "no_batch_no_dout": "neither divides by N nor uses dout",
    "no_half": "missing the factor 1/2",
    "no_half_all": "missing the factor 1/2",
    "plain_mse": "plain MSE instead of half-MSE",
    "wrong_axis": "summed over the wrong axis",
    "not_per_row": "softmax not computed per row",
    "all_entries": "sum over all entries",
    "off_zero": "off-diagonal entries set to zero",
    "diag_as_off": "diagonal treated as off-diagonal",
    "diag_missing_term": "a term missing on the diagonal",
    "softmax_in_predict": "softmax inside predict",
    "order": "layers in the wrong order",
    "string_order": "layers ordered as strings (10 before 2)",
    "fan_out": "wrong fan-in/fan-out",
    "init_scale": "wrong initial weight scale",
    "no_sqrt": "init scale missing a square root",
    "sqrt_c_over_n": "wrong init formula",
    "squared": "squared where it should not be",
    "mean_abs": "mean of |values| instead of the norm",
    "with_biases": "counted the biases",
    "activation_on_output": "activation applied after the last layer",
    "ignores_h": "ignores the step h",
    "off_by_one": "off by one",
    "off_by_one_more": "off by one",
    "two_steps": "two steps instead of one",
    "uphill": "steps uphill (+ instead of -)",
    "no_lr": "forgot the learning rate",
    "default_lr": "ignored the learning rate given",
    "not_restored": "x not restored after perturbing it",
    "returned_input": "returned its input",
    "dtype": "integer arrays where floats are needed",
    "forward": "forward is wrong",
    "no_update": "parameters not updated",
    "dropped_last": "dropped the last partial batch",
    "not_shuffled": "batches not shuffled",
    "with_replacement": "batches drawn with replacement",
    "labels_mismatched": "labels shuffled apart from the inputs",
    "unseeded": "not seeded",
    "reseeded": "reseeded inside the loop",
    "length": "wrong number of values",
    "loss_after_update": "loss recorded after the update",
    "broadcast": "broadcast not undone",
    "constant_rules": "constant rules for a variable",
    "zero_start": "gradient not seeded with 1",
    "delegated": "called backprop's own implementation",
    "malformed": "a malformed record",
    "tampered": "a tampered record",
}


@dataclass
class Mistake:
    """A mistake key of one assignment: who made it, where, and one message."""

    key: str
    title: str
    learners: list[str]
    example: str
    checks: list[str]


@dataclass
class Summary:
    """Everything the page shows for one assignment."""

    assignment: str
    max_score: float
    rows: list[dict]  # grades.csv rows, best score first
    cells: list[tuple[str, float, int, int]]  # grade_id, points, passed, of
    mistakes: list[Mistake] = field(default_factory=list)  # named, most learners first
    unnamed: list[Mistake] = field(default_factory=list)  # UNNAMED_KEYS, by check
    crashes: list[Mistake] = field(default_factory=list)  # CRASH_KEYS, by test cell
    pairs: list[similarity.Pair] = field(default_factory=list)
    has_mistakes: bool = True
    graded: int = 0  # learners whose notebooks were run

    @property
    def flagged(self) -> list[similarity.Pair]:
        """The pairs for a human to look at (kind ``similar``)."""
        return [p for p in self.pairs if p.kind == "similar"]

    def alike_by_reference(self, kind: str) -> tuple[int, list[str]]:
        """(number of pairs, learners in them) of one kind: reference | near_reference."""
        pairs = [p for p in self.pairs if p.kind == kind]
        return len(pairs), sorted({n for p in pairs for n in (p.a.learner, p.b.learner)})


def title(key: str) -> str:
    """The human title of a mistake key (the key itself when unknown)."""
    return TITLES.get(key, key)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _number(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def cell_points(assignment: str, repo: Path = REPO) -> dict[str, float]:
    """grade_id -> points of every graded test cell of the released notebooks."""
    points = {}
    for path in sorted((repo / "course" / assignment).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                points[meta["grade_id"]] = float(meta.get("points", 0))
    return points


def _observed_points(rows: list[dict]) -> dict[str, float]:
    """Without the released notebook: each test cell column's best score as its points."""
    columns = list(rows[0])[list(rows[0]).index("max_score") + 1 : list(rows[0]).index("status")]
    return {c: max(_number(r.get(c)) for r in rows) for c in columns}


def _grouped(rows: list[dict], key_of) -> list[Mistake]:
    """Mistakes from mistakes.csv rows grouped by key_of(row), most learners first."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[key_of(row)].append(row)
    out = []
    for group in groups.values():
        learners = sorted({r["student_id"]: r["learner"] for r in group}.values())
        checks = sorted({f"{r['cell']}: {r['check']}" if r["check"] else r["cell"] for r in group})
        mistake = group[0]["mistake"]
        out.append(
            Mistake(
                mistake,
                title(mistake) if mistake else "no named mistake",
                learners,
                group[0]["message"],
                checks,
            )
        )
    out.sort(key=lambda m: (-len(m.learners), m.key, m.checks))
    return out


def summarise(
    results: Path, repo: Path = REPO, threshold: float = similarity.THRESHOLD
) -> list[Summary]:
    """One Summary per assignment in RESULTS/grades.csv, in assignment order."""
    grades = read_csv(results / "grades.csv")
    mistakes_csv = results / "mistakes.csv"
    mistakes = read_csv(mistakes_csv) if mistakes_csv.is_file() else None
    out = []
    for assignment in sorted({r["assignment"] for r in grades}):
        rows = sorted(
            (r for r in grades if r["assignment"] == assignment),
            key=lambda r: (-_number(r["score"]), r["learner"]),
        )
        ran = [r for r in rows if r["status"] in RAN]
        points = cell_points(assignment, repo) or _observed_points(rows)
        cells = [
            (gid, pts, sum(_number(r.get(gid)) >= pts - 1e-9 for r in ran), len(ran))
            for gid, pts in points.items()
        ]
        s = Summary(
            assignment,
            max((_number(r["max_score"]) for r in rows), default=0.0),
            rows,
            cells,
            has_mistakes=mistakes is not None,
            graded=len(ran),
        )
        mine = [m for m in mistakes or [] if m["assignment"] == assignment]
        s.mistakes = _grouped(
            [m for m in mine if m["mistake"] not in CRASH_KEYS + UNNAMED_KEYS],
            lambda m: m["mistake"],
        )
        s.unnamed = _grouped(
            [m for m in mine if m["mistake"] in UNNAMED_KEYS],
            lambda m: f"{m['cell']}: {m['check']}",
        )
        s.crashes = _grouped(
            [m for m in mine if m["mistake"] in CRASH_KEYS], lambda m: f"{m['cell']} {m['mistake']}"
        )
        learners = {r["student_id"]: r["learner"] for r in ran}
        answers, ref = similarity.class_answers(results, assignment, learners, repo)
        s.pairs = similarity.similar_pairs(assignment, answers, ref, threshold)
        out.append(s)
    return out


def _png(fig) -> str:
    """A matplotlib figure as a data: URI (and closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def plots(s: Summary) -> dict[str, str]:
    """The score histogram and the pass-rate bars of one assignment, as data: URIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [_number(r["score"]) for r in s.rows]
    fig, ax = plt.subplots(figsize=(6, 3))
    top = max(s.max_score, max(scores, default=0), 1)
    ax.hist(
        scores, bins=min(20, max(5, int(top))), range=(0, top), color="#3b6ea8", edgecolor="white"
    )
    ax.set_xlabel(f"score (of {s.max_score:g})")
    ax.set_ylabel("learners")
    ax.set_title(f"{s.assignment}: scores of {len(scores)} learners")
    hist = _png(fig)
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(s.cells) + 1))
    names = [c[0] for c in s.cells][::-1]
    rates = [100 * c[2] / c[3] if c[3] else 0 for c in s.cells][::-1]
    ax.barh(names, rates, color="#4f9a5b")
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of graded learners with full points")
    for y, r in enumerate(rates):
        ax.text(min(r + 1, 90), y, f"{r:.0f}%", va="center")
    ax.set_title("pass rate per test cell")
    return {"hist": hist, "passrate": _png(fig)}


def render(summaries: list[Summary], results: Path, threshold: float = similarity.THRESHOLD) -> str:
    """The page, from templates/report.html.j2 (autoescaped)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    failed = {}
    for s in summaries:
        for m in s.mistakes:
            for learner in m.learners:
                failed.setdefault((s.assignment, learner), []).append(m.title)
    return env.get_template("report.html.j2").render(
        summaries=summaries,
        plots={s.assignment: plots(s) for s in summaries},
        failed=failed,
        results=str(results),
        threshold=threshold,
        number=_number,
    )


def write_report(
    results: Path,
    out: Path | None = None,
    repo: Path = REPO,
    threshold: float = similarity.THRESHOLD,
) -> Path:
    """Write the class report of a grading folder; return its path (RESULTS/report.html)."""
    results = Path(results)
    path = Path(out) if out else results / "report.html"
    html = render(summarise(results, repo, threshold), results, threshold)
    path.write_text(html, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results", type=Path, help="the folder `grade --out` wrote")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the page (default: RESULTS/report.html)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=similarity.THRESHOLD,
        help=f"similarity ratio (0..1) from which a pair is shown (default {similarity.THRESHOLD})",
    )
    args = parser.parse_args(argv)
    if not (args.results / "grades.csv").is_file():
        print(f"report: no grades.csv in {args.results}", file=sys.stderr)
        return 2
    print(write_report(args.results, args.out, threshold=args.threshold))
    return 0


if __name__ == "__main__":
    sys.exit(main())
