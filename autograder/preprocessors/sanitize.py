"""SanitizeLearnerContent: no page runs what the learner wrote or printed.

In feedback and formgrader, every output, and every markdown or raw cell the learner wrote,
is shown as sanitised HTML or escaped text (bleach, the sanitiser nbconvert itself uses),
so no script of the learner's runs in the browser of whoever opens the page.
"""

from __future__ import annotations

import html
import re

from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from .cells import DEFAULT_KERNELSPEC, GRADING_TAGS

#: HTML a learner's output may keep: nbconvert's own ``clean_html`` list (the template applies
#: it again with ``HTMLExporter.sanitize_html``), without ``id`` and ``class``, which could
#: clobber the page's scripts or dress learner output up as the grader's.
OUTPUT_TAGS = frozenset(
    {
        "a",
        "abbr",
        "acronym",
        "b",
        "blockquote",
        "code",
        "em",
        "i",
        "li",
        "ol",
        "strong",
        "ul",
        "div",
        "pre",
        "span",
        "table",
        "tr",
        "td",
    }
)
OUTPUT_ATTRIBUTES = {"a": ["href", "title"], "abbr": ["title"], "acronym": ["title"]}
#: HTML a learner's markdown cell may render to (the feedback and formgrade templates put
#: markdown cells on the page with no cleaning of their own).
MARKDOWN_TAGS = OUTPUT_TAGS | {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "del",
    "s",
    "sub",
    "sup",
    "img",
    "thead",
    "tbody",
    "th",
    "details",
    "summary",
    "dl",
    "dt",
    "dd",
}
#: Output types shown as they are: text, and images as base64 in an ``<img>``. SVG is shown
#: only as ``<img src="data:image/svg+xml...">`` (nbconvert's default), where browsers run
#: no script. text/html is cleaned (:func:`clean_output_html`), text/markdown shown as its
#: text; every other type (JavaScript, widget views, mermaid, vendor types) is dropped, its
#: text/plain kept.
PLAIN_OUTPUTS = frozenset(
    {"text/plain", "text/latex", "image/png", "image/jpeg", "image/gif", "image/svg+xml"}
)
_PROTOCOLS = ("http", "https", "mailto")
_IMAGE_DATA = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_PYGMENTS_CLASS = re.compile(r"^(highlight|[a-z]{1,3}[0-9]?)$")
_GRADE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def _markdown_attribute(tag: str, name: str, value: str) -> bool:
    """Whether a learner's markdown may keep this attribute (bleach's attribute filter)."""
    if name in ("title", "alt"):
        return True
    if tag == "a" and name == "href":
        return not value.strip().lower().startswith("data:")
    if tag == "img":
        if name == "src":
            return bool(_IMAGE_DATA.match(value))
        return name in ("width", "height") and value.isdigit()
    if tag in ("th", "td"):
        return (
            name == "align"
            and value in ("left", "right", "center")
            or (name in ("colspan", "rowspan") and value.isdigit())
        )
    if tag in ("span", "div", "pre", "code") and name == "class":
        return all(_PYGMENTS_CLASS.match(c) for c in value.split())  # code highlighting
    return False


def clean_output_html(text: str) -> str:
    """A learner's HTML output, sanitised: allowed tags kept, the rest shown as text."""
    import bleach

    return bleach.clean(
        str(text),
        tags=OUTPUT_TAGS,
        attributes=OUTPUT_ATTRIBUTES,
        protocols=_PROTOCOLS,
        strip=False,
        strip_comments=True,
    )


def clean_markdown(source: str, attachments: dict | None = None) -> str:
    """A learner's markdown cell as the feedback shows it: rendered, then sanitised, as one
    raw HTML block (markdown passes it through unchanged; mathematics is left to MathJax,
    which the page loads with its Safe extension)."""
    import bleach
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    try:  # attachments become data: URLs (nbconvert's renderer, as in HTMLExporter)
        rendered = MarkdownWithMath(
            renderer=IPythonRenderer(escape=False, attachments=attachments or {})
        ).render(str(source))
    except Exception:  # a missing attachment, or markdown mistune cannot take: as text
        rendered = "<pre>" + html.escape(str(source)) + "</pre>"
    cleaned = bleach.clean(
        rendered,
        tags=MARKDOWN_TAGS,
        attributes={t: _markdown_attribute for t in MARKDOWN_TAGS},
        protocols=(*_PROTOCOLS, "data"),
        strip=False,
        strip_comments=True,
    )
    # one line: an HTML block ends at the first blank line, and &#10; is a newline in text
    return (
        '<div class="learner-markdown">'
        + cleaned.replace("\r", "").replace("\n", "&#10;")
        + "</div>"
    )


def _mime_data(data: dict) -> tuple[dict, list[str]]:
    """(what of a display's data a browser may be shown, the types dropped)."""
    new, dropped, markdown = {}, [], None
    for mime, value in data.items():
        if isinstance(value, list):
            value = "".join(str(v) for v in value)
        if mime in PLAIN_OUTPUTS and isinstance(value, str):
            if mime.startswith("image/") and mime != "image/svg+xml" and not _BASE64.match(value):
                dropped.append(mime)
                continue
            new[mime] = value
        elif mime == "text/html" and isinstance(value, str):
            new[mime] = clean_output_html(value)
        elif mime == "text/markdown" and isinstance(value, str):
            markdown = value
        else:
            dropped.append(mime)
    if markdown is not None:  # the markdown itself, as text
        new["text/plain"] = markdown
    return new, dropped


def _image_sizes(metadata: dict, kept: dict) -> dict:
    """An output's metadata reduced to the width and height of the images kept."""
    sizes = {}
    for mime, meta in (metadata or {}).items():
        if mime in kept and mime.startswith("image/") and isinstance(meta, dict):
            size = {
                k: int(v)
                for k, v in meta.items()
                if k in ("width", "height") and isinstance(v, (int, float))
            }
            if size:
                sizes[mime] = size
    return sizes


def _sanitised_display(out: dict) -> NotebookNode:
    """A display_data or execute_result output: text, images and cleaned HTML only."""
    kind = out.get("output_type")
    new, dropped = _mime_data(out.get("data") or {})
    if not new:
        new["text/plain"] = f"[output not shown here: {', '.join(dropped) or 'empty'}]"
    node = NotebookNode(
        output_type=kind,
        data=NotebookNode(new),
        metadata=NotebookNode(_image_sizes(out.get("metadata"), new)),
    )
    if kind == "execute_result":
        count = out.get("execution_count")
        node["execution_count"] = count if isinstance(count, int) else None
    return node


def sanitise_output(out: dict) -> NotebookNode | None:
    """One output as a browser may be shown it; None for an output type not shown at all."""
    kind = out.get("output_type")
    if kind == "stream":
        name = out.get("name") if out.get("name") in ("stdout", "stderr") else "stdout"
        return NotebookNode(output_type="stream", name=name, text=str(out.get("text", "")))
    if kind == "error":
        return NotebookNode(
            output_type="error",
            ename=str(out.get("ename", "")),
            evalue=str(out.get("evalue", "")),
            traceback=[str(t) for t in out.get("traceback", [])],
        )
    if kind in ("display_data", "execute_result"):
        return _sanitised_display(out)
    return None


def sanitise_outputs(outputs: list) -> list:
    """A code cell's outputs as a browser may be shown them."""
    return [node for node in map(sanitise_output, outputs) if node is not None]


class SanitizeLearnerContent(NbGraderPreprocessor):
    """Feedback and formgrader: nothing the learner wrote or printed runs in a browser.

    * every code cell's outputs (any cell's: learner code in the kernel can change what an
      instructor's cell displays) keep text, images and sanitised HTML only
      (:func:`sanitise_outputs`);
    * markdown and raw cells that are not locked (locked ones hold the gradebook's text)
      are rendered and sanitised (:func:`clean_markdown`), raw cells shown as text;
    * the notebook's metadata keeps only the kernel and language (no widget state, whose
      presence makes the page load the widget manager), and cells only the nbgrader
      metadata the templates read.

    Sanitising uses bleach, the HTML sanitiser nbconvert itself depends on and uses for its
    own ``sanitize_html``; the allow-lists are :data:`OUTPUT_TAGS` and :data:`MARKDOWN_TAGS`.
    """

    def preprocess(self, nb, resources):
        if resources.get("learner_content_sanitised"):
            return nb, resources  # registered twice (exporter and converter): once is enough
        resources["learner_content_sanitised"] = True
        ks = (
            nb.metadata.get("kernelspec") if isinstance(nb.metadata.get("kernelspec"), dict) else {}
        )
        ks = {k: str(ks[k]) for k in ("display_name", "language", "name") if k in ks} or dict(
            DEFAULT_KERNELSPEC
        )
        language = ks.get("language", "python")
        info = {"name": language}
        if language == "python":
            info["pygments_lexer"] = "ipython3"
        nb.metadata = NotebookNode(kernelspec=NotebookNode(ks), language_info=NotebookNode(info))
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.get("metadata") or {}
        kept = {}
        nbg = meta.get("nbgrader")
        if isinstance(nbg, dict) and _GRADE_ID.match(str(nbg.get("grade_id", ""))):
            kept["nbgrader"] = nbg  # the templates put grade_id into the page unescaped
        tags = [t for t in meta.get("tags", []) or [] if isinstance(t, str) and t in GRADING_TAGS]
        if tags:
            kept["tags"] = tags
        locked = bool(kept.get("nbgrader", {}).get("locked"))
        cell.metadata = NotebookNode(kept)
        if cell.cell_type == "code":
            cell.outputs = sanitise_outputs(cell.get("outputs", []))
        elif cell.cell_type == "markdown" and not locked:
            cell.source = clean_markdown(cell.source, cell.pop("attachments", None))
        elif cell.cell_type == "raw" and not locked:
            cell.source = html.escape(str(cell.source))
        return cell, resources
