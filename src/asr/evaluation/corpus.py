"""Speech sets on disk (a folder of audio plus ``refs.jsonl``) and noisy variants."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..audio import read_audio, resample

__all__ = ["Clip", "SPEECH_FIXTURES_ENV", "load_corpus", "mix_noise", "speech_fixtures"]

SPEECH_FIXTURES_ENV = "ASR_SPEECH_FIXTURES"
"""The environment variable naming the folder that holds the speech sets."""

NoiseKind = Literal["white", "pink"]


@dataclass(frozen=True, slots=True)
class Clip:
    """One recording and what was said in it."""

    id: str
    path: Path
    text: str

    def samples(self) -> npt.NDArray[np.float32]:
        """Mono float32 samples at 16 kHz."""
        samples, rate = read_audio(self.path)
        return resample(samples, rate)


def speech_fixtures(folder: str | Path | None = None) -> Path:
    """The folder of speech sets: ``folder`` if given, else ``$ASR_SPEECH_FIXTURES``.

    Raises:
        FileNotFoundError: Neither names an existing folder.
    """
    chosen = folder if folder is not None else os.environ.get(SPEECH_FIXTURES_ENV)
    if not chosen:
        raise FileNotFoundError(
            f"no speech sets given: pass a folder (--speech) or set {SPEECH_FIXTURES_ENV}"
        )
    path = Path(chosen)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder of speech sets")
    return path


def load_corpus(folder: str | Path) -> list[Clip]:
    """Read ``refs.jsonl`` (one ``{"audio": ..., "text": ...}`` object a line) in ``folder``.

    Raises:
        FileNotFoundError: No ``refs.jsonl`` in ``folder``.
    """
    folder = Path(folder)
    clips = []
    for line in (folder / "refs.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            clips.append(
                Clip(id=Path(row["audio"]).stem, path=folder / row["audio"], text=row["text"])
            )
    return clips


def _noise(kind: NoiseKind, n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    # Pink (1/f power): shape white noise's spectrum by 1/sqrt(f).
    spectrum = np.fft.rfft(white)
    freqs = np.arange(len(spectrum), dtype=np.float64)
    freqs[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(freqs), n)


def mix_noise(
    samples: npt.NDArray[np.float32], snr_db: float, kind: NoiseKind = "white", seed: int = 0
) -> npt.NDArray[np.float32]:
    """Add noise at ``snr_db`` relative to the clip's own power; deterministic per seed."""
    rng = np.random.default_rng(seed)
    noise = _noise(kind, len(samples), rng)
    signal_power = float(np.mean(samples.astype(np.float64) ** 2))
    noise_power = float(np.mean(noise**2))
    scale = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    mixed: npt.NDArray[np.float64] = samples + noise * scale
    peak = float(np.max(np.abs(mixed))) or 1.0
    return np.asarray(mixed / max(1.0, peak), dtype=np.float32)


def join_clips(
    clips: list[Clip], gap_seconds: float = 2.0, id: str = "joined"
) -> tuple[Clip, npt.NDArray[np.float32]]:
    """One long multi-utterance recording: ``clips`` in order with silence between.

    Returns:
        A clip whose text is the references joined, and its samples (the clip's ``path``
        is the first clip's, for reference only).
    """
    gap = np.zeros(int(gap_seconds * 16_000), np.float32)
    parts: list[npt.NDArray[np.float32]] = []
    for clip in clips:
        parts += [clip.samples(), gap]
    joined = Clip(id=id, path=clips[0].path, text=" ".join(c.text for c in clips))
    return joined, np.concatenate(parts).astype(np.float32)
