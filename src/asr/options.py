"""Recognition options: what to recognise and how, as small frozen models.

``None`` always means "leave it to the server": the field is not set on the request and
the server's default applies. These models map one-to-one onto the Riva
``RecognitionConfig`` / ``StreamingRecognitionConfig`` / ``EndpointingConfig`` messages
(``riva/proto/riva_asr.proto``); the mapping itself lives in :mod:`asr.protocol`.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AudioEncoding", "EndpointingConfig", "RecognitionOptions"]


class AudioEncoding(StrEnum):
    """Audio encodings named as in ``riva/proto/riva_audio.proto``."""

    LINEAR_PCM = "LINEAR_PCM"
    FLAC = "FLAC"
    MULAW = "MULAW"
    ALAW = "ALAW"
    OGGOPUS = "OGGOPUS"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EndpointingConfig(_Frozen):
    """When an utterance starts and ends (Riva ``EndpointingConfig``).

    Histories are window lengths in milliseconds; thresholds are the fraction of frames in
    that window that must be speech (start) or non-speech (stop). The ``*_eou`` pair is a
    shorter first-pass end-of-utterance check that lets the server prepare the final early.
    """

    start_history: int | None = Field(default=None, ge=0, le=10_000)
    start_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    stop_history: int | None = Field(default=None, ge=0, le=10_000)
    stop_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    stop_history_eou: int | None = Field(default=None, ge=0, le=10_000)
    stop_threshold_eou: float | None = Field(default=None, ge=0.0, le=1.0)


class RecognitionOptions(_Frozen):
    """What a recognition request asks for.

    Attributes:
        language_code: BCP-47 language, e.g. ``"en-US"``.
        model: Server-side model name; ``None`` lets the server choose.
        encoding: Encoding of the audio bytes sent; ``None`` lets the server sniff a WAV
            header.
        sample_rate_hz: Sample rate of the audio sent; ``None`` lets the server read it
            from a WAV header.
        channels: Number of interleaved channels in the audio sent.
        automatic_punctuation: Add punctuation and capitalisation.
        verbatim_transcripts: Return text as spoken, without inverse text normalisation.
        word_time_offsets: Return per-word start/end times and confidences.
        profanity_filter: Mask profanities.
        max_alternatives: How many alternative transcripts to return.
        boosted_words: Words or phrases to favour.
        boosted_score: How strongly to favour ``boosted_words``.
        endpointing: Endpoint detection parameters.
        custom_configuration: Free-form server parameters (Riva ``custom_configuration``).
        interim_results: Stream partial results while speech goes on.
    """

    language_code: str = "en-US"
    model: str | None = None
    encoding: AudioEncoding | None = AudioEncoding.LINEAR_PCM
    sample_rate_hz: int | None = Field(default=16_000, gt=0, le=384_000)
    channels: int | None = Field(default=1, ge=1, le=8)
    automatic_punctuation: bool | None = None
    verbatim_transcripts: bool | None = None
    word_time_offsets: bool | None = None
    profanity_filter: bool | None = None
    max_alternatives: int | None = Field(default=None, ge=1, le=10)
    boosted_words: tuple[str, ...] = ()
    boosted_score: float | None = None
    endpointing: EndpointingConfig | None = None
    custom_configuration: tuple[tuple[str, str], ...] = ()
    interim_results: bool = True

    @property
    def max_bytes_per_second(self) -> int:
        """An upper bound of the bytes one second of the audio described takes.

        Compressed encodings (FLAC, Ogg Opus) are bounded by their PCM16 size; where the
        rate is left to a WAV header, 48 kHz is assumed, the highest rate microphones and
        files commonly use.
        """
        rate = self.sample_rate_hz or 48_000
        width = 1 if self.encoding in (AudioEncoding.MULAW, AudioEncoding.ALAW) else 2
        return rate * width * (self.channels or 1)
