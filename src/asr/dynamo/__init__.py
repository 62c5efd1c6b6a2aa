"""ASR workers on NVIDIA Dynamo: the embedded recogniser as a Dynamo endpoint, and a client.

Modules, one stage each: :mod:`.wire` (the messages of a session), :mod:`.routing`
(session-sticky, least-loaded choice of instance; sans-I/O), :mod:`.worker` (the endpoint
handler and :func:`~.worker.run_worker`), :mod:`.client` (:class:`DynamoASRClient`, the same
``stream()`` events as :class:`~asr.client.RivaASRClient`; an :class:`asr.SpeechBackend`
the gateway runs on), :mod:`.settings` (:class:`DynamoSettings`, ``ASR_DYNAMO_*``),
:mod:`.runtime` (the Dynamo runtime).

Needs ``pip install 'asr[dynamo]'`` (``ai-dynamo-runtime``), and the ``embedded`` extra for
the worker.
"""

from __future__ import annotations

from ..extras import require_extra

require_extra("dynamo", "asr.dynamo (ASR workers on NVIDIA Dynamo)")

from .client import DynamoASRClient, DynamoSettings
from .routing import SessionRouter
from .wire import DEFAULT_ENDPOINT, WorkerLoad

__all__ = ["DEFAULT_ENDPOINT", "DynamoASRClient", "DynamoSettings", "SessionRouter", "WorkerLoad"]
