"""Reading what tlgan and its users write: JSON documents with a format number (run.json, axes headers,
extractor configs), checked against a schema, and named columns (label sets, CSV and CelebA attribute files)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import TLGANError


class Schema(BaseModel):
    """The fields of a JSON document that tlgan reads, and their types, checked strictly (no ``"3"`` for 3,
    no ``true`` for 1); other fields are kept and not checked. Subclass it per document."""

    model_config = ConfigDict(extra="allow", strict=True)


S = TypeVar("S", bound=Schema)


def check_schema(doc: Any, schema: type[S], where: object, error: type[TLGANError], damaged: str = "") -> S:
    """``doc`` validated against ``schema``; else ``error`` naming ``where``, the first wrong field and its value
    (one line, and ``damaged``, what that means, if given)."""
    tail = f"; {damaged}" if damaged else ""
    if not isinstance(doc, dict):
        raise error(f"{where} holds a JSON {_json_type(doc)}, not an object{tail}")
    try:
        return schema.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        if first["type"] == "missing":
            raise error(f"{where} lacks the field {field!r}{tail}") from None
        value = repr(first["input"])
        value = value if len(value) <= 60 else value[:57] + "..."
        said = first["msg"][:1].lower() + first["msg"][1:]
        raise error(f"{where}: field {field!r} is {value}: {said}{tail}") from None


def _json_type(doc: Any) -> str:
    names = {list: "list", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
    return names.get(type(doc), type(doc).__name__)


def parse_json(text: str | bytes, where: object, error: type[TLGANError], damaged: str = "") -> Any:
    """``json.loads(text)``, or ``error`` naming ``where`` for text that is not JSON or nests too deeply
    (a crafted ``[[[[...`` would otherwise end in a RecursionError traceback)."""
    import json

    tail = f"; {damaged}" if damaged else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{where} is not valid JSON ({e}){tail}") from e
    except RecursionError:
        raise error(f"{where} nests JSON too deeply; it is not a file tlgan wrote{tail}") from None


def read_versioned_json(text: str | bytes, where: object, expected: object, error: type[TLGANError],
                        mismatch: Callable[[dict[str, Any]], str], damaged: str = "") -> dict[str, Any]:
    """The JSON object in ``text`` if its ``format`` is ``expected``; else ``error`` with ``mismatch(doc)``.

    Text that is not JSON raises ``error`` naming ``where`` (and ``damaged``, what that means, if given).
    """
    doc = parse_json(text, where, error, damaged)
    if not isinstance(doc, dict):
        raise error(f"{where} holds a JSON {_json_type(doc)}, not an object" + (f"; {damaged}" if damaged else ""))
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
