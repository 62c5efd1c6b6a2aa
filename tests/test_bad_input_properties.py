"""Property-based tests (hypothesis) of the sans-I/O session and the audio decoders.

Whatever a client sends and whatever Riva answers, in any order, the session never raises,
every message it sends is valid under the contract, ``seq`` counts 0, 1, 2, ..., at most one
``session.end`` is sent, an ``error`` is always followed by a close, and nothing follows a
close. Arbitrary bytes either decode or raise :class:`asr.errors.AudioFormatError`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr.audio import float32_bytes_to_array, pcm16_to_float32
from asr.contract import ErrorMessage, SessionEnd, server_message_adapter
from asr.errors import AudioFormatError, InvalidArgumentError, UnavailableError
from asr.events import Final, Partial, Word
from asr_server.decoding import AudioDecoder
from asr_server.limits import Limits
from asr_server.protocol import Action, Close, Send, Session

# --- client and backend inputs -------------------------------------------------------

_config_fields: dict[str, st.SearchStrategy[Any]] = {
    "encoding": st.sampled_from(["pcm16", "float32", "opus", 3]),
    "sample_rate": st.sampled_from([8_000, 16_000, 44_100, 48_000, 7, 10**9, "x"]),
    "interim_results": st.booleans(),
    "word_timestamps": st.one_of(st.none(), st.booleans()),
    "language": st.text(max_size=40),
    "boosted_words": st.lists(st.text(max_size=5), max_size=3),
}

json_messages = st.one_of(
    st.fixed_dictionaries({"type": st.just("config")}, optional=_config_fields),
    st.sampled_from(
        [{"type": "finalize"}, {"type": "keepalive"}, {"type": "end"}, {"type": "end", "x": 1}]
    ),
    st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=6), max_size=3),
    st.lists(st.integers(), max_size=3),
).map(json.dumps)

text_frames = st.one_of(json_messages, st.text(max_size=50))
binary_frames = st.one_of(
    st.binary(max_size=64),
    st.integers(0, 40).map(lambda n: b"\x00\x01" * n),  # whole PCM16 samples
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=16).map(
        lambda xs: np.asarray(xs, dtype="<f4").tobytes()
    ),
)
words = st.lists(
    st.builds(
        Word,
        word=st.text(min_size=1, max_size=5),
        start_ms=st.integers(0, 5000),
        end_ms=st.integers(0, 5000),
    ),
    max_size=3,
).map(tuple)
backend_events = st.one_of(
    st.builds(Partial, text=st.text(max_size=10), stability=st.floats(0, 1)),
    st.builds(Final, text=st.text(max_size=10), words=words),
)

inputs = st.one_of(
    st.tuples(st.just("text"), text_frames),
    st.tuples(st.just("binary"), binary_frames),
    st.tuples(st.just("event"), backend_events, st.floats(0, 100), st.booleans()),
    st.tuples(st.just("stream_ended"), st.booleans()),
    st.tuples(
        st.just("failed"),
        st.sampled_from(
            [UnavailableError("down"), InvalidArgumentError("bad"), RuntimeError("bug")]
        ),
    ),
    st.tuples(st.just("done")),
    st.tuples(st.just("tick")),
    st.tuples(st.just("shutdown"), st.floats(0, 5)),
)


def feed(session: Session, item: tuple[Any, ...], now: float) -> list[Action]:
    kind = item[0]
    if kind == "text":
        return session.receive_text(item[1], now)
    if kind == "binary":
        return session.receive_binary(item[1], now)
    if kind == "event":
        return session.backend_event(item[1], offset=item[2], forced=item[3], now=now)
    if kind == "stream_ended":
        return session.backend_stream_ended(forced=item[1], now=now)
    if kind == "failed":
        return session.backend_failed(item[1], now)
    if kind == "done":
        return session.backend_done(now)
    if kind == "tick":
        return session.tick(now)
    return session.shutdown(now, item[1])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    query=st.dictionaries(
        st.sampled_from(["sample_rate", "encoding", "token", "api_key", "bogus"]),
        st.lists(st.sampled_from(["16000", "float32", "abc", ""]), min_size=1, max_size=2),
        max_size=2,
    ),
    require_config=st.booleans(),
    steps=st.lists(st.tuples(inputs, st.floats(0, 20)), max_size=40),
)
def test_session_never_raises_and_speaks_the_contract(
    query: dict[str, list[str]],
    require_config: bool,
    steps: list[tuple[tuple[Any, ...], float]],
) -> None:
    limits = Limits(idle_timeout_seconds=30, final_timeout_seconds=5, max_frame_bytes=1024)
    session = Session(
        session_id="p", limits=limits, now=0.0, query=query, require_config=require_config
    )
    batches = [session.open()]
    now = 0.0
    for item, advance in steps:
        now += advance
        batches.append(feed(session, item, now))
    sent: list[Any] = []
    closes = 0
    closed = False
    for batch in batches:
        if closed:
            assert batch == [], "actions after a close"
        for i, action in enumerate(batch):
            if isinstance(action, Send):
                message = action.message
                server_message_adapter.validate_json(message.model_dump_json())
                sent.append(message)
                if isinstance(message, ErrorMessage):
                    assert isinstance(batch[i + 1], Close), "an error not followed by a close"
            if isinstance(action, Close):
                closes += 1
                closed = True
                assert action is batch[-1], "actions after a close in one batch"
                assert action.code == 1000 or action.code == 1001 or 4000 <= action.code < 5000
    assert [m.seq for m in sent] == list(range(len(sent)))
    assert sum(isinstance(m, SessionEnd) for m in sent) <= 1
    assert sum(isinstance(m, ErrorMessage) for m in sent) <= 1
    assert closes <= 1
    assert all(m.session_id == "p" for m in sent)


# --- audio decoding ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=512))
def test_pcm16_and_float32_decoders_decode_or_raise_audio_format_error(data: bytes) -> None:
    for decode in (pcm16_to_float32, float32_bytes_to_array):
        try:
            samples = decode(data)
        except AudioFormatError:
            continue
        assert samples.dtype == np.float32
        assert np.all(np.isfinite(samples))


@settings(max_examples=200, deadline=None)
@given(
    encoding=st.sampled_from(["pcm16", "float32"]),
    rate=st.sampled_from([8_000, 11_025, 16_000, 22_050, 44_100, 48_000, 96_000, 192_000]),
    frames=st.lists(st.binary(max_size=400), max_size=6),
)
def test_audio_decoder_decodes_or_raises_audio_format_error(
    encoding: str, rate: int, frames: list[bytes]
) -> None:
    decoder = AudioDecoder(encoding, rate)  # type: ignore[arg-type]  # one of the Literal's values
    out = b""
    for frame in frames:
        try:
            out += decoder.decode(frame)
        except AudioFormatError:
            continue
    out += decoder.flush()
    assert len(out) % 2 == 0  # whole 16 kHz PCM16 samples
