"""Whether a session keeps its audio: the operator's policy against the client's request.

``ASR_SERVER_RECORDING`` sets the policy; a session asks with ``record`` and
``enhance_on_end`` (which implies ``record``):

==========  ==============================  ==============================================
policy      client asks to record           client does not ask
==========  ==============================  ==============================================
``off``     refused (``refusal`` says why)  not recorded
``optional``recorded                        not recorded
``always``  recorded                        recorded (``record=false`` cannot opt out)
==========  ==============================  ==============================================

Pure: :func:`decide_recording` is all the logic; the route turns a refusal into its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["RecordingDecision", "RecordingPolicy", "decide_recording"]


class RecordingPolicy(StrEnum):
    """The operator's recording policy (``ASR_SERVER_RECORDING``)."""

    OFF = "off"
    OPTIONAL = "optional"
    ALWAYS = "always"


@dataclass(frozen=True, slots=True)
class RecordingDecision:
    """What a session does with its audio.

    Attributes:
        record: Keep the session's audio and finals.
        enhance_on_end: Queue an enhancement job when the session ends.
        refusal: Why the request cannot be served as asked (policy ``off`` and the client
            asked to record); ``None`` when it can. ``record`` is false then.
    """

    record: bool
    enhance_on_end: bool = False
    refusal: str | None = None


def decide_recording(
    policy: RecordingPolicy, *, record: bool | None = None, enhance_on_end: bool | None = None
) -> RecordingDecision:
    """Decide from the operator's ``policy`` and a session's options.

    Args:
        policy: The operator's policy.
        record: The session's ``record`` option; ``None`` when not given.
        enhance_on_end: The session's ``enhance_on_end`` option; ``None`` when not given.
    """
    asked = bool(record) or bool(enhance_on_end)
    if policy is RecordingPolicy.OFF:
        if asked:
            option = "enhance_on_end" if enhance_on_end else "record"
            return RecordingDecision(
                record=False, refusal=f"{option} is not available: recording is off on this server"
            )
        return RecordingDecision(record=False)
    keep = asked or policy is RecordingPolicy.ALWAYS
    return RecordingDecision(record=keep, enhance_on_end=bool(enhance_on_end))
