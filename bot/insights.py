"""Operator insights: what residents asked that the bot could not answer, and 👎 feedback.

Owns the read/resolve/prune queries over the ``unanswered`` and ``feedback`` tables that
the city operators' console pages (bot/web/console/insights.py), the ``kurashi insights``
command (bot/cli/insights.py) and ``kurashi db prune`` share, so both show the same data:

- ``unanswered_groups`` — unanswered questions grouped by their normalised text
  (``intents.normalize.normalize``), most frequent first: the biggest gaps on top;
- ``unanswered_rows`` / ``count_unanswered`` — the same questions one by one, newest first;
- ``resolve_unanswered`` / ``resolve_unanswered_group`` — the operator's "mark resolved";
- ``intent_votes`` / ``negative_feedback`` — 👍/👎 per intent and the 👎 with the question typed;
- ``export_samples`` — unresolved questions of one language, de-duplicated, for an intent's samples;
- ``prune_insights`` — the retention period (Settings.insights_retention_days);
- ``forget_user`` — forget-me: the resident's own questions and votes (asked by bot/privacy.py).

Grouping happens in two steps: SQL groups by the exact (text, language, decision) — that
keeps the transfer small when many residents type the very same words — and Python merges
the exact texts that normalise alike (case, width, punctuation, emoji differ). At most
``MAX_DISTINCT`` exact texts (the most recent) are merged; ``Groups.truncated`` says so.

Crisis messages (suicide, self-harm: ``intents.crisis``) are never listed with their text:
the bot answers them at once and stores nothing, and should one still be stored (a 👎 on
the crisis answer, a message the check missed that names the crisis topic in its
suggestions), every listing here shows ``CRISIS_HIDDEN`` instead of the words.

None of these functions commits: they run in the caller's transaction.
Must not import the conversation core, channel adapters, the web layer or Settings.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Feedback, Unanswered, utcnow
from intents.crisis import CRISIS_INTENT, is_crisis
from intents.normalize import fold_diacritics, fold_kana, normalize

DECISIONS = ("decline", "clarify_abandoned")
#: Which rows a listing shows (``status`` argument).
STATUSES = ("open", "resolved", "all")
#: Exact texts merged into groups at most (the most recent ones).
MAX_DISTINCT = 20_000
DEFAULT_RETENTION_DAYS = 180
#: Shown instead of the words of a crisis message (and its group key).
CRISIS_HIDDEN = "（非表示：こころの危機に関するメッセージ） (hidden: a message about a personal crisis)"


def is_crisis_text(text: str | None, suggestions: Iterable[str] | None = None) -> bool:
    """Whether a stored question is about a personal crisis (its words must not be shown)."""
    if suggestions and CRISIS_INTENT in suggestions:
        return True
    plain = normalize(text or "")
    return is_crisis(fold_kana(fold_diacritics(plain)), plain)


def _hide(session: AsyncSession, row: Any, attribute: str) -> None:
    """Replace a crisis row's text in what is returned, never in the database (detached first)."""
    if row in session:
        session.expunge(row)
    setattr(row, attribute, CRISIS_HIDDEN)


# --------------------------------------------------------------------------- unanswered

@dataclass
class UnansweredGroup:
    """Questions that normalise to the same text."""

    key: str                     # normalize(text); "" for texts without letters/digits
    text: str                    # the most recent original wording (shown to the operator)
    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    languages: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    variants: int = 0            # distinct exact wordings merged here

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "text": self.text, "count": self.count, "variants": self.variants,
            "languages": dict(self.languages.most_common()), "decisions": dict(self.decisions.most_common()),
            "first_at": self.first_at.isoformat() if self.first_at else None,
            "last_at": self.last_at.isoformat() if self.last_at else None,
        }


@dataclass
class Groups:
    groups: list[UnansweredGroup]   # most frequent first (then most recent), at most ``limit``
    total_groups: int               # before ``limit``
    total_rows: int                 # questions counted in all groups
    truncated: bool                 # more than MAX_DISTINCT exact texts: the oldest were not counted


def _unanswered_filters(language: str | None, decision: str | None, status: str) -> list[ColumnElement[bool]]:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
    if decision is not None and decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r} (one of {', '.join(DECISIONS)})")
    where: list[ColumnElement[bool]] = []
    if language:
        where.append(Unanswered.language == language)
    if decision:
        where.append(Unanswered.decision == decision)
    if status == "open":
        where.append(Unanswered.resolved.is_(False))
    elif status == "resolved":
        where.append(Unanswered.resolved.is_(True))
    return where


async def unanswered_groups(
    session: AsyncSession, *, language: str | None = None, decision: str | None = None,
    status: str = "open", limit: int | None = 50, max_distinct: int = MAX_DISTINCT,
) -> Groups:
    """Unanswered questions grouped by normalised text, most frequent first (ties: most recent)."""
    where = _unanswered_filters(language, decision, status)
    last = func.max(Unanswered.created_at)
    rows = (await session.execute(
        select(Unanswered.text, Unanswered.language, Unanswered.decision, func.count(), func.min(Unanswered.created_at),
               last)
        .where(*where)
        .group_by(Unanswered.text, Unanswered.language, Unanswered.decision)
        .order_by(last.desc())
        .limit(max_distinct + 1)
    )).all()
    truncated = len(rows) > max_distinct
    groups: dict[str, UnansweredGroup] = {}
    wordings: dict[str, set[str]] = {}
    for text, lang, dec, n, first_at, last_at in rows[:max_distinct]:
        if is_crisis_text(text):
            text = CRISIS_HIDDEN
        key = normalize(text) if text != CRISIS_HIDDEN else CRISIS_HIDDEN
        group = groups.get(key)
        if group is None:   # rows come most recent first: the first wording seen is the newest
            group = groups[key] = UnansweredGroup(key=key, text=text, first_at=first_at, last_at=last_at)
            wordings[key] = set()
        group.count += n
        group.languages[lang or "?"] += n
        group.decisions[dec] += n
        group.first_at = min(group.first_at, first_at) if group.first_at else first_at
        group.last_at = max(group.last_at, last_at) if group.last_at else last_at
        wordings[key].add(text)
    for key, group in groups.items():
        group.variants = len(wordings[key])
    ordered = sorted(groups.values(), key=lambda g: (-g.count, -(g.last_at.timestamp() if g.last_at else 0), g.key))
    return Groups(groups=ordered if limit is None else ordered[:limit], total_groups=len(ordered),
                  total_rows=sum(g.count for g in ordered), truncated=truncated)


async def count_unanswered(session: AsyncSession, *, language: str | None = None, decision: str | None = None,
                           status: str = "open") -> int:
    where = _unanswered_filters(language, decision, status)
    return int(await session.scalar(select(func.count()).select_from(Unanswered).where(*where)) or 0)


async def unanswered_rows(
    session: AsyncSession, *, language: str | None = None, decision: str | None = None, status: str = "open",
    limit: int = 50, offset: int = 0,
) -> list[Unanswered]:
    """Unanswered questions one by one, newest first."""
    where = _unanswered_filters(language, decision, status)
    rows = list((await session.execute(
        select(Unanswered).where(*where).order_by(Unanswered.created_at.desc(), Unanswered.id.desc())
        .limit(limit).offset(offset)
    )).scalars())
    for row in rows:
        if is_crisis_text(row.text, row.suggestions):
            _hide(session, row, "text")
    return rows


async def unanswered_languages(session: AsyncSession) -> list[str]:
    """Languages that occur in the unanswered table (for the filter)."""
    found = (await session.execute(select(Unanswered.language).distinct())).scalars()
    return sorted(lang for lang in found if lang)


async def resolve_unanswered(session: AsyncSession, ids: Iterable[int]) -> int:
    """Mark these questions resolved; returns how many were still open."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return 0
    result = await session.execute(
        update(Unanswered).where(Unanswered.id.in_(wanted), Unanswered.resolved.is_(False))
        .values(resolved=True).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def resolve_unanswered_group(session: AsyncSession, key: str, *, language: str | None = None,
                                   decision: str | None = None) -> int:
    """Mark every open question whose normalised text is ``key`` (within the filters) resolved."""
    where = _unanswered_filters(language, decision, "open")
    texts = (await session.execute(select(Unanswered.text).where(*where).distinct())).scalars()
    matching = [t for t in texts if (is_crisis_text(t) if key == CRISIS_HIDDEN else normalize(t) == key)]
    resolved = 0
    for start in range(0, len(matching), 500):   # bounded IN lists
        result = await session.execute(
            update(Unanswered).where(*where, Unanswered.text.in_(matching[start:start + 500]))
            .values(resolved=True).execution_options(synchronize_session=False)
        )
        resolved += result.rowcount or 0
    return resolved


# --------------------------------------------------------------------------- feedback

@dataclass(frozen=True)
class IntentVotes:
    intent: str
    up: int
    down: int

    @property
    def total(self) -> int:
        return self.up + self.down

    @property
    def down_ratio(self) -> float:
        """Share of 👎 among the votes (0.0–1.0)."""
        return round(self.down / self.total, 3) if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "up": self.up, "down": self.down, "total": self.total,
                "down_ratio": self.down_ratio}


def _feedback_filters(intent: str | None, language: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if intent:
        where.append(Feedback.intent == intent)
    if language:
        where.append(Feedback.language == language)
    return where


async def intent_votes(session: AsyncSession, *, intent: str | None = None,
                       language: str | None = None) -> list[IntentVotes]:
    """👍/👎 counts per intent, the most 👎 first (ties: higher 👎 share, then intent id)."""
    up = func.sum(case((Feedback.vote > 0, 1), else_=0))
    down = func.sum(case((Feedback.vote < 0, 1), else_=0))
    rows = (await session.execute(
        select(Feedback.intent, up, down).where(*_feedback_filters(intent, language)).group_by(Feedback.intent)
    )).all()
    votes = [IntentVotes(name, int(u or 0), int(d or 0)) for name, u, d in rows]
    return sorted(votes, key=lambda v: (-v.down, -v.down_ratio, v.intent))


async def count_negative_feedback(session: AsyncSession, *, intent: str | None = None,
                                  language: str | None = None) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(Feedback).where(Feedback.vote < 0, *_feedback_filters(intent, language))
    ) or 0)


async def negative_feedback(session: AsyncSession, *, intent: str | None = None, language: str | None = None,
                            limit: int = 50, offset: int = 0) -> list[Feedback]:
    """👎 votes (with the question the resident typed, when they typed one), newest first."""
    rows = list((await session.execute(
        select(Feedback).where(Feedback.vote < 0, *_feedback_filters(intent, language))
        .order_by(Feedback.created_at.desc(), Feedback.id.desc()).limit(limit).offset(offset)
    )).scalars())
    for row in rows:
        if row.question and (row.intent == CRISIS_INTENT or is_crisis_text(row.question)):
            _hide(session, row, "question")
    return rows


async def feedback_facets(session: AsyncSession) -> tuple[list[str], list[str]]:
    """(intents, languages) that occur in the feedback table (for the filters)."""
    intents = (await session.execute(select(Feedback.intent).distinct())).scalars()
    languages = (await session.execute(select(Feedback.language).distinct())).scalars()
    return sorted(i for i in intents if i), sorted(lang for lang in languages if lang)


# --------------------------------------------------------------------------- samples

async def export_samples(session: AsyncSession, language: str, *, existing: Sequence[str] = (),
                         decision: str | None = None, limit: int = 50) -> tuple[list[str], int]:
    """Open unanswered questions in ``language`` as candidate samples, most frequent first.

    One wording per normalised text (the most recent), texts without letters or digits left
    out, and questions that normalise like one of ``existing`` (the intent's current samples)
    skipped. Returns (samples, how many were skipped as already present).
    """
    known = {normalize(s) for s in existing}
    grouped = await unanswered_groups(session, language=language, decision=decision, status="open", limit=None)
    samples: list[str] = []
    skipped = 0
    for group in grouped.groups:
        if not group.key or group.key == CRISIS_HIDDEN:
            continue
        if group.key in known:
            skipped += 1
            continue
        samples.append(" ".join(group.text.split()))   # one line: samples are short questions
        if len(samples) >= limit:
            break
    return samples, skipped


# --------------------------------------------------------------------------- retention

async def prune_insights(session: AsyncSession, *, older_than: timedelta,
                         now: datetime | None = None) -> tuple[int, int]:
    """Delete unanswered questions and feedback created more than ``older_than`` ago.

    Returns (unanswered rows, feedback rows) deleted. Resolved or not: residents' words are
    not kept longer than the retention period.
    """
    cutoff = (now or utcnow()) - older_than
    gone_unanswered = await session.execute(
        delete(Unanswered).where(Unanswered.created_at < cutoff).execution_options(synchronize_session=False))
    gone_feedback = await session.execute(
        delete(Feedback).where(Feedback.created_at < cutoff).execution_options(synchronize_session=False))
    return gone_unanswered.rowcount or 0, gone_feedback.rowcount or 0


async def forget_user(session: AsyncSession, user_id: int) -> tuple[int, int]:
    """Forget-me: delete the resident's unanswered questions and feedback votes.

    Returns (unanswered rows, feedback rows) deleted. Explicit rather than left to the
    foreign key's ON DELETE CASCADE, so it also works on a connection without it.
    """
    gone_unanswered = await session.execute(
        delete(Unanswered).where(Unanswered.user_id == user_id).execution_options(synchronize_session=False))
    gone_feedback = await session.execute(
        delete(Feedback).where(Feedback.user_id == user_id).execution_options(synchronize_session=False))
    return gone_unanswered.rowcount or 0, gone_feedback.rowcount or 0
