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
#: Languages still being translated: the check only warns about what they miss. Every other
#: language must answer every intent (>= MIN_SAMPLES_PER_LANGUAGE samples) and every message.
#: Remove a language from here when its translation is complete.
PENDING_LANGUAGES: tuple[str, ...] = ()

#: Native names for the language picker.
LANGUAGE_NAMES: dict[str, str] = {
    "ja": "やさしい にほんご", "en": "English", "vi": "Tiếng Việt", "zh": "中文（简体）",
    "ko": "한국어", "id": "Bahasa Indonesia", "tl": "Tagalog", "ne": "नेपाली",
    "my": "မြန်မာ", "pt": "Português",
}

#: A line of only this inside an answer splits it into sections: the chat shows the first
#: and a "More" button for each next one (knowledge.render.render_sections). Budgets per
#: language for the rendered sections: knowledge.textcheck.RENDERED_BUDGET.
SECTION_BREAK = "---"
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


class TranslatedIntent(_Strict):
    """One intent's text in one language, kept in ``knowledge/translations/<lang>.yaml``."""

    #: Only for intents without an inline answer in this language in topics/*.yaml.
    answer: str | None = None
    #: Merged with the inline samples of this language (duplicates dropped).
    samples: list[str] = Field(default_factory=list)


class TranslatedContact(_Strict):
    """A contact's resident-facing words in one language. Facts (phone, address, url) stay
    in ``contacts.yaml``; only the localized fields can be translated here."""

    name: str | None = None
    hours: str | None = None
    note: str | None = None


class TranslationFile(_Strict):
    """``knowledge/translations/<lang>.yaml``: one language's answers, samples and messages.

    Translators of one language work in one file, never in the topic files; the validator
    merges it into each intent (answers, samples) and into ``messages``.
    """

    language: Lang
    intents: dict[str, TranslatedIntent] = Field(default_factory=dict)
    messages: dict[str, str] = Field(default_factory=dict)
    #: Localized contact fields (name, hours, note) missing in this language in contacts.yaml.
    contacts: dict[str, TranslatedContact] = Field(default_factory=dict)


class MessagesFile(_Strict):
    """``knowledge/messages.yaml``: every system message (greeting, menu, settings, errors…).

    Values are ``str.format`` templates with named fields, e.g. ``"Case {case_no}"``.
    """

    messages: dict[str, Localized]


# --- glossary (knowledge/glossary.yaml; checked by knowledge/textcheck.py) ---


class GlossaryTerm(_Strict):
    """One official Japanese term (the key, e.g. 在留カード) and the words residents read.

    ``words``: the resident-facing word per language that answers use for the term (vi
    ``thẻ lưu trú``). ``banned``: variants per language that answers, messages, contact
    texts and alert templates must not use (``kurashi kb check`` reports an error naming
    the preferred word); a banned variant inside the preferred word is allowed (zh 法テラス
    inside 日本司法支援中心（法テラス）). Matching ignores case; Latin-script variants match
    whole words only.
    """

    words: Localized = Field(default_factory=dict)
    banned: dict[Lang, list[str]] = Field(default_factory=dict)
    #: Why, for translators (which variant is obsolete, what the term covers).
    note: str | None = None
    #: Where the preferred wording comes from (official multilingual pages).
    source: str | list[str] | None = None


class GlossaryFile(_Strict):
    """``knowledge/glossary.yaml``: official term -> resident-facing words and banned variants."""

    terms: dict[str, GlossaryTerm]


# --- consultation partners (knowledge/partners.yaml; owned by the consultations feature) ---

#: Consultation topics the resident picks from, in picker order.
CONSULT_TOPICS: tuple[str, ...] = ("work", "health", "residence", "money", "housing", "children",
                                   "disaster", "other")
#: Resident segments a partner or rule can be limited to ("all" = anyone, also unknown).
CONSULT_SEGMENTS: tuple[str, ...] = ("trainee", "student", "other", "all")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")


class Partner(_Strict):
    """A partner organisation that takes consultation cases.

    Facts (phone, hours text, address) live in contacts.yaml under ``contact``; ``hours``
    here is the machine-readable form used for routing (Asia/Tokyo, "HH:MM-HH:MM" per
    weekday). ``hours: null`` means "not confirmed": the organisation is treated as
    accepting messages at any time and residents are not told opening hours.

    Only facts live here. The time within which an organisation answers and where its
    staff are notified are deployment settings (``CONSULT_RESPONSE_HOURS``; ``kurashi staff
    add`` / ``kurashi staff notify``), not claims of the knowledge base. A partner that is
    ``verified: false`` or whose contact is missing or unverified is never presented to
    residents (routing skips it).
    """

    name: Localized
    contact: str | None = None
    topics: list[str]
    languages: list[str]
    segments: list[str] = Field(default_factory=lambda: ["all"])
    hours: dict[str, str] | None = None
    #: Opening hours for residents writing in one language (e.g. OTIT's per-language lines).
    language_hours: dict[str, dict[str, str]] = Field(default_factory=dict)
    closed_on_holidays: bool = True
    #: Language of the staff notifications (Telegram group posts, e-mails).
    staff_language: str = "ja"
    source: str | list[str] | None = None
    verified: bool
    note: str | None = None

    @field_validator("hours")
    @classmethod
    def _hours_shape(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for day, span in (value or {}).items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r} (use {', '.join(WEEKDAYS)})")
            if not _HOURS.match(span) or span[:5] >= span[6:]:
                raise ValueError(f"{day}: {span!r} must look like 08:30-17:15 (start before end)")
        return value

    @field_validator("language_hours")
    @classmethod
    def _language_hours_shape(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for hours in value.values():
            cls._hours_shape(hours)
        return value


class RoutingRule(_Strict):
    """First matching rule wins; an empty list (or omitted key) matches anything."""

    org: str
    topics: list[str] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    #: Only while the organisation is open (otherwise the next rule is tried).
    when_open: bool = False
    why: str | None = None


class PartnersFile(_Strict):
    """``knowledge/partners.yaml``: organisations, routing rules and canned staff replies."""

    default: str
    urgent_topics: list[str] = Field(default_factory=lambda: ["disaster"])
    partners: dict[str, Partner]
    rules: list[RoutingRule] = Field(default_factory=list)
    #: Canned replies staff can insert in the console: key -> text per language.
    canned_replies: dict[str, Localized] = Field(default_factory=dict)


# --- disaster alert templates (knowledge/alerts.yaml; owned by the scheduler feature) ---


class AlertsFile(_Strict):
    """``knowledge/alerts.yaml``: the pieces a pushed disaster alert is built from.

    ``templates`` are ``str.format`` templates keyed ``<kind>.issued``, ``action.<kind>``…
    (see the file's header); ``levels`` the 警戒レベル line per level; ``severities`` and
    ``categories`` name a JMA warning; ``tsunami_kinds`` name a tsunami warning kind.
    """

    shelter_intent: str
    level_categories: list[str] = Field(default_factory=list)
    templates: dict[str, Localized]
    levels: dict[int, Localized]
    severities: dict[str, Localized]
    categories: dict[str, Localized]
    tsunami_kinds: dict[str, Localized]
