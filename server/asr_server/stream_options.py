"""The own contract's session options: the query string, safe JSON, validation messages.

Pure functions used by :class:`asr_server.protocol.Session`; the options themselves are
:class:`asr.contract.StreamConfig`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from asr.contract import StreamConfig

__all__ = [
    "QUERY_AUTH_KEYS",
    "config_from_query",
    "loads",
    "validation_summary",
]

QUERY_AUTH_KEYS = frozenset({"api_key", "token"})
"""Query parameters that carry credentials rather than configuration."""

_MAX_INT_DIGITS = 30
"""Longer integers than any setting takes are kept as text, so validation refuses them."""


class _LongNumber(str):
    """An integer literal too long to be a setting (pydantic refuses it as a number)."""


def _parse_int(text: str) -> int | _LongNumber:
    # Python refuses to convert integers of over 4,300 digits (a ValueError json.loads lets
    # through); anything past a few dozen digits is out of every range here anyway.
    return int(text) if len(text) <= _MAX_INT_DIGITS else _LongNumber(text)


def loads(text: str) -> Any:
    """``json.loads`` that fails only with ``ValueError``: too deep a nesting (Python's
    recursion limit) is one, and over-long integers come back as :class:`_LongNumber`.

    Raises:
        json.JSONDecodeError: Not JSON.
        ValueError: Nested too deeply to parse.
    """
    try:
        return json.loads(text, parse_int=_parse_int)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def config_from_query(params: Mapping[str, Sequence[str]]) -> StreamConfig:
    """The :class:`StreamConfig` given by a query string, parsed with ``parse_qs``.

    ``boosted_words`` may repeat or be comma-separated; ``endpointing`` is a JSON object.

    Raises:
        ValueError: An unknown parameter, a repeated single-valued parameter, bad JSON in
            ``endpointing``, or a value out of range (pydantic's ``ValidationError`` is a
            ``ValueError``).
    """
    data: dict[str, Any] = {}
    for key, values in params.items():
        if key in QUERY_AUTH_KEYS:
            continue
        if key not in StreamConfig.model_fields:
            raise ValueError(f"unknown query parameter {key!r}")
        if key == "boosted_words":
            data[key] = [w.strip() for v in values for w in v.split(",") if w.strip()]
            continue
        if len(values) != 1:
            raise ValueError(f"query parameter {key!r} given {len(values)} times")
        value = values[0]
        if key == "endpointing":
            try:
                data[key] = loads(value)
            except ValueError as exc:
                raise ValueError(f"endpointing is not a JSON object: {exc}") from exc
        elif value.lower() in ("", "null", "none") and key in ("model", "punctuation"):
            data[key] = None
        else:
            data[key] = value
    return StreamConfig.model_validate(data)


def validation_summary(exc: ValidationError) -> str:
    """The first three errors of ``exc``, each as ``field: message``."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
