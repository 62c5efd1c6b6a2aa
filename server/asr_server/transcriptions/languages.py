"""OpenAI's ISO-639-1 ``language`` to the BCP-47 tag Riva wants, and back to a name.

OpenAI takes ``"en"``; Riva's ``RecognitionConfig.language_code`` is a BCP-47 tag with a
region (``"en-US"``), and a bare ``"en"`` matches no Riva model. A bare code gets the
region Riva's published models use for it (``es`` is ``es-US`` in Riva, ``ar`` is
``ar-AR``); a tag with a region, and NIM's ``"multi"``, pass through unchanged. A bare code
not listed passes through too: the deployment may serve it, and Riva says if it does not.
"""

from __future__ import annotations

import re

__all__ = ["language_name", "to_riva_language"]

# Bare code -> (Riva's tag, the English name OpenAI's verbose_json reports, as Whisper
# spells it: "english", not "en").
_LANGUAGES: dict[str, tuple[str, str]] = {
    "ar": ("ar-AR", "arabic"),
    "cs": ("cs-CZ", "czech"),
    "da": ("da-DK", "danish"),
    "de": ("de-DE", "german"),
    "el": ("el-GR", "greek"),
    "en": ("en-US", "english"),
    "es": ("es-US", "spanish"),
    "fi": ("fi-FI", "finnish"),
    "fr": ("fr-FR", "french"),
    "he": ("he-IL", "hebrew"),
    "hi": ("hi-IN", "hindi"),
    "hu": ("hu-HU", "hungarian"),
    "id": ("id-ID", "indonesian"),
    "it": ("it-IT", "italian"),
    "ja": ("ja-JP", "japanese"),
    "ko": ("ko-KR", "korean"),
    "nb": ("nb-NO", "norwegian"),
    "nl": ("nl-NL", "dutch"),
    "no": ("nb-NO", "norwegian"),
    "pl": ("pl-PL", "polish"),
    "pt": ("pt-BR", "portuguese"),
    "ro": ("ro-RO", "romanian"),
    "ru": ("ru-RU", "russian"),
    "sv": ("sv-SE", "swedish"),
    "th": ("th-TH", "thai"),
    "tr": ("tr-TR", "turkish"),
    "uk": ("uk-UA", "ukrainian"),
    "vi": ("vi-VN", "vietnamese"),
    "zh": ("zh-CN", "chinese"),
}

MULTILINGUAL = "multi"
"""NIM's language for its multilingual models, which detect the language themselves."""

# BCP-47's shape (RFC 5646 section 2.1), loosely: a 2-3 letter language, then subtags.
_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")


def to_riva_language(language: str) -> str | None:
    """Riva's ``language_code`` for an OpenAI or NIM ``language``; ``None`` if malformed.

    Case is normalised as BCP-47 recommends (``"EN-us"`` is ``"en-US"``).
    """
    value = language.strip()
    if value.lower() == MULTILINGUAL:
        return MULTILINGUAL
    if not _TAG.fullmatch(value):
        return None
    primary, *rest = value.split("-")
    primary = primary.lower()
    if not rest:
        return _LANGUAGES[primary][0] if primary in _LANGUAGES else primary
    subtags = [s.upper() if len(s) == 2 else s.title() if len(s) == 4 else s for s in rest]
    return "-".join([primary, *subtags])


def language_name(language_code: str) -> str:
    """The name OpenAI's ``verbose_json`` gives a language (``"english"``), else the code."""
    primary = language_code.split("-")[0].lower()
    return _LANGUAGES[primary][1] if primary in _LANGUAGES else language_code
