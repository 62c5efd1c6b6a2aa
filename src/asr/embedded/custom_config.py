"""``RecognitionConfig.custom_configuration``: the keys the embedded engine understands.

Riva passes this map to the plugins of a model's pipeline; each deployment understands its
own keys. The embedded server understands the keys below and refuses any other with
``INVALID_ARGUMENT`` rather than accept it and do nothing (NVIDIA's scripts send it as
``--custom-configuration key:value,key:value``):

================================  ========  =============================================
key                               default   meaning
================================  ========  =============================================
``vad_probabilities``             false     ``true``: every streaming result carries
                                            ``pipeline_states.vad_probabilities``, the
                                            Silero VAD speech probability of each 32 ms
                                            frame since the previous response
``condition_on_previous_text``    true      decode each utterance with the session's
                                            previous final as Whisper's prompt, so a
                                            sentence cut at a short pause keeps context
``beam_size``                     server's  beam width of final decodes, 1 to 8
``short_stop_history``            server's  stop window (ms, 0 to 10000; 0: off) while an
                                            utterance holds under 4 s of speech; see
                                            :mod:`.endpointer`
``neural_vad.onset``              0.5       Silero VAD probability that starts speech
``neural_vad.offset``             0.35      probability below which a frame inside an
                                            utterance is not speech
``neural_vad.pad_onset``          0.3       seconds of audio kept before speech starts
``neural_vad.pad_offset``         eou       seconds kept after the last speech frame
                                            (default: the ``stop_history_eou`` window)
``neural_vad.min_duration_on``    0.2       seconds of speech an utterance needs to be
                                            decoded at all
``neural_vad.min_duration_off``   0.5       seconds of non-speech that end an utterance,
                                            as ``endpointing_config.stop_history``
                                            (which wins when set)
================================  ========  =============================================

The ``neural_vad.*`` keys are those a Riva NIM with Silero VAD takes (NVIDIA's voice agent
examples send all six); seconds, as there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgumentError

__all__ = ["CUSTOM_KEYS", "CustomConfig", "parse_custom_configuration"]

MAX_BEAM_SIZE = 8
MAX_WINDOW_MS = 10_000


@dataclass(frozen=True, slots=True)
class CustomConfig:
    """The parsed ``custom_configuration``; ``None`` means "the server's setting"."""

    vad_probabilities: bool = False
    condition_on_previous_text: bool = True
    beam_size: int | None = None
    short_stop_history: int | None = None
    vad_onset: float | None = None
    vad_offset: float | None = None
    pad_onset_ms: int | None = None
    pad_offset_ms: int | None = None
    min_speech_ms: int | None = None
    min_silence_ms: int | None = None


def _bool(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise InvalidArgumentError(
            f"custom_configuration {key!r} must be 'true' or 'false', got {value!r}"
        )
    return lowered == "true"


def _int_in(low: int, high: int) -> Callable[[str, str], int]:
    def parse(key: str, value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise InvalidArgumentError(
                f"custom_configuration {key!r} must be an integer in [{low}, {high}], got {value!r}"
            )
        return number

    return parse


def _fraction(key: str, value: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise InvalidArgumentError(
            f"custom_configuration {key!r} must be a number in [0, 1], got {value!r}"
        )
    return number


def _seconds_as_ms(key: str, value: str) -> int:
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = -1.0
    if not 0.0 <= seconds <= MAX_WINDOW_MS / 1000:
        raise InvalidArgumentError(
            f"custom_configuration {key!r} must be seconds in [0, {MAX_WINDOW_MS // 1000}], "
            f"got {value!r}"
        )
    return round(seconds * 1000)


# Key -> (CustomConfig field, parser).
_PARSERS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "vad_probabilities": ("vad_probabilities", _bool),
    "condition_on_previous_text": ("condition_on_previous_text", _bool),
    "beam_size": ("beam_size", _int_in(1, MAX_BEAM_SIZE)),
    "short_stop_history": ("short_stop_history", _int_in(0, MAX_WINDOW_MS)),
    "neural_vad.onset": ("vad_onset", _fraction),
    "neural_vad.offset": ("vad_offset", _fraction),
    "neural_vad.pad_onset": ("pad_onset_ms", _seconds_as_ms),
    "neural_vad.pad_offset": ("pad_offset_ms", _seconds_as_ms),
    "neural_vad.min_duration_on": ("min_speech_ms", _seconds_as_ms),
    "neural_vad.min_duration_off": ("min_silence_ms", _seconds_as_ms),
}

CUSTOM_KEYS = tuple(_PARSERS)
"""The ``custom_configuration`` keys the embedded server understands."""


def parse_custom_configuration(custom: Mapping[str, str]) -> CustomConfig:
    """Validate a request's ``custom_configuration``.

    Raises:
        InvalidArgumentError: An unknown key or a value out of range.
    """
    values: dict[str, Any] = {}
    for key, value in custom.items():
        known = _PARSERS.get(key.strip())
        if known is None:
            raise InvalidArgumentError(
                f"custom_configuration key {key!r} is not supported by this server; "
                f"it understands {', '.join(CUSTOM_KEYS)}"
            )
        field, parser = known
        values[field] = parser(key, value)
    return CustomConfig(**values)
