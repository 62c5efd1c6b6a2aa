"""Why a ``POST /v1/audio/transcriptions`` request is refused, with its HTTP status.

::

    TranscriptionError              every refusal of this route; has .status and .body()
    ├── InvalidRequestError         400: a form field is missing, unknown or out of range
    ├── NotAudioError               400: the upload is not audio, or is truncated or corrupt
    ├── AudioTooLongError           400: more audio than the route's duration limit
    ├── UploadTooLargeError         413: more bytes than the route's size limit
    └── UnsupportedMediaTypeError   415: audio in a container this gateway does not decode

All are permanent: the same request fails the same way again. :meth:`TranscriptionError.body`
is OpenAI's error envelope, so the ``openai`` SDK raises ``BadRequestError`` (and its
siblings) with the message and ``param`` filled in.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AudioTooLongError",
    "InvalidRequestError",
    "NotAudioError",
    "TranscriptionError",
    "UnsupportedMediaTypeError",
    "UploadTooLargeError",
]


class TranscriptionError(Exception):
    """Root of the route's refusals.

    Attributes:
        message: What is wrong, for the client.
        param: The form field at fault (``"file"``, ``"temperature"``), if one is.
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def body(self) -> dict[str, Any]:
        """OpenAI's error JSON: ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {
                "message": self.message,
                "type": "invalid_request_error",
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(TranscriptionError):
    """A form field is missing, repeated, unknown, or has a value the backend cannot honour."""


class NotAudioError(TranscriptionError):
    """The upload is not audio at all, or an audio file that is truncated or corrupt."""

    code = "invalid_audio"


class AudioTooLongError(TranscriptionError):
    """The recording is longer than the route accepts."""

    code = "audio_too_long"


class UploadTooLargeError(TranscriptionError):
    """The upload has more bytes than the route accepts."""

    status = 413
    code = "file_too_large"


class UnsupportedMediaTypeError(TranscriptionError):
    """Audio in a container the gateway recognises but does not decode (MP4/M4A, WebM)."""

    status = 415
    code = "unsupported_audio_format"
