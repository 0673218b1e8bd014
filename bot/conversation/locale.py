"""System messages, language codes, districts and command words, read from the knowledge base.

Owns: looking up ``knowledge/messages.yaml`` texts in a resident's language (fallback en,
then Easy Japanese), filling contact placeholders and format fields; mapping platform
language tags ("en-US", "zh-Hans", "fil") to kurashi's codes; the district list
(``district.<key>`` messages, in file order); button labels of intents; recognising
command words typed in any language.

Everything user-facing comes from the knowledge base; this module holds no resident text.
Must not import platform SDKs, Starlette, adapters or the database.
"""
from __future__ import annotations

import re
import unicodedata
from functools import cached_property

from intents.normalize import fold_diacritics, normalize
from knowledge.loader import KnowledgeBase
from knowledge.render import fill_placeholders
from knowledge.schema import CORE_LANGUAGES, EXTRA_LANGUAGES, LANGUAGE_NAMES, LANGUAGES

FALLBACK = ("en", "ja")
UNVERIFIED_NOTE = "fact.unverified"

# Platform tags that are not simply "<code>-<region>" (BCP 47 / Telegram IETF tags).
_TAG_ALIASES = {"fil": "tl", "tgl": "tl", "nep": "ne", "bur": "my", "vie": "vi", "kor": "ko",
                "jpn": "ja", "zho": "zh", "chi": "zh", "eng": "en", "ind": "id", "in": "id"}

COMMANDS = ("menu", "language", "settings", "consult", "forget", "stop")
#: Telegram-style slash commands (also accepted on every other channel).
SLASH_COMMANDS = {
    "start": "start", "menu": "menu", "help": "menu", "language": "language", "lang": "language",
    "settings": "settings", "consult": "consult", "forget": "forget", "forgetme": "forget",
    "stop": "stop",
}


def normalize_language(tag: str | None) -> str | None:
    """A kurashi language code for a platform language tag, or None when unsupported.

    Chinese of any script maps to ``zh`` (Simplified): a Traditional-script reader still
    understands it far better than the English fallback.
    """
    if not tag:
        return None
    base = re.split(r"[-_]", tag.strip().lower(), maxsplit=1)[0]
    base = _TAG_ALIASES.get(base, base)
    return base if base in LANGUAGES else None


def _fold(text: str) -> str:
    return fold_diacritics(normalize(unicodedata.normalize("NFKC", text)))


class Texts:
    """Localized system messages and labels over one loaded knowledge base."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    # --- messages ------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return key in self.kb.messages

    def raw(self, key: str, lang: str | None) -> str:
        """The unformatted template of ``key`` in ``lang`` (fallback en → ja)."""
        values = self.kb.messages.get(key)
        if not values:
            raise KeyError(f"system message {key!r} is missing from knowledge/messages.yaml")
        for candidate in ((lang,) if lang else ()) + FALLBACK:
            if values.get(candidate):
                return values[candidate]
        return next(iter(values.values()))

    def text_language(self, key: str, lang: str | None) -> str:
        """Which language ``t(key, lang)`` actually renders in."""
        values = self.kb.messages.get(key) or {}
        for candidate in ((lang,) if lang else ()) + FALLBACK:
            if values.get(candidate):
                return candidate
        return "en"

    def t(self, key: str, lang: str | None, **fields: object) -> str:
        """Message ``key`` in ``lang``: contact placeholders filled, then format fields."""
        template = self.raw(key, lang)
        shown_lang = self.text_language(key, lang)
        text, unverified = fill_placeholders(self.kb, template, shown_lang)
        text = text.format(**fields) if fields else text
        if unverified and key != UNVERIFIED_NOTE:
            # A contact fact not confirmed yet carries "※" (from fill_placeholders) and the note.
            text = f"{text}\n\n{self.t(UNVERIFIED_NOTE, lang)}"
        return text

    def all_languages(self, key: str, languages: tuple[str, ...] = CORE_LANGUAGES) -> str:
        """Message ``key`` once per language, one per line (for a resident whose language is unknown)."""
        lines: list[str] = []
        for lang in languages:
            line = self.t(key, lang)
            if line not in lines:
                lines.append(line)
        return "\n".join(lines)

    # --- languages -----------------------------------------------------------------
    @cached_property
    def picker_languages(self) -> list[str]:
        """Core languages, then extra languages the knowledge base answers at least once in."""
        extras = [
            lang for lang in EXTRA_LANGUAGES
            if any(intent.answers.get(lang) for intent in self.kb.intents.values())
        ]
        return list(CORE_LANGUAGES) + extras

    @staticmethod
    def language_name(lang: str) -> str:
        return LANGUAGE_NAMES.get(lang, lang)

    # --- districts -----------------------------------------------------------------
    @cached_property
    def districts(self) -> list[str]:
        """District keys in the order of messages.yaml (the picker order)."""
        return [key.split(".", 1)[1] for key in self.kb.messages if key.startswith("district.")]

    def district_name(self, key: str | None, lang: str) -> str | None:
        if not key or f"district.{key}" not in self.kb.messages:
            return None
        return self.t(f"district.{key}", lang)

    def district_from_address(self, address: str | None) -> str | None:
        """The district named in a postal address inside Yamaguchi City, else None.

        Only addresses that say 山口市 / Yamaguchi-shi are considered (several district
        names also exist elsewhere); the longest matching name wins (秋穂二島 over 秋穂).
        """
        if not address:
            return None
        text = unicodedata.normalize("NFKC", address)
        folded = _fold(text)
        if "山口市" not in text and "yamaguchi" not in folded:
            return None
        best: tuple[int, str] | None = None
        for key in self.districts:
            ja = self.raw(f"district.{key}", "ja")
            kanji = re.split(r"[（(]", ja, maxsplit=1)[0].strip()
            latin = _fold(self.raw(f"district.{key}", "en")).split(" ")[0].replace("-", " ")
            for name, haystack in ((kanji, text.replace("山口市", " ")), (latin, folded)):
                if name and name in haystack and (best is None or len(name) > best[0]):
                    best = (len(name), key)
        return best[1] if best else None

    # --- intents -------------------------------------------------------------------
    def intent_label(self, intent_id: str, lang: str) -> str:
        """A short button label for an intent: ``topic.<id>``, else its first sample question."""
        if f"topic.{intent_id}" in self.kb.messages:
            return self.t(f"topic.{intent_id}", lang)
        intent = self.kb.intents.get(intent_id)
        if intent is not None:
            for candidate in (lang,) + FALLBACK:
                samples = intent.samples.get(candidate)
                if samples:
                    return samples[0]
        return intent_id

    # --- commands ------------------------------------------------------------------
    @cached_property
    def _command_words(self) -> dict[str, str]:
        words: dict[str, str] = {}
        for command in COMMANDS:
            for text in (self.kb.messages.get(f"cmd.{command}") or {}).values():
                for word in text.split("|"):
                    folded = _fold(word)
                    if folded:
                        words.setdefault(folded, command)
        return words

    def command_of(self, text: str) -> str | None:
        """The command a message asks for, in any language; "/help" style commands too."""
        stripped = text.strip()
        if stripped.startswith("/"):
            name = stripped[1:].split()[0].split("@")[0].lower() if len(stripped) > 1 else ""
            return SLASH_COMMANDS.get(name)
        return self._command_words.get(_fold(stripped))
