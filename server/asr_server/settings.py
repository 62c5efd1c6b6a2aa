"""WebSocket server settings, read from ``ASR_SERVER_*`` environment variables.

The only module of the server that reads the environment. Riva connection settings are
:class:`asr.settings.RivaSettings` (``RIVA_*``), Dynamo's are
:class:`asr.dynamo.DynamoSettings` (``ASR_DYNAMO_*``, read only with
``ASR_SERVER_BACKEND=dynamo``). Limits nest with a double underscore:
``ASR_SERVER_LIMITS__MAX_SESSIONS=32``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .connection_guard import ConnectionBounds
from .limits import Limits
from .recordings.policy import RecordingPolicy
from .recordings.settings import RecordingSettings
from .transcriptions import TranscriptionConfig, UploadLimits

__all__ = [
    "IceServer",
    "ServerSettings",
    "TranscriptionSettings",
    "WebRtcSettings",
    "default_static_dir",
]


def default_static_dir() -> Path | None:
    """The demo page: ``asr_server/static`` in a wheel, else ``static/`` of the checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "static", here.parents[1] / "static"):
        if (candidate / "index.html").is_file():
            return candidate
    return None


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


class TranscriptionSettings(BaseModel):
    """``POST /v1/audio/transcriptions``: what an upload may hold and how its fields map
    to Riva (``ASR_SERVER_TRANSCRIPTIONS__LIMITS__MAX_BYTES=...``).

    Attributes:
        limits: Upload size, recording length and the length of the pieces sent to one
            Riva ``Recognize`` call.
        config: Public model names -> Riva models, the default language, keywords.
        recognize_timeout: Deadline in seconds of one ``Recognize`` call (a piece of up to
            ``limits.chunk_seconds``); ``None`` uses ``RIVA_TIMEOUT``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    limits: UploadLimits = UploadLimits()
    config: TranscriptionConfig = TranscriptionConfig()
    recognize_timeout: float | None = Field(default=60.0, gt=0)


class IceServer(BaseModel):
    """A STUN or TURN server, as the W3C ``RTCIceServer`` dictionary spells it.

    Attributes:
        urls: ``stun:host:port``, ``turn:host:port?transport=udp|tcp`` or
            ``turns:host:port?transport=tcp``; one URL or several.
        username: The TURN user.
        credential: The TURN password.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    urls: str | tuple[str, ...]
    username: str | None = None
    credential: SecretStr | None = None


class WebRtcSettings(BaseModel):
    """``POST /v1/webrtc/offer``: how long a peer may take (``ASR_SERVER_WEBRTC__...``).

    Attributes:
        connect_timeout: Seconds from the answer to a connected peer (ICE, DTLS, the data
            channel open and the audio track arrived); a peer that is not connected by
            then is closed and counted in ``asr_gateway_webrtc_peers_failed_total``.
        media_timeout: Seconds without an RTP packet of the audio track after which the
            peer is taken as gone (closed like a dropped WebSocket, 1006). A browser
            sends 50 packets a second, silence included.
        host_addresses: Local addresses whose host candidates are offered; empty offers
            every interface's but loopback (aioice's default). ``127.0.0.1`` keeps a
            peer on one machine on loopback.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_timeout: float = Field(default=10.0, gt=0)
    media_timeout: float = Field(default=10.0, gt=0)
    host_addresses: tuple[str, ...] = ()


class ServerSettings(BaseSettings):
    """How the WebSocket server listens and what it accepts.

    Attributes:
        host: Interface to listen on.
        port: TCP port; 0 picks a free one.
        cert: PEM certificate chain; with ``key``, the server speaks HTTPS/WSS, else
            plain HTTP/WS (fine on loopback, not across a network).
        key: PEM private key of ``cert``.
        static_dir: Folder served at ``/`` (the demo page); ``None`` serves none.
        api_keys: Accepted API keys (``?api_key=`` or ``Authorization: Bearer``); empty
            accepts every client.
        allowed_origins: Browser ``Origin`` values allowed to connect; empty allows any.
        require_config: Refuse audio until the client sent a ``config`` message.
        limits: Per-session and per-server limits.
        readiness_timeout: Seconds ``/readyz`` waits for Riva's health check.
        token_secret: Key of the HMAC-SHA256 that signs browser tokens (``GET /v1/tokens``);
            at least 32 characters. ``None`` draws a random key at start, so tokens work
            only with the process that issued them: set it when several replicas serve.
        token_ttl_seconds: How long a browser token stays valid.
        log_level: Level of the server's log (``DEBUG``, ``INFO``, ``WARNING``, ...).
        log_format: ``text`` for people, ``json`` (one object per line, with session and
            stream ids as fields) for log collectors.
        tracing: Trace sessions with OpenTelemetry (needs ``opentelemetry-api``; spans
            go wherever the process's tracer provider sends them).
        shutdown_timeout: Seconds a SIGTERM waits for open sessions to deliver their
            finals before they are closed anyway.
        close_timeout: Seconds to wait for a client to answer the closing handshake (and
            to take the last frames) before the TCP connection is dropped.
        connections: Bounds on connections and what each may hold before and after its
            handshake (see :mod:`asr_server.connection_guard`).
        keepalive_seconds: Interval of the server's WebSocket pings, and how long a pong
            may take: a client that answers none for that long is closed with 1011.
        transcriptions: ``POST /v1/audio/transcriptions`` (:class:`TranscriptionSettings`).
        ice_servers: STUN and TURN servers of WebRTC peers (``ASR_SERVER_ICE_SERVERS``, a
            JSON list of ``RTCIceServer``); empty gathers host candidates only, which
            reach clients on the same network (see docs/runbook.md for NAT and TURN).
        webrtc: WebRTC peers' timeouts and addresses (:class:`WebRtcSettings`).
        recording: Whether sessions keep their audio (``ASR_SERVER_RECORDING``): ``off``
            refuses ``record``/``enhance_on_end`` with ``recording_unavailable``,
            ``optional`` records the sessions that ask, ``always`` records every session.
            Off, the recordings database is not opened and ``/v1/sessions`` answers 404
            (recordings kept from before stay on disk until recording is on again).
        recordings: Where recordings go, how long they stay, how enhancement jobs run
            (``ASR_SERVER_RECORDINGS__DATA_DIR``, ``..._RETENTION_DAYS``, ...; see
            :class:`asr_server.recordings.RecordingSettings`).
        backend: What recognises (``ASR_SERVER_BACKEND``): ``riva``, Riva over gRPC as
            ``RIVA_*`` say, or ``dynamo``, ASR workers on NVIDIA Dynamo as
            ``ASR_DYNAMO_*`` say (:class:`asr.dynamo.DynamoSettings`; needs the
            ``dynamo`` extra). Clients see no difference.
    """

    model_config = SettingsConfigDict(
        env_prefix="ASR_SERVER_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65_535)
    cert: Path | None = None
    key: Path | None = None
    static_dir: Path | None = Field(default_factory=default_static_dir)
    api_keys: Annotated[tuple[str, ...], NoDecode] = ()
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    require_config: bool = False
    limits: Limits = Limits()
    readiness_timeout: float = Field(default=2.0, gt=0)
    token_secret: SecretStr | None = Field(default=None, min_length=32)
    token_ttl_seconds: float = Field(default=300.0, gt=0, le=86_400)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    tracing: bool = False
    shutdown_timeout: float = Field(default=20.0, ge=0)
    close_timeout: float = Field(default=5.0, gt=0)
    keepalive_seconds: float = Field(default=20.0, gt=0)
    connections: ConnectionBounds = ConnectionBounds()
    transcriptions: TranscriptionSettings = TranscriptionSettings()
    ice_servers: tuple[IceServer, ...] = ()
    webrtc: WebRtcSettings = WebRtcSettings()
    recording: RecordingPolicy = RecordingPolicy.OFF
    recordings: RecordingSettings = Field(default_factory=RecordingSettings)
    backend: Literal["riva", "dynamo"] = "riva"

    @field_validator("api_keys", "allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_tls(self) -> ServerSettings:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key must be given together")
        return self

    @property
    def tls(self) -> bool:
        """Whether the server speaks HTTPS/WSS."""
        return self.cert is not None
