"""Connection settings, read from ``RIVA_*`` environment variables.

This is the only module that reads the environment (with :mod:`asr.settings_legacy` for
deprecated names); everything else takes a :class:`RivaSettings` (or keyword arguments)
explicitly, and overrides it with :func:`with_overrides`. ``.env.example`` lists every
variable. Retries, the circuit breaker and the channel's keepalive are small frozen groups
nested in :class:`RivaSettings`, set as ``RIVA_<GROUP>__<FIELD>`` (``RIVA_RETRY__ATTEMPTS``).
The flat names they replace (``RIVA_RETRY_ATTEMPTS``) still work, with a warning naming
the new one; they are removed in the next minor release.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    NoDecode,
    SettingsConfigDict,
)

from .settings_legacy import FlatNamesAccepted

__all__ = [
    "BreakerSettings",
    "DEFAULT_PORT",
    "KeepaliveSettings",
    "RetrySettings",
    "RivaSettings",
    "keywords_given",
    "parse_metadata",
    "split_url",
    "with_overrides",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


def with_overrides(settings: ModelT, /, **changes: Any) -> ModelT:
    """``settings`` with ``changes`` applied, validated as the environment would be.

    The one way settings are overridden (the clients' keyword arguments, the CLI's
    flags): values are parsed like environment text (metadata as ``key=value``, paths as
    strings), and a group given as a mapping is merged field by field into the group in
    force, while a group given as a model replaces it.
    """
    if not changes:
        return settings
    values = settings.model_dump()
    for name, value in changes.items():
        if isinstance(value, dict) and isinstance(values.get(name), dict):
            value = values[name] | value
        values[name] = value
    return type(settings).model_validate(values)


def keywords_given(settings_cls: type[BaseModel], keywords: Mapping[str, Any]) -> dict[str, Any]:
    """Those of a function's ``keywords`` that name a field of ``settings_cls`` and are
    not ``None`` (which means "as the settings say"): the overrides a client was given."""
    fields = settings_cls.model_fields
    return {name: value for name, value in keywords.items() if name in fields and value is not None}


class RetrySettings(BaseModel):
    """How a call that failed on a transient error is tried again (``RIVA_RETRY__*``).

    Attributes:
        attempts: Attempts per call, the first included.
        initial_backoff: Upper bound in seconds of the first wait; each further wait's
            bound doubles, and the actual wait is drawn uniformly below it ("full jitter").
        max_backoff: Cap in seconds on any single wait.
        replay_buffer_seconds: Seconds of audio kept (at the stream's own rate and
            encoding) to replay a stream that fails before its first result; a stream that
            failed past this is not retried.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=4, ge=1, le=20)
    initial_backoff: float = Field(default=0.1, ge=0)
    max_backoff: float = Field(default=2.0, ge=0)
    replay_buffer_seconds: float = Field(default=30.0, ge=0)


class BreakerSettings(BaseModel):
    """When the circuit breaker of an endpoint opens (``RIVA_BREAKER__*``).

    Attributes:
        fail_max: Consecutive transient failures that open it.
        reset_timeout: Seconds it stays open before a trial call (a health check that
            finds the server SERVING lets one through sooner).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fail_max: int = Field(default=5, ge=1)
    reset_timeout: float = Field(default=30.0, gt=0)


class KeepaliveSettings(BaseModel):
    """How the channel keeps its connection and finds it again (``RIVA_KEEPALIVE__*``).

    Attributes:
        time: Seconds between keepalive pings on a connection, so idle streams survive
            proxies and a dead peer is noticed (``grpc.keepalive_time_ms``).
        timeout: Seconds a ping may go unanswered before the connection counts as dead
            (``grpc.keepalive_timeout_ms``).
        reconnect_backoff_max: Longest wait in seconds between attempts to reconnect to
            a server that went away (gRPC's own default grows to 120 s).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: float = Field(default=30.0, gt=0)
    timeout: float = Field(default=10.0, gt=0)
    reconnect_backoff_max: float = Field(default=2.0, ge=0.5, le=120)


def parse_metadata(value: Any) -> tuple[tuple[str, str], ...]:
    """Parse gRPC call metadata given as pairs, a mapping, JSON, or ``key=value`` text.

    Text takes ``key=value`` pairs separated by commas, semicolons or newlines, e.g.
    ``function-id=0da4...,authorization=Bearer nvapi-...``. Keys are lower-cased, as
    HTTP/2 requires.

    Raises:
        ValueError: A pair without ``=`` or an empty key.
    """
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("{", "[")):
            return parse_metadata(json.loads(text))
        pairs: list[tuple[str, str]] = []
        for item in text.replace(";", "\n").replace(",", "\n").splitlines():
            if not item.strip():
                continue
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"metadata entry {item.strip()!r} is not key=value")
            pairs.append((key.strip().lower(), val.strip()))
        return tuple(pairs)
    items = value.items() if isinstance(value, Mapping) else value
    result = []
    for pair in items:
        key, val = pair
        if not str(key).strip():
            raise ValueError("metadata keys must not be empty")
        result.append((str(key).strip().lower(), str(val)))
    return tuple(result)


# Name resolvers of gRPC C-core: a uri starting with one is passed to gRPC as it is.
_TARGET_SCHEMES = frozenset({"dns", "ipv4", "ipv6", "unix", "unix-abstract", "vsock", "xds"})

DEFAULT_PORT = 50051
"""Riva's gRPC port, the default of NVIDIA's client scripts (``--server localhost:50051``)."""

# URL schemes people paste for a gRPC endpoint, and whether each means TLS.
_URL_SCHEMES = {"http": False, "grpc": False, "https": True, "grpcs": True}


def _with_port(endpoint: str, default_port: int = DEFAULT_PORT) -> str:
    """``endpoint`` with ``default_port`` added when it names none (``[v6]`` kept)."""
    if endpoint.startswith("["):
        return endpoint if "]:" in endpoint else f"{endpoint}:{default_port}"
    try:
        ipaddress.IPv6Address(endpoint)
    except ValueError:
        pass
    else:
        return f"[{endpoint}]:{default_port}"
    return endpoint if ":" in endpoint else f"{endpoint}:{default_port}"


def split_url(uri: str) -> tuple[str, bool | None]:
    """Normalise a Riva endpoint as users write it.

    ``host`` gets Riva's port 50051 (gRPC itself would pick 443); ``http://``,
    ``grpc://``, ``https://`` and ``grpcs://`` URLs are accepted, the latter two meaning
    TLS (default port 443); gRPC targets with a resolver scheme (``dns:///...``,
    ``ipv4:...``) pass through unchanged.

    Returns:
        The ``host:port`` endpoints (comma-separated where several were given) and
        whether a URL scheme asked for TLS (``None``: it said nothing).

    Raises:
        ValueError: A URL with a path, or with a scheme that is not one of the above.
    """
    text = uri.strip()
    if text.split(":", 1)[0] in _TARGET_SCHEMES:
        return text, None
    if "://" not in text:
        return ",".join(_with_port(part.strip()) for part in text.split(",") if part.strip()), None
    url = urlsplit(text)
    if url.scheme not in _URL_SCHEMES:
        raise ValueError(
            f"{uri!r}: a Riva endpoint is host:port (or http://, https://, grpc://, grpcs://)"
        )
    if url.path not in ("", "/") or url.query or not url.hostname:
        raise ValueError(f"{uri!r}: a gRPC endpoint is host:port, without a path")
    tls = _URL_SCHEMES[url.scheme]
    return _with_port(url.netloc, 443 if tls else DEFAULT_PORT), tls


class RivaSettings(FlatNamesAccepted):
    """How to reach a Riva ASR endpoint.

    Attributes:
        uri: ``host:port`` of the Riva gRPC endpoint (port 50051 when omitted; an
            ``https://`` URL means TLS, see :func:`split_url`); several as
            ``ip:port,ip:port`` (balanced round robin); or any gRPC target such as
            ``dns:///riva-headless:50051`` (use with ``lb_policy="round_robin"``).
        use_ssl: Use TLS even without a custom root certificate (system roots).
        ssl_root_cert: PEM file of the CA that signed the server's certificate.
        ssl_client_cert: PEM client certificate for mutual TLS.
        ssl_client_key: PEM private key of ``ssl_client_cert``.
        ssl_target_name: Override the TLS server name checked against the certificate.
        metadata: Extra call metadata, e.g. ``function-id`` and
            ``authorization: Bearer <key>`` for NVIDIA's hosted endpoint.
        timeout: Deadline in seconds for unary calls (recognize, list models, health).
        stream_timeout: Deadline in seconds for a whole streaming call.
        max_message_bytes: Largest gRPC message sent or received.
        lb_policy: gRPC load-balancing policy across the addresses ``uri`` resolves to
            (``round_robin`` or ``pick_first``); several endpoints default to round robin.
        health_check: Ask each backend's ``grpc.health.v1`` service and send new calls
            only to those SERVING (with ``round_robin``).
        retry: Retries of calls and streams (``RIVA_RETRY__ATTEMPTS``...).
        breaker: The endpoint's circuit breaker (``RIVA_BREAKER__FAIL_MAX``...).
        keepalive: Keepalive pings and reconnection (``RIVA_KEEPALIVE__TIME``...).
    """

    model_config = SettingsConfigDict(
        env_prefix="RIVA_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    uri: str = "localhost:50051"
    use_ssl: bool = False
    ssl_root_cert: Path | None = None
    ssl_client_cert: Path | None = None
    ssl_client_key: Path | None = None
    ssl_target_name: str | None = None
    metadata: Annotated[tuple[tuple[str, str], ...], NoDecode] = ()
    timeout: float = Field(default=10.0, gt=0)
    stream_timeout: float = Field(default=3600.0, gt=0)
    max_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    lb_policy: str | None = None
    health_check: bool = False
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    keepalive: KeepaliveSettings = KeepaliveSettings()

    @model_validator(mode="before")
    @classmethod
    def _normalise_uri(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("uri"), str):
            uri, tls = split_url(data["uri"])
            data = data | {"uri": uri}
            if tls and not data.get("use_ssl"):
                data["use_ssl"] = True
        return data

    @field_validator("metadata", mode="before")
    @classmethod
    def _parse_metadata(cls, value: Any) -> tuple[tuple[str, str], ...]:
        return parse_metadata(value)

    @model_validator(mode="after")
    def _check_endpoints(self) -> RivaSettings:
        endpoints = self.endpoints
        if not endpoints:
            raise ValueError("uri names no endpoint")
        if len(endpoints) > 1:
            for endpoint in endpoints:
                host, _, port = endpoint.rpartition(":")
                try:
                    ipaddress.IPv4Address("127.0.0.1" if host == "localhost" else host)
                except ValueError:
                    raise ValueError(
                        f"{endpoint!r}: several endpoints must be IPv4 ip:port; for host "
                        "names use one dns:/// target that resolves to all of them"
                    ) from None
                if not port.isdigit():
                    raise ValueError(f"{endpoint!r} has no port")
        return self

    @model_validator(mode="after")
    def _check_tls(self) -> RivaSettings:
        if (self.ssl_client_cert is None) != (self.ssl_client_key is None):
            raise ValueError("ssl_client_cert and ssl_client_key must be given together")
        return self

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The ``host:port`` endpoints listed in ``uri`` (one unless comma-separated).

        A gRPC target with a scheme (``ipv4:``, ``dns:///``, ``unix:``...) counts as one.
        """
        if self.uri.split(":", 1)[0] in _TARGET_SCHEMES:
            return (self.uri.strip(),)
        return tuple(part.strip() for part in self.uri.split(",") if part.strip())

    @property
    def target(self) -> str:
        """The gRPC target for ``uri``: several endpoints become a static ``ipv4:`` list."""
        endpoints = self.endpoints
        if len(endpoints) == 1:
            return endpoints[0]
        return "ipv4:" + ",".join(e.replace("localhost:", "127.0.0.1:") for e in endpoints)

    @property
    def load_balancing(self) -> str | None:
        """The policy in force: ``lb_policy``, else round robin over several endpoints."""
        if self.lb_policy:
            return self.lb_policy
        return "round_robin" if len(self.endpoints) > 1 or self.health_check else None

    @property
    def tls(self) -> bool:
        """Whether the channel uses TLS."""
        return self.use_ssl or self.ssl_root_cert is not None or self.ssl_client_cert is not None
