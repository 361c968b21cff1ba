"""The Korean edition in a real JupyterLab, driven by Debian's Chromium through Playwright.

The first Korean notebook runs with its graph explorer (Korean labels, drawn with a Hangul
font: no glyph reported missing), and a Korean learner notebook with a wrong answer shows
nbgrader's Validate dialog with the failure in Korean. Screenshots go to test-artifacts/
(git-ignored)::

    pytest -m browser tests/test_browser_korean.py
"""

from __future__ import annotations

import re

import nbformat
import pytest
import test_browser
from backprop.i18n import translations
from submissions import dumps, filled, wrong_answer
from test_browser import RUN_CELLS, apple_explorer, need, open_notebook, shot, wait_drawn

pytestmark = pytest.mark.browser

# test_browser's JupyterLab, Chromium and page fixtures, for this module
lab, browser, page = test_browser.lab, test_browser.browser, test_browser.page

KO = "01_computational_graphs_ko"
NB_GRAPHS_KO = f"solutions/{KO}/{KO}.ipynb"
NB_LEARNER_KO = f"course/{KO}/{KO}.ipynb"
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def ko(message: str) -> str:
    return translations("ko").gettext(message)


def test_korean_graph_explorer_renders_hangul(page, lab):
    from playwright.sync_api import expect

    explorer, table = apple_explorer(page, lab, NB_GRAPHS_KO)
    expect(table).to_contain_text(ko("value"), timeout=RUN_CELLS)
    expect(table).to_contain_text(ko("All values and gradients match the reference layers ✓"))
    assert HANGUL.search(table.text_content())
    image = explorer.locator("img").first
    wait_drawn(page, image)
    shot(explorer, "ko-graph-explorer")
    # the slider labels are Korean too
    assert HANGUL.search(explorer.locator(".widget-label").first.text_content() or "")
    # matplotlib says so in the cell's output when a glyph is missing from every font
    outputs = page.locator(".jp-OutputArea-output").all_text_contents()
    assert not [o for o in outputs if "missing from" in o and "font" in o], outputs
    shot(page, "ko-notebook-after-run")


def test_korean_validate_names_the_mistake_in_korean(page, lab):
    from playwright.sync_api import expect

    need(lab, NB_LEARNER_KO)
    release = nbformat.read(lab.root / NB_LEARNER_KO, as_version=4)
    edits = [
        ("mul_layer_impl", "dx = dout * self.y", "dx = dout * self.x"),
        ("mul_layer_impl", "dy = dout * self.x", "dy = dout * self.y"),
    ]
    answered = filled(release, KO, wrong_answer(KO, edits))
    target = lab.root / "course" / KO / "wrong_mul.ipynb"
    target.write_bytes(dumps(answered))
    open_notebook(page, lab, f"course/{KO}/wrong_mul.ipynb")
    toolbar = page.locator(".jp-NotebookPanel-toolbar").first
    toolbar.get_by_text("Validate", exact=True).click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Validation Results", timeout=RUN_CELLS)
    expect(dialog).to_contain_text("MulLayer")
    text = dialog.text_content()
    assert HANGUL.search(text), text
    assert "FAIL" not in text and "relative error" not in text, text
    shot(page, "ko-validate-wrong-mul")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
