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
================================  ========  =============================================
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


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "vad_probabilities": _bool,
    "condition_on_previous_text": _bool,
    "beam_size": _int_in(1, MAX_BEAM_SIZE),
    "short_stop_history": _int_in(0, MAX_WINDOW_MS),
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
        parser = _PARSERS.get(key.strip())
        if parser is None:
            raise InvalidArgumentError(
                f"custom_configuration key {key!r} is not supported by this server; "
                f"it understands {', '.join(CUSTOM_KEYS)}"
            )
        values[key.strip()] = parser(key, value)
    return CustomConfig(**values)
