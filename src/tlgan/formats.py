"""Reading the JSON documents tlgan writes with a format number (run.json, axes headers, extractor configs)."""

from __future__ import annotations

from typing import Any, Callable

from .errors import TLGANError


def read_versioned_json(text: str | bytes, where: object, expected: object, error: type[TLGANError],
                        mismatch: Callable[[dict[str, Any]], str], damaged: str = "") -> dict[str, Any]:
    """The JSON object in ``text`` if its ``format`` is ``expected``; else ``error`` with ``mismatch(doc)``.

    Text that is not JSON raises ``error`` naming ``where`` (and ``damaged``, what that means, if given).
    """
    import json

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{where} is not valid JSON ({e})" + (f"; {damaged}" if damaged else "")) from e
    if not isinstance(doc, dict):
        doc = {"format": None}
    if doc.get("format") != expected:
        raise error(mismatch(doc))
    return doc
