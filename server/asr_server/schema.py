"""Generate the contract's JSON Schema and the tables of ``docs/websocket-api.md``.

Both come from :mod:`asr.contract`: field descriptions are read from the models'
Google-style ``Attributes:`` sections, so the docstrings are the only place a field is
described. ``python -m asr_server.schema`` rewrites the files; ``--check`` fails (exit 1)
when they are out of date, which ``tests/test_ws_contract.py`` checks too.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from asr import contract as m
from asr.events import Alternative, Word
from asr.options import EndpointingConfig

__all__ = [
    "DOC_FILE",
    "SCHEMA_FILE",
    "default_docs_dir",
    "json_schema",
    "main",
    "render_markdown",
    "render_schema",
]

SCHEMA_FILE = "websocket-api.schema.json"
DOC_FILE = "websocket-api.md"

_CLIENT = (m.ConfigMessage, m.FinalizeMessage, m.KeepaliveMessage, m.EndMessage)
_SERVER = (
    m.SessionQueued,
    m.SessionBegin,
    m.SessionUpdated,
    m.VadSpeechStart,
    m.VadSpeechEnd,
    m.TranscriptPartial,
    m.TranscriptFinal,
    m.WarningMessage,
    m.ErrorMessage,
    m.SessionEnd,
)
_NESTED = (m.StreamConfig, m.LimitsInfo, EndpointingConfig, Word, Alternative)
_MODELS: tuple[type[BaseModel], ...] = (*_CLIENT, *_SERVER, *_NESTED)

_ENDPOINTING_FIELDS = {
    "start_history": "Window in ms over which speech must be detected to start an utterance.",
    "start_threshold": "Fraction of `start_history` frames that must be speech.",
    "stop_history": "Window in ms of non-speech that ends an utterance.",
    "stop_threshold": "Fraction of `stop_history` frames that must be non-speech.",
    "stop_history_eou": "Shorter first-pass end-of-utterance window in ms.",
    "stop_threshold_eou": "Fraction of `stop_history_eou` frames that must be non-speech.",
}
_WORD_FIELDS = {
    "word": "The word.",
    "start_ms": "Start in milliseconds of session audio.",
    "end_ms": "End in milliseconds of session audio.",
    "confidence": "Confidence of the word, when the backend gives one.",
}


def default_docs_dir() -> Path:
    """``docs/`` of the source checkout."""
    return Path(__file__).resolve().parents[2] / "docs"


# --- docstrings ----------------------------------------------------------------------


def _rst_to_md(text: str) -> str:
    text = re.sub(r":(?:class|func|data|meth|attr):`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    body = re.split(r"\n\s*(?:Attributes|Args|Example):\n", doc, maxsplit=1)[0]
    return _rst_to_md(" ".join(body.split()))


def _attributes(cls: type) -> dict[str, str]:
    """Field descriptions from the ``Attributes:`` sections of ``cls`` and its bases."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = inspect.getdoc(klass) or ""
        section = re.split(r"\n\s*Attributes:\n", doc, maxsplit=1)
        if len(section) < 2:
            continue
        current: str | None = None
        for line in section[1].splitlines():
            if line and not line.startswith(" "):
                break  # the next section
            item = re.match(r"^    (\w+): (.*)$", line)
            if item:
                current = item.group(1)
                found[current] = item.group(2).strip()
            elif current and line.strip():
                found[current] += " " + line.strip()
    if cls is EndpointingConfig:
        found |= _ENDPOINTING_FIELDS
    if cls is Word:
        found |= _WORD_FIELDS
    for model_field_name, info in getattr(cls, "model_fields", {}).items():
        if info.description:
            found[model_field_name] = info.description
    if "type" in getattr(cls, "model_fields", {}):
        found["type"] = "The message type."
    return {k: _rst_to_md(v) for k, v in found.items()}


# --- schema --------------------------------------------------------------------------


def _describe(defs: dict[str, Any]) -> None:
    by_name = {cls.__name__: cls for cls in _MODELS}
    for name, definition in defs.items():
        cls = by_name.get(name)
        if cls is None:
            if name in ("ErrorCode", "WarningCode"):
                definition["description"] = _summary(getattr(m, name))
            continue
        definition["description"] = _summary(cls)
        described = _attributes(cls)
        for prop, schema in definition.get("properties", {}).items():
            schema.pop("title", None)
            if prop in described:
                schema["description"] = described[prop]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of every client and server message."""
    ref = "#/$defs/{model}"
    client = TypeAdapter(m.ClientMessage).json_schema(mode="validation", ref_template=ref)
    server = TypeAdapter(m.ServerMessage).json_schema(mode="serialization", ref_template=ref)
    defs: dict[str, Any] = {}
    for part in (client, server):
        for name, definition in part.pop("$defs", {}).items():
            if name in defs and defs[name] != definition:
                # Shared models (StreamConfig) differ only in the required-ness of defaulted
                # fields between validation and serialization; the client's view wins.
                continue
            defs[name] = definition
    _describe(defs)
    defs["ClientMessage"] = client | {
        "description": "A text frame from the client. Audio goes in binary frames."
    }
    defs["ServerMessage"] = server | {
        "description": "A text frame from the server; every one has `type`, `session_id`, `seq`."
    }
    defs["CloseCode"] = {
        "description": "WebSocket close codes sent by the server.",
        "enum": [int(code) for code in m.CloseCode],
        "type": "integer",
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/asr/asr/docs/websocket-api.schema.json",
        "title": "asr WebSocket streaming transcription API",
        "description": (
            "Messages of wss://HOST/v1/audio/transcriptions/stream; generated from "
            "src/asr/contract/ by `python -m asr_server.schema`."
        ),
        "oneOf": [{"$ref": "#/$defs/ClientMessage"}, {"$ref": "#/$defs/ServerMessage"}],
        "$defs": dict(sorted(defs.items())),
    }


def render_schema() -> str:
    """The schema file's text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


# --- markdown ------------------------------------------------------------------------


def _type_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})" if name not in ("ErrorCode", "WarningCode") else name
    if "const" in schema:
        return f'`"{schema["const"]}"`'
    if "enum" in schema:
        return " \\| ".join(f'`"{v}"`' for v in schema["enum"])
    if "anyOf" in schema:
        return " \\| ".join(_type_name(s) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_name(schema.get('items', {}))}"
    return str(kind)


def _bounds(schema: dict[str, Any]) -> str:
    for option in [schema, *schema.get("anyOf", [])]:
        low, high = option.get("minimum"), option.get("maximum")
        if low is not None or high is not None:
            return f" ({low if low is not None else ''}..{high if high is not None else ''})"
    return ""


def _field_table(cls: type[BaseModel], mode: str) -> Iterator[str]:
    schema = cls.model_json_schema(mode=mode)  # type: ignore[arg-type]
    described = _attributes(cls)
    required = set(schema.get("required", []))
    yield "| field | type | default | description |"
    yield "|---|---|---|---|"
    for name, prop in schema.get("properties", {}).items():
        if mode == "serialization" or name in required:
            default = "required" if mode == "validation" else ""
        else:
            default = f"`{json.dumps(prop.get('default'))}`"
        type_name = _type_name(prop).replace("$defs/", "") + _bounds(prop)
        desc = described.get(name, "").replace("|", "\\|")
        yield f"| `{name}` | {type_name} | {default} | {desc} |"


def _message_section(cls: type[BaseModel], mode: str) -> Iterator[str]:
    kind = cls.model_fields["type"].default
    if not isinstance(kind, str):  # client messages have a required literal `type`
        kind = getattr(cls.model_fields["type"].annotation, "__args__", ("?",))[0]
    yield f"### `{kind}`"
    yield ""
    yield _summary(cls)
    yield ""
    yield from _field_table(cls, mode)
    yield ""


def _blocks() -> dict[str, str]:
    client = [line for cls in _CLIENT for line in _message_section(cls, "validation")]
    server = [line for cls in _SERVER for line in _message_section(cls, "serialization")]
    nested: list[str] = []
    for cls in _NESTED:
        nested += [f"### {cls.__name__}", "", _summary(cls), ""]
        nested += list(_field_table(cls, "validation"))
        nested.append("")
    close = ["| code | name | meaning |", "|---|---|---|"]
    for code in m.CloseCode:
        doc = _close_doc(code)
        close.append(f"| {int(code)} | `{code.name.lower()}` | {doc} |")
    errors = ["| code | close code | retryable | meaning |", "|---|---|---|---|"]
    for error, spec in m.ERRORS.items():
        retry = "yes" if spec.retryable else "no"
        errors.append(f"| `{error.value}` | {int(spec.close_code)} | {retry} | {spec.meaning} |")
    warnings = ["| code | meaning |", "|---|---|"]
    for warning in m.WarningCode:
        warnings.append(f"| `{warning.value}` | {_member_doc(m.WarningCode, warning.name)} |")
    return {
        "client-messages": "\n".join(client).strip(),
        "server-messages": "\n".join(server).strip(),
        "nested-objects": "\n".join(nested).strip(),
        "close-codes": "\n".join(close),
        "error-codes": "\n".join(errors),
        "warning-codes": "\n".join(warnings),
    }


def _member_doc(enum_cls: type, name: str) -> str:
    """The docstring written under an enum member (read from the source)."""
    source = inspect.getsource(enum_cls)
    found = re.search(rf"\n\s+{name} = [^\n]+\n\s+\"\"\"(.*?)\"\"\"", source, re.S)
    return _rst_to_md(" ".join(found.group(1).split())) if found else ""


def _close_doc(code: m.CloseCode) -> str:
    return _member_doc(m.CloseCode, code.name)


_BLOCK = re.compile(r"(<!-- generated:([a-z-]+) -->)(.*?)(<!-- /generated:\2 -->)", re.S)


def render_markdown(text: str) -> str:
    """``text`` with every ``<!-- generated:NAME -->`` block regenerated.

    Raises:
        ValueError: A block name that is not generated, or a generated block missing.
    """
    blocks = _blocks()
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in blocks:
            raise ValueError(f"unknown generated block {name!r}")
        seen.add(name)
        return f"{match.group(1)}\n{blocks[name]}\n{match.group(4)}"

    result = _BLOCK.sub(replace, text)
    missing = set(blocks) - seen
    if missing:
        raise ValueError(f"generated blocks missing from the document: {sorted(missing)}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, verify) the schema and the document's generated tables."""
    parser = argparse.ArgumentParser(prog="python -m asr_server.schema", description=__doc__)
    parser.add_argument("--docs", type=Path, default=default_docs_dir(), help="docs folder")
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    schema_path, doc_path = args.docs / SCHEMA_FILE, args.docs / DOC_FILE
    wanted = {schema_path: render_schema(), doc_path: render_markdown(doc_path.read_text())}
    stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date; run: python -m asr_server.schema", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
