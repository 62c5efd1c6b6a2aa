"""How to reach ASR workers on Dynamo: :class:`DynamoSettings` (``ASR_DYNAMO_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import wire

__all__ = ["DynamoSettings"]


class DynamoSettings(BaseSettings):
    """How to reach ASR workers on Dynamo (``ASR_DYNAMO_*`` variables).

    Attributes:
        endpoint: ``namespace.component.endpoint`` the workers serve.
        discovery_backend: ``etcd``, ``file``, ``kubernetes`` or ``mem``; ``None`` reads
            Dynamo's ``DYN_DISCOVERY_BACKEND`` (default ``etcd``).
        request_plane: ``tcp`` or ``nats``; ``None`` reads ``DYN_REQUEST_PLANE``
            (default ``tcp``).
        connect_timeout: Seconds :meth:`DynamoASRClient.connect` waits for a worker.
        call_timeout: Deadline in seconds of one audio, close or load call.
        stream_timeout: Deadline in seconds for a whole stream.
        retry_attempts: Attempts per stream, the first included, on transient errors.
        retry_initial_backoff: First backoff in seconds; grows exponentially with jitter.
        retry_max_backoff: Longest backoff in seconds.
        replay_buffer_seconds: Seconds of audio kept until a stream's first result, so a
            stream whose worker failed before then is replayed on another.
        load_interval: Seconds between load reports asked of each instance.
    """

    model_config = SettingsConfigDict(env_prefix="ASR_DYNAMO_", frozen=True, extra="ignore")

    endpoint: str = wire.DEFAULT_ENDPOINT
    discovery_backend: str | None = None
    request_plane: str | None = None
    connect_timeout: float = Field(default=30.0, gt=0)
    call_timeout: float = Field(default=10.0, gt=0)
    stream_timeout: float = Field(default=3600.0, gt=0)
    retry_attempts: int = Field(default=4, ge=1, le=20)
    retry_initial_backoff: float = Field(default=0.1, ge=0)
    retry_max_backoff: float = Field(default=2.0, ge=0)
    replay_buffer_seconds: float = Field(default=30.0, ge=0)
    load_interval: float = Field(default=1.0, gt=0)
