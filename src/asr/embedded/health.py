"""The gRPC health service (``grpc.health.v1.Health``) with Check and Watch.

Uses the ``health_pb2`` stubs shipped in nvidia-riva-client (package ``grpc.health.v1``);
grpcio-health-checking would register the same proto a second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import riva.client.proto.health_pb2 as health_pb2
import riva.client.proto.health_pb2_grpc as health_grpc

__all__ = ["HealthServicer"]

ServingStatus = int


class HealthServicer(health_grpc.HealthServicer):  # type: ignore[misc]
    """Serving status per service name; ``""`` is the server as a whole."""

    def __init__(self) -> None:
        self._status: dict[str, ServingStatus] = {}
        self._changed = asyncio.Event()

    def set(self, service: str, status: ServingStatus) -> None:
        """Set ``service``'s status and wake the watchers."""
        self._status[service] = status
        self._changed.set()
        self._changed = asyncio.Event()

    def set_all(self, status: ServingStatus) -> None:
        """Set every known service's status (e.g. NOT_SERVING while shutting down)."""
        for service in list(self._status):
            self.set(service, status)

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            # The health protocol: an unknown service is NOT_FOUND for Check.
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        # Unknown services are reported (not failed) for Watch; this proto has no
        # SERVICE_UNKNOWN value, so UNKNOWN stands in for it.
        last: ServingStatus | None = None
        while True:
            changed = self._changed
            status = self._status.get(request.service, health_pb2.HealthCheckResponse.UNKNOWN)
            if status != last:
                last = status
                yield health_pb2.HealthCheckResponse(status=status)
            await changed.wait()
