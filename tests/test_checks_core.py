"""The check machinery: the record channel, test-cell plans, and verdicts reached outside
the learner's kernel from what it published."""

from __future__ import annotations

import json

import backprop as bp
import numpy as np
import pytest
from backprop import checks
from backprop.checks import channel, core
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


class MyAffine:  # a learner's right answer
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.shape, self.x = x.shape, x.reshape(len(x), -1)
        return self.x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
        return (dout @ self.W.T).reshape(self.shape)


class NoTranspose(MyAffine):  # a learner's wrong answer
    def backward(self, dout):
        super().backward(dout)
        return (dout @ self.W).reshape(self.shape)


class Raises(MyAffine):
    def backward(self, dout):
        return dout @ self.missing_attribute


CELL = """from backprop.checks import check_affine

check_affine(MyAffine, seed=0).assert_ok("dx")
### BEGIN HIDDEN TESTS
check_affine(MyAffine, seed=7, x_shape=(3, 2, 2), out_size=4).assert_ok("dx", "dW")
### END HIDDEN TESTS
"""


@pytest.fixture
def published(monkeypatch):
    """Run checks as a grading kernel would; returns the outputs they published."""
    outputs: list[dict] = []
    monkeypatch.setenv(checks.MODE_ENV, "collect")
    import IPython.display

    monkeypatch.setattr(
        IPython.display,
        "display",
        lambda data, raw=False: outputs.append(
            {"output_type": "display_data", "data": data, "metadata": {}}
        ),
    )
    return outputs


def grade(cls, outputs, source=CELL):
    # What a kernel runs: the cell with the learner's class bound to the planned name.
    for item in core.plan(source):
        core.SPECS[item.check]  # noqa: B018 (known)
        getattr(checks, f"check_{item.check}")(cls, **item.args).assert_ok(*item.names)
    return outputs


# --- the channel ------------------------------------------------------------------------------


@given(
    hnp.arrays(
        st.sampled_from([np.float64, np.int64, np.bool_, np.float32]),
        hnp.array_shapes(min_dims=0, max_dims=4, max_side=5),
    )
)
def test_arrays_survive_the_channel(arr):
    back = channel.decode(channel.encode({"a": arr, "b": [arr, None, 1.5, "s"]}))
    assert back["a"].dtype == arr.dtype and back["a"].shape == arr.shape
    assert np.array_equal(back["a"], arr, equal_nan=arr.dtype.kind == "f")
    assert back["b"][1:] == [None, 1.5, "s"]


def test_snapshot_is_taken_at_once_and_keeps_no_objects():
    x = np.ones(3)
    snap = channel.snapshot({"x": x, "f": print, "t": (1, 2), "o": np.array([object()])})
    x[:] = 5
    assert snap["x"].tolist() == [1, 1, 1] and snap["t"] == [1, 2]
    assert isinstance(snap["f"], channel.Opaque) and isinstance(snap["o"], channel.Opaque)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"__array__": ["|O", [1], "AA=="]}',
        '{"__array__": ["<f8", [2], "AA=="]}',
        '{"__array__": ["<f8", [-1], ""]}',
        '{"__float__": "1e400"}',
        '{"__raised__": [1, 2]}',
        "[" * 100 + "]" * 100,
        '{"__array__": ["V8", [1], "AAAAAAAAAAA="]}',
    ],
)
def test_malformed_records_are_refused(text):
    with pytest.raises(channel.ChannelError):
        channel.decode(text)


def test_oversized_record_is_refused(monkeypatch):
    monkeypatch.setattr(channel, "MAX_BYTES", 100)
    with pytest.raises(channel.ChannelError, match="larger"):
        channel.decode(channel.encode(np.zeros(100)))


# --- plans ---------------------------------------------------------------------------------


def test_plan_reads_checks_and_their_literal_arguments():
    planned = core.plan(CELL)
    assert [(p.check, p.target, p.args, p.names) for p in planned] == [
        ("affine", "MyAffine", {"seed": 0}, ("dx",)),
        ("affine", "MyAffine", {"seed": 7, "x_shape": (3, 2, 2), "out_size": 4}, ("dx", "dW")),
    ]


@pytest.mark.parametrize(
    "source",
    [
        "assert True",
        "x = 1",
        "check_affine(A, seed=f()).assert_ok('dx')",
        "check_nothing(A).assert_ok()",
        "check_affine(A, seed=0)",
        "print(1)",
        "check_affine(A, seed=0).assert_ok(name)",
        "for i in []: pass",
        "check_affine(A(), seed=0).assert_ok()",
    ],
)
def test_plan_refuses_anything_else(source):
    with pytest.raises(checks.PlanError):
        core.plan(source)


# --- verdicts reached by the grader --------------------------------------------------------


def test_in_process_and_graded_verdicts_agree(published, monkeypatch):
    grade(NoTranspose, published)
    verdict = checks.verify_cell(CELL, published)
    monkeypatch.delenv(checks.MODE_ENV)
    assert not verdict.ok and "transpose" in verdict.mistakes
    with pytest.raises(AssertionError) as err:
        checks.check_affine(NoTranspose, seed=0).assert_ok("dx")
    assert verdict.failure_text.splitlines()[0] == str(err.value).splitlines()[0].replace(
        "NoTranspose", "MyAffine"
    )


def test_right_answer_passes_when_graded(published):
    verdict = checks.verify_cell(CELL, grade(MyAffine, published))
    assert verdict.ok, verdict.failure_text
    assert any("dW" in line for line in verdict.passed)


def test_no_record_means_no_points():
    verdict = checks.verify_cell(CELL, [{"output_type": "stream", "text": "Success!"}])
    assert not verdict.ok and set(verdict.mistakes) == {"not_run"}


def test_forged_numbers_do_not_pass(published):
    grade(MyAffine, published)
    for out in published:  # the kernel swaps the gradients for zeros
        rec = json.loads(out["data"][checks.RECORD_MIME])
        obs = channel.decode(rec["observed"])
        obs["grads"] = np.zeros_like(obs["grads"])
        rec["observed"] = channel.encode(obs)
        out["data"][checks.RECORD_MIME] = json.dumps(rec)
    assert not checks.verify_cell(CELL, published).ok


def test_records_for_other_data_are_not_taken(published):
    # A kernel that publishes a record for an easy seed instead of the one the cell asks for.
    checks.check_affine(MyAffine, seed=123).assert_ok("dx")
    for out in published:
        rec = json.loads(out["data"][checks.RECORD_MIME])
        rec["args"] = {"seed": 0}
        out["data"][checks.RECORD_MIME] = json.dumps(rec)
    verdict = checks.verify_cell("check_affine(MyAffine, seed=0).assert_ok('dx')", published)
    assert not verdict.ok


def test_garbage_observations_fail_without_raising(published):
    bad = [
        {
            "output_type": "display_data",
            "data": {
                checks.RECORD_MIME: json.dumps(
                    {"check": "affine", "args": {"seed": 0}, "names": ["dx"], "observed": obs}
                )
            },
        }
        for obs in ['{"out": "x", "grads": {"a": 1}}']
    ]
    bad2 = [
        {
            "output_type": "display_data",
            "data": {
                checks.RECORD_MIME: json.dumps(
                    {"check": "affine", "args": {"seed": 0}, "names": ["dx"], "observed": "[1, 2"}
                )
            },
        }
    ]
    for outputs in (bad, bad2):
        verdict = checks.verify_cell("check_affine(MyAffine, seed=0).assert_ok('dx')", outputs)
        assert not verdict.ok


@pytest.mark.parametrize("name", sorted(core.SPECS))
def test_every_check_survives_a_garbage_record(name):
    spec = core.SPECS[name]
    for observed in (
        {},
        {"error": "x"},
        {"out": "text", "grads": "text", "grads2": 5},
        {"out": None, "after_forward": 3, "grads": [None], "param_grads": 1},
    ):
        report = spec.verify(spec.inputs(), observed)  # verify itself, not the safety net
        assert not report.ok


def test_an_exception_names_the_learners_line():
    report = checks.check_affine(Raises, seed=0)
    msg = report["backward"].message
    assert "AttributeError" in msg and "test_checks_core.py" in msg
    assert "self.missing_attribute" in msg


def test_delegating_while_grading_still_refused(published):
    class Mine(bp.Affine):
        pass

    verdict = checks.verify_cell(CELL, grade(Mine, published))
    assert not verdict.ok and "delegated" in verdict.mistakes
