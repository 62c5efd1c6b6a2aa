"""TLS and mutual TLS to a Riva endpoint, with certificates made in the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from asr import ConfigurationError, RetrySettings, RivaASRClient, UnavailableError

from .scripted import Script, start_scripted
from .tls import CertificateAuthority, Pem

ONE_ATTEMPT = RetrySettings(attempts=1)  # a refused handshake fails at once


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Pem]:
    ca = CertificateAuthority(tmp_path)
    rogue = CertificateAuthority(tmp_path, "rogue CA")
    return {
        "ca": ca.pem,
        "server": ca.leaf("server", server=True),
        "client": ca.leaf("client", server=False),
        "rogue_client": rogue.leaf("rogue", server=False),
    }


async def _serve(pki: dict[str, Pem], *, mutual: bool) -> tuple[grpc.aio.Server, int]:
    credentials = grpc.ssl_server_credentials(
        [(pki["server"].key.read_bytes(), pki["server"].cert.read_bytes())],
        root_certificates=pki["ca"].cert.read_bytes() if mutual else None,
        require_client_auth=mutual,
    )
    return await start_scripted(Script(steps=["ok"]), credentials)


@pytest.fixture
async def tls_port(pki: dict[str, Pem]) -> AsyncIterator[int]:
    server, port = await _serve(pki, mutual=False)
    yield port
    await server.stop(None)


@pytest.fixture
async def mtls_port(pki: dict[str, Pem]) -> AsyncIterator[int]:
    server, port = await _serve(pki, mutual=True)
    yield port
    await server.stop(None)


async def test_tls_with_custom_root(pki: dict[str, Pem], tls_port: int) -> None:
    async with RivaASRClient(uri=f"localhost:{tls_port}", ssl_root_cert=pki["ca"].cert) as c:
        assert [m.name for m in await c.list_models()] == ["scripted-asr"]


async def test_plaintext_client_cannot_talk_to_tls_server(tls_port: int) -> None:
    async with RivaASRClient(uri=f"localhost:{tls_port}", retry=ONE_ATTEMPT) as client:
        with pytest.raises(UnavailableError):
            await client.list_models(timeout=2)


async def test_mtls_accepts_client_signed_by_ca(pki: dict[str, Pem], mtls_port: int) -> None:
    async with RivaASRClient(
        uri=f"localhost:{mtls_port}",
        ssl_root_cert=pki["ca"].cert,
        ssl_client_cert=pki["client"].cert,
        ssl_client_key=pki["client"].key,
    ) as client:
        assert await client.health()
        assert await client.list_models()


@pytest.mark.parametrize("who", ["none", "rogue_client"])
async def test_mtls_refuses_client_without_valid_certificate(
    pki: dict[str, Pem], mtls_port: int, who: str
) -> None:
    pem = None if who == "none" else pki[who]
    async with RivaASRClient(
        uri=f"localhost:{mtls_port}",
        ssl_root_cert=pki["ca"].cert,
        ssl_client_cert=pem.cert if pem else None,
        ssl_client_key=pem.key if pem else None,
        retry=ONE_ATTEMPT,
    ) as client:
        assert await client.health() is False
        with pytest.raises(UnavailableError):
            await client.list_models(timeout=2)


async def test_missing_certificate_file_is_a_configuration_error(tmp_path: Path) -> None:
    client = RivaASRClient(uri="localhost:1", ssl_root_cert=tmp_path / "absent.pem")
    with pytest.raises(ConfigurationError, match="absent.pem"):
        await client.list_models()
