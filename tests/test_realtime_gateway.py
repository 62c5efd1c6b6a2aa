"""NVIDIA's realtime transcription API on a real gateway, to the real embedded Riva server.

NVIDIA's own client (``riva.client.realtime.RealtimeClientASR``, nvidia-riva-client 2.27)
runs unchanged with the ``args`` its script ``scripts/asr/realtime_asr_client.py`` parses,
in a thread of its own (it posts with blocking ``requests``); and the POST route that
answers it. A plain ``websockets`` client covers the edges in the
``test_realtime_gateway_*`` modules: bad events, refusals, Riva down, ``force_eou``,
back-pressure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asr_server.app import GatewayServer
from asr_server.certs import write_self_signed
from asr_server.realtime import TranscriptionSession
from asr_server.routes_realtime import SESSIONS_PATH
from asr_server.tokens import verify_token

from .conftest import ServerThread, scaled
from .helpers import API_KEY, SECRET, gateway, get_token, http
from .realtime_support import nvidia_transcribe, sample, shown_transcripts, started, wer


@pytest.fixture
def client_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="riva.client.realtime")
    yield caplog


async def test_nvidia_client_transcribes_jfk_without_keys(
    riva_server: ServerThread, client_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    out = tmp_path / "jfk.txt"
    async with gateway(riva_server.uri) as gw:
        client = await nvidia_transcribe(gw, "--output-text", str(out), "--word-time-offsets")
        assert started(gw) == 1
        assert started(gw, "websocket") == 0
        ended = sample(
            gw,
            "asr_gateway_sessions_ended_total",
            interface="realtime",
            close_code="1000",
            by="server",
        )
        assert ended == 1
        audio = sample(gw, "asr_gateway_audio_seconds_total", interface="realtime")
        assert audio == pytest.approx(11.0)
        for latency in ("first_partial", "final"):
            name = f"asr_gateway_{latency}_latency_seconds_count"
            assert sample(gw, name, interface="realtime") >= 1
    texts = shown_transcripts(client_log)
    assert wer(" ".join(texts)) <= 0.15, texts
    # The script saves the last completed only (NVIDIA's client keeps no other).
    assert client.final_transcript == texts[-1]
    assert out.read_text() == texts[-1]
    assert client.is_config_updated
    assert client.session_config["input_audio_format"] == "none"  # the WAV file's bytes


async def test_nvidia_client_with_api_keys_mints_a_client_secret(
    riva_server: ServerThread, client_log: pytest.LogCaptureFixture
) -> None:
    async with gateway(riva_server.uri, api_keys=(API_KEY,), token_secret=SECRET) as gw:
        await nvidia_transcribe(gw, "--mint-api-key", API_KEY)
        assert wer(" ".join(shown_transcripts(client_log))) <= 0.15
        assert started(gw) == 1
        # Without the key, or with a wrong one, the POST is refused and the script says why.
        for argv in ((), ("--mint-api-key", "wrong")):
            with pytest.raises(Exception, match=r"Session authentication failed \(HTTP 401"):
                await nvidia_transcribe(gw, *argv)
        assert started(gw) == 1


async def test_nvidia_client_over_tls(
    riva_server: ServerThread, client_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """``--use-ssl --ssl-root-cert``: the POST over HTTPS, the WebSocket over WSS."""
    cert, key = write_self_signed(tmp_path / "certs")
    async with gateway(riva_server.uri, cert=(cert, key)) as gw:
        await nvidia_transcribe(gw, "--use-ssl", "--ssl-root-cert", str(cert))
        assert started(gw) == 1
    assert wer(" ".join(shown_transcripts(client_log))) <= 0.15


# --- the POST route ---------------------------------------------------------------------


async def post_session(
    gw: GatewayServer, key: str | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"

    def post() -> tuple[int, dict[str, str], bytes]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            gw.base_url + SESSIONS_PATH, data=b"{}", headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=scaled(10)) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    status, head, body = await asyncio.to_thread(post)
    return status, head, json.loads(body)


async def test_post_session_object_and_openapi(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw:
        status, head, body = await post_session(gw)
        assert status == 200 and head["Cache-Control"] == "no-store"
        session = TranscriptionSession.model_validate(body)
        assert session.client_secret is None
        assert session.id.startswith("sess_")
        assert session.input_audio_transcription.language == "en-US"
        _, _, raw = await asyncio.to_thread(http, gw.base_url + "/openapi.json")
    paths = json.loads(raw)["paths"]
    answer = paths[SESSIONS_PATH]["post"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/TranscriptionSession"}
    assert set(paths[SESSIONS_PATH]["post"]["responses"]) >= {"200", "401", "429"}

    async with gateway(riva_server.uri, api_keys=(API_KEY,), token_secret=SECRET) as gw:
        status, head, body = await post_session(gw)
        assert status == 401 and head["WWW-Authenticate"] == 'Bearer realm="asr"'
        now = time.time()
        status, _, body = await post_session(gw, API_KEY)
        assert status == 200
        secret = body["client_secret"]
        claims = verify_token(SECRET.encode(), secret["value"], now=now)
        assert secret["expires_at"] == claims.expires_at
        assert abs(secret["expires_at"] - (now + gw.settings.token_ttl_seconds)) <= 2
        # Failures count in the one back-off of every route: 429 here, and on /v1/tokens.
        for _ in range(9):
            assert (await post_session(gw, "wrong"))[0] == 401
        status, head, body = await post_session(gw, API_KEY)
        assert status == 429 and int(head["Retry-After"]) >= 1, body
        assert (await get_token(gw.base_url, API_KEY))[0] == 429
