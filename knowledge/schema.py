"""The one schema every knowledge file is validated against (pydantic v2).

Owns the shape of: topic files (``knowledge/topics/*.yaml``), ``knowledge/contacts.yaml``
and ``knowledge/messages.yaml``. Imports nothing from bot/, intents/ or scheduler/.

Conventions shared by all files
- Languages are ISO-639-1 codes. CORE_LANGUAGES must be complete everywhere; EXTRA_LANGUAGES
  may be partial (the validator counts what is missing and the bot falls back to en + ja).
- ``ja`` is Easy Japanese (やさしい日本語): short sentences, common words, the kanji term
  residents meet on paper in brackets, e.g. 「てんにゅうとどけ（転入届）」.
- Answers refer to contact facts by key, never by writing a phone number inline:
  ``{{yfrcc.phone}}`` renders the ``phone`` field of contact ``yfrcc``; localized fields
  (``name``, ``hours``, ``note``) render in the answer's language. Emergency numbers 110,
  119 and 171 are facts and may be written inline.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CORE_LANGUAGES: tuple[str, ...] = ("ja", "en", "vi", "zh", "ko")
EXTRA_LANGUAGES: tuple[str, ...] = ("id", "tl", "ne", "my", "pt")
LANGUAGES: tuple[str, ...] = CORE_LANGUAGES + EXTRA_LANGUAGES

#: Native names for the language picker.
LANGUAGE_NAMES: dict[str, str] = {
    "ja": "やさしい にほんご", "en": "English", "vi": "Tiếng Việt", "zh": "中文（简体）",
    "ko": "한국어", "id": "Bahasa Indonesia", "tl": "Tagalog", "ne": "नेपाली",
    "my": "မြန်မာ", "pt": "Português",
}

ANSWER_BUDGET = 600          # characters; a phone screen
MIN_SAMPLES_PER_LANGUAGE = 8
INTENT_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
PLACEHOLDER = re.compile(r"\{\{\s*([a-z][a-z0-9_]*)\.([a-z_]+)\s*\}\}")

Lang = Literal["ja", "en", "vi", "zh", "ko", "id", "tl", "ne", "my", "pt"]
Localized = dict[Lang, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Intent(_Strict):
    """One thing residents ask about, answered in every core language."""

    id: str
    #: Official Japanese terms residents will see on paper (転入届, 国民健康保険, 避難指示).
    terms: list[str] = Field(default_factory=list)
    answers: Localized
    samples: dict[Lang, list[str]]
    #: Intent ids offered as follow-up buttons.
    related: list[str] = Field(default_factory=list)
    #: Emergency numbers first, answered at once with no clarification round.
    urgent: bool = False
    #: The answer also offers the consultation flow.
    escalates: bool = False
    #: Consultation topic pre-selected when the resident asks for help from this answer.
    consult_topic: str | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not INTENT_ID.match(value):
            raise ValueError(f"intent id {value!r} must look like group.name in snake_case")
        return value


class TopicFile(_Strict):
    """``knowledge/topics/<group>.yaml``."""

    group: str
    intents: list[Intent]


class Contact(_Strict):
    """One office or service. Every fact carries its source; unsure facts are ``verified: false``."""

    name: Localized
    phone: str | None = None
    address: str | None = None
    hours: Localized | None = None
    url: str | None = None
    email: str | None = None
    note: Localized | None = None
    #: Where the facts come from (URL, or URLs).
    source: str | list[str]
    verified: bool


class ContactsFile(_Strict):
    """``knowledge/contacts.yaml``."""

    contacts: dict[str, Contact]


class MessagesFile(_Strict):
    """``knowledge/messages.yaml``: every system message (greeting, menu, settings, errors…).

    Values are ``str.format`` templates with named fields, e.g. ``"Case {case_no}"``.
    """

    messages: dict[str, Localized]
