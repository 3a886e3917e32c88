"""Reading what tlgan and its users write: JSON documents with a format number (run.json, axes headers,
extractor configs), and named columns (label sets, CSV and CelebA attribute files)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

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
        raise error(f"{where} holds a JSON {type(doc).__name__}, not an object" + (f"; {damaged}" if damaged else ""))
    if doc.get("format") != expected:
        raise error(mismatch(doc))
    return doc


def pick_columns(wanted: Sequence[str], known: Sequence[str], fail: Callable[[str, str], Exception]) -> list[int]:
    """The indices of ``wanted`` among ``known``; if some are missing, raise ``fail(missing, known)``
    (both comma-separated) so each caller says in its own words where they were looked for."""
    missing = [w for w in wanted if w not in known]
    if missing:
        raise fail(", ".join(missing), ", ".join(known) or "nothing")
    return [list(known).index(w) for w in wanted]
