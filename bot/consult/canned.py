"""Canned staff replies kept by operators in the console (table consult_canned_replies).

Owns: listing the replies (key → topic and text per language), saving one reply's texts
(operators, ``/console/canned``), deleting one, importing the defaults of
knowledge/partners.yaml ``canned_replies``, and picking the replies a case offers: those
for every topic and for the case's topic, each in the case's language (fallback English,
then Japanese) with the Japanese text beside it for the staff member. While the table is
empty the case page offers partners.yaml's replies, so a fresh install is not empty.
Must not import the conversation engine or FastAPI.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.consult_models import CannedReply, Staff
from bot.db.models import utcnow
from knowledge.schema import CONSULT_TOPICS, LANGUAGES

KEY = re.compile(r"[a-z0-9_][a-z0-9_-]{0,63}")
MAX_TEXT = 2000
ALL_TOPICS = ""


class CannedError(ValueError):
    """A canned reply form that cannot be saved (the message says why, for the operator)."""


@dataclass
class Canned:
    key: str
    topic: str = ALL_TOPICS                       # "" = every topic
    texts: dict[str, str] = field(default_factory=dict)   # language → text


@dataclass(frozen=True)
class Offered:
    """One canned reply as a case offers it."""

    key: str
    text: str          # in the case's language (what is inserted in the reply box)
    language: str      # the language ``text`` is in (the case's, else en/ja)
    ja: str            # the Japanese text, shown beside it for the staff member


async def list_canned(session: AsyncSession) -> list[Canned]:
    """Every canned reply in the database, by key."""
    rows = (await session.execute(select(CannedReply).order_by(CannedReply.key, CannedReply.language))).scalars()
    out: dict[str, Canned] = {}
    for row in rows:
        item = out.setdefault(row.key, Canned(row.key, row.topic or ALL_TOPICS))
        item.texts[row.language] = row.text
    return list(out.values())


def kb_canned(kb: Any) -> list[Canned]:
    """The defaults of knowledge/partners.yaml (every topic)."""
    partners = getattr(kb, "partners", None)
    items = partners.canned_replies if partners is not None else {}
    return [Canned(key, ALL_TOPICS, {lang: text for lang, text in dict(texts).items() if text})
            for key, texts in items.items()]


async def save_canned(session: AsyncSession, staff: Staff | None, key: str, topic: str,
                      texts: dict[str, str]) -> Canned:
    """Create or replace the reply ``key``: its topic and its text in each language (a
    language left empty is removed). Raises CannedError for a bad key, topic or text."""
    key = (key or "").strip().lower()
    if not KEY.fullmatch(key):
        raise CannedError("キーは英小文字・数字・_・- で 64 文字まで。 The key is lower-case letters, digits, _ or - (up to 64).")
    if topic not in (ALL_TOPICS, *CONSULT_TOPICS):
        raise CannedError(f"unknown topic {topic!r}")
    cleaned = {lang: (texts.get(lang) or "").replace("\x00", "").strip() for lang in LANGUAGES}
    cleaned = {lang: text for lang, text in cleaned.items() if text}
    if not cleaned:
        raise CannedError("少なくとも1つの言語で本文を書いてください。 Write the text in at least one language.")
    if "ja" not in cleaned:
        raise CannedError("日本語の本文が必要です（スタッフが内容を確認するため）。 The Japanese text is needed: staff read it beside the resident's language.")
    too_long = [lang for lang, text in cleaned.items() if len(text) > MAX_TEXT]
    if too_long:
        raise CannedError(f"{', '.join(too_long)}: {MAX_TEXT} 文字まで / at most {MAX_TEXT} characters")
    existing = {row.language: row for row in (await session.execute(
        select(CannedReply).where(CannedReply.key == key))).scalars()}
    now = utcnow()
    for lang, row in existing.items():
        if lang not in cleaned:
            await session.delete(row)
    for lang, text in cleaned.items():
        row = existing.get(lang)
        if row is None:
            session.add(CannedReply(key=key, topic=topic, language=lang, text=text, updated_at=now,
                                    updated_by=staff.id if staff is not None else None))
        else:
            row.topic, row.text, row.updated_at = topic, text, now
            row.updated_by = staff.id if staff is not None else None
    await session.flush()
    return Canned(key, topic, cleaned)


async def delete_canned(session: AsyncSession, key: str) -> int:
    """Remove every language of ``key``; returns how many rows."""
    result = await session.execute(delete(CannedReply).where(CannedReply.key == key))
    return result.rowcount or 0


async def import_kb_canned(session: AsyncSession, kb: Any, staff: Staff | None = None) -> list[str]:
    """Copy partners.yaml's replies whose key the table does not have yet; returns their keys."""
    have = set((await session.execute(select(CannedReply.key).distinct())).scalars())
    added = []
    for item in kb_canned(kb):
        if item.key not in have and item.texts.get("ja"):
            await save_canned(session, staff, item.key, item.topic, item.texts)
            added.append(item.key)
    return added


async def offered_for_case(session: AsyncSession, kb: Any, topic: str, language: str) -> list[Offered]:
    """The replies a case of ``topic`` in ``language`` offers, each in that language (fallback
    en, ja) with the Japanese beside it. partners.yaml's while the table is empty."""
    count = await session.scalar(select(func.count()).select_from(CannedReply))
    items = await list_canned(session) if count else kb_canned(kb)
    out = []
    for item in items:
        if item.topic not in (ALL_TOPICS, topic):
            continue
        for lang in (language, "en", "ja"):
            if item.texts.get(lang):
                out.append(Offered(item.key, item.texts[lang], lang, item.texts.get("ja", "")))
                break
    return out
