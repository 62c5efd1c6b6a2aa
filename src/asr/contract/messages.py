"""Every message of the WebSocket contract, as frozen models.

The JSON Schema (``docs/websocket-api.schema.json``) and the tables in
``docs/websocket-api.md`` are generated from this module and :mod:`asr.contract.codes` by
:mod:`asr_server.schema`; nothing here is written twice. The transcript messages extend
:class:`asr.events.Partial` and :class:`asr.events.Final`, so a field added to an event
reaches the wire and the docs without touching this file.

Client to server: :class:`ConfigMessage`, :class:`FinalizeMessage`,
:class:`KeepaliveMessage`, :class:`EndMessage` as text frames, audio as binary frames.
Server to client: every :data:`ServerMessage` carries ``type``, ``session_id`` and a
``seq`` that starts at 0 and grows by one per message.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ..events import Final, Partial
from ..options import EndpointingConfig, RecognitionOptions
from .codes import ErrorCode, WarningCode

__all__ = [
    "AnyClientMessage",
    "AnyServerMessage",
    "ClientMessage",
    "ConfigMessage",
    "EndMessage",
    "ErrorMessage",
    "FinalizeMessage",
    "KeepaliveMessage",
    "LimitsInfo",
    "ServerMessage",
    "SessionBegin",
    "SessionEnd",
    "SessionQueued",
    "SessionUpdated",
    "StreamConfig",
    "TranscriptFinal",
    "TranscriptPartial",
    "VadSpeechEnd",
    "VadSpeechStart",
    "WarningMessage",
    "client_message_adapter",
    "server_message_adapter",
]


class _Frozen(BaseModel):
    # Fields with defaults are still always present in what the server sends, so the
    # schema of server messages lists them as required.
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


# --- configuration -------------------------------------------------------------------


class StreamConfig(_Frozen):
    """How the client's audio is encoded and what to recognise.

    Set by query-string parameters of the same names, then by an optional ``config``
    message before the first audio frame (its fields override the query string).

    Attributes:
        encoding: Sample format of the binary frames: ``pcm16`` (signed 16-bit little
            endian) or ``float32`` (IEEE 754 little endian, finite, nominally in [-1, 1]).
        sample_rate: Sample rate of the binary frames in Hz; resampled to 16 kHz on the
            server.
        language: BCP-47 language code passed to Riva (``language_code``).
        model: Riva model name; ``null`` lets the server choose.
        interim_results: Send ``transcript.partial`` messages while speech goes on.
        punctuation: Automatic punctuation and capitalisation; ``null`` is the server's
            default.
        word_timestamps: Word timings and confidences in ``transcript.final``.
        endpointing: Riva endpointing parameters (milliseconds and fractions).
        boosted_words: Words or phrases to favour.
        boosted_score: How strongly to favour ``boosted_words``.
        record: Keep the session's audio and real-time finals on the server
            (``GET /v1/sessions/{id}``). Refused with ``recording_unavailable`` where the
            operator turned recording off; where it is always on, sessions are recorded
            whatever this says.
        enhance_on_end: Record (as ``record``) and, when the session ends, queue an
            enhancement job that transcribes the whole recording offline
            (``GET /v1/audio/transcriptions/{job_id}``).
    """

    encoding: Literal["pcm16", "float32"] = "pcm16"
    sample_rate: int = Field(default=16_000, ge=8_000, le=192_000)
    language: str = Field(default="en-US", min_length=2, max_length=35)
    model: str | None = Field(default=None, max_length=200)
    interim_results: bool = True
    punctuation: bool | None = None
    word_timestamps: bool | None = None
    endpointing: EndpointingConfig | None = None
    boosted_words: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = Field(
        default=(), max_length=1000
    )
    boosted_score: float | None = Field(default=None, ge=-100.0, le=100.0)
    record: bool = False
    enhance_on_end: bool = False

    def recognition_options(self) -> RecognitionOptions:
        """The Riva request options for this configuration (audio always 16 kHz PCM16)."""
        return RecognitionOptions(
            language_code=self.language,
            model=self.model,
            sample_rate_hz=16_000,
            channels=1,
            interim_results=self.interim_results,
            automatic_punctuation=self.punctuation,
            word_time_offsets=self.word_timestamps,
            endpointing=self.endpointing,
            boosted_words=self.boosted_words,
            boosted_score=self.boosted_score,
        )


class LimitsInfo(_Frozen):
    """The limits that apply to this session, so a client can stay inside them.

    Attributes:
        max_frame_bytes: Largest binary or text frame accepted.
        max_session_seconds: Wall-clock length after which the session is closed.
        idle_timeout_seconds: Close after this long without any client message.
        max_realtime_factor: Sustained audio rate allowed, in seconds of audio per second.
        burst_seconds: Audio that may arrive ahead of that rate (e.g. after a stall).
    """

    max_frame_bytes: int
    max_session_seconds: float
    idle_timeout_seconds: float
    max_realtime_factor: float
    burst_seconds: float


# --- client messages -----------------------------------------------------------------


class ConfigMessage(StreamConfig):
    """Set or change the stream configuration; allowed only before the first audio frame.

    Only the fields present in the message change; the others keep the value from the
    query string (or the default).
    """

    type: Literal["config"]


class FinalizeMessage(_Frozen):
    """Force an endpoint: the utterance in progress is finalised now.

    Every final for audio sent so far arrives before any result for later audio.
    """

    type: Literal["finalize"]


class KeepaliveMessage(_Frozen):
    """Keep an idle session open (resets the idle timeout); no reply."""

    type: Literal["keepalive"]


class EndMessage(_Frozen):
    """No more audio: every final is delivered, then ``session.end``, then close 1000."""

    type: Literal["end"]


AnyClientMessage = ConfigMessage | FinalizeMessage | KeepaliveMessage | EndMessage
"""Any client message (a plain union, for annotations)."""

ClientMessage = Annotated[AnyClientMessage, Field(discriminator="type")]
"""A text frame from the client, discriminated by ``type``."""


# --- server messages -----------------------------------------------------------------


class _Envelope(_Frozen):
    session_id: str = Field(description="Identifies the session in logs and support requests.")
    seq: int = Field(ge=0, description="0 for the first message, then one more each message.")


class SessionQueued(_Envelope):
    """The server is at its session limit and holds the connection in its admission
    queue (``ASR_SERVER_LIMITS__QUEUE_SIZE``): ``session.begin`` follows once a place is
    free, or ``too_many_sessions`` once ``timeout`` passed.

    Sent before ``session.begin``, on joining the queue and again whenever ``position``
    changes. Audio sent while queued is held (the server stops reading after a few
    frames, so TCP slows the sender) and processed after ``session.begin``, against the
    same burst allowance as any audio: wait for ``session.begin`` before sending.

    Attributes:
        position: Place in the queue: 1 is next.
        timeout: Seconds from this message until the server gives up waiting.
    """

    type: Literal["session.queued"] = "session.queued"
    position: int = Field(ge=1)
    timeout: float = Field(ge=0)


class SessionBegin(_Envelope):
    """First message of every accepted session (after any ``session.queued``).

    Attributes:
        config: The configuration in effect (query string applied).
        limits: The limits of this session.
    """

    type: Literal["session.begin"] = "session.begin"
    config: StreamConfig
    limits: LimitsInfo


class SessionUpdated(_Envelope):
    """Reply to a ``config`` message.

    Attributes:
        config: The configuration now in effect.
    """

    type: Literal["session.updated"] = "session.updated"
    config: StreamConfig


class VadSpeechStart(_Envelope):
    """The backend started reporting speech for a new utterance.

    Riva does not stream its VAD state, so this is sent with the first result of an
    utterance: it marks detection, not the exact onset (see ``start`` of the transcripts).

    Attributes:
        time: Seconds of session audio the backend had processed at detection.
    """

    type: Literal["vad.speech_start"] = "vad.speech_start"
    time: float


class VadSpeechEnd(_Envelope):
    """The utterance in progress ended (an endpoint, or a forced ``finalize``/``end``).

    Sent immediately before the utterance's ``transcript.final``.

    Attributes:
        time: End of the utterance in seconds of session audio.
    """

    type: Literal["vad.speech_end"] = "vad.speech_end"
    time: float


class TranscriptPartial(_Envelope, Partial):
    """An interim hypothesis; the next partial or final of the utterance replaces it.

    The fields besides ``start``/``end`` are those of :class:`asr.events.Partial`;
    ``audio_processed`` counts from the session start.

    Attributes:
        start: Start of the utterance in seconds of session audio (end of the previous
            final, when no word timings are known yet).
        end: Seconds of session audio the hypothesis covers.
    """

    type: Literal["transcript.partial"] = "transcript.partial"  # type: ignore[assignment]  # narrows the envelope's type
    start: float
    end: float


class TranscriptFinal(_Envelope, Final):
    """The settled transcript of one utterance; it is never revised.

    The fields besides ``start``, ``end`` and ``is_speech_final`` are those of
    :class:`asr.events.Final`; word times (``start_ms``/``end_ms``) and
    ``audio_processed`` count from the session start.

    Attributes:
        start: Start of the utterance in seconds (first word, when word timings are on).
        end: End of the utterance in seconds (last word, when word timings are on).
        is_speech_final: ``true`` when the backend detected the end of speech (an
            endpoint); ``false`` when the utterance was cut by ``finalize`` or ``end``.
    """

    type: Literal["transcript.final"] = "transcript.final"  # type: ignore[assignment]  # narrows the envelope's type
    start: float
    end: float
    is_speech_final: bool


class WarningMessage(_Envelope):
    """Something the client should fix; the session continues.

    Attributes:
        code: Stable warning code.
        message: Human-readable detail; may change between versions.
    """

    type: Literal["warning"] = "warning"
    code: WarningCode
    message: str


class ErrorMessage(_Envelope):
    """A failure that ends the session; the close frame follows, with the close code
    listed for ``code`` under Error codes.

    Attributes:
        code: Stable error code.
        message: Human-readable detail; may change between versions.
        retryable: Whether opening a new session later may succeed.
    """

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    retryable: bool


class SessionEnd(_Envelope):
    """Last message of a session ended by ``end``: every final was delivered.

    Attributes:
        transcript: The text of every final, joined by spaces.
        audio_seconds: Seconds of audio received.
        finals: Number of ``transcript.final`` messages sent.
        recording_id: Id of the session's recording when it was recorded (``record``,
            ``enhance_on_end``, or a server that records every session); the session is
            ``GET /v1/sessions/{session_id}``. ``null`` when not recorded.
        enhancement_job_id: The enhancement job queued by ``enhance_on_end``
            (``GET /v1/audio/transcriptions/{job_id}``); ``null`` when none.
    """

    type: Literal["session.end"] = "session.end"
    transcript: str
    audio_seconds: float
    finals: int
    recording_id: str | None = None
    enhancement_job_id: str | None = None


AnyServerMessage = (
    SessionQueued
    | SessionBegin
    | SessionUpdated
    | VadSpeechStart
    | VadSpeechEnd
    | TranscriptPartial
    | TranscriptFinal
    | WarningMessage
    | ErrorMessage
    | SessionEnd
)
"""Any server message (a plain union, for annotations)."""

ServerMessage = Annotated[AnyServerMessage, Field(discriminator="type")]
"""A text frame from the server, discriminated by ``type``."""

client_message_adapter: TypeAdapter[AnyClientMessage] = TypeAdapter(ClientMessage)
"""Validates client text frames."""

server_message_adapter: TypeAdapter[AnyServerMessage] = TypeAdapter(ServerMessage)
"""Validates server messages (clients in Python and the tests use it)."""
