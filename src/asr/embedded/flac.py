"""Streamed native FLAC (RFC 9639) cut into frames as the bytes arrive.

FFmpeg's own FLAC parser is not used: it holds back about ten frames (2.5 s at 16 kHz)
before it returns the first. Here a frame ends where the next valid frame header starts
and the CRC-16 of the bytes before it checks, one frame of delay.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AudioFormatError
from .compressed import CompressedStream, Float32Array

__all__ = ["FlacStream"]


def _crc_table(poly: int, bits: int) -> tuple[int, ...]:
    top, mask = 1 << (bits - 1), (1 << bits) - 1
    table = []
    for byte in range(256):
        crc = byte << (bits - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & top else crc << 1
        table.append(crc & mask)
    return tuple(table)


_CRC8 = _crc_table(0x07, 8)  # RFC 9639 section 9.1.8: frame header
_CRC16 = _crc_table(0x8005, 16)  # section 9.3: whole frame, so a frame's CRC-16 ends at 0
_MAX_HEADER = 16  # sync 2, codes 2, coded number <= 7, block size <= 2, rate <= 2, CRC 1


def _crc8(data: bytes | bytearray) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


@dataclass(frozen=True, slots=True)
class _FrameHeader:
    number: int
    """Frame number (fixed block size) or first sample number (variable)."""
    block_size: int
    variable: bool

    @property
    def next_number(self) -> int:
        return self.number + (self.block_size if self.variable else 1)


def _coded_number(buf: bytearray, pos: int) -> tuple[int, int] | None:
    """The UTF-8-like coded frame/sample number at ``pos`` and its length (section 9.1.5)."""
    first = buf[pos]
    if first < 0x80:
        return first, 1
    # n leading one bits then a zero give the length n (2..7) of the whole number.
    length = next((n for n in range(2, 8) if first >> (7 - n) == (1 << n) - 1 << 1), 0)
    if not length or pos + length > len(buf):
        return None
    value = first & (0x7F >> length)
    for byte in buf[pos + 1 : pos + length]:
        if byte >> 6 != 0b10:
            return None
        value = value << 6 | byte & 0x3F
    return value, length


def _frame_header(buf: bytearray, pos: int) -> _FrameHeader | None:
    """The frame header at ``pos`` if one is there, its CRC-8 right (section 9.1)."""
    if len(buf) < pos + 6 or buf[pos] != 0xFF or buf[pos + 1] & 0xFE != 0xF8:
        return None
    size_code, rate_code = buf[pos + 2] >> 4, buf[pos + 2] & 0x0F
    channels, depth = buf[pos + 3] >> 4, buf[pos + 3] >> 1 & 7
    if not size_code or rate_code == 15 or channels > 10 or depth == 3 or buf[pos + 3] & 1:
        return None
    coded = _coded_number(buf, pos + 4)
    if coded is None:
        return None
    number, end = coded[0], pos + 4 + coded[1]
    extra = {6: 1, 7: 2}.get(size_code, 0)
    # Table 14: 192, 576 << 0..3, a value after the number (6, 7), 256 << 0..7.
    block_size = 192 if size_code == 1 else 576 << (size_code - 2) if size_code < 6 else 0
    block_size = 256 << (size_code - 8) if size_code >= 8 else block_size
    if extra:
        block_size = int.from_bytes(buf[end : end + extra], "big") + 1
    end += extra + {12: 1, 13: 2, 14: 2}.get(rate_code, 0)
    if end >= len(buf) or _crc8(buf[pos:end]) != buf[end]:
        return None
    return _FrameHeader(number, block_size, variable=bool(buf[pos + 1] & 1))


class FlacStream(CompressedStream):
    """A native FLAC stream: ``fLaC``, metadata blocks, then frames (RFC 9639).

    A frame ends where the next valid frame header starts and the CRC-16 of the bytes
    before it checks, so each frame is decoded as soon as the next one begins.
    """

    name = "FLAC"

    def __init__(self) -> None:
        super().__init__()
        self._header_done = False
        self._skip = 0  # bytes of a metadata block still to drop (pictures need no buffer)
        self._last_block = False
        self._frame: _FrameHeader | None = None
        self._crc, self._crc_end, self._scan = 0, 0, 0
        self._max_frame = 0

    def _parse(self, *, final: bool) -> list[Float32Array]:
        if not self._header_done and not self._metadata(final=final):
            return []
        out = []
        while self._buffer:
            frame = self._frame_end(final=final)
            if frame is None:
                break
            out.append(self._decode(frame))
        return out

    def _metadata(self, *, final: bool) -> bool:
        """Read the marker and metadata blocks (section 8); True once the frames start."""
        buf = self._buffer
        while not self._header_done:
            if self._skip:
                dropped = min(self._skip, len(buf))
                self._consume(dropped)
                self._skip -= dropped
                if self._skip:
                    break
                self._header_done = self._last_block
                continue
            if self._offset == 0:
                if not b"fLaC".startswith(bytes(buf[:4])):
                    raise AudioFormatError("FLAC audio must start with the 'fLaC' marker")
                if len(buf) < 4:
                    break
                self._consume(4)
            if len(buf) < 4:
                break
            last, kind, length = buf[0] >> 7 == 1, buf[0] & 0x7F, int.from_bytes(buf[1:4], "big")
            if self._codec is None:
                if kind != 0 or length < 34:
                    raise AudioFormatError("FLAC audio must begin with a STREAMINFO block")
                if len(buf) < 4 + length:
                    break
                self._streaminfo(bytes(buf[4:38]))
                self._consume(4 + length)
                self._header_done = last
            elif kind == 127:
                raise AudioFormatError(f"invalid FLAC metadata block at byte {self._offset}")
            else:
                self._consume(4)
                self._skip, self._last_block = length, last
                self._header_done = last and not length
        if not self._header_done and final and self._offset:
            raise AudioFormatError(
                "the FLAC audio is truncated: it ends inside its metadata, before any frame"
            )
        return self._header_done

    def _streaminfo(self, info: bytes) -> None:
        max_block = int.from_bytes(info[2:4], "big")
        bits = int.from_bytes(info[10:18], "big")
        rate, channels, depth = bits >> 44, (bits >> 41 & 7) + 1, (bits >> 36 & 31) + 1
        if rate == 0 or max_block < 16:
            raise AudioFormatError(
                f"the FLAC STREAMINFO is invalid: {rate} Hz, blocks of {max_block} samples"
            )
        # A frame is never larger than its samples stored verbatim (a side channel takes
        # one bit more); twice that bounds the bytes held while looking for its end.
        self._max_frame = 2 * max_block * (channels * depth + 1) // 8 + 1024
        self._open("flac", info, rate)

    def _frame_end(self, *, final: bool) -> bytes | None:
        """The next whole frame, taken off the buffer; None while it is incomplete."""
        buf = self._buffer
        if self._frame is None:
            if len(buf) < _MAX_HEADER and not final:
                return None
            self._frame = _frame_header(buf, 0)
            if self._frame is None:
                raise AudioFormatError(
                    "the FLAC audio is truncated or corrupt: no frame header at byte "
                    f"{self._offset}"
                )
            self._crc, self._crc_end, self._scan = 0, 0, 2
        while (pos := buf.find(b"\xff", self._scan)) >= 0:
            if len(buf) - pos < _MAX_HEADER and not final:
                break
            self._scan = pos + 1
            header = _frame_header(buf, pos)
            if header is None:
                continue
            crc = self._crc_to(pos)
            if crc == 0:
                return self._take(pos)
            if header.number == self._frame.next_number and header.variable == self._frame.variable:
                raise AudioFormatError(
                    f"corrupt FLAC audio: the frame at byte {self._offset} fails its CRC-16"
                )
        else:
            self._scan = max(self._scan, len(buf))
        if final:
            if self._crc_to(len(buf)) != 0:
                raise AudioFormatError(
                    f"the FLAC audio is truncated or corrupt: its last frame (at byte "
                    f"{self._offset}, {len(buf)} bytes) fails its CRC-16"
                )
            return self._take(len(buf))
        if len(buf) > self._max_frame:
            raise AudioFormatError(
                f"corrupt FLAC audio: no end found for the frame at byte {self._offset} "
                f"within {self._max_frame} bytes"
            )
        return None

    def _crc_to(self, end: int) -> int:
        """CRC-16 of the frame's bytes up to ``end``, carried on from the last call."""
        crc = self._crc
        for byte in self._buffer[self._crc_end : end]:
            crc = (crc << 8 & 0xFFFF) ^ _CRC16[crc >> 8 ^ byte]
        self._crc, self._crc_end = crc, end
        return crc

    def _take(self, end: int) -> bytes:
        self._frame = None
        return self._consume(end)
