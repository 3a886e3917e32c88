"""Text the page shows as written: one escaping, at the place where text becomes markdown/HTML."""

from __future__ import annotations

import re
from typing import Any

# What can make markup inside a line of markdown: backslash, code, emphasis, links and images, strikethrough,
# LaTeX; an underscore only at a word's edge (snake_case stays as it is, also for API clients reading the text).
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]~$]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def md_text(text: Any) -> str:
    """``text`` for a line of gr.Markdown (or a component's ``info``) that shows it as written: HTML is
    escaped to entities and markdown's inline markup with backslashes, so a name such as ``<b>x</b>`` or
    ``*y*`` appears as those characters."""
    escaped = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), escaped)
