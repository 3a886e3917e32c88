"""What every report page shares: number formatting, Markdown tables, the Markdown → HTML page, CSV and JSON files.

Each report is written once as Markdown (``summary.md``) and that text is
rendered to ``index.html`` by markdown-it-py with raw HTML switched off, so
a name in a report (a feature, an axes file) is always text: ``md_text``
keeps Markdown from reading it as formatting and the renderer escapes it
once for HTML.
"""

from __future__ import annotations

import csv
import html
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluate import clean

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
p{color:#555;font-size:14px}code{background:#f5f5f5;padding:1px 4px}"""

#: the characters that could make Markdown read a name as formatting, a link, HTML, an entity or a table cell
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]<>&|!#~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_text(text: Any) -> str:
    """``text`` as literal Markdown: backslash before every character Markdown could read as markup
    (an ``_`` inside a word, as in ``mouth_open``, cannot be and is left alone)."""
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), str(text))


def fmt(x: Any, digits: int = 2) -> str:
    """A number for a table: ``–`` for none or NaN, ``∞``, yes/no, or ``digits`` decimals."""
    if x is None:
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if math.isnan(x):
            return "–"
        if math.isinf(x):
            return "∞"
        return f"{x:.{digits}f}"
    return str(x)


def pct(x: Any) -> str:
    """A share as a whole percentage; ``–`` for none or a non-finite value."""
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.0f}%"


def md_table(headers: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table whose every cell is literal text."""
    lines = ["| " + " | ".join(md_text(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(md_text(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def markdown_to_html(md: str, title: str) -> str:
    """A whole HTML page of the Markdown ``md`` (CommonMark and tables; raw HTML is shown as text)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(md)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n{body}</body></html>\n")


def write_page(out: Path, md: str, title: str) -> Path:
    """``summary.md`` and its ``index.html`` in the folder ``out``; returns the page's path."""
    (out / "summary.md").write_text(md)
    page = out / "index.html"
    page.write_text(markdown_to_html(md, title))
    return page


def write_csv(path: Path, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A CSV file; None and NaN are written as empty cells."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(headers)
        for r in rows:
            w.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in r])


def write_json(path: Path, doc: dict) -> None:
    """Strict JSON (arrays as lists, NaN and infinities as null)."""
    path.write_text(json.dumps(clean(doc), indent=1) + "\n")
