"""How to reach ASR workers on Dynamo: :class:`DynamoSettings` (``ASR_DYNAMO_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ..settings import RetrySettings
from ..settings_legacy import FlatNamesAccepted
from . import wire

__all__ = ["DynamoSettings"]


class DynamoSettings(FlatNamesAccepted):
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
        retry: Attempts per stream, each on another instance, and the audio kept until a
            stream's first result to replay it there (``ASR_DYNAMO_RETRY__ATTEMPTS``...,
            the same :class:`~asr.settings.RetrySettings` as Riva's client).
        load_interval: Seconds between load reports asked of each instance.
    """

    model_config = SettingsConfigDict(
        env_prefix="ASR_DYNAMO_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    endpoint: str = wire.DEFAULT_ENDPOINT
    discovery_backend: str | None = None
    request_plane: str | None = None
    connect_timeout: float = Field(default=30.0, gt=0)
    call_timeout: float = Field(default=10.0, gt=0)
    stream_timeout: float = Field(default=3600.0, gt=0)
    retry: RetrySettings = RetrySettings()
    load_interval: float = Field(default=1.0, gt=0)
