"""The golden runner's transport through the WebSocket server (``docs/websocket-api.md``).

:class:`WebSocketTransport` speaks the server's JSON contract with
``websockets.asyncio.client`` and turns it back into this package's events, so the same
runner (and the same final-latency measure) works on both paths::

    transport = WebSocketTransport("ws://127.0.0.1:8443/v1/audio/transcriptions/stream")
    result = await run_set(transport, clips, name="jfk", realtime=True)

Per session it sends one ``config`` message (the :class:`~asr.options.RecognitionOptions`
the contract can carry), the audio as binary frames and ``end``; it yields a
:class:`~asr.events.Partial` per ``transcript.partial`` and a :class:`~asr.events.Final`
per ``transcript.final`` (word times are milliseconds since the session's first audio frame,
the same clock as the runner's send clock). An ``error`` message becomes the matching
:class:`~asr.errors.ASRError` subclass, its ``code`` the contract's stable error code
(``"too_many_sessions"``); a connection that closes without ``session.end`` or ``error``
becomes :class:`~asr.errors.UnavailableError` (or :class:`~asr.errors.StreamInterruptedError`
once results had arrived). Only the message shapes are read here, not the server package,
so the library does not depend on ``asr_server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from ..audio import PCM16_BYTES_PER_SECOND, TARGET_SAMPLE_RATE
from ..contract import ErrorCode
from ..errors import (
    ASRError,
    AudioFormatError,
    AuthenticationError,
    ConfigurationError,
    DeadlineExceededError,
    InvalidArgumentError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServerError,
    StreamInterruptedError,
    UnavailableError,
)
from ..events import Final, Partial
from ..options import AudioEncoding, RecognitionOptions

__all__ = [
    "WebSocketTransport",
    "dropped_options",
    "error_from_message",
    "is_loopback_url",
    "session_config",
    "websocket_transport",
]

logger = logging.getLogger("asr.evaluation.websocket")


# Error codes of the contract to the exception a gRPC caller would get for the same
# failure; each class's ``retryable`` agrees with the contract's (asr.contract.ERRORS).
# Codes a newer server may add fall back on the message's ``retryable``.
_BY_CODE: dict[ErrorCode, type[ASRError]] = {
    ErrorCode.UNAUTHORIZED: AuthenticationError,
    ErrorCode.INVALID_CONFIG: InvalidArgumentError,
    ErrorCode.INVALID_JSON: InvalidArgumentError,
    ErrorCode.UNKNOWN_MESSAGE_TYPE: InvalidArgumentError,
    ErrorCode.INVALID_MESSAGE: InvalidArgumentError,
    ErrorCode.CONFIG_REQUIRED: InvalidArgumentError,
    ErrorCode.INVALID_AUDIO: AudioFormatError,
    ErrorCode.FRAME_TOO_LARGE: InvalidArgumentError,
    ErrorCode.TOO_FAST: InvalidArgumentError,
    ErrorCode.TOO_MANY_SESSIONS: ResourceExhaustedError,
    ErrorCode.BACKEND_UNAVAILABLE: UnavailableError,
    ErrorCode.BACKEND_ERROR: ServerError,
    ErrorCode.IDLE_TIMEOUT: DeadlineExceededError,
    ErrorCode.SESSION_TOO_LONG: DeadlineExceededError,
    # The gateway failed, not the request: a new session may well succeed.
    ErrorCode.INTERNAL_ERROR: UnavailableError,
    # The session was cut after results had arrived because this client did not read.
    ErrorCode.CLIENT_TOO_SLOW: StreamInterruptedError,
    # The server's recording policy is off: asking again will not change it.
    ErrorCode.RECORDING_UNAVAILABLE: InvalidArgumentError,
}

_PARTIAL_FIELDS = frozenset(Partial.model_fields) - {"type"}
_FINAL_FIELDS = frozenset(Final.model_fields) - {"type"}


def error_from_message(message: Mapping[str, Any], close_code: int | None = None) -> ASRError:
    """The exception for an ``error`` message of the contract.

    Args:
        message: The decoded ``error`` message (``code``, ``message``, ``retryable``).
        close_code: The close code that followed, when known; added to the message.
    """
    code = str(message.get("code", "unknown"))
    try:
        cls = _BY_CODE[ErrorCode(code)]
    except ValueError:  # a code this version does not know
        cls = UnavailableError if message.get("retryable") else ServerError
    text = str(message.get("message", "")) or code
    if close_code is not None:
        text = f"{text} (close {close_code})"
    return cls(text, code=code)


def dropped_options(options: RecognitionOptions) -> list[str]:
    """Recognition settings in ``options`` the contract cannot carry (the server's
    defaults apply to them): verbatim transcripts, profanity filter, alternatives and
    custom configuration."""
    return [
        name
        for name, given in (
            ("verbatim_transcripts", options.verbatim_transcripts is not None),
            ("profanity_filter", options.profanity_filter is not None),
            ("max_alternatives", options.max_alternatives is not None),
            ("custom_configuration", bool(options.custom_configuration)),
        )
        if given
    ]


def session_config(options: RecognitionOptions) -> dict[str, Any]:
    """The ``config`` message for ``options`` (audio is 16 kHz PCM16 mono).

    Settings listed by :func:`dropped_options` are left out.

    Raises:
        InvalidArgumentError: ``options`` describes audio the contract cannot carry
            (another encoding than PCM16, several channels).
    """
    unsupported = [
        name
        for name, given in (
            ("encoding", options.encoding not in (None, AudioEncoding.LINEAR_PCM)),
            ("channels", options.channels not in (None, 1)),
        )
        if given
    ]
    if unsupported:
        raise InvalidArgumentError("the WebSocket contract cannot carry " + ", ".join(unsupported))
    config: dict[str, Any] = {
        "type": "config",
        "encoding": "pcm16",
        "sample_rate": options.sample_rate_hz or TARGET_SAMPLE_RATE,
        "language": options.language_code,
        "model": options.model,
        "interim_results": options.interim_results,
        "punctuation": options.automatic_punctuation,
        "word_timestamps": options.word_time_offsets,
        "boosted_words": list(options.boosted_words),
        "boosted_score": options.boosted_score,
    }
    if options.endpointing is not None:
        config["endpointing"] = options.endpointing.model_dump()
    return config


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is ``localhost`` or a loopback address."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Throttle:
    """Holds audio back to at most ``factor`` x real time after ``burst`` seconds.

    The server refuses audio that arrives faster than its ``max_realtime_factor`` beyond
    ``burst_seconds`` (``too_fast``); a real-time source never waits here, a file sent as
    fast as possible is slowed just enough to stay inside the limit.
    """

    def __init__(self, factor: float | None, burst: float) -> None:
        self.factor = factor
        self.burst = burst
        self.start: float | None = None
        self.sent = 0.0

    def delay(self, seconds: float, now: float) -> float:
        if self.factor is None:
            return 0.0
        if self.start is None:
            self.start = now
        self.sent += seconds
        due = self.start + max(0.0, self.sent - self.burst) / self.factor
        return max(0.0, due - now)


class WebSocketTransport:
    """The runner's :class:`~asr.evaluation.runner.Transport` over the WebSocket contract.

    Args:
        url: ``ws(s)://HOST:PORT/v1/audio/transcriptions/stream``.
        open_timeout: Seconds to wait for the connection and handshake.
        close_timeout: Seconds to wait for the close after the last message.
        max_realtime_factor: Send audio no faster than this many seconds per second once
            ``burst_seconds`` are out (keep it under the server's limit, 2.5 by default);
            ``None`` sends as fast as the source yields.
        burst_seconds: Audio sent before the throttle applies.
        headers: Extra handshake headers (``Authorization: Bearer KEY``).
    """

    name = "websocket"

    def __init__(
        self,
        url: str,
        *,
        open_timeout: float = 10.0,
        close_timeout: float = 10.0,
        max_realtime_factor: float | None = 2.0,
        burst_seconds: float = 2.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("ws", "wss"):
            raise ConfigurationError(f"not a ws:// or wss:// URL: {url!r}")
        self.url = url
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self.max_realtime_factor = max_realtime_factor
        self.burst_seconds = burst_seconds
        self.headers = dict(headers or {})
        self._warned = False

    async def _connect(self) -> ClientConnection:
        try:
            return await connect(
                self.url,
                open_timeout=self.open_timeout,
                close_timeout=self.close_timeout,
                additional_headers=self.headers or None,
                compression=None,  # PCM does not compress; the server turns it off too
                max_size=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            cls: type[ASRError] = {
                401: AuthenticationError,
                403: PermissionDeniedError,
                503: UnavailableError,
            }.get(status, ServerError)
            raise cls(f"WebSocket handshake refused with HTTP {status}") from exc
        except InvalidURI as exc:
            raise ConfigurationError(str(exc)) from exc
        except TimeoutError as exc:
            raise DeadlineExceededError(
                f"no WebSocket handshake within {self.open_timeout} s"
            ) from exc
        except (OSError, InvalidHandshake) as exc:
            raise UnavailableError(f"cannot connect to {self.url}: {exc}") from exc

    async def stream(
        self,
        audio: AsyncIterator[bytes],
        options: RecognitionOptions,
    ) -> AsyncIterator[Partial | Final]:
        """Stream 16 kHz PCM16 mono ``audio`` as one session; yield its results.

        Raises:
            asr.errors.ASRError: The server sent an ``error``, refused the handshake or
                dropped the connection; see the module docstring for the mapping.
        """
        config = session_config(options)
        dropped = dropped_options(options)
        if dropped and not self._warned:
            self._warned = True
            logger.warning(
                "not carried by the WebSocket contract, the server's defaults apply: %s",
                ", ".join(dropped),
            )
        rate = (
            PCM16_BYTES_PER_SECOND
            * (options.sample_rate_hz or TARGET_SAMPLE_RATE)
            // (TARGET_SAMPLE_RATE)
        )
        ws = await self._connect()
        throttle = _Throttle(self.max_realtime_factor, self.burst_seconds)

        async def send() -> None:
            await ws.send(json.dumps(config))
            try:
                async for chunk in audio:
                    wait = throttle.delay(len(chunk) / rate, time.monotonic())
                    if wait > 0:
                        await asyncio.sleep(wait)
                    await ws.send(chunk)
                await ws.send('{"type":"end"}')
            except ConnectionClosed:
                pass  # the reader sees the close and reports why
            except Exception:
                await ws.close()  # the audio source failed: end the session, re-raise
                raise

        sender = asyncio.create_task(send())
        session_id: str | None = None
        error: dict[str, Any] | None = None
        ended = False
        results = 0
        try:
            try:
                async for frame in ws:
                    if isinstance(frame, bytes):
                        raise ServerError("the server sent a binary frame")
                    message = json.loads(frame)
                    kind = message.get("type")
                    if kind == "transcript.partial":
                        results += 1
                        yield Partial.model_validate(
                            {k: v for k, v in message.items() if k in _PARTIAL_FIELDS}
                        )
                    elif kind == "transcript.final":
                        results += 1
                        yield Final.model_validate(
                            {k: v for k, v in message.items() if k in _FINAL_FIELDS}
                        )
                    elif kind == "error":
                        error = message
                    elif kind == "session.end":
                        ended = True
                    elif kind == "session.begin":
                        session_id = message.get("session_id")
                        logger.debug("[%s] session began", session_id)
                    elif kind == "warning":
                        logger.warning(
                            "[%s] warning %s: %s",
                            session_id,
                            message.get("code"),
                            message.get("message"),
                        )
            except ConnectionClosed:
                pass  # a close code other than 1000; judged below
            except (json.JSONDecodeError, ValidationError, AttributeError) as exc:
                raise ServerError(f"a server message breaks the contract: {exc}") from exc
            failed = sender.exception() if sender.done() and not sender.cancelled() else None
            if failed is not None:
                raise failed  # the audio source failed
            close_code = ws.close_code
            if error is not None:
                raise error_from_message(error, close_code)
            if not ended:
                cls = StreamInterruptedError if results else UnavailableError
                raise cls(
                    f"the connection closed ({close_code}) before session.end",
                    code=None if close_code is None else str(close_code),
                )
        finally:
            if not sender.done():
                sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await sender
            await ws.close()


def websocket_transport(url: str | None, **kwargs: Any) -> WebSocketTransport:
    """A :class:`WebSocketTransport` for ``asr wer --transport websocket --ws-url URL``.

    Args:
        url: The server's stream URL.
        **kwargs: Further :class:`WebSocketTransport` arguments.

    Raises:
        ConfigurationError: No URL, or not a ws:// or wss:// one.
    """
    if not url:
        raise ConfigurationError("--transport websocket needs --ws-url URL")
    return WebSocketTransport(url, **kwargs)
