"""The gRPC channel to a Riva endpoint, and the one grpc.aio quirk the client works around.

:func:`open_channel` turns :class:`~asr.settings.RivaSettings` into a ``grpc.aio`` channel;
:class:`DeliveredStatus` keeps the status a server delivered when grpc.aio would replace it
(grpc/grpc#36066).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc

from .errors import ConfigurationError
from .settings import RivaSettings

__all__ = ["DeliveredStatus", "open_channel"]


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.expanduser().read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc


def open_channel(settings: RivaSettings) -> grpc.aio.Channel:
    """The gRPC channel ``settings`` describe: TLS, keepalive, reconnect backoff, balancing."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        # Keep idle streams alive through proxies and notice dead peers.
        ("grpc.keepalive_time_ms", int(settings.keepalive.time * 1000)),
        ("grpc.keepalive_timeout_ms", int(settings.keepalive.timeout * 1000)),
        # After the server goes away, gRPC waits between reconnection attempts, by
        # default growing to 120 s: a Riva restarted after a minute would stay unused
        # that long. Capping the wait lets traffic resume within seconds of its return.
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.min_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", int(settings.keepalive.reconnect_backoff_max * 1000)),
    ]
    service_config: dict[str, Any] = {}
    if settings.load_balancing:
        service_config["loadBalancingConfig"] = [{settings.load_balancing: {}}]
    if settings.health_check:
        # gRPC client-side health checking: subchannels whose server reports NOT_SERVING
        # on grpc.health.v1 (the whole server, service "") get no new calls.
        service_config["healthCheckConfig"] = {"serviceName": ""}
    if service_config:
        options.append(("grpc.service_config", json.dumps(service_config)))
    target = settings.target
    if not settings.tls:
        return grpc.aio.insecure_channel(target, options=options)
    if settings.ssl_target_name:
        options.append(("grpc.ssl_target_name_override", settings.ssl_target_name))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(settings.ssl_root_cert),
        private_key=_read(settings.ssl_client_key),
        certificate_chain=_read(settings.ssl_client_cert),
    )
    return grpc.aio.secure_channel(target, credentials, options=options)


_STATUS_BY_VALUE = {status.value[0]: status for status in grpc.StatusCode}


class DeliveredStatus:
    """Remembers the status a server delivered, to undo grpc/grpc#36066.

    When a server ends a stream (say, INVALID_ARGUMENT for a bad config) while the
    client is still writing audio, grpc.aio overwrites the delivered status with
    ``INTERNAL: Internal error from Core`` from the failed write. The done-callback runs
    when Core delivers the real status, before that overwrite, so it is read there.
    """

    def __init__(self, call: grpc.aio.Call) -> None:
        self.status: tuple[grpc.StatusCode, str] | None = None
        call.add_done_callback(self._remember)

    def _remember(self, call: grpc.aio.Call) -> None:
        status = getattr(getattr(call, "_cython_call", None), "_status", None)
        if status is not None and status.code() in _STATUS_BY_VALUE:
            self.status = (_STATUS_BY_VALUE[status.code()], status.details())

    def correct(self, exc: grpc.aio.AioRpcError) -> grpc.aio.AioRpcError:
        """``exc``, or the error the server actually sent if ``exc`` is the overwrite."""
        if exc.code() != grpc.StatusCode.INTERNAL or self.status is None:
            return exc
        code, details = self.status
        if code in (grpc.StatusCode.OK, grpc.StatusCode.INTERNAL):
            return exc
        return grpc.aio.AioRpcError(
            code, exc.initial_metadata(), exc.trailing_metadata(), details=details
        )
