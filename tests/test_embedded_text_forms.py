"""Riva's profanity_filter and verbatim_transcripts text transforms, rule by rule."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asr.embedded.text_forms import is_profane, mask_profanity, mask_word, spoken_form

# --- profanity_filter ------------------------------------------------------------------

MASKED = [
    ("Shit, no.", "S***, no."),
    ("shit", "s***"),
    ("FUCKING hell", "F****** hell"),
    ("What the fuck?!", "What the f***?!"),
    ('He said "Cunt".', 'He said "C***".'),
    ("(bitch)", "(b****)"),
    ("fuck's sake", "f***'s sake"),
    ("fuck’s sake", "f***’s sake"),
    ("assholes and bitches", "a******* and b******"),
    ("asses", "a****"),
    ("holy-shit moment", "holy-s*** moment"),
    ("jerk-off", "j***-***"),
    ("Damn it.", "D*** it."),
    ("  shit  ", "  s***  "),
]

UNTOUCHED = [
    "",
    "...?!",
    "class",
    "Scunthorpe",
    "assess",
    "assassin",
    "passes",
    "classes",
    "spices",
    "cocktail",
    "Dickens",
    "shitake",
    "ass2",
    "God bless, kill the process.",
    "The organ in the church.",
    "And so my fellow Americans, ask not what your country can do for you.",
]


@pytest.mark.parametrize(("text", "masked"), MASKED)
def test_listed_words_keep_their_first_letter(text: str, masked: str) -> None:
    assert mask_profanity(text) == masked


@pytest.mark.parametrize("text", UNTOUCHED)
def test_innocent_text_is_untouched(text: str) -> None:
    assert mask_profanity(text) == text


@pytest.mark.parametrize(
    ("word", "profane"),
    [("fuck", True), ("FUCK", True), ("Bitches", True), ("assess", False), ("", False)],
)
def test_is_profane_judges_one_word(word: str, profane: bool) -> None:
    assert is_profane(word) is profane


@pytest.mark.parametrize(
    ("word", "masked"), [(" Shit,", " S***,"), ("fucking", "f******"), (" class", " class")]
)
def test_mask_word_masks_a_whisper_word(word: str, masked: str) -> None:
    assert mask_word(word) == masked


_WORDS = st.sampled_from(
    ["shit", "Fuck", "BITCH", "class", "assess", "hello", "damn", "it's", "world", "jerk-off"]
)
_SEPARATORS = st.sampled_from([" ", ", ", ". ", "! ", " (", ") ", '"', " - "])


@st.composite
def _sentences(draw: st.DrawFn) -> str:
    words = draw(st.lists(_WORDS, max_size=8))
    return "".join(w + draw(_SEPARATORS) for w in words)


@given(_sentences())
def test_masking_keeps_every_length_and_first_letter(text: str) -> None:
    masked = mask_profanity(text)
    assert len(masked) == len(text)
    for original, new in zip(text.split(), masked.split(), strict=True):
        assert len(new) == len(original)
        if new != original:
            first = re.search(r"[^\W_]", original)
            assert first is not None
            assert new[: first.end()] == original[: first.end()]
            assert set(new[first.end() :]) <= set(original[first.end() :]) | {"*"}


@given(_sentences())
def test_words_mask_as_the_transcript_does(text: str) -> None:
    pieces = re.split(r"(\s+)", text)
    assert "".join(mask_word(piece) for piece in pieces) == mask_profanity(text)


@given(st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " "))
def test_text_without_listed_words_is_untouched(text: str) -> None:
    if not any(is_profane(w) for w in re.findall(r"[^\W_]+", text)):
        assert mask_profanity(text) == text


# --- verbatim_transcripts --------------------------------------------------------------

SPOKEN = [
    # cardinals: no hyphens, commas or "and", as Riva's models write them
    ("42", "forty two"),
    ("I have 3 cats.", "I have three cats."),
    ("0", "zero"),
    ("123", "one hundred twenty three"),
    ("1,000", "one thousand"),
    ("1,234,567", "one million two hundred thirty four thousand five hundred sixty seven"),
    ("007", "zero zero seven"),
    ("Call 5551234567.", "Call five five five one two three four five six seven."),
    # signs
    ("-5", "minus five"),
    ("(-3.5)", "(minus three point five)"),
    ("-$5", "minus five dollars"),
    ("5-3", "five-three"),
    # decimals
    ("3.5", "three point five"),
    ("3.14159", "three point one four one five nine"),
    (".5", "point five"),
    ("1,234.5", "one thousand two hundred thirty four point five"),
    ("It costs 5.", "It costs five."),
    # ordinals
    ("1st", "first"),
    ("2nd", "second"),
    ("22nd", "twenty second"),
    ("103rd", "one hundred third"),
    ("the 4TH of July", "the fourth of July"),
    # percentages
    ("10%", "ten percent"),
    ("100%", "one hundred percent"),
    ("3.5%", "three point five percent"),
    ("10 %", "ten percent"),
    # money
    ("$3.50", "three dollars fifty cents"),
    ("$5", "five dollars"),
    ("$1", "one dollar"),
    ("$0.99", "ninety nine cents"),
    ("$1.01", "one dollar one cent"),
    ("$3.00", "three dollars"),
    ("$1,500", "one thousand five hundred dollars"),
    ("$5 million", "five million dollars"),
    ("$1.5 billion", "one point five billion dollars"),
    ("£20", "twenty pounds"),
    ("£1.50", "one pound fifty pence"),
    ("€5", "five euros"),
    ("¥100", "one hundred yen"),
    # years and decades
    ("1960", "nineteen sixty"),
    ("In 1960, he won.", "In nineteen sixty, he won."),
    ("1905", "nineteen oh five"),
    ("2005", "two thousand five"),
    ("2024", "twenty twenty four"),
    ("1960s", "nineteen sixties"),
    ("the '80s", "the eighties"),
    # clock times
    ("5:30", "five thirty"),
    ("5:05pm", "five oh five pm"),
    ("10:00", "ten o'clock"),
    ("10:00 p.m.", "ten p.m."),
    # numbers written against letters stand apart
    ("mp3", "mp three"),
    ("3D", "three D"),
    ("covid-19", "covid-nineteen"),
    ("COVID-19 cases", "COVID-nineteen cases"),
    # symbols
    ("R&D", "R and D"),
    ("rock & roll", "rock and roll"),
    ("&", "and"),
    ("C++", "C plus plus"),
    ("5+3", "five plus three"),
    ("x = 5", "x equals five"),
    ("#1", "number one"),
    ("me@home", "me at home"),
    # everything else as it was
    ("", ""),
    ("...?!", "...?!"),
    ("Hello, World!", "Hello, World!"),
    ("1,2,3", "one,two,three"),
    ("1.2.3", "one point two.three"),
]


@pytest.mark.parametrize(("text", "spoken"), SPOKEN)
def test_written_forms_are_said(text: str, spoken: str) -> None:
    assert spoken_form(text) == spoken


def test_lower_case_text_without_punctuation_works_too() -> None:
    assert spoken_form("it was 3.5 percent in 1960 not 10") == (
        "it was three point five percent in nineteen sixty not ten"
    )


@given(st.text(alphabet=string.digits + string.punctuation + " ", max_size=40))
def test_no_digit_survives(text: str) -> None:
    assert not re.search(r"[0-9]", spoken_form(text))


@given(st.text(alphabet=string.ascii_letters + string.digits + "$%.,-:' ", max_size=40))
def test_no_digit_survives_among_letters(text: str) -> None:
    assert not re.search(r"[0-9]", spoken_form(text))


@given(st.text(alphabet=string.ascii_letters + ".,;:!?'\"()- ", max_size=40))
def test_text_without_numbers_or_symbols_is_unchanged(text: str) -> None:
    assert spoken_form(text) == text


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_every_integer_is_said_in_words(n: int) -> None:
    spoken = spoken_form(f"{n:,}")
    assert re.fullmatch(r"[a-z]+( [a-z]+)*", spoken), spoken
