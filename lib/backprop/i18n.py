"""The course's languages: English (the source) and Korean, from gettext catalogs.

Every message a learner or an instructor reads (a check's verdict, a named mistake, a
widget's label, a grading reason) is written in English and wrapped in :func:`_`::

    _("has shape {got} but should have {expected}").format(got=got, expected=expected)

The placeholders are named, so a translation may put them in another order. ``_`` looks the
message up in the catalog of the current language (``locale/<lang>/LC_MESSAGES/backprop.mo``,
compiled by Babel from the ``.po`` file beside it) and returns the English text where a
language has no translation. A message defined before it is shown (a module constant) is
marked with :func:`N_` and translated with ``_`` when it is used, so it follows the language
of that moment.

The language: :func:`set_language` (a Korean notebook's setup cell calls
``set_language("ko")``), else the environment (``BACKPROP_LANG``, then the locale variables
``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``), else English. The grader verifies each
notebook inside :func:`using` with the language of its assignment's template.

Keeping the catalogs up to date (from the repository root, Babel installed)::

    pybabel extract -F babel.cfg -o lib/backprop/locale/backprop.pot .
    pybabel update -i lib/backprop/locale/backprop.pot -d lib/backprop/locale -D backprop
    pybabel compile -d lib/backprop/locale -D backprop

``tests/test_i18n.py`` fails when a message has no Korean translation, a translation loses a
placeholder, or a ``.mo`` file is older than its ``.po``.
"""

from __future__ import annotations

import gettext
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "backprop"
LANGUAGES = ("en", "ko")
# The Hangul fonts matplotlib is pointed at for Korean, best first (Debian's fonts-nanum,
# then the fonts Korean systems and fonts-noto-cjk bring).
HANGUL_FONTS = ("NanumGothic", "NanumBarunGothic", "Noto Sans CJK KR", "Malgun Gothic",
                "AppleGothic", "UnDotum")  # fmt: skip

# using() overrides for a block; set_language() is a module global, since a kernel may run
# each cell in a context of its own, where a ContextVar set by one cell is gone in the next.
_current: ContextVar[str | None] = ContextVar("backprop_language", default=None)
_chosen: str | None = None


def _from_environment() -> str:
    for var in ("BACKPROP_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        for part in value.split(":"):
            code = part.split("_")[0].split(".")[0].lower()
            if code in LANGUAGES:
                return code
        if value and var != "LANGUAGE":
            break  # a set locale that is not one of ours: English
    return "en"


def language() -> str:
    """The language messages are shown in now: ``"en"`` or ``"ko"``."""
    return _current.get() or _chosen or _from_environment()


def _check(lang: str) -> str:
    code = str(lang).split("_")[0].lower()
    if code not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}: the course speaks {', '.join(LANGUAGES)}")
    return code


def set_language(lang: str) -> str:
    """Show messages, widgets and plots in lang (``"en"`` or ``"ko"``) from now on.

    For Korean, matplotlib is given a font with Hangul (:func:`hangul_font`); without one it
    warns once, since Korean labels would show as empty boxes. Returns the language.
    """
    global _chosen
    code = _check(lang)
    _chosen = code
    if code == "ko":
        use_hangul_font()
    return code


@contextmanager
def using(lang: str) -> Iterator[str]:
    """Messages in lang inside the block (the grader's way: one notebook, one language)."""
    token = _current.set(_check(lang))
    try:
        yield lang
    finally:
        _current.reset(token)


@cache
def _catalog(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def _(message: str) -> str:
    """message in the current language (English when no translation exists)."""
    return _catalog(language()).gettext(message)


def N_(message: str) -> str:
    """Mark message for translation without translating it now (translate it with ``_``)."""
    return message


def translations(lang: str) -> gettext.NullTranslations:
    """The gettext catalog of lang (for tests and tools)."""
    return _catalog(_check(lang))


@cache
def hangul_font() -> str | None:
    """The name of an installed font with Hangul that matplotlib can use, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in HANGUL_FONTS if name in installed), None)


def use_hangul_font() -> str | None:
    """Have matplotlib draw Hangul with a Hangul font; warn when there is none.

    The font families become matplotlib's own DejaVu Sans, then the Hangul font: text falls
    back from one to the other glyph by glyph, so Korean labels, Latin letters and the minus
    sign U+2212 (which no Nanum font has) all show. Formulas (``$...$``, and the ``10^-3``
    of log-scale ticks) are drawn by mathtext from DejaVu Sans alone, which has no Hangul: a
    label keeps Korean words outside its formulas' strings (tests/test_korean.py checks).
    """
    import matplotlib

    font = hangul_font()
    if font is None:
        warnings.warn(
            _(
                "no font with Hangul was found, so Korean text in plots will show as empty "
                "boxes: install one (on Debian and Ubuntu: apt install fonts-nanum) and "
                "restart the kernel"
            ),
            stacklevel=2,
        )
        return None
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", font]
    return font


def notebook_language(metadata: dict) -> str:
    """The language a notebook's metadata declares (``metadata.backprop.language``; the
    Korean notebooks say ``"ko"``), English when it declares none or an unknown one."""
    declared = (
        (metadata.get("backprop") or {}).get("language") if isinstance(metadata, dict) else None
    )
    return declared if declared in LANGUAGES else "en"
