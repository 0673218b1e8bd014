"""Text normalisation shared by language detection, the matcher index and queries.

Owns: the canonical form of a message (``normalize``), the diacritic-folded view for
Latin scripts (``fold_diacritics``), kana folding (``fold_kana``) and script
classification of characters (``script_of``/``script_profile``).
Must not import anything from bot/, knowledge/ or scheduler/: it is pure string code.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter

# Apostrophes are dropped (not turned into a space) so "what's" and "whats" agree.
_APOSTROPHES = {"'", "\u2019", "\u2018", "\u02bc", "`", "\u00b4"}
# Emoji glue: variation selectors, zero-width joiner, keycap, skin-tone modifiers, tags.
_INVISIBLE = re.compile(
    "[\ufe00-\ufe0f\u200b-\u200f\u2060\u20e3\U0001f3fb-\U0001f3ff\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
_SPACES = re.compile(r"\s+")
# Latin letters whose base form is not reached by stripping combining marks.
_LATIN_SPECIAL = str.maketrans({"đ": "d", "Đ": "D", "ð": "d", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O",
                                "ı": "i", "æ": "ae", "œ": "oe"})


def _keep(ch: str) -> bool:
    """Letters, marks and digits stay; punctuation, symbols (emoji) and controls go."""
    cat = unicodedata.category(ch)
    return cat[0] in "LMN"


def normalize(text: str) -> str:
    """Canonical form: NFKC (full/half width), casefold, punctuation and emoji stripped, spaces collapsed.

    Digits are kept (110, 119, 171 matter). Combining marks of Indic/Myanmar scripts are kept,
    only emoji glue (variation selectors, ZWJ, skin tones) is removed.
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _INVISIBLE.sub("", text)
    out: list[str] = []
    for ch in text:
        if ch in _APOSTROPHES:
            continue
        out.append(ch if _keep(ch) else " ")
    return _SPACES.sub(" ", "".join(out)).strip()


def _is_latin(ch: str) -> bool:
    o = ord(ch)
    return (0x41 <= o <= 0x5A) or (0x61 <= o <= 0x7A) or (0xC0 <= o <= 0x24F) or (0x1E00 <= o <= 0x1EFF)


def fold_diacritics(text: str) -> str:
    """Drop diacritics from Latin letters only (Vietnamese "rác" → "rac", "đ" → "d").

    Combining marks after non-Latin bases are kept, so Japanese dakuten (が) and Devanagari
    vowel signs survive.
    """
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFD", text.translate(_LATIN_SPECIAL))
    out: list[str] = []
    base_latin = False
    for ch in decomposed:
        if unicodedata.combining(ch):
            if base_latin:
                continue
        else:
            base_latin = _is_latin(ch)
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def fold_kana(text: str) -> str:
    """Katakana → hiragana so ゴミ and ごみ index alike (the prolonged mark ー stays)."""
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in text)


# --- scripts ---------------------------------------------------------------------------

LATIN, HAN, KANA, HANGUL, DEVANAGARI, MYANMAR, OTHER, DIGIT = (
    "latin", "han", "kana", "hangul", "devanagari", "myanmar", "other", "digit")


def script_of(ch: str) -> str:
    """The script class of one character (digits are their own class)."""
    o = ord(ch)
    if ch.isdigit():
        return DIGIT
    if _is_latin(ch):
        return LATIN
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0xFF66 <= o <= 0xFF9F:
        return KANA
    if 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F or 0xA960 <= o <= 0xA97F:
        return HANGUL
    if (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF
            or 0x20000 <= o <= 0x3134F or o == 0x3005):
        return HAN
    if 0x0900 <= o <= 0x097F:
        return DEVANAGARI
    if 0x1000 <= o <= 0x109F or 0xAA60 <= o <= 0xAA7F:
        return MYANMAR
    if unicodedata.category(ch)[0] == "M":
        return OTHER  # a stray combining mark says nothing on its own
    return OTHER


def script_profile(text: str) -> Counter:
    """Count of characters per script class (spaces ignored)."""
    return Counter(script_of(c) for c in text if not c.isspace())


#: Scripts written without spaces between words: matched on characters, not tokens.
CJK_SCRIPTS = frozenset({HAN, KANA, HANGUL})


_CJK_CHARS = re.compile(
    "[\u1100-\u11ff\u3005\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)
_NOT_LETTER = re.compile(r"[\s\d]")


def is_cjk_text(text: str) -> bool:
    """True when at least half the letters are Han, kana or Hangul (regex fast path: the
    matcher asks this for every word of every message)."""
    cjk = len(_CJK_CHARS.findall(text))
    if not cjk:
        return False
    letters = len(text) - len(_NOT_LETTER.findall(text))
    return cjk * 2 >= letters
