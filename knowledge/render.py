"""Turn a knowledge-base answer into the text a resident reads.

Owns: filling ``{{contact_key.field}}`` placeholders from ``contacts.yaml`` in the
resident's language, marking facts of unverified contacts with "※" (plus the localized
``fact.unverified`` note at the end of the answer), and the language fallback
(a missing translation renders English AND Easy Japanese, never nothing).

Pure functions over a loaded ``KnowledgeBase``; reads no files and imports nothing from
bot/, intents/ or scheduler/.
"""
from __future__ import annotations

import re
from typing import Any

from knowledge.base import KnowledgeBase
from knowledge.schema import PLACEHOLDER, SECTION_BREAK, Contact

#: Fallback order for a missing translation (DESIGN.md, "Languages").
FALLBACK_LANGUAGES: tuple[str, ...] = ("en", "ja")
#: Contact fields rendered in the answer's language.
LOCALIZED_FIELDS: frozenset[str] = frozenset({"name", "hours", "note"})
#: Fields a placeholder may name (everything except ``source``/``verified``, which are
#: bookkeeping for operators, not text for residents).
RENDERABLE_FIELDS: frozenset[str] = frozenset({"name", "phone", "address", "hours", "url", "email", "note"})
#: Fields that are *facts* a resident could act on wrongly if unverified. The office's name
#: is not marked: it identifies the place, and a "※" after every name would be noise.
FACT_FIELDS: frozenset[str] = frozenset({"phone", "address", "hours", "url", "email", "note"})
#: Fields after which the marker is separated by a space, so chat apps that auto-link
#: URLs and e-mail addresses do not swallow the "※" into the link.
_LINKED_FIELDS: frozenset[str] = frozenset({"url", "email"})

UNVERIFIED_MARK = "※"
UNVERIFIED_MESSAGE_KEY = "fact.unverified"


class RenderError(LookupError):
    """An answer names a contact or field that does not exist (``kurashi kb check`` catches
    this before start-up; at run time it means the KB was loaded without validation)."""


def localized(value: dict[str, str] | None, lang: str) -> str | None:
    """``value[lang]``, else English, else Easy Japanese, else None."""
    if not value:
        return None
    for candidate in (lang, *FALLBACK_LANGUAGES):
        text = value.get(candidate)
        if text:
            return text
    return None


def contact_field(contact: Contact, field: str, lang: str) -> str | None:
    """One field of a contact as text in ``lang`` (localized fields fall back en → ja)."""
    if field not in RENDERABLE_FIELDS:
        return None
    value: Any = getattr(contact, field, None)
    if value is None:
        return None
    if field in LOCALIZED_FIELDS:
        return localized(value, lang)
    return str(value)


def fill_placeholders(kb: KnowledgeBase, text: str, lang: str) -> tuple[str, bool]:
    """Replace every ``{{key.field}}`` in ``text``; returns (text, any_unverified_fact)."""
    used_unverified = False

    def _substitute(match) -> str:
        nonlocal used_unverified
        key, field = match.group(1), match.group(2)
        contact = kb.contacts.get(key)
        if contact is None:
            raise RenderError(f"unknown contact {key!r} in placeholder {match.group(0)}")
        value = contact_field(contact, field, lang)
        if value is None:
            raise RenderError(f"contact {key!r} has no field {field!r} ({match.group(0)})")
        if not contact.verified and field in FACT_FIELDS:
            used_unverified = True
            sep = " " if field in _LINKED_FIELDS else ""
            return f"{value}{sep}{UNVERIFIED_MARK}"
        return value

    return PLACEHOLDER.sub(_substitute, text), used_unverified


def message_text(kb: KnowledgeBase, key: str, lang: str) -> str | None:
    """A system message from messages.yaml in ``lang`` (fallback en → ja), unformatted."""
    return localized(kb.messages.get(key), lang)


def render_message(kb: KnowledgeBase, key: str, lang: str, **fields: object) -> str:
    """A system message in ``lang`` (fallback en → ja): contact placeholders are filled
    first, then the ``str.format`` fields (in that order, because ``str.format`` would turn
    ``{{key.field}}`` into a literal ``{key.field}``). Unverified facts get "※" and the
    localized note, as in answers. Raises KeyError when the key has no text at all."""
    template = message_text(kb, key, lang)
    if template is None:
        raise KeyError(f"message {key!r} has no text in {lang!r}, 'en' or 'ja'")
    code = lang if (kb.messages.get(key) or {}).get(lang) else next(
        fallback for fallback in FALLBACK_LANGUAGES if (kb.messages.get(key) or {}).get(fallback))
    text, unverified = fill_placeholders(kb, template, code)
    text = text.format(**fields)
    if unverified:
        note = message_text(kb, UNVERIFIED_MESSAGE_KEY, code)
        if note:
            text = f"{text}\n\n{note.strip()}"
    return text


def _render_one(kb: KnowledgeBase, template: str, lang: str) -> str:
    text, unverified = fill_placeholders(kb, template, lang)
    text = text.strip()
    if unverified:
        note = message_text(kb, UNVERIFIED_MESSAGE_KEY, lang)
        if note:
            # The note itself may carry placeholders (e.g. who to ask); never marks itself.
            note, _ = fill_placeholders(kb, note, lang)
            text = f"{text}\n\n{note.strip()}"
    return text


def answer_languages(kb: KnowledgeBase, intent_id: str, lang: str) -> list[str]:
    """The language(s) in which ``render_answer`` will render: ``[lang]`` when the answer
    exists, else the available ones of English and Easy Japanese (in that order)."""
    answers = kb.intents[intent_id].answers
    if answers.get(lang):
        return [lang]
    return [fallback for fallback in FALLBACK_LANGUAGES if answers.get(fallback)]


_SECTION_LINE = re.compile(rf"(?m)^[ \t]*{re.escape(SECTION_BREAK)}[ \t]*$")


def split_sections(text: str) -> list[str]:
    """An answer template split at lines that are only ``---`` (empty parts dropped)."""
    return [part.strip() for part in _SECTION_LINE.split(text) if part.strip()]


def render_sections(kb: KnowledgeBase, intent_id: str, lang: str) -> list[str]:
    """The answer as the sections a phone shows one after another: the first at once, each
    next one behind a "More" button. An answer without ``---`` lines is one section. Each
    section that shows an unverified fact ("※") carries the ``fact.unverified`` note itself.
    Without a translation, section *i* is the English section *i* and the Easy Japanese
    section *i* together (as ``render_answer`` shows both).
    """
    from itertools import zip_longest

    intent = kb.intents[intent_id]
    languages = answer_languages(kb, intent_id, lang)
    if not languages:
        raise RenderError(f"intent {intent_id!r} has no answer in {lang!r}, 'en' or 'ja'")
    per_language = [[_render_one(kb, part, code) for part in split_sections(intent.answers[code])]
                    for code in languages]
    return ["\n\n".join(part for part in parts if part) for parts in zip_longest(*per_language, fillvalue="")]


def render_answer(kb: KnowledgeBase, intent_id: str, lang: str) -> str:
    """The answer to ``intent_id`` exactly as the resident reads it in ``lang``.

    Placeholders are filled; unverified facts get "※" and the answer ends with the
    localized ``fact.unverified`` note. Without a translation in ``lang`` the English
    and the Easy Japanese answers are both rendered, separated by a blank line.
    Raises KeyError for an unknown intent id and RenderError for a dangling placeholder.
    """
    intent = kb.intents[intent_id]
    languages = answer_languages(kb, intent_id, lang)
    if not languages:
        raise RenderError(f"intent {intent_id!r} has no answer in {lang!r}, 'en' or 'ja'")
    return "\n\n".join(_render_one(kb, "\n\n".join(split_sections(intent.answers[code])), code)
                       for code in languages)


def render_terms(kb: KnowledgeBase, intent_id: str) -> str:
    """The official Japanese term(s) residents will see on paper, e.g. "転入届・住民票";
    empty string when the intent has none."""
    return "・".join(term.strip() for term in kb.intents[intent_id].terms if term.strip())
