"""The multipart body of an upload as it arrives: text fields collected, the file's bytes
yielded, over python-multipart's streaming parser (no whole-body spooling)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from .errors import InvalidRequestError, UploadTooLargeError

__all__ = ["FORM_BYTES", "StreamingForm"]

FORM_BYTES = 64 * 1024
"""What the fields and part headers together may add to the file's ``max_bytes``."""


class StreamingForm:
    """The multipart body as it arrives: text fields collected, the file's bytes yielded."""

    def __init__(self, body: AsyncIterable[bytes], boundary: bytes, max_bytes: int) -> None:
        self.fields: list[tuple[str, str]] = []
        self._body = aiter(body)
        self._bound, self._received, self._field_bytes = max_bytes + FORM_BYTES, 0, 0
        self._events: list[tuple[str, bytes]] = []
        self._header = [bytearray(), bytearray()]
        self._disposition = b""
        self._part: tuple[str, bool] | None = None  # (name, is a file) of the current part
        self._files, self._value = 0, bytearray()

        def add(kind: str) -> Any:
            return lambda data, start, end: self._events.append((kind, data[start:end]))

        self._parser = MultipartParser(
            boundary,
            {
                "on_header_field": lambda d, s, e: self._header[0].extend(d[s:e]),
                "on_header_value": lambda d, s, e: self._header[1].extend(d[s:e]),
                "on_header_end": self._header_end,
                "on_headers_finished": lambda: self._events.append(("part", self._disposition)),
                "on_part_data": add("data"),
                "on_part_end": lambda: self._events.append(("end", b"")),
            },
        )

    def _header_end(self) -> None:
        if bytes(self._header[0]).lower() == b"content-disposition":
            self._disposition = bytes(self._header[1])
        self._header = [bytearray(), bytearray()]

    async def _next(self) -> tuple[str, bytes] | None:
        while not self._events:
            chunk = await anext(self._body, None)
            if chunk is None:
                if self._parser.state != MultipartState.END:
                    raise InvalidRequestError("the multipart body ends before its last part")
                return None
            self._received += len(chunk)
            if self._received > self._bound:
                raise UploadTooLargeError(f"the request is larger than {self._bound} bytes")
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise InvalidRequestError(f"the body is not multipart/form-data: {exc}") from exc
        return self._events.pop(0)

    async def until_file(self) -> bool:
        """Collect fields up to the file part's start; whether there is one."""
        while (event := await self._next()) is not None:
            kind, data = event
            if kind == "part":
                _, options = parse_options_header(data)
                name = options.get(b"name", b"").decode(errors="replace")
                self._part = (name, b"filename" in options or name == "file")
                if self._part[1]:
                    self._files += 1
                    if name != "file" or self._files > 1:
                        raise InvalidRequestError("send one file, as the 'file' field")
                    return True
            elif kind == "data" and self._part and not self._part[1]:
                self._field_bytes += len(data)
                if self._field_bytes > FORM_BYTES:
                    raise InvalidRequestError(f"the fields hold more than {FORM_BYTES} bytes")
                self._value += data
            elif kind == "end" and self._part and not self._part[1]:
                self.fields.append((self._part[0], self._value.decode(errors="replace")))
                self._value = bytearray()
        return False

    async def file(self) -> AsyncIterator[bytes]:
        """The file part's bytes (after :meth:`until_file`)."""
        while (event := await self._next()) is not None and event[0] == "data":
            yield event[1]

    async def rest(self) -> None:
        """Read the body to its end: the fields after the file (the file's tail skipped)."""
        if await self.until_file():
            raise InvalidRequestError("send one file, as the 'file' field")
