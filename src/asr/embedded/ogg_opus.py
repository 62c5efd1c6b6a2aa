"""Streamed Ogg (RFC 3533) carrying Opus (RFC 7845), cut into packets as the bytes arrive."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ..errors import AudioFormatError
from .compressed import EMPTY, CompressedStream, Float32Array

__all__ = ["OggOpusStream"]

_OPUS_RATE = 48_000  # RFC 7845 section 4: Opus always decodes at 48 kHz
_MAX_PACKET = 1 << 20  # an Opus packet is at most 120 ms of 1275-byte frames (RFC 6716)
_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes | bytearray) -> int:
    """Ogg's CRC-32 (poly 0x04C11DB7, MSB first, no init or final XOR; RFC 3533 section 6).

    zlib's CRC-32 is the same polynomial bit-reflected: fed bit-reversed bytes and started
    and ended without its XOR, its result is Ogg's bit-reversed, at C speed.
    """
    reflected = ~zlib.crc32(page.translate(_BIT_REVERSED), 0xFFFFFFFF) & 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


@dataclass(slots=True)
class _Page:
    header_size: int
    size: int
    lacing: bytes
    eos: bool
    granule: int
    segment: int = 0  # the next lacing value to read
    body_read: int = 0  # bytes of the body read into packets


class OggOpusStream(CompressedStream):
    """An Ogg stream of one Opus logical bitstream: OpusHead, OpusTags, audio packets.

    Packets are decoded as soon as their bytes are in, before the rest of their page; the
    page's CRC is checked when it is whole. The pre-skip (RFC 7845 section 4.2) and the end
    trimming of the last page's granule position (section 4.4) are applied.
    """

    name = "Ogg Opus"

    def __init__(self) -> None:
        super().__init__()
        self._page: _Page | None = None
        self._serial: int | None = None
        self._sequence = 0
        self._packet = bytearray()
        self._in_packet = False  # the last segment read ended mid-packet
        self._packets = 0
        self._pre_skip = 0
        self._to_skip = 0
        self._emitted = 0  # samples after the pre-skip, for the end trimming
        self._ended = False

    def _parse(self, *, final: bool) -> list[Float32Array]:
        out: list[Float32Array] = []
        while True:
            if self._page is None and not self._page_header():
                break
            page = self._page
            assert page is not None
            while page.segment < len(page.lacing):
                length = page.lacing[page.segment]
                start = page.header_size + page.body_read
                if start + length > len(self._buffer):
                    break
                if self._packets != 1:  # OpusTags may carry pictures: not held
                    self._packet += self._buffer[start : start + length]
                    if len(self._packet) > _MAX_PACKET:
                        raise AudioFormatError(
                            f"corrupt Ogg audio: a packet of over {_MAX_PACKET} bytes"
                        )
                page.segment += 1
                page.body_read += length
                self._in_packet = length == 255  # a segment of 255 bytes continues it
                if not self._in_packet:
                    out.append(self._on_packet(page))
            if len(self._buffer) < page.size:
                break
            if _ogg_crc(self._buffer[:22] + bytes(4) + self._buffer[26 : page.size]) != (
                int.from_bytes(self._buffer[22:26], "little")
            ):
                raise AudioFormatError(
                    f"corrupt Ogg audio: the page at byte {self._offset} fails its CRC"
                )
            self._consume(page.size)
            self._page = None
        if final and self._buffer:
            raise AudioFormatError(
                f"the Ogg audio is truncated: it ends inside the page at byte {self._offset}"
            )
        if final and (self._in_packet or (self._offset and self._codec is None)):
            raise AudioFormatError("the Ogg audio is truncated: it ends inside an Opus packet")
        return out

    def _page_header(self) -> bool:
        """Parse the page header at the buffer start (section 6); False until it is in."""
        buf = self._buffer
        if len(buf) >= 4 and buf[:4] != b"OggS":
            raise AudioFormatError(f"corrupt Ogg audio: no page starts at byte {self._offset}")
        if len(buf) < 27 or len(buf) < 27 + buf[26]:
            return False
        flags, serial = buf[5], int.from_bytes(buf[14:18], "little")
        sequence = int.from_bytes(buf[18:22], "little")
        if buf[4] != 0:
            raise AudioFormatError(f"unsupported Ogg page version {buf[4]}")
        if self._ended or (self._serial is not None and serial != self._serial):
            raise AudioFormatError("chained or multiplexed Ogg streams are not supported")
        if self._serial is None and not flags & 2:
            raise AudioFormatError("the Ogg audio does not start with a beginning-of-stream page")
        if self._serial is not None and sequence != self._sequence:
            raise AudioFormatError(
                f"corrupt Ogg audio: page {self._sequence} is missing (got page {sequence})"
            )
        if bool(flags & 1) != self._in_packet:
            raise AudioFormatError(
                f"corrupt Ogg audio: the page at byte {self._offset} does not continue the "
                "packet before it"
            )
        self._serial, self._sequence = serial, sequence + 1
        self._ended = bool(flags & 4)
        lacing = bytes(buf[27 : 27 + buf[26]])
        self._page = _Page(
            header_size=27 + len(lacing),
            size=27 + len(lacing) + sum(lacing),
            lacing=lacing,
            eos=self._ended,
            granule=int.from_bytes(buf[6:14], "little", signed=True),
        )
        return True

    def _on_packet(self, page: _Page) -> Float32Array:
        packet, index = bytes(self._packet), self._packets
        self._packet.clear()
        self._packets += 1
        if index == 0:
            self._opus_head(packet)
            return EMPTY
        if index == 1 or not packet:  # OpusTags (section 5.2); empty packets carry nothing
            return EMPTY
        samples = self._decode(packet)
        skip = min(self._to_skip, samples.size)
        samples, self._to_skip = samples[skip:], self._to_skip - skip
        if page.eos and page.granule >= 0:
            samples = samples[: max(0, page.granule - self._pre_skip - self._emitted)]
        self._emitted += samples.size
        return samples

    def _opus_head(self, packet: bytes) -> None:
        """The identification header (RFC 7845 section 5.1)."""
        if not packet.startswith(b"OpusHead"):
            kind = "Vorbis" if packet[1:7] == b"vorbis" else "not Opus"
            raise AudioFormatError(
                f"the Ogg audio is {kind}: only Opus is supported in Ogg (OGGOPUS)"
            )
        if len(packet) < 19 or packet[8] >> 4 or not packet[9]:
            raise AudioFormatError("the Ogg Opus identification header (OpusHead) is invalid")
        self._pre_skip = self._to_skip = int.from_bytes(packet[10:12], "little")
        # FFmpeg would drop the pre-skip itself; zeroed, it is dropped here, where the end
        # trimming that depends on it is done too.
        self._open("opus", packet[:10] + bytes(2) + packet[12:], _OPUS_RATE)
