"""What the tests of the embedded server and of Riva's own clients share: the JFK clip
with its normalised reference, and how they read results and errors of NVIDIA's client.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import riva.client
import riva.client.proto.riva_asr_pb2 as rasr

from .helpers import JFK as JFK_CLIP
from .helpers import JFK_WORDS

__all__ = ["JFK", "JFK_WAV", "finals_text", "rpc_error", "streaming_config"]

JFK_WAV = JFK_CLIP
JFK = JFK_WORDS


def finals_text(results: list[tuple[float, rasr.StreamingRecognitionResult]]) -> str:
    # Riva's finals end with a space, so its clients concatenate them as they come.
    return "".join(r.alternatives[0].transcript for _, r in results if r.is_final).strip()


def rpc_error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        if callable(call):
            call()
    return info.value


def streaming_config(path: Path | None = None, **kwargs: object) -> rasr.StreamingRecognitionConfig:
    interim = bool(kwargs.pop("interim_results", True))
    kwargs.setdefault("language_code", "en-US")
    config = riva.client.StreamingRecognitionConfig(
        config=riva.client.RecognitionConfig(max_alternatives=1, **kwargs),
        interim_results=interim,
    )
    if path is not None:
        riva.client.add_audio_file_specs_to_config(config, path)
    return config
