"""The own contract's audio on its way to Riva, without I/O: paced, decoded, and cut where
the client asks (``finalize``, ``end``).

:class:`~asr_server.protocol.Session` hands every binary frame to :class:`ContractAudio`
and gets back the 16 kHz PCM16 to forward, or why the frame ends the session; it asks it
for the cuts. The rule of ``finalize``: cutting speech that often garbles it (the backend
decodes each piece alone), so a ``finalize`` less than ``min_finalize_audio_seconds`` of
audio after the previous forced end is deferred. If audio goes on, it goes into the
utterance in progress (nothing is lost); if the audio pauses for :data:`AUDIO_PAUSE`, the
cut is made then (the client stopped sending, push-to-talk released, so the cut ends the
speech sent and cannot fall inside a word that goes on). Each cut is owed an answer by
Riva (:class:`~asr_server.stall.StallWatch`). Plain data, the clock passed in.
"""

from __future__ import annotations

from asr.contract import ErrorCode, StreamConfig
from asr.errors import AudioFormatError

from .actions import CommonAction, FinishUtterance, ForwardAudio
from .client_frames import FrameRefusal
from .decoding import AudioDecoder
from .limits import IngestRate, Limits
from .stall import StallWatch

__all__ = ["AUDIO_PAUSE", "ContractAudio"]

AUDIO_PAUSE = 0.5
"""Seconds without audio after a too-early ``finalize`` that apply it after all."""

_PCM16_BYTES_PER_SECOND = 16_000 * 2


class ContractAudio:
    """One session's audio.

    Args:
        limits: The server's limits (the pace, ``min_finalize_audio_seconds``).
        stall: The session's stall detector, told of every cut.
        now: Clock reading at the session's start (the pace is measured from it).
        config: The session's options so far (``encoding``, ``sample_rate``).
    """

    def __init__(self, limits: Limits, stall: StallWatch, now: float, config: StreamConfig) -> None:
        self.limits = limits
        self.audio_seconds = 0.0
        """Seconds of client audio accepted."""
        self._stall = stall
        self._rate = IngestRate(limits, now)
        self._decoder = AudioDecoder(config.encoding, config.sample_rate)
        self._has_audio = False
        """Audio since the last cut."""
        self._forwarded = 0
        """16 kHz PCM16 bytes forwarded to Riva: the clock of the cuts."""
        self._last_cut = 0.0
        """Where (seconds of forwarded audio) the last forced end was put."""
        self._deferred: float | None = None
        """Clock reading of a too-early ``finalize`` with no audio since."""

    def restart(self, now: float) -> None:
        """The session starts at ``now`` after all (it waited in the admission queue)."""
        self._rate = IngestRate(self.limits, now)

    def configure(self, config: StreamConfig) -> None:
        """Decode the client's audio as ``config`` says (before the first frame)."""
        self._decoder = AudioDecoder(config.encoding, config.sample_rate)

    def take(self, data: bytes, now: float) -> bytes | FrameRefusal:
        """A binary frame (of at most ``max_frame_bytes``): the PCM16 to forward (maybe
        none yet: resampling holds some back), or why it ends the session (too fast, not
        valid audio)."""
        limits = self.limits
        seconds = self._decoder.seconds(data)
        if not self._rate.admit(seconds, now):
            return FrameRefusal(
                ErrorCode.TOO_FAST,
                f"audio arrives faster than {limits.max_realtime_factor}x real time "
                f"beyond a {limits.burst_seconds} s burst",
            )
        try:
            pcm = self._decoder.decode(data)
        except AudioFormatError as exc:
            return FrameRefusal(
                ErrorCode.INVALID_AUDIO, f"audio is not valid {self._decoder.encoding}: {exc}"
            )
        self.audio_seconds += seconds
        self._deferred = None  # audio goes on: an early finalize merges into it
        self._forwarded += len(pcm)
        self._has_audio = True
        return pcm

    @property
    def too_fast(self) -> bool:
        """The pace is close to being refused: half the burst is spent."""
        return self._rate.fill < 0.5

    def finalize(self, now: float) -> list[CommonAction] | None:
        """``finalize``: the cut (none without audio since the last), or ``None`` when it is
        too early and deferred (:meth:`due`)."""
        if not self._has_audio:
            return []
        at = self._forwarded / _PCM16_BYTES_PER_SECOND
        if at - self._last_cut < self.limits.min_finalize_audio_seconds:
            self._deferred = now
            return None
        return self.cut(now)

    def due(self) -> float | None:
        """When a deferred ``finalize`` is applied (:meth:`cut`) if no audio comes."""
        return None if self._deferred is None else self._deferred + AUDIO_PAUSE

    def cut(self, now: float) -> list[CommonAction]:
        """End the utterance after the audio so far: the decoder's tail, then the cut."""
        self._deferred = None
        self._has_audio = False
        actions: list[CommonAction] = self._flush()
        self._last_cut = self._forwarded / _PCM16_BYTES_PER_SECOND
        self._stall.owe_cut(self._last_cut, now)
        actions.append(FinishUtterance())
        return actions

    def end(self) -> list[CommonAction]:
        """No more audio (``end``, a shutdown): the decoder's tail; ending the audio
        finalises it, so a deferred ``finalize`` is dropped."""
        self._deferred = None
        return self._flush()

    def _flush(self) -> list[CommonAction]:
        tail = self._decoder.flush()
        self._forwarded += len(tail)
        return [ForwardAudio(tail)] if tail else []
