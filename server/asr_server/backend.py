"""The gateway's recogniser, as ``ASR_SERVER_BACKEND`` says: Riva or ASR workers on Dynamo.

Both are an :class:`asr.backend.SpeechBackend` with the same events and errors, so the
routes, the relay and the recordings' enhancement run on either unchanged. Dynamo's client
(:mod:`asr.dynamo`, the ``dynamo`` extra) is imported only when it is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asr.backend import SpeechBackend
from asr.client import RivaASRClient
from asr.settings import RivaSettings

from .metrics import GatewayMetrics
from .settings import ServerSettings

if TYPE_CHECKING:
    from asr.dynamo import DynamoSettings

__all__ = ["Backend", "open_backend"]


@dataclass(frozen=True, slots=True)
class Backend:
    """The chosen backend's client and how the log and CLI name it.

    Attributes:
        client: Shared by every session of the gateway.
        label: E.g. ``Riva at host:50051`` or ``Dynamo endpoint asr.recognizer.stream``.
    """

    client: SpeechBackend
    label: str


def open_backend(
    settings: ServerSettings,
    riva: RivaSettings,
    *,
    dynamo: DynamoSettings | None,
    metrics: GatewayMetrics,
) -> Backend:
    """The client ``settings.backend`` names, not connected yet (``async with`` it).

    Args:
        settings: The server's settings; ``backend`` chooses.
        riva: Riva's connection (``RIVA_*``), used with ``riva``.
        dynamo: The workers' endpoint and discovery, used with ``dynamo``; ``None`` reads
            ``ASR_DYNAMO_*``.
        metrics: The gateway's collectors; Riva's client records its calls there.

    Raises:
        asr.extras.MissingExtraError: ``dynamo`` chosen without the ``dynamo`` extra.
    """
    if settings.backend == "dynamo":
        from asr.dynamo import DynamoASRClient
        from asr.dynamo import DynamoSettings as Settings

        chosen = dynamo if dynamo is not None else Settings()
        return Backend(DynamoASRClient(settings=chosen), f"Dynamo endpoint {chosen.endpoint}")
    return Backend(RivaASRClient(settings=riva, metrics=metrics.riva), f"Riva at {riva.uri}")
