"""Checks of the text residents read: Easy Japanese, the glossary, rendered length, dates.

Owns the ``kurashi kb check`` checks that look *inside* answers and messages (the schema
and cross-file checks stay in ``knowledge.validate``, which calls ``check_texts`` once):

- ``easy_ja_*`` (warnings) — every ``ja`` answer, message and alert template: sentences
  longer than ``MAX_SENTENCE``; kanji outside the basic list (``kanji_basic.yaml``: the
  240 kanji of grades 1–2) without a reading in the 「かな（漢字）」 convention; plain forms
  (だ/である, dictionary-form endings) where です/ます is expected; double negatives
  (〜なければ なりません …). Not for staff-facing messages (``staff.*``); command keyword lists
  (``cmd.*``, words residents may type, like samples) get no text check at all.
- ``glossary_banned`` (error) / ``glossary_word_missing`` (warning) — ``glossary.yaml``
  fixes the resident-facing word for each official Japanese term per language and lists
  banned variants; an answer, message, contact text or alert template using a banned
  variant is an error naming the preferred word.
- ``answer_too_long`` (warning) — the *rendered* answer (placeholders expanded, the
  unverified-fact note included) over its language's budget (``RENDERED_BUDGET``); an
  answer split into sections with a line ``---`` is measured section by section (the
  chat shows the first section and a "More" button for the next).
- ``ambiguous_date`` (warning) — numeric dates like 12/08 (12 August or 8 December?).

Pure functions over the loaded ``KnowledgeBase`` plus the source locations validate
collected. Imports nothing from bot/, intents/ or scheduler/.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from knowledge.render import RenderError, render_sections
from knowledge.schema import PLACEHOLDER, SECTION_BREAK, GlossaryFile
from knowledge.yamlio import read_optional_model, read_yaml

#: Rendered characters per section a phone shows comfortably (about one screen).
RENDERED_BUDGET: dict[str, int] = {
    "ja": 250, "zh": 250, "ko": 250,
    "en": 500, "vi": 500, "id": 500, "tl": 500, "pt": 500, "ne": 500, "my": 500,
}
#: Characters per Easy Japanese sentence (spaces, placeholders and readings not counted).
MAX_SENTENCE = 40
GLOSSARY_FILE = "glossary.yaml"
#: Messages staff read (Telegram group posts, e-mails), not residents: no Easy Japanese check.
STAFF_MESSAGES = ("message staff.",)
#: Command keyword lists ("ことば|言葉|言語|…"): words residents may *type*, never shown to them,
#: so — like samples — they are not prose and no text check applies (glossary, Easy Japanese).
KEYWORD_MESSAGES = ("message cmd.",)
KANJI_FILE = Path(__file__).resolve().parent / "kanji_basic.yaml"

_KANJI = "\u3400-\u4dbf\u4e00-\u9fff\u3005\uf900-\ufaff"
_KANA = "\u3041-\u309f\u30a0-\u30ff"
_KANJI_RUN = re.compile(f"[{_KANJI}]+")
#: 「かな（漢字）」: a kana word followed by a bracketed term containing kanji.
_READING_BEFORE = re.compile(f"[{_KANA}]+（([^（）]*[{_KANJI}][^（）]*)）")
#: 「漢字（かな）」: kanji followed by their reading in brackets.
_READING_AFTER = re.compile(f"([{_KANJI}][{_KANJI}{_KANA}]*)（[{_KANA}・ 　]+）")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n")
_SPACES = re.compile(r"[ \u3000]+")
_TRAILING = re.compile(r"[\s。、！？!?：:」』）)\]】…〜~\-–—・*#]+$")
#: A bracket at the end of a sentence (a term, a note, a phone number): not its ending.
_TRAILING_NOTE = re.compile(r"[（(][^（）()]*[）)]$")
_FORMAT_FIELD = re.compile(r"\{[a-z_][a-z0-9_.]*\}")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]")
_POLITE = ("です", "ます", "ません", "ましょう", "でした", "ました", "ください", "でしょう",
           "ませんか", "ですか", "ますか", "ませんでした", "ましょうか", "くださいね", "ですね", "ますね")
_PLAIN = re.compile(r"(だ|である|だった|だろう|ではない|じゃない|[うくすつぬふむるぐぶ]|[^ま]した|ない|なかった|たい|れる)$")
#: Plain endings that are never a noun, flagged in list items too (only full sentences are
#: checked for the dictionary form: a list item may end with a noun like ふく or ばんごう).
_PLAIN_ANYWHERE = re.compile(r"(だ|である|だった|だろう|ではない|じゃない|ない|なかった|[^ま]した)$")
_DOUBLE_NEGATIVE = re.compile(
    r"なければ(なら|なり|いけ|だめ)|なくては(なら|なり|いけ|だめ)|なくちゃ|ないと(いけ|だめ)|"
    r"ない(わけ|こと)(では|じゃ|は)(ない|ありません)|なくも(ない|ありません)|ないでは(いられ|すま)")
#: 12/08, 8/12 (not part of a longer number, a URL, or a Y/M/D date with the year first).
_NUMERIC_DATE = re.compile(r"(?<![\d/.:])(\d{1,2})/(\d{1,2})(?![\d/])")
_URL = re.compile(r"https?://\S+")
_NOT_DATES = {"24/7"}


@lru_cache(maxsize=1)
def basic_kanji() -> frozenset[str]:
    """The kanji of ``kanji_basic.yaml`` (grades 1–2)."""
    data = yaml.safe_load(KANJI_FILE.read_text(encoding="utf-8")) or {}
    return frozenset(ch for text in data.values() for ch in str(text) if _KANJI_RUN.match(ch))


# --------------------------------------------------------------------------------------
# Easy Japanese
# --------------------------------------------------------------------------------------

def _plain_text(text: str) -> str:
    """The Japanese the resident reads, without placeholders and format fields."""
    return _FORMAT_FIELD.sub("", PLACEHOLDER.sub("", text))


def unread_kanji(text: str, known: frozenset[str] | None = None) -> list[str]:
    """Kanji words (runs) with a kanji outside the basic list and no reading, in order."""
    known = basic_kanji() if known is None else known
    text = _plain_text(text)
    covered = [False] * len(text)
    for match in _READING_BEFORE.finditer(text):
        for i in range(match.start(1), match.end(1)):
            covered[i] = True
    for match in _READING_AFTER.finditer(text):
        for i in range(match.start(1), match.end(1)):
            covered[i] = True
    found: list[str] = []
    for match in _KANJI_RUN.finditer(text):
        if any(covered[i] for i in range(match.start(), match.end())):
            continue
        word = match.group(0)
        if any(ch not in known for ch in word) and word not in found:
            found.append(word)
    return found


def sentences(text: str) -> list[str]:
    """Sentences and list lines of a Japanese text (placeholders removed)."""
    return [s.strip() for s in _SENTENCE_END.split(_plain_text(text)) if s and s.strip()]


def sentence_length(sentence: str) -> int:
    """Characters a reader reads: no spaces, a 「かな（漢字）」 term counted once (the kana)."""
    without_terms = _READING_BEFORE.sub(lambda m: m.group(0)[: m.start(1) - m.start() - 1], sentence)
    return len(_SPACES.sub("", _EMOJI.sub("", without_terms)))


def plain_form(sentence: str) -> str | None:
    """The plain-form ending of a sentence (だ, である, dictionary form…), or None when it
    ends politely, with a noun, or with no verb at all."""
    core = _EMOJI.sub("", sentence).strip()
    if core.endswith((":", "：")):
        return None                           # a label introducing a list ("くわしく:")
    full_sentence = core.endswith(("。", "！", "!"))
    for _ in range(3):                        # "…にげる（避難）。" → "…にげる"
        core = _TRAILING_NOTE.sub("", core).strip()
        core = _TRAILING.sub("", core)
    core = _SPACES.sub("", core)
    if not core or core.endswith(_POLITE):
        return None
    match = _PLAIN.search(core)
    if match is None:
        return None
    if not full_sentence and not _PLAIN_ANYWHERE.search(core):
        return None                           # a list item ending in a noun (でんわばんごう)
    tail = core[-6:]
    if not re.search(f"[{_KANA}{_KANJI}]$", core):
        return None
    return tail


def double_negatives(text: str) -> list[str]:
    compact = _SPACES.sub("", _plain_text(text))
    return [m.group(0) for m in _DOUBLE_NEGATIVE.finditer(compact)]


def easy_japanese_findings(text: str, *, max_sentence: int = MAX_SENTENCE) -> list[tuple[str, str]]:
    """(code, message) for one Japanese text; empty when it reads as Easy Japanese."""
    findings: list[tuple[str, str]] = []
    long = [s for s in sentences(text) if sentence_length(s) > max_sentence]
    if long:
        worst = max(long, key=sentence_length)
        findings.append(("easy_ja_long_sentence",
                         (f"{len(long)} sentence(s) over {max_sentence} characters, e.g. "
                          f"{sentence_length(worst)}: {_quote(worst)} (one idea per sentence)")))
    words = unread_kanji(text)
    if words:
        findings.append(("easy_ja_kanji",
                         (f"kanji outside the basic list without a reading: {'、'.join(words[:12])}"
                          f"{' …' if len(words) > 12 else ''} (write かな（漢字）, e.g. こくせき（国籍）)")))
    # A one-line text without "。" is a label (a button, a district name): no verb expected.
    label = "\n" not in text.strip() and not re.search("[。！？]", text)
    plain = [] if label else [(s, e) for s in sentences(text) if (e := plain_form(s))]
    if plain:
        findings.append(("easy_ja_plain_form",
                         (f"{len(plain)} sentence(s) in plain form where です/ます is expected, e.g. "
                          f"{_quote(plain[0][0])}")))
    negatives = double_negatives(text)
    if negatives:
        findings.append(("easy_ja_double_negative",
                         f"double negative {'、'.join(sorted(set(negatives)))} (say what to do: 〜して ください)"))
    return findings


def _quote(sentence: str, limit: int = 40) -> str:
    sentence = " ".join(sentence.split())
    return f"「{sentence[:limit]}{'…' if len(sentence) > limit else ''}」"


# --------------------------------------------------------------------------------------
# Glossary
# --------------------------------------------------------------------------------------

@lru_cache(maxsize=1024)
def _boundary_pattern(word: str) -> re.Pattern[str]:
    """``word`` case-insensitively; a letter at either edge must not continue a word."""
    head = r"(?<!\w)" if word[:1].isalnum() and not _KANJI_RUN.match(word[:1]) else ""
    tail = r"(?!\w)" if word[-1:].isalnum() and not _KANJI_RUN.match(word[-1:]) else ""
    return re.compile(head + re.escape(word) + tail, re.IGNORECASE)


def banned_uses(glossary: GlossaryFile, lang: str, text: str) -> list[tuple[str, str, str]]:
    """(official term, banned variant, preferred word) for each banned variant in ``text``.
    A variant inside an occurrence of the preferred word (法テラス inside
    日本司法支援中心（法テラス）) is not a use of the variant."""
    found = []
    folded = text.casefold()
    for term, entry in glossary.terms.items():
        variants = [v for v in entry.banned.get(lang, []) if v.casefold() in folded]  # type: ignore[call-overload]
        if not variants:
            continue
        preferred = entry.words.get(lang)   # type: ignore[call-overload]
        allowed: list[tuple[int, int]] = []
        if preferred:
            allowed = [(m.start(), m.end()) for m in _boundary_pattern(preferred).finditer(text)]
        for variant in variants:
            for match in _boundary_pattern(variant).finditer(text):
                if not any(a <= match.start() and match.end() <= b for a, b in allowed):
                    found.append((term, variant, preferred or ""))
                    break
    return found


def missing_words(glossary: GlossaryFile, lang: str, text: str) -> list[tuple[str, str]]:
    """(official term, preferred word) where ``text`` names the official Japanese term but
    not the resident-facing word of ``lang``."""
    out = []
    for term, entry in glossary.terms.items():
        preferred = entry.words.get(lang)   # type: ignore[call-overload]
        if not preferred or term not in text or preferred.casefold() in text.casefold():
            continue
        if _boundary_pattern(preferred).search(text):
            continue
        out.append((term, preferred))
    return out


# --------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------

def ambiguous_dates(text: str) -> list[str]:
    """Numeric day/month pairs a reader can take either way (12/08, 3/4)."""
    text = _URL.sub(" ", PLACEHOLDER.sub(" ", text))
    found = []
    for match in _NUMERIC_DATE.finditer(text):
        a, b = int(match.group(1)), int(match.group(2))
        if match.group(0) in _NOT_DATES or not (1 <= a <= 31 and 1 <= b <= 31) or min(a, b) > 12:
            continue
        found.append(match.group(0))
    return found


# --------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------

#: (file, line) of a text.
Where = tuple[str, "int | None"]


def _texts(kb: Any, locate_answer: Callable[[str, str], Where], locate_message: Callable[[str, str], Where],
           contacts_doc: Any, alerts_doc: Any) -> Iterator[tuple[str, str, str, Where]]:
    """(what, lang, text, where) of every resident-facing text template."""
    for intent_id, intent in kb.intents.items():
        for lang, text in intent.answers.items():
            if text and text.strip():
                yield f"{intent_id} answer", lang, text, locate_answer(intent_id, lang)
    for key, texts in kb.messages.items():
        for lang, text in texts.items():
            if text and text.strip():
                yield f"message {key}", lang, text, locate_message(key, lang)
    if contacts_doc is not None:
        translated: dict[str, Any] = {}

        def contact_line(key: str, fld: str, lang: str) -> Where:
            path = ("contacts", key, fld, lang)
            if path not in contacts_doc.lines:          # a contact word from translations/<lang>.yaml
                if lang not in translated:
                    tpath = Path(kb.root) / "translations" / f"{lang}.yaml"
                    translated[lang] = _read_quietly(tpath) if tpath.exists() else None
                tdoc = translated[lang]
                if tdoc is not None and path[:3] in tdoc.lines:
                    return tdoc.name, tdoc.lines[path[:3]]
            return contacts_doc.name, contacts_doc.line(path)

        for key, contact in kb.contacts.items():
            for fld in ("name", "hours", "note"):
                for lang, text in (getattr(contact, fld) or {}).items():
                    yield f"contact {key}.{fld}", lang, text, contact_line(key, fld, lang)
    if alerts_doc is not None and isinstance(alerts_doc.data, dict):
        for section in ("templates", "levels", "severities", "categories", "tsunami_kinds"):
            for key, texts in (alerts_doc.data.get(section) or {}).items():
                for lang, text in (texts or {}).items() if isinstance(texts, dict) else ():
                    if isinstance(text, str):
                        yield (f"alert {section}.{key}", str(lang), text,
                               (alerts_doc.name, alerts_doc.line((section, key, lang))))


def _read_quietly(path: Path) -> Any:
    """A second, line-keeping read of a file validate already reported on (problems dropped)."""
    return read_yaml(path, _Discard())


def read_glossary(root: Path, out: Any) -> GlossaryFile | None:
    """``<root>/glossary.yaml`` validated (problems go to ``out``); None when absent/invalid."""
    loaded = read_optional_model(root / GLOSSARY_FILE, GlossaryFile, out)
    if loaded is None:
        return None
    doc, glossary = loaded
    assert isinstance(glossary, GlossaryFile)
    for term, entry in glossary.terms.items():
        for lang, variants in entry.banned.items():
            preferred = entry.words.get(lang)   # type: ignore[call-overload]
            for variant in variants:
                if preferred and preferred.casefold() == variant.casefold():
                    out.add(doc.name, doc.line(("terms", term, "banned", lang)), "glossary_invalid",
                            f"{term} ({lang}): {variant!r} is both the preferred word and banned")
    return glossary


def check_texts(kb: Any, out: Any, *, locate_answer: Callable[[str, str], Where],
                locate_message: Callable[[str, str], Where], contacts_doc: Any = None) -> None:
    """Run every text check on ``kb`` (called by ``knowledge.validate.check_knowledge``)."""
    root = Path(kb.root)
    glossary = read_glossary(root, out)
    alerts_path = root / "alerts.yaml"
    alerts_doc = _read_quietly(alerts_path) if alerts_path.exists() else None
    for what, lang, text, (file, line) in _texts(kb, locate_answer, locate_message, contacts_doc, alerts_doc):
        if what.startswith(KEYWORD_MESSAGES):
            continue
        if glossary is not None:
            for term, variant, preferred in banned_uses(glossary, lang, text):
                out.add(file, line, "glossary_banned",
                        f"{what} ({lang}) uses {variant!r} for {term}; write {preferred!r} "
                        f"(knowledge/{GLOSSARY_FILE})" if preferred else
                        f"{what} ({lang}) uses {variant!r} for {term}, which the glossary bans")
            for term, preferred in missing_words(glossary, lang, text):
                out.warn(file, line, "glossary_word_missing",
                         f"{what} ({lang}) names {term} but not the glossary word {preferred!r}")
        if lang == "ja" and not what.startswith(("contact", *STAFF_MESSAGES)):
            for code, message in easy_japanese_findings(text):
                out.warn(file, line, code, f"{what}: {message}")
        dates = ambiguous_dates(text)
        if dates:
            out.warn(file, line, "ambiguous_date",
                     f"{what} ({lang}): {', '.join(dates)} reads as day/month or month/day; "
                     "write the month in words or the language's own order (8 December, 12月8日)")
    _check_rendered_length(kb, out, locate_answer)


def _check_rendered_length(kb: Any, out: Any, locate_answer: Callable[[str, str], Where]) -> None:
    for intent_id, intent in kb.intents.items():
        for lang, text in intent.answers.items():
            if not (text or "").strip():
                continue
            try:
                parts = render_sections(kb, intent_id, lang)
            except (RenderError, KeyError, ValueError):
                continue                       # a dangling placeholder, reported elsewhere
            budget = RENDERED_BUDGET.get(lang, 500)
            over = [(n, len(part)) for n, part in enumerate(parts, 1) if len(part) > budget]
            if not over:
                continue
            file, line = locate_answer(intent_id, lang)
            if len(parts) == 1:
                where = f"is {over[0][1]} characters rendered"
                hint = f"; shorten it or split it into sections with a line '{SECTION_BREAK}'"
            else:
                where = "; ".join(f"section {n} is {size} characters" for n, size in over) + " rendered"
                hint = "; shorten those sections or split them again"
            out.warn(file, line, "answer_too_long",
                     f"{intent_id}: the {lang!r} answer {where} (budget {budget} for a phone screen){hint}")


class _Discard:
    """A collector for a second read of a file another check already reported on."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        return None

    def warn(self, *args: Any, **kwargs: Any) -> None:
        return None
