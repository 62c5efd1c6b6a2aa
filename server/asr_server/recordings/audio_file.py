"""An audio file written as it arrives, without blocking the event loop.

Chunks are handed to :meth:`WavWriter.write`; a background task writes what accumulated in
one ``os.write`` in a thread, so the bytes reach the kernel within a moment of arriving
(a gateway killed with SIGKILL loses nothing that was written; :func:`.wav.repair_wav`
fixes the header at the next start). :meth:`WavWriter.close` fixes the header and fsyncs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from .wav import HEADER_BYTES, wav_header

__all__ = ["WavWriter"]

_MAX_PENDING = 4 * 1024 * 1024
"""Bytes queued before :meth:`WavWriter.write` waits for the disk (backpressure)."""


class WavWriter:
    """Appends PCM16 mono to a WAV file.

    Use :meth:`create`; then :meth:`write` chunks and :meth:`close` once.
    """

    def __init__(self, path: Path, fd: int, sample_rate: int) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.data_bytes = 0
        self._fd = fd
        self._pending = bytearray()
        self._flusher: asyncio.Task[None] | None = None
        self._error: OSError | None = None
        self._closed = False

    @classmethod
    async def create(cls, path: Path, sample_rate: int) -> WavWriter:
        """Create ``path`` (and its folder) with a header of zero length."""

        def create() -> int:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, wav_header(sample_rate))
            return fd

        return cls(path, await asyncio.to_thread(create), sample_rate)

    @property
    def seconds(self) -> float:
        """Audio accepted so far, in seconds."""
        return self.data_bytes / (2 * self.sample_rate)

    async def write(self, pcm: bytes) -> None:
        """Queue ``pcm`` (PCM16 mono at ``sample_rate``) for the file.

        Raises:
            OSError: An earlier write failed (disk full, ...).
            RuntimeError: The file is closed.
        """
        if self._closed:
            raise RuntimeError(f"{self.path} is closed")
        if self._error is not None:
            raise self._error
        self._pending += pcm
        self.data_bytes += len(pcm)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="recording-writer")
        if len(self._pending) > _MAX_PENDING:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        while self._pending and self._error is None:
            data = bytes(self._pending)
            self._pending.clear()
            try:
                await asyncio.to_thread(_write_all, self._fd, data)
            except OSError as exc:
                self._error = exc

    async def close(self) -> int:
        """Write what is queued, fix the header, fsync and close; idempotent.

        Returns:
            The bytes of audio in the file.

        Raises:
            OSError: A write failed; the file holds what was written before.
        """
        if self._closed:
            return self.data_bytes
        self._closed = True
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await asyncio.to_thread(self._finish)
        if self._error is not None:
            raise self._error
        return self.data_bytes

    def _finish(self) -> None:
        try:
            written = os.fstat(self._fd).st_size - HEADER_BYTES
            self.data_bytes = written - written % 2
            os.pwrite(self._fd, wav_header(self.sample_rate, self.data_bytes), 0)
            os.fsync(self._fd)
        finally:
            os.close(self._fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
