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
#: Languages the Telegram command menu may be registered in (``language_code``): each one
#: whose ``tgcmd.*`` descriptions are all written in it; other users see the default (no
#: language_code) menu, in English.
COMMAND_MENU_LANGUAGES = LANGUAGES
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


def _plain(text: str) -> str:
    return normalize(unicodedata.normalize("NFKC", text))


def _fold(text: str) -> str:
    return fold_diacritics(_plain(text))


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
    def _command_index(self) -> tuple[dict[str, tuple[str, list[str]]], dict[str, tuple[str, list[str]]]]:
        """(exact, folded): command word -> (command, languages that list the word).

        Words with diacritics must be typed with them ("đúng" — "right" — is not "dừng");
        a message typed without any diacritics matches the folded form ("dung" = "dừng").
        """
        exact: dict[str, tuple[str, list[str]]] = {}
        folded: dict[str, tuple[str, list[str]]] = {}
        for command in COMMANDS:
            for lang, text in (self.kb.messages.get(f"cmd.{command}") or {}).items():
                for word in text.split("|"):
                    for index, key in ((exact, _plain(word)), (folded, _fold(word))):
                        if not key:
                            continue
                        found, langs = index.setdefault(key, (command, []))
                        if found == command and lang not in langs:
                            langs.append(lang)
        return exact, folded

    def match_command(self, text: str) -> tuple[str, list[str]] | None:
        """(command, languages whose command words include the text) — slash commands have
        no language (an empty list) — or None when the text is not a command."""
        stripped = text.strip()
        if stripped.startswith("/"):
            name = stripped[1:].split()[0].split("@")[0].lower() if len(stripped) > 1 else ""
            command = SLASH_COMMANDS.get(name)
            return (command, []) if command else None
        exact, folded = self._command_index
        plain = _plain(stripped)
        if plain in exact:
            return exact[plain]
        key = _fold(stripped)
        if key == plain and key in folded:   # typed without diacritics
            return folded[key]
        return None

    def command_of(self, text: str) -> str | None:
        """The command a message asks for, in any language; "/help" style commands too."""
        found = self.match_command(text)
        return found[0] if found else None

    def command_language(self, text: str, current: str) -> str:
        """The language to answer a typed command in: the command word's own language when
        only one language writes it in non-ASCII letters (메뉴 from an English user → ko),
        else ``current`` — "menu" or "stop" is international, not a request for English."""
        found = self.match_command(text)
        if not found or current in found[1] or len(found[1]) != 1 or text.strip().isascii():
            return current
        return found[1][0]

    def command_menus(self) -> dict[str | None, list[tuple[str, str]]]:
        """Slash commands with their descriptions (``tgcmd.<command>``) per language code, for
        Telegram's setMyCommands; the key None is the default menu (English)."""
        menus: dict[str | None, list[tuple[str, str]]] = {}
        written = [lang for lang in COMMAND_MENU_LANGUAGES
                   if all((self.kb.messages.get(f"tgcmd.{c}") or {}).get(lang) for c in COMMANDS)]
        for lang in (None, *written):
            menus[lang] = [(command, self.t(f"tgcmd.{command}", lang or "en")) for command in COMMANDS]
        return menus
