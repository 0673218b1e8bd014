"""Platform-independent helpers the adapters use to render neutral ``Reply`` objects:
splitting long texts at a platform's limit and shortening button labels.

Pure functions; must not import a platform SDK, the conversation core or Starlette.
"""
from __future__ import annotations

import re
from collections.abc import Callable


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: how LINE and Telegram count characters (an emoji outside
    the Basic Multilingual Plane counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def _cut_point(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """The largest index i with measure(text[:i]) <= limit (binary search; measure is monotone)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def split_text(text: str, limit: int, measure: Callable[[str], int] = utf16_len) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` (as counted by ``measure``).

    Prefers to cut after a blank line, then a line break, then a sentence end or a space,
    so that an answer is never cut in the middle of a word when it can be avoided. An empty
    text gives no chunks.
    """
    chunks: list[str] = []
    rest = text
    while rest:
        if measure(rest) <= limit:
            chunks.append(rest)
            break
        hard = _cut_point(rest, limit, measure)
        if hard == 0:  # a limit smaller than one character: take it anyway
            hard = 1
        window = rest[:hard]
        cut = -1
        for separator in ("\n\n", "\n", "。", ". ", "! ", "? ", " "):
            position = window.rfind(separator)
            # only a separator in the second half of the window is worth the shorter chunk
            if position >= hard // 2:
                cut = position + len(separator)
                break
        if cut <= 0:
            cut = hard
        chunk = rest[:cut].rstrip()
        if chunk:
            chunks.append(chunk)
        rest = rest[cut:].lstrip("\n")
    return chunks


def shorten(label: str, limit: int, measure: Callable[[str], int] = utf16_len) -> str:
    """``label`` cut to ``limit`` with an ellipsis when it is longer."""
    if measure(label) <= limit:
        return label
    return label[: _cut_point(label, limit - 1, measure)].rstrip() + "…"


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


# 「かな（漢字）」: the knowledge base writes a hard Japanese term with its reading first,
# e.g. ざいりゅうカード（在留カード）; 漢字（かな） (湯田（ゆだ）) is read the same way.
_KANA = "\u3041-\u309f\u30a0-\u30ff"
_KANJI = "\u3400-\u4dbf\u4e00-\u9fff\u3005\uf900-\ufaff"
_READING_PAIR = re.compile(
    f"(?P<kana>[{_KANA}]+)（(?P<term>[^（）]*[{_KANJI}][^（）]*)）"
    f"|(?P<term2>[{_KANJI}][{_KANJI}{_KANA}]*)（(?P<kana2>[{_KANA}・ 　]+)）")


def readings_once(text: str) -> str:
    """Chat apps without ruby (LINE, Telegram): the reading in brackets once per message.

    The first 「かな（漢字）」 of a term stays as written, so the resident learns the kanji
    they will see on paper; a later repeat of the same term shows only the kana (the easy
    word). The web chat keeps every pair and shows it as ruby (bot/web/static/chat.js)."""
    if "（" not in text:
        return text   # every pair has a full-width bracket; the scan costs ~50 ns a character
    seen: set[str] = set()

    def _once(match: re.Match[str]) -> str:
        term = match.group("term") or match.group("term2")
        kana = match.group("kana") or match.group("kana2")
        if term in seen:
            return kana.strip()
        seen.add(term)
        return match.group(0)

    return _READING_PAIR.sub(_once, text)
