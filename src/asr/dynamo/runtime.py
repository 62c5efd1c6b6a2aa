"""The one place that creates a Dynamo ``DistributedRuntime``.

``ai-dynamo-runtime`` is imported here and nowhere else in the package, so a missing extra
fails in one place with one line (:mod:`asr.dynamo`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from dynamo.runtime import Context, DistributedRuntime

__all__ = ["Context", "new_runtime"]


def new_runtime(discovery_backend: str, request_plane: str) -> Any:
    """A ``DistributedRuntime`` on the running loop.

    Args:
        discovery_backend: ``etcd``, ``file`` (``DYN_FILE_KV`` names the folder),
            ``kubernetes`` or ``mem``.
        request_plane: ``tcp`` or ``nats``.
    """
    return DistributedRuntime(asyncio.get_running_loop(), discovery_backend, request_plane)
