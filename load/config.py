"""What a load run does (:class:`LoadConfig`), when a level keeps up (:class:`Criteria`),
and which targets it may talk to (loopback only unless allowed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from asr.evaluation.websocket import is_loopback_url

__all__ = ["MODES", "RAMP_LEVELS", "Criteria", "LoadConfig", "check_targets", "is_loopback_uri"]

MODES = ("websocket", "grpc")
RAMP_LEVELS = (1, 2, 3, 4, 6, 8)


@dataclass(frozen=True, slots=True)
class Criteria:
    """When a level counts as keeping up.

    Attributes:
        max_final_p95_ms: Bound on the final latency p95 (end of speech to final).
        max_error_rate: Largest share of sessions that may fail (timeouts included).
        max_first_partial_p95_ms: Bound on the first-partial p95; ``None`` for none. The
            engine drops stale partials before it delays finals, so partials show
            overload first.
    """

    max_final_p95_ms: float = 2500.0
    max_error_rate: float = 0.0
    max_first_partial_p95_ms: float | None = None


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """What the load tool does; every run is bounded in sessions and seconds.

    Attributes:
        clips_dir: A speech set (``refs.jsonl`` + WAV); no default, the caller names it
            (:func:`load.clips.speech_set`).
        modes: ``"websocket"`` (client -> WebSocket server -> Riva) and/or ``"grpc"``
            (client -> Riva), ramped one after the other.
        levels: Concurrent sessions per level, in order.
        stagger_seconds: Delay between the starts of two users of a level.
        clips_per_session: Clips each user streams back to back (one session each).
        max_clip_seconds: Leave out longer clips.
        criteria: When a level keeps up.
        levels_past_capacity: Levels still run after the first failing one.
        max_seconds: Budget for the whole ramp; a level that would overrun is skipped.
        slack_seconds: A session may take its clip's length plus this before it times out.
        overload: Run the overload probe after the ramp (own servers only).
        overload_limit: The limit set for the probe; ``None`` uses the capacity found.
        overload_extra: Sessions opened beyond the limit.
        riva_uri: Use this Riva server instead of starting one.
        ws_url: Use this WebSocket server instead of starting one.
        allow_remote: Accept targets that are not loopback.
    """

    clips_dir: Path
    modes: tuple[str, ...] = MODES
    levels: tuple[int, ...] = RAMP_LEVELS
    stagger_seconds: float = 1.0
    clips_per_session: int = 2
    max_clip_seconds: float | None = 12.0
    criteria: Criteria = field(default_factory=Criteria)
    levels_past_capacity: int = 0
    max_seconds: float = 900.0
    slack_seconds: float = 30.0
    overload: bool = True
    overload_limit: int | None = None
    overload_extra: int = 2
    riva_uri: str | None = None
    ws_url: str | None = None
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if not self.modes or any(m not in MODES for m in self.modes):
            raise ValueError(f"modes must be among {MODES}, got {self.modes}")
        if not self.levels or min(self.levels) < 1:
            raise ValueError("levels must be positive")
        if self.clips_per_session < 1:
            raise ValueError("clips_per_session must be at least 1")


def is_loopback_uri(uri: str) -> bool:
    """Whether a gRPC target ``host:port`` names a loopback host."""
    target = uri.removeprefix("ipv4:").removeprefix("ipv6:")
    if target.count(":") > 1 and not target.startswith("["):
        target = f"[{target}]"  # a bare IPv6 address
    try:
        return is_loopback_url(f"grpc://{target}")
    except ValueError:  # not a host[:port], e.g. dns:///riva:50051
        return False


def check_targets(config: LoadConfig) -> None:
    """Refuse targets that are not loopback (unless ``allow_remote``), and an external Riva
    server without the WebSocket server to go with it.

    Raises:
        ValueError: A target is not loopback, or the WebSocket mode has no ``ws_url``.
    """
    if not config.allow_remote:
        if config.riva_uri is not None and not is_loopback_uri(config.riva_uri):
            raise ValueError(f"{config.riva_uri} is not loopback; pass --allow-remote to use it")
        if config.ws_url is not None and not is_loopback_url(config.ws_url):
            raise ValueError(f"{config.ws_url} is not loopback; pass --allow-remote to use it")
    if config.riva_uri is not None and "websocket" in config.modes and config.ws_url is None:
        raise ValueError("with an external Riva server, the WebSocket mode needs ws_url")
