"""The WebSocket contract: generated docs are current, the schema describes real messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from asr.contract import (
    ERRORS,
    CloseCode,
    ErrorCode,
    WarningCode,
    client_message_adapter,
)
from asr.events import Alternative, Final, Partial, Word
from asr_server import schema
from asr_server.limits import Limits
from asr_server.protocol import Send, Session

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_generated_schema_and_doc_tables_are_up_to_date() -> None:
    assert (DOCS / schema.SCHEMA_FILE).read_text() == schema.render_schema(), (
        "docs/websocket-api.schema.json is stale: run `python -m asr_server.schema`"
    )
    text = (DOCS / schema.DOC_FILE).read_text()
    assert schema.render_markdown(text) == text, (
        "docs/websocket-api.md is stale: run `python -m asr_server.schema`"
    )
    assert schema.main(["--check", "--docs", str(DOCS)]) == 0


def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    (tmp_path / schema.DOC_FILE).write_text((DOCS / schema.DOC_FILE).read_text())
    (tmp_path / schema.SCHEMA_FILE).write_text("{}\n")
    assert schema.main(["--check", "--docs", str(tmp_path)]) == 1
    assert schema.main(["--docs", str(tmp_path)]) == 0
    assert schema.main(["--check", "--docs", str(tmp_path)]) == 0


def validator() -> jsonschema.Draft202012Validator:
    document = json.loads((DOCS / schema.SCHEMA_FILE).read_text())
    jsonschema.Draft202012Validator.check_schema(document)
    return jsonschema.Draft202012Validator(document)


def whole_session() -> list[dict[str, Any]]:
    """The server messages of a session that touches every message type."""
    session = Session(session_id="abc", limits=Limits(), now=0.0, query={"sample_rate": ["8000"]})
    actions = session.open()
    actions += session.receive_text('{"type": "config", "word_timestamps": true}', 0.0)
    actions += session.receive_binary(b"\x00\x00" * 800, 0.1)
    actions += session.backend_event(
        Partial(text="hello", stability=0.5, audio_processed=0.5), offset=0, forced=False, now=1
    )
    words = (Word(word="hello", start_ms=100, end_ms=400, confidence=0.9),)
    final = Final(
        text="hello",
        confidence=0.9,
        words=words,
        alternatives=(Alternative(text="hello", confidence=0.9, words=words),),
        audio_processed=0.5,
    )
    actions += session.backend_event(final, offset=0, forced=False, now=1)
    actions += session.receive_text('{"type": "config"}', 1.0)  # warning: after audio
    actions += session.receive_text('{"type": "end"}', 1.1)
    actions += session.backend_done(1.2)
    refused = Session(session_id="def", limits=Limits(), now=0.0)
    actions += refused.refuse(ErrorCode.TOO_MANY_SESSIONS, "full")
    return [json.loads(a.message.model_dump_json()) for a in actions if isinstance(a, Send)]


def test_schema_accepts_every_server_message_and_rejects_broken_ones() -> None:
    check = validator()
    messages = whole_session()
    kinds = {m["type"] for m in messages}
    assert kinds == {
        "session.begin",
        "session.updated",
        "vad.speech_start",
        "transcript.partial",
        "vad.speech_end",
        "transcript.final",
        "warning",
        "session.end",
        "error",
    }
    for message in messages:
        check.validate(message)
    final = next(m for m in messages if m["type"] == "transcript.final")
    assert {"text", "confidence", "words", "start", "end", "is_speech_final"} <= set(final)
    for broken in (
        {**final, "seq": -1},
        {**final, "extra": 1},
        {k: v for k, v in final.items() if k != "is_speech_final"},
        {**final, "type": "transcript.done"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            check.validate(broken)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "config", "encoding": "float32", "sample_rate": 48000},
        {"type": "config", "endpointing": {"stop_history": 500}, "boosted_words": ["Riva"]},
        {"type": "finalize"},
        {"type": "keepalive"},
        {"type": "end"},
    ],
)
def test_schema_and_models_agree_on_client_messages(message: dict[str, Any]) -> None:
    validator().validate(message)
    client_message_adapter.validate_python(message)


def test_error_codes_and_close_codes() -> None:
    assert set(ERRORS) == set(ErrorCode)
    codes = [int(c) for c in CloseCode]
    assert len(codes) == len(set(codes))
    assert all(4000 <= c <= 4999 for c in codes if c != CloseCode.NORMAL)
    # Every close code but 1000 is reachable from some error code.
    assert {spec.close_code for spec in ERRORS.values()} == set(CloseCode) - {CloseCode.NORMAL}
    doc = (DOCS / schema.DOC_FILE).read_text()
    for code in ErrorCode:
        assert f"`{code.value}`" in doc
    for warning in WarningCode:
        assert f"`{warning.value}`" in doc


def test_every_module_declares_a_sorted_complete_all() -> None:
    import importlib
    import pkgutil

    import asr
    import asr_server

    names = ["asr", "asr_server"] + [
        m.name
        for package in (asr, asr_server)
        for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
        if not m.name.endswith("__main__")  # runs the command line when imported
        # Alembic's environment and revisions are scripts Alembic runs, not modules.
        and ".migrations." not in m.name
    ]
    for name in names:
        module = importlib.import_module(name)
        exported = list(module.__all__)
        assert exported == sorted(set(exported)), name
        assert all(hasattr(module, n) for n in exported), name
