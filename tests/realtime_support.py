"""What the tests of NVIDIA's realtime API on a real gateway share: NVIDIA's own client as
its script ``scripts/asr/realtime_asr_client.py`` runs it, a plain ``websockets`` client's
events checked against the models, and the gateway's metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import pytest
from riva.client.argparse_utils import (
    add_asr_config_argparse_parameters,
    add_connection_argparse_parameters,
    add_realtime_config_argparse_parameters,
)
from riva.client.asr import AudioChunkFileIterator, get_wav_file_parameters
from riva.client.realtime import RealtimeClientASR
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from asr.audio import chunk_bytes
from asr.wer import normalize, word_error_rate
from asr_server.app import GatewayServer
from asr_server.realtime import server_event_adapter
from asr_server.routes_realtime import REALTIME_PATH

from .conftest import scaled
from .helpers import JFK, receive_all, receive_one
from .realtime_protocol_support import append, event

REFERENCE = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)

# --- NVIDIA's client, as its script runs it ----------------------------------------------


def script_args(*argv: str) -> argparse.Namespace:
    """The namespace ``realtime_asr_client.py``'s ``parse_args`` builds from ``argv``:
    its own arguments, then riva.client's connection, ASR and realtime groups."""
    parser = argparse.ArgumentParser()
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--input-file")
    group.add_argument("--mic", action="store_true")
    group.add_argument("--list-devices", action="store_true")
    parser.add_argument("--duration", type=int, default=None)
    parser.add_argument("--input-device", type=int, default=None)
    parser.add_argument("--sample-rate-hz", type=int, default=16000)
    parser.add_argument("--num-channels", type=int, default=1)
    parser.add_argument("--file-streaming-chunk", type=int, default=1600)
    parser.add_argument("--output-text", type=str)
    parser.add_argument("--prompt", default="")
    parser = add_connection_argparse_parameters(parser)
    parser.set_defaults(server="localhost:9000")
    parser = add_asr_config_argparse_parameters(
        parser, max_alternatives=True, profanity_filter=True, word_time_offsets=True
    )
    parser = add_realtime_config_argparse_parameters(parser)
    args: argparse.Namespace = parser.parse_args(list(argv))
    return args


async def _run_transcription(args: argparse.Namespace) -> Any:
    """The script's ``create_audio_iterator`` (file input) and ``run_transcription``."""
    wav_parameters = get_wav_file_parameters(args.input_file)
    if wav_parameters is not None:
        args.sample_rate_hz = wav_parameters["framerate"]
        args.num_channels = wav_parameters["nchannels"]
    chunks = AudioChunkFileIterator(args.input_file, args.file_streaming_chunk, delay_callback=None)
    client = RealtimeClientASR(args=args)
    try:
        await client.connect()
        await asyncio.gather(client.send_audio_chunks(chunks), client.receive_responses())
        if args.output_text:
            client.save_responses(args.output_text)
    finally:
        await client.disconnect()
    return client


async def nvidia_transcribe(gw: GatewayServer, *argv: str) -> Any:
    """NVIDIA's client on JFK against ``gw``, on its own event loop in a thread."""
    args = script_args("--input-file", str(JFK), "--server", f"127.0.0.1:{gw.port}", *argv)
    async with asyncio.timeout(scaled(120)):
        return await asyncio.to_thread(asyncio.run, _run_transcription(args))


def shown_transcripts(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The completed transcripts NVIDIA's client logged, in order. The last result may
    repeat the last completed (same item, see ``realtime.transcript``): counted once."""
    texts: list[str] = []
    for record in caplog.records:
        if record.name != "riva.client.realtime" or not isinstance(record.args, tuple):
            continue
        text = str(record.args[0]) if record.args else ""
        if record.msg == "Interim Transcript: %s":
            texts.append(text)
        elif record.msg == "Final Transcript: %s" and (not texts or texts[-1] != text):
            texts.append(text)
    return texts


def wer(text: str, reference: str = REFERENCE) -> float:
    return word_error_rate([normalize(reference)], [normalize(text)])


def sample(gw: GatewayServer, name: str, **labels: str) -> float:
    """A sample of the gateway's metrics (0 when absent)."""
    value = gw.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def started(gw: GatewayServer, interface: str = "realtime") -> float:
    return sample(gw, "asr_gateway_sessions_started_total", interface=interface)


# --- a plain websockets client ----------------------------------------------------------


def realtime_url(gw: GatewayServer, query: str = "?intent=transcription") -> str:
    return "ws" + gw.base_url.removeprefix("http") + REALTIME_PATH + query


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    return await receive_one(ws, server_event_adapter, timeout=60)


async def events_until_close(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every event until the server closes, each checked against the models."""
    return await receive_all(ws, server_event_adapter)


async def send_pcm(ws: ClientConnection, pcm: bytes, *, chunk_ms: int = 100) -> None:
    """Append and commit ``pcm`` chunk by chunk, as fast as the socket takes it."""
    with contextlib.suppress(ConnectionClosed):
        for chunk in chunk_bytes(pcm, chunk_ms):
            await ws.send(append(chunk))
            await ws.send(event("input_audio_buffer.commit"))


def refused_with(events: list[dict[str, Any]], ws: ClientConnection, code: str, close: int) -> str:
    """The connection was refused: one ``error`` of ``code``, then close ``close``."""
    assert [e["type"] for e in events] == ["error"], events
    assert events[0]["error"]["code"] == code
    assert ws.close_code == close and ws.close_reason == code
    message: str = events[0]["error"]["message"]
    return message


def completed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kind = "conversation.item.input_audio_transcription.completed"
    return [e for e in events if e["type"] == kind]
