"""The WebSocket session protocol without I/O: frames and backend events in, actions out.

A :class:`Session` holds everything about one connection. The asyncio layer
(:mod:`asr_server.ws_contract`) feeds it what arrives (client frames, Riva events, the
clock) and carries out the actions it returns: send a message, start the Riva stream,
forward audio, end the utterance or the audio, close. Nothing here touches a socket or
reads a clock, so every rule of the contract is tested with plain calls
(``tests/test_ws_protocol.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import ValidationError

from asr.contract import (
    ERRORS,
    AnyServerMessage,
    CloseCode,
    ConfigMessage,
    EndMessage,
    ErrorCode,
    ErrorMessage,
    FinalizeMessage,
    KeepaliveMessage,
    SessionBegin,
    SessionEnd,
    SessionUpdated,
    StreamConfig,
    TranscriptFinal,
    TranscriptPartial,
    VadSpeechEnd,
    VadSpeechStart,
    WarningCode,
    WarningMessage,
    client_message_adapter,
)
from asr.errors import (
    ASRError,
    AudioFormatError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    TransientError,
)
from asr.events import Final, Partial, Progress, Word
from asr.options import RecognitionOptions

from .decoding import AudioDecoder
from .limits import IngestRate, Limits

__all__ = [
    "Action",
    "Close",
    "EndAudio",
    "FinishUtterance",
    "ForwardAudio",
    "GOING_AWAY",
    "QUERY_AUTH_KEYS",
    "Send",
    "Session",
    "StartBackend",
    "State",
    "config_from_query",
    "error_code_for",
]

QUERY_AUTH_KEYS = frozenset({"api_key", "token"})
"""Query parameters that carry credentials rather than configuration."""

_CLIENT_TYPES = frozenset({"config", "finalize", "keepalive", "end"})

GOING_AWAY = 1001
"""RFC 6455 close code of a session ended by a server shutdown."""

_PCM16_BYTES_PER_SECOND = 16_000 * 2
_CUT_TOLERANCE = 0.01
"""Seconds: Riva's ``audio_processed`` is a float32 on the wire."""
_AUDIO_PAUSE = 0.5
"""Seconds without audio after a too-early ``finalize`` that apply it after all: the
client stopped sending (push-to-talk released), so the cut ends the speech sent and
cannot fall inside a word that goes on."""


# --- actions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to the client as a JSON text frame."""

    message: AnyServerMessage


@dataclass(frozen=True, slots=True)
class StartBackend:
    """Open the session's Riva relay with these options (once, before the first audio)."""

    options: RecognitionOptions


@dataclass(frozen=True, slots=True)
class ForwardAudio:
    """Send 16 kHz mono PCM16 audio to Riva."""

    pcm16: bytes


@dataclass(frozen=True, slots=True)
class FinishUtterance:
    """Force an end of utterance in the Riva stream after the audio forwarded so far."""


@dataclass(frozen=True, slots=True)
class EndAudio:
    """No more audio: let Riva flush its finals, then report ``backend_done``."""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the WebSocket with ``code`` and ``reason``."""

    code: int
    reason: str


Action = Send | StartBackend | ForwardAudio | FinishUtterance | EndAudio | Close


class State(Enum):
    """Where a session is in its life."""

    OPEN = "open"
    """Accepting audio and control messages."""
    DRAINING = "draining"
    """``end`` received: waiting for Riva's last finals."""
    CLOSED = "closed"
    """A close was requested; every later input is ignored."""


# --- pure helpers --------------------------------------------------------------------


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


def error_code_for(exc: BaseException) -> ErrorCode:
    """The error code a backend failure is reported with."""
    if isinstance(exc, ResourceExhaustedError):
        # Riva is full, not down: the same refusal as a full gateway, retryable.
        return ErrorCode.TOO_MANY_SESSIONS
    if isinstance(exc, TransientError):
        return ErrorCode.BACKEND_UNAVAILABLE
    if isinstance(exc, InvalidArgumentError | NotFoundError):
        # Riva refuses what the client asked for (language, model, boosting): the client's
        # parameters are what to fix, not the server.
        return ErrorCode.INVALID_CONFIG
    if isinstance(exc, ASRError):
        return ErrorCode.BACKEND_ERROR
    return ErrorCode.INTERNAL_ERROR


_BACKEND_MESSAGES = {
    ErrorCode.TOO_MANY_SESSIONS: "the speech backend is at capacity; try again later",
    ErrorCode.BACKEND_UNAVAILABLE: "the speech backend is unavailable; try again",
    ErrorCode.INVALID_CONFIG: (
        "the speech backend did not accept the recognition settings (language, model, "
        "boosted words)"
    ),
    ErrorCode.BACKEND_ERROR: "the speech backend refused the request",
    ErrorCode.INTERNAL_ERROR: "internal error in the WebSocket server",
}
"""What a client is told per code of :func:`error_code_for`: never the backend's text."""


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


# --- the session ---------------------------------------------------------------------


class Session:
    """One WebSocket connection's protocol state.

    Args:
        session_id: Identifier echoed in every message.
        limits: The server's limits.
        now: Clock reading (seconds, monotonic) at connection.
        query: The request's query string, parsed with ``urllib.parse.parse_qs``.
        require_config: Refuse audio until a ``config`` message arrived.
    """

    def __init__(
        self,
        *,
        session_id: str,
        limits: Limits,
        now: float,
        query: Mapping[str, Sequence[str]] | None = None,
        require_config: bool = False,
    ) -> None:
        self.session_id = session_id
        self.limits = limits
        self.state = State.OPEN
        self.config = StreamConfig()
        self.audio_seconds = 0.0
        self._query = query or {}
        self._require_config = require_config
        self._configured = False
        self._seq = 0
        self._started = now
        self._last_activity = now
        self._rate = IngestRate(limits, now)
        self._decoder = AudioDecoder(self.config.encoding, self.config.sample_rate)
        self._backend_started = False
        self._utterance_has_audio = False
        # 16 kHz PCM16 bytes forwarded to Riva, and where (seconds) the last forced end
        # of utterance was put: the clock of the finalize rate rule and of the stall check.
        self._forwarded = 0
        self._last_cut = 0.0
        self._deferred_cut: float | None = None
        """Clock reading of a too-early ``finalize`` with no audio since."""
        self._warned: set[WarningCode] = set()
        # Transcript assembly, in seconds of session audio.
        self._in_speech = False
        self._utterance_start = 0.0
        self._finals: list[str] = []
        # A stall detector: while Riva owes an answer (a forced end it has not yet shown
        # to have processed, or the finals after ``end``), since when it has shown no
        # progress at all (no response of any kind).
        self._cut_pending: float | None = None
        self._waiting_since: float | None = None
        self._going_away = False
        self._shutdown_deadline: float | None = None

    # -- inputs -----------------------------------------------------------------------

    def open(self) -> list[Action]:
        """The connection is accepted: ``session.begin``, or an error for a bad query."""
        try:
            self.config = config_from_query(self._query)
        except ValueError as exc:
            message = _validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
            return self.refuse(ErrorCode.INVALID_CONFIG, f"bad query string: {message}")
        self._configured = any(k not in QUERY_AUTH_KEYS for k in self._query)
        self._decoder = AudioDecoder(self.config.encoding, self.config.sample_rate)
        return [
            Send(SessionBegin(**self._envelope(), config=self.config, limits=self.limits.info()))
        ]

    def refuse(self, code: ErrorCode, message: str) -> list[Action]:
        """End the session with an error (also used before :meth:`open`, e.g. bad auth)."""
        if self.state is State.CLOSED:
            return []
        spec = ERRORS[code]
        self.state = State.CLOSED
        error = ErrorMessage(
            **self._envelope(), code=code, message=message, retryable=spec.retryable
        )
        return [Send(error), Close(spec.close_code, code.value)]

    def receive_text(self, text: str, now: float) -> list[Action]:
        """A text frame from the client."""
        if self.state is State.CLOSED:
            return []
        self._last_activity = now
        if len(text) > self.limits.max_frame_bytes or (
            len(text.encode()) > self.limits.max_frame_bytes
        ):
            return self.refuse(
                ErrorCode.FRAME_TOO_LARGE,
                f"text frame is larger than {self.limits.max_frame_bytes} bytes",
            )
        try:
            data = loads(text)
        except ValueError as exc:
            return self.refuse(ErrorCode.INVALID_JSON, f"text frame is not JSON: {exc}")
        if not isinstance(data, dict):
            return self.refuse(ErrorCode.INVALID_JSON, "text frame is not a JSON object")
        kind = data.get("type")
        if not isinstance(kind, str) or kind not in _CLIENT_TYPES:
            return self.refuse(
                ErrorCode.UNKNOWN_MESSAGE_TYPE,
                f"unknown message type {kind!r}; expected one of {sorted(_CLIENT_TYPES)}",
            )
        if self.state is State.DRAINING:
            return self._warn_once(
                WarningCode.IGNORED_AFTER_END, f"{kind!r} after 'end' was ignored"
            )
        try:
            message = client_message_adapter.validate_python(data)
        except ValidationError as exc:
            code = ErrorCode.INVALID_CONFIG if kind == "config" else ErrorCode.INVALID_MESSAGE
            return self.refuse(code, f"invalid {kind!r} message: {_validation_summary(exc)}")
        if isinstance(message, ConfigMessage):
            return self._on_config(message)
        if isinstance(message, FinalizeMessage):
            return self._finish_utterance(now)
        if isinstance(message, EndMessage):
            return self._on_end(now)
        assert isinstance(message, KeepaliveMessage)
        return []

    def receive_binary(self, data: bytes, now: float) -> list[Action]:
        """A binary frame (audio) from the client."""
        if self.state is State.CLOSED:
            return []
        self._last_activity = now
        if len(data) > self.limits.max_frame_bytes:
            return self.refuse(
                ErrorCode.FRAME_TOO_LARGE,
                f"binary frame of {len(data)} bytes is larger than "
                f"{self.limits.max_frame_bytes} bytes",
            )
        if self.state is State.DRAINING:
            return self._warn_once(
                WarningCode.IGNORED_AFTER_END, "audio after 'end' (or a shutdown) was ignored"
            )
        if self._require_config and not self._configured:
            return self.refuse(
                ErrorCode.CONFIG_REQUIRED, "send a 'config' message before the first audio frame"
            )
        seconds = self._decoder.seconds(data)
        if not self._rate.admit(seconds, now):
            return self.refuse(
                ErrorCode.TOO_FAST,
                f"audio arrives faster than {self.limits.max_realtime_factor}x real time "
                f"beyond a {self.limits.burst_seconds} s burst",
            )
        try:
            pcm = self._decoder.decode(data)
        except AudioFormatError as exc:
            return self.refuse(
                ErrorCode.INVALID_AUDIO, f"audio is not valid {self.config.encoding}: {exc}"
            )
        self.audio_seconds += seconds
        actions: list[Action] = []
        if self._rate.fill < 0.5:
            actions += self._warn_once(
                WarningCode.AUDIO_TOO_FAST,
                "audio arrives faster than real time; pace it as it is recorded or the "
                "session will be closed",
            )
        if not self._backend_started:
            self._backend_started = True
            actions.append(StartBackend(self.config.recognition_options()))
        self._deferred_cut = None  # audio goes on: the early finalize merges into it
        if pcm:
            self._forwarded += len(pcm)
            actions.append(ForwardAudio(pcm))
        self._utterance_has_audio = True
        return actions

    def backend_event(
        self, event: Partial | Final | Progress, *, offset: float, forced: bool, now: float
    ) -> list[Action]:
        """A response from Riva: a result, or a :class:`~asr.events.Progress` without one.

        Args:
            event: The result, with times relative to its own gRPC stream.
            offset: Seconds of session audio sent before that stream began.
            forced: A final that ends an utterance cut by ``finalize``, or any result
                after ``end``.
            now: Clock reading.
        """
        if self.state is State.CLOSED:
            return []
        # Responses do not count as client activity, but any of them is progress of the
        # backend; one that has processed audio up to the last forced cut answers it.
        reached = offset + event.audio_processed
        if self._cut_pending is not None and reached >= self._cut_pending - _CUT_TOLERANCE:
            self._cut_pending = None
        self._progress(now)
        if isinstance(event, Progress):
            return []
        if isinstance(event, Partial):
            return self._on_partial(event, offset)
        return self._on_final(event, offset, forced)

    def backend_failed(self, exc: BaseException, now: float) -> list[Action]:
        """The Riva relay failed: the error for its code, with a generic message.

        The exception's text (gRPC details such as ``ipv4:10.0.0.5:50051: Connection
        refused``) names internal addresses and is for the server log, which the caller
        writes with the session id; the client learns what happened from the code.
        """
        del now
        code = error_code_for(exc)
        return self.refuse(code, _BACKEND_MESSAGES[code])

    def backend_stream_ended(self, *, forced: bool, now: float) -> list[Action]:
        """One gRPC call of the relay finished (its results were all delivered).

        Args:
            forced: The call's audio had been ended by :class:`EndAudio`.
            now: Clock reading.
        """
        del forced
        if self.state is State.CLOSED:
            return []
        self._progress(now)
        return []

    def shutdown(self, now: float, timeout: float) -> list[Action]:
        """The server is shutting down: drain what was sent, then close with 1001.

        Audio already received is finalised and its finals delivered; later audio is
        ignored. Sessions still open ``timeout`` seconds later are closed by :meth:`tick`.
        """
        if self.state is State.CLOSED:
            return []
        self._shutdown_deadline = now + timeout
        actions = self._warn_once(
            WarningCode.SERVER_SHUTTING_DOWN,
            "the server is shutting down: audio from now on is ignored; the finals of the "
            "audio so far follow, then session.end",
        )
        if self.state is State.OPEN:
            self._going_away = True
            actions += self._on_end(now)
        return actions

    def backend_done(self, now: float) -> list[Action]:
        """The Riva relay delivered its last final after :class:`EndAudio`."""
        del now
        if self.state is State.CLOSED:
            return []
        if self.state is not State.DRAINING:
            return self.refuse(ErrorCode.INTERNAL_ERROR, "backend stream ended unexpectedly")
        return self._end_session()

    def tick(self, now: float) -> list[Action]:
        """Check the session's deadlines; call at :meth:`deadline` (or any time)."""
        if self.state is State.CLOSED:
            return []
        if self._shutdown_deadline is not None and now >= self._shutdown_deadline:
            self.state = State.CLOSED
            return [Close(GOING_AWAY, "server shutting down")]
        if self._waiting_since is not None and now >= (
            self._waiting_since + self.limits.final_timeout_seconds
        ):
            return self.refuse(
                ErrorCode.BACKEND_UNAVAILABLE,
                "speech recognition backend: no progress for "
                f"{self.limits.final_timeout_seconds:g} s while a final was owed (stalled)",
            )
        if now >= self._started + self.limits.max_session_seconds:
            return self.refuse(
                ErrorCode.SESSION_TOO_LONG,
                f"session reached its limit of {self.limits.max_session_seconds} s",
            )
        if self.state is State.OPEN and now >= self._last_activity + (
            self.limits.idle_timeout_seconds
        ):
            return self.refuse(
                ErrorCode.IDLE_TIMEOUT,
                f"no message for {self.limits.idle_timeout_seconds} s",
            )
        if (
            self._deferred_cut is not None
            and self.state is State.OPEN
            and now >= self._deferred_cut + _AUDIO_PAUSE
        ):
            return self._cut(now)
        return []

    def deadline(self) -> float | None:
        """When :meth:`tick` must next be called, or ``None`` once closed."""
        if self.state is State.CLOSED:
            return None
        deadline = self._started + self.limits.max_session_seconds
        if self.state is State.OPEN:
            deadline = min(deadline, self._last_activity + self.limits.idle_timeout_seconds)
        if self._shutdown_deadline is not None:
            deadline = min(deadline, self._shutdown_deadline)
        if self._deferred_cut is not None and self.state is State.OPEN:
            deadline = min(deadline, self._deferred_cut + _AUDIO_PAUSE)
        return deadline

    def backend_deadline(self) -> float | None:
        """When Riva's overdue final makes :meth:`tick` fail the session, or ``None`` when
        no final is owed. Call :meth:`tick` at the earlier of this and :meth:`deadline`.

        An answer is owed after ``finalize`` until Riva shows it processed the forced end
        (a response whose ``audio_processed`` reaches it), and after ``end`` or a shutdown
        until the gRPC call finishes. Every response in between (partial, final, or one
        without transcript) restarts the wait: a slow backend that keeps answering is
        waited for, only one that shows no progress at all (stalled) is failed, with
        ``backend_unavailable``.
        """
        if self.state is State.CLOSED or self._waiting_since is None:
            return None
        return self._waiting_since + self.limits.final_timeout_seconds

    @property
    def transcript(self) -> str:
        """The finals so far, joined by spaces."""
        return " ".join(self._finals)

    # -- handlers ---------------------------------------------------------------------

    def _on_config(self, message: ConfigMessage) -> list[Action]:
        if self._backend_started or self.audio_seconds:
            return self._warn_once(
                WarningCode.CONFIG_IGNORED,
                "'config' after audio was ignored; send it before the first audio frame",
            )
        fields = message.model_fields_set - {"type"}
        self.config = self.config.model_copy(update={k: getattr(message, k) for k in fields})
        self._configured = True
        self._decoder = AudioDecoder(self.config.encoding, self.config.sample_rate)
        return [Send(SessionUpdated(**self._envelope(), config=self.config))]

    def _finish_utterance(self, now: float) -> list[Action]:
        if not self._utterance_has_audio:
            return []
        at = self._forwarded / _PCM16_BYTES_PER_SECOND
        minimum = self.limits.min_finalize_audio_seconds
        if at - self._last_cut < minimum:
            # Cutting speech that often garbles it (the backend decodes each piece
            # alone). If audio goes on, it goes into the utterance in progress (nothing
            # is lost); if it stops for _AUDIO_PAUSE, the cut is made then (tick).
            self._deferred_cut = now
            return self._warn_once(
                WarningCode.FINALIZE_TOO_FREQUENT,
                f"'finalize' less than {minimum:g} s of audio after the previous forced "
                "endpoint (or the session start) is not applied while audio goes on: the "
                "utterance continues until its next endpoint",
            )
        return self._cut(now)

    def _cut(self, now: float) -> list[Action]:
        self._deferred_cut = None
        self._utterance_has_audio = False
        actions: list[Action] = []
        tail = self._decoder.flush()
        if tail:
            self._forwarded += len(tail)
            actions.append(ForwardAudio(tail))
        self._last_cut = self._cut_pending = self._forwarded / _PCM16_BYTES_PER_SECOND
        if self._waiting_since is None:
            self._waiting_since = now
        actions.append(FinishUtterance())
        return actions

    def _on_end(self, now: float) -> list[Action]:
        self.state = State.DRAINING
        self._deferred_cut = None  # ending the audio finalises it anyway
        if not self._backend_started:
            return self._end_session()
        if self._waiting_since is None:
            self._waiting_since = now
        tail = self._decoder.flush()
        actions: list[Action] = [ForwardAudio(tail)] if tail else []
        actions.append(EndAudio())
        return actions

    def _end_session(self) -> list[Action]:
        end = SessionEnd(
            **self._envelope(),
            transcript=self.transcript,
            audio_seconds=round(self.audio_seconds, 3),
            finals=len(self._finals),
        )
        self.state = State.CLOSED
        if self._going_away:
            return [Send(end), Close(GOING_AWAY, "server shutting down")]
        return [Send(end), Close(CloseCode.NORMAL, "session ended")]

    def _on_partial(self, event: Partial, offset: float) -> list[Action]:
        processed = round(offset + event.audio_processed, 3)
        actions: list[Action] = []
        if not self._in_speech:
            self._in_speech = True
            actions.append(Send(VadSpeechStart(**self._envelope(), time=processed)))
        partial = TranscriptPartial(
            **(event.model_dump(exclude={"type"}) | {"audio_processed": processed}),
            **self._envelope(),
            start=self._utterance_start,
            end=max(processed, self._utterance_start),
        )
        actions.append(Send(partial))
        return actions

    def _on_final(self, event: Final, offset: float, forced: bool) -> list[Action]:
        if not event.text and not self._in_speech:
            return []  # an empty final for silence: nothing was announced, nothing to close
        shift = round(offset * 1000)
        words = tuple(
            Word(
                word=w.word,
                start_ms=w.start_ms + shift,
                end_ms=w.end_ms + shift,
                confidence=w.confidence,
            )
            for w in event.words
        )
        processed = round(offset + event.audio_processed, 3)
        start = words[0].start_ms / 1000 if words else self._utterance_start
        end = words[-1].end_ms / 1000 if words else max(processed, start)
        actions: list[Action] = []
        if not self._in_speech:
            actions.append(Send(VadSpeechStart(**self._envelope(), time=start)))
        actions.append(Send(VadSpeechEnd(**self._envelope(), time=end)))
        final = TranscriptFinal(
            **(
                event.model_dump(exclude={"type", "words"})
                | {"audio_processed": processed, "words": words}
            ),
            **self._envelope(),
            start=start,
            end=end,
            is_speech_final=not forced,
        )
        actions.append(Send(final))
        self._in_speech = False
        self._utterance_start = end
        if event.text:
            self._finals.append(event.text)
        return actions

    # -- helpers ----------------------------------------------------------------------

    def _progress(self, now: float) -> None:
        """Riva showed progress: restart the stall wait while it still owes an answer."""
        owed = self._cut_pending is not None or self.state is State.DRAINING
        self._waiting_since = now if owed else None

    def _envelope(self) -> dict[str, Any]:
        seq = self._seq
        self._seq += 1
        return {"session_id": self.session_id, "seq": seq}

    def _warn_once(self, code: WarningCode, message: str) -> list[Action]:
        if code in self._warned:
            return []
        self._warned.add(code)
        return [Send(WarningMessage(**self._envelope(), code=code, message=message))]
