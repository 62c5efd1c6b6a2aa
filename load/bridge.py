"""NVIDIA's Node WebSocket bridge (``nvidia-riva/websocket-bridge``) as a comparison peer.

The bridge is not part of this project and nothing of it is copied here: get it beside
the repository and install its dependencies::

    git clone https://github.com/nvidia-riva/websocket-bridge /work/bridge
    cd /work/bridge && npm install --ignore-scripts
    npm install --no-save --ignore-scripts grpc@npm:@grpc/grpc-js@1.7.3

(Its ``riva_client/asr.js`` requires the old native ``grpc`` package, which does not
build on Node 20; the last line puts ``@grpc/grpc-js``, whose API it also names in a
comment there, under that name.) :func:`start_bridge` runs ``node server.js`` in that
folder with ``RIVA_API_URL`` and ``PORT`` from the environment, as its README configures
it; it serves HTTPS/WSS with the self-signed certificate in its ``certificates/``.

Its client protocol is AudioCodes VoiceAI Connect's (``modules/audiocodes.js``): a text
frame ``{"type": "start", "sampleRateHz": 16000, "language": "en-US"}`` (answered
``started``), the audio as binary frames (PCM16), then ``{"type": "stop"}`` (answered
``end``). Each Riva partial comes back as ``{"type": "hypothesis", "alternatives":
[{"text": ...}]}``, a final as ``recognition``. ``stop`` does not end the gRPC call's audio
(the bridge ends it only when the WebSocket closes), so a session's last final never
reaches the client: :class:`BridgeTransport` yields partials, and finals only as far as
Riva sends them before the end.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asr.errors import ServerError
from asr.events import Final, Partial
from asr.options import RecognitionOptions

from .procs import HOST, ServerProcess
from .realtime_client import messages_while

__all__ = ["BridgeTransport", "start_bridge"]


def _free_port() -> int:
    # The bridge prints the port it was given, not the one it bound: ask the kernel for a
    # free one first (another process could take it in between; then the start fails).
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


async def start_bridge(folder: Path, riva_uri: str, *, timeout: float = 60.0) -> ServerProcess:
    """``node server.js`` in ``folder`` (a checkout with ``node_modules``) in front of
    ``riva_uri``; its address is ``wss://127.0.0.1:PORT``.

    Raises:
        RuntimeError: No ``node``, no ``node_modules``, or the bridge did not start.
    """
    node = shutil.which("node")
    if node is None or not (folder / "node_modules").is_dir():
        raise RuntimeError(f"the bridge needs node and {folder}/node_modules (npm install)")
    port = _free_port()
    server = ServerProcess(
        "bridge",
        [node, "server.js"],
        r"Running server on port (\d+)",
        env={"RIVA_API_URL": riva_uri, "PORT": str(port)},
        cwd=folder,
    )
    await server.start(timeout)
    server.address = f"wss://{HOST}:{port}"
    return server


class BridgeTransport:
    """The runner's transport over the bridge's AudioCodes protocol.

    Args:
        url: ``wss://HOST:PORT`` of :func:`start_bridge` (its certificate is self-signed
            and not checked: loopback only).
    """

    name = "bridge"

    def __init__(self, url: str) -> None:
        self.url = url
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE

    async def stream(
        self, audio: AsyncIterator[bytes], options: RecognitionOptions
    ) -> AsyncIterator[Partial | Final]:
        """Stream 16 kHz PCM16 mono ``audio`` as one session; yield its results.

        Raises:
            asr.errors.ServerError: The bridge did not start the session.
        """
        rate = options.sample_rate_hz or 16_000
        async with connect(self.url, ssl=self._tls, compression=None, max_size=None) as ws:
            start = {"type": "start", "sampleRateHz": rate, "language": options.language_code}
            await ws.send(json.dumps(start))
            if json.loads(await ws.recv()).get("type") != "started":
                raise ServerError("the bridge did not answer start with started")

            stopped = False

            async def send() -> None:
                nonlocal stopped
                with contextlib.suppress(ConnectionClosed):
                    async for chunk in audio:
                        await ws.send(chunk)
                    stopped = True
                    await ws.send('{"type":"stop"}')

            async with contextlib.aclosing(messages_while(ws, send())) as messages:
                async for message in messages:
                    kind = message.get("type")
                    if kind == "hypothesis":
                        yield Partial(text=message["alternatives"][0]["text"])
                    elif kind == "recognition":
                        yield Final(text=message["alternatives"][0]["text"])
                    elif kind == "end" and stopped:
                        break
