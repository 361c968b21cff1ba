"""The autograder's parts that need no kernel: reading submissions, finding learners,
and the preprocessors that decide scores and feedback. Fast; the end-to-end tests with
real nbgrader runs are in test_autograder.py."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nbgrader.utils import determine_grade  # noqa: E402

from autograder.collect import collect, open_submissions, safe_id  # noqa: E402
from autograder.notebooks import read_submission  # noqa: E402
from autograder.preprocessors import GradeOutputs, HideHiddenTests, remove_hidden_tests  # noqa: E402

NB = "04_affine_layer"


def notebook_bytes(**meta) -> bytes:
    nb = new_notebook(cells=[new_code_cell("x = 1", metadata=meta)])
    return nbformat.writes(nb).encode()


# --- reading what was handed in -------------------------------------------------------------


@pytest.mark.parametrize(
    "data,words",
    [
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"{not json", "invalid JSON (Expecting property name"),
        (b"[1, 2]", "not an object"),
        (b'{"hello": 1}', "no cells"),
        (
            json.dumps({"nbformat": 5, "nbformat_minor": 0, "cells": [], "metadata": {}}).encode(),
            "nbformat 5",
        ),
    ],
)
def test_unreadable_files_say_why(data, words):
    s = read_submission(data)
    assert s.nb is None and words in s.error


def test_hand_edited_notebook_is_repaired_and_the_repairs_listed():
    raw = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": [],
        "cells": [
            {
                "cell_type": "code",
                "source": ["a = 1\n", "b = 2"],
                "metadata": {"nbgrader": "broken"},
            },  # no outputs, bad nbgrader
            {"cell_type": "markdown", "source": "# hi", "metadata": {}, "outputs": []},  # outputs
            {"cell_type": "heading", "source": "old", "metadata": {}},  # unknown type
            "not a cell",
            {
                "cell_type": "code",
                "source": "c = 3",
                "metadata": {"nbgrader": {"grade_id": "x", "grade": True}},
                "id": "same",
                "outputs": [{"junk": 1}],
            },
            {"cell_type": "code", "source": "d = 4", "metadata": {}, "id": "same"},  # duplicate id
        ],
    }
    s = read_submission(json.dumps(raw).encode())
    assert s.error is None, s.error
    assert [c.source for c in s.nb.cells] == ["a = 1\nb = 2", "# hi", "old", "c = 3", "d = 4"]
    assert "nbgrader" not in s.nb.cells[0].metadata
    assert s.nb.cells[3].metadata.nbgrader["grade_id"] == "x"
    assert len({c.id for c in s.nb.cells}) == 5
    assert any("broken nbgrader" in r for r in s.repairs)
    assert any("not cells dropped" in r for r in s.repairs)


def test_old_nbformat_3_is_converted():
    v4 = new_notebook(
        cells=[
            new_code_cell(
                "x = 1",
                metadata={
                    "nbgrader": {
                        "grade_id": "a",
                        "grade": False,
                        "solution": True,
                        "locked": False,
                        "schema_version": 3,
                    }
                },
            )
        ]
    )
    v3 = nbformat.writes(nbformat.convert(v4, 3), version=3).encode()
    s = read_submission(v3)
    assert s.error is None and s.nb.nbformat == 4
    assert s.nb.cells[0].metadata.nbgrader["grade_id"] == "a"
    assert "converted from nbformat 3 to 4" in s.repairs


# --- finding learners -------------------------------------------------------------------------


def test_every_naming_a_platform_uses_is_collected(tmp_path):
    data = notebook_bytes()
    files = {
        f"ana/{NB}/{NB}.ipynb": data,  # nbgrader's layout
        f"ana/{NB}/timestamp.txt": b"2024-05-02 09:00:00",
        "ben/Homework/my work.ipynb": data,  # saved under a new name
        f"hal/{NB} (1).ipynb": data,  # renamed by a browser
        f"ps4_cleo_attempt_2024-05-01-10-00-00_{NB}.ipynb": data,  # nbgrader's example
        f"ps4_cleo_attempt_2024-05-03-10-00-00_{NB}.ipynb": data,  # a later attempt
        f"dan_upload-7_{NB}.ipynb": data,  # <learner>_<x>_<nb>
        "eve/notes.txt": b"no notebook here",
        "mystery.ipynb": data,
    }
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    found, unmatched = collect(tmp_path, [NB])
    assert set(found) == {"ana", "ben", "cleo", "dan", "eve", "hal"}
    assert found["hal"].files[NB].name == f"{NB} (1).ipynb"
    assert found["ana"].times[NB] == "2024-05-02 09:00:00"
    assert found["cleo"].times[NB] == "2024-05-03 10:00:00"
    assert any("more than once" in n for n in found["cleo"].notes)
    assert "graded as" in found["ben"].notes[0]
    assert found["eve"].files == {} and found["eve"].notes == ["no notebook handed in"]
    assert unmatched == ["mystery.ipynb: no learner id in the file name"]


def test_zip_export_with_nested_zips_and_no_escape(tmp_path):
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr(f"{NB}.ipynb", notebook_bytes())
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(inner, "fay.zip")
        zf.writestr(f"gus/{NB}.ipynb", notebook_bytes())
        zf.writestr("../../evil.ipynb", notebook_bytes())
    folder = open_submissions(archive, tmp_path / "work")
    found, _ = collect(folder, [NB])
    assert set(found) == {"fay", "gus"}
    assert not (tmp_path.parent / "evil.ipynb").exists()


def test_learner_ids_are_safe_folder_names():
    assert safe_id("Ana María/../x") == "Ana_Mar_a_.._x"
    assert safe_id("...") == "unknown"


# --- scores and feedback -----------------------------------------------------------------------


def grade_cell(source="check()", outputs=(), points=2):
    return new_code_cell(
        source,
        outputs=list(outputs),
        execution_count=7,
        metadata={
            "nbgrader": {
                "grade": True,
                "solution": False,
                "locked": True,
                "grade_id": "t",
                "points": points,
                "schema_version": 3,
            }
        },
    )


def result(value):
    return new_output("execute_result", data={"text/plain": repr(value)}, execution_count=7)


def error(msg="AssertionError: wrong", frames=()):
    return new_output(
        "error",
        ename="AssertionError",
        evalue=msg,
        traceback=["-----", *frames, f"\x1b[0;31mAssertionError\x1b[0m: {msg}"],
    )


def graded(cell):
    nb = new_notebook(cells=[cell])
    nb, _ = GradeOutputs().preprocess(nb, {})
    return determine_grade(nb.cells[0])[0]


def test_a_result_published_before_an_error_does_not_earn_points():
    # nbgrader alone would stop at the first output, the learner's result, and give 2.
    assert graded(grade_cell(outputs=[result(2), error()])) == 0


def test_results_from_the_learners_code_do_not_count_and_never_break_grading():
    assert graded(grade_cell(outputs=[result(1000)])) == 2  # not its own: dropped
    assert graded(grade_cell("check()\nscore", outputs=[result(1000), result(1)])) == 1
    assert graded(grade_cell("score", outputs=[result(1000)])) == 2  # clamped, no ValueError


def test_feedback_hides_hidden_tests_and_frames_quoting_test_cells():
    source = "check(1)\n### BEGIN HIDDEN TESTS\ncheck(secret=42)\n### END HIDDEN TESTS"
    cell = grade_cell(
        source,
        outputs=[
            error(
                "FAIL dx: too large by a factor of exactly N",
                [
                    "\x1b[0;32mCell In[7], line 3\x1b[0m\n----> 3 check(secret=42)",
                    "File backprop/gradcheck.py:120, in assert_ok",
                    "File /work/main/autograder/kernel/guard.py:446, in audit",
                ],
            )
        ],
    )
    nb = new_notebook(cells=[cell])
    nb, _ = HideHiddenTests().preprocess(nb, {})
    out = nb.cells[0]
    assert out.source == "check(1)"
    tb = "\n".join(out.outputs[0].traceback)
    assert "secret" not in tb and "guard.py" not in tb
    assert "backprop/gradcheck.py" in tb and "too large by a factor of exactly N" in tb


def test_remove_hidden_tests_handles_an_unclosed_region():
    assert remove_hidden_tests("a\n### BEGIN HIDDEN TESTS\nb") == "a"
