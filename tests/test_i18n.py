"""The gettext catalog: every message translated, placeholders kept, the .mo up to date.

Messages are found as Babel finds them (babel.cfg): every ``_("...")`` and ``N_("...")`` in
lib/backprop and autograder. A message that is missing from the Korean catalog, translated
fuzzily or left empty fails here, as does a translation that drops or adds a ``{placeholder}``
(``str.format`` would raise, or show the wrong value), a ``.mo`` older than its ``.po``, and a
``_()`` that runs at import time (it would freeze the message in the language of the import).
"""

from __future__ import annotations

import ast
import io
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from backprop import i18n

REPO = Path(__file__).resolve().parents[1]
PO = i18n.LOCALE_DIR / "ko" / "LC_MESSAGES" / "backprop.po"
MO = PO.with_suffix(".mo")
SOURCES = sorted((REPO / "lib" / "backprop").rglob("*.py")) + sorted(
    (REPO / "autograder").rglob("*.py")
)


def _extracted() -> dict[str, list[str]]:
    """msgid -> where it is used, as ``pybabel extract -F babel.cfg`` finds them."""
    with open(REPO / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(REPO), method_map, options_map
    ):
        if isinstance(message, str):
            found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def _catalog():
    with open(PO, "rb") as f:
        return read_po(f, locale="ko")


def _fields(text: str) -> list[str]:
    return sorted(
        f"{name}:{spec}" for _lit, name, spec, _conv in string.Formatter().parse(text) if name
    )


def test_babel_finds_the_messages():
    found = _extracted()
    assert len(found) > 200, f"only {len(found)} messages extracted: is babel.cfg right?"


def test_every_message_has_a_korean_translation():
    catalog = _catalog()
    missing = []
    for msgid, where in sorted(_extracted().items()):
        entry = catalog.get(msgid)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(f"{where[0]}: {msgid!r}")
    assert not missing, (
        f"{len(missing)} messages without a Korean translation (pybabel extract/update, "
        "then translate them in " + str(PO.relative_to(REPO)) + "):\n" + "\n".join(missing[:40])
    )


def test_the_catalog_holds_no_message_the_code_no_longer_has():
    found = _extracted()
    stale = [m.id for m in _catalog() if m.id and m.id not in found]
    assert not stale, f"obsolete entries (run pybabel update): {stale[:20]}"


def test_translations_keep_every_placeholder():
    wrong = []
    for m in _catalog():
        if m.id and m.string and _fields(m.id) != _fields(m.string):
            wrong.append(f"{m.id!r}: {_fields(m.id)} -> {_fields(m.string)}")
    assert not wrong, "\n".join(wrong)


def test_babel_finds_no_error_in_the_catalog():
    """What ``pybabel compile`` checks: placeholders of either format style compatible (a
    "% o" in a message looks like a printf placeholder to it)."""
    problems = [f"{m.id!r}: {errors}" for m, errors in _catalog().check()]
    assert not problems, "\n".join(problems)


def test_translations_format_without_errors():
    for m in _catalog():
        if m.id and m.string:
            names = {n.split(":")[0] for n in _fields(m.id)}
            values = dict.fromkeys(names, 1.5)
            try:
                m.id.format(**values)
            except (ValueError, KeyError, IndexError):
                continue  # a message formatted with other types (a string spec, say)
            m.string.format(**values)


def test_translations_are_korean():
    not_korean = [
        m.id for m in _catalog() if m.id and not any("\uac00" <= ch <= "\ud7a3" for ch in m.string)
    ]
    # words that are the same in both languages (a unit, a name) are allowed, but few
    assert len(not_korean) <= 5, not_korean


def test_the_compiled_catalog_is_up_to_date():
    buf = io.BytesIO()
    write_mo(buf, _catalog())
    assert MO.is_file() and MO.read_bytes() == buf.getvalue(), (
        "the .mo is not compiled from the .po: run "
        "pybabel compile -d lib/backprop/locale -D backprop"
    )


def _scopes(tree: ast.AST):
    """(node, inside a function body) for every node of a module."""
    stack = [(tree, False)]
    while stack:
        node, in_function = stack.pop()
        yield node, in_function
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            for default in args.defaults + [d for d in args.kw_defaults if d is not None]:
                stack.append((default, in_function))  # defaults run at definition time
            for dec in getattr(node, "decorator_list", []):
                stack.append((dec, in_function))
            body = node.body if isinstance(node.body, list) else [node.body]
            stack.extend((child, True) for child in body)
        else:
            stack.extend((child, in_function) for child in ast.iter_child_nodes(node))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_messages_are_literals_translated_when_used(path):
    """``_()`` takes one string literal (Babel extracts nothing else), or a constant marked
    with N_; it never runs at import time, where it would freeze the import's language."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node, in_function in _scopes(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id == "_":
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            assert in_function, f"{where}: _() at import time; mark with N_() and translate later"
            assert len(node.args) == 1 and not node.keywords, where
            arg = node.args[0]
            assert not isinstance(arg, ast.JoinedStr), f"{where}: _(f'...') cannot be extracted"
            assert isinstance(arg, (ast.Constant, ast.Name, ast.Attribute, ast.Subscript)), where
        elif node.func.id == "N_":
            arg = node.args[0] if node.args else None
            assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                f"{path.relative_to(REPO)}:{node.lineno}: N_() takes one string literal"
            )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_function_that_translates_assigns_to_underscore(path):
    """``a, _ = ...`` in a function makes ``_`` a local name there: a ``_("...")`` in the same
    function would then call whatever was unpacked."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    scoped = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp,
              ast.DictComp, ast.GeneratorExp)  # fmt: skip

    def own(node):  # the nodes of a function's own scope
        for child in ast.iter_child_nodes(node):
            yield child
            if not isinstance(child, scoped):
                yield from own(child)

    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        nodes = list(own(fn))
        calls = any(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_"
            for n in ast.walk(fn)
        )
        stores = [
            n.lineno
            for n in nodes
            if isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store)
        ]
        assert not (calls and stores), (
            f"{path.relative_to(REPO)}:{stores[0]}: {fn.name} assigns to _ and translates"
        )


def test_language_from_the_environment_and_set_language(monkeypatch):
    for var in ("BACKPROP_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(i18n, "_chosen", None)
    assert i18n.language() == "en"
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    assert i18n.language() == "ko"
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    assert i18n.language() == "en"
    monkeypatch.setenv("BACKPROP_LANG", "ko")
    assert i18n.language() == "ko"
    with i18n.using("en"):
        assert i18n.language() == "en"
    assert i18n.language() == "ko"
    with pytest.raises(ValueError, match="unknown language"):
        i18n.set_language("fr")


def test_a_korean_message_is_korean_and_english_stays_english(monkeypatch):
    from backprop.diagnosis import diagnose

    monkeypatch.setattr(i18n, "_chosen", None)
    monkeypatch.delenv("BACKPROP_LANG", raising=False)
    with i18n.using("en"):
        english = diagnose("dx", [[1.0, 2.0]], [[1.0], [2.0]]).message
    with i18n.using("ko"):
        korean = diagnose("dx", [[1.0, 2.0]], [[1.0], [2.0]]).message
    assert "transposed" in english
    assert korean != english and "전치" in korean and "(1, 2)" in korean


def test_the_font_warning_when_no_hangul_font(monkeypatch):
    monkeypatch.setattr(i18n, "hangul_font", lambda: None)
    with pytest.warns(UserWarning, match="fonts-nanum"):
        assert i18n.use_hangul_font() is None
