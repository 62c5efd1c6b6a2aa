"""ASR workers on NVIDIA Dynamo: the embedded recogniser as a Dynamo endpoint, and a client.

Modules, one stage each: :mod:`.wire` (the messages of a session), :mod:`.routing`
(session-sticky, least-loaded choice of instance; sans-I/O), :mod:`.worker` (the endpoint
handler and :func:`~.worker.run_worker`), :mod:`.client` (:class:`DynamoASRClient`, the same
``stream()`` events as :class:`~asr.client.RivaASRClient`), :mod:`.runtime` (the Dynamo
runtime).

Needs ``pip install 'asr[dynamo]'`` (``ai-dynamo-runtime``), and the ``embedded`` extra for
the worker.
"""

from __future__ import annotations

from importlib.util import find_spec

from ..extras import MissingExtraError

# asr.extras.EXTRAS has no "dynamo" entry yet (that file is the lead's to change): checked
# here by hand, with the same one-line message as require_extra.
try:
    _FOUND = find_spec("dynamo.runtime") is not None
except ModuleNotFoundError:  # no "dynamo" package at all
    _FOUND = False
if not _FOUND:
    raise MissingExtraError(
        "asr.dynamo needs the 'dynamo' extra (ai-dynamo-runtime not installed): "
        "pip install 'asr[dynamo]'"
    )

from .client import DynamoASRClient, DynamoSettings  # noqa: E402
from .routing import SessionRouter  # noqa: E402
from .wire import DEFAULT_ENDPOINT, WorkerLoad  # noqa: E402

__all__ = ["DEFAULT_ENDPOINT", "DynamoASRClient", "DynamoSettings", "SessionRouter", "WorkerLoad"]
