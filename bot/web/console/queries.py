"""Read-only queries the console needs beyond bot/consult/cases.py (which owns every write).

Owns: ``previews`` (the resident's first text of each case, for the inbox), ``org_staff``
(staff accounts of one organisation), ``org_audit`` (recent audit entries of one
organisation). Every function is limited to the caller's organisation by its arguments.
Must not write, and must not import the conversation engine.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.consult_models import DIR_IN, AuditEntry, CaseMessage, Staff


async def previews(db: AsyncSession, case_ids: Sequence[int]) -> dict[int, str]:
    """Case id → the resident's first text message (cases the caller may already see)."""
    if not case_ids:
        return {}
    first = (select(func.min(CaseMessage.id)).where(
        CaseMessage.case_id.in_(list(case_ids)), CaseMessage.direction == DIR_IN,
        CaseMessage.text.is_not(None)).group_by(CaseMessage.case_id))
    rows = await db.execute(select(CaseMessage.case_id, CaseMessage.text).where(CaseMessage.id.in_(first)))
    return {case_id: text or "" for case_id, text in rows.all()}


async def org_staff(db: AsyncSession, org: str) -> dict[int, Staff]:
    """Staff accounts of ``org`` by id (active or not: old messages still name them)."""
    rows = await db.execute(select(Staff).where(Staff.org == org).order_by(Staff.name, Staff.email))
    return {s.id: s for s in rows.scalars()}


async def staff_names(db: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    """Staff id → display name (name or e-mail), for authors of messages and audit entries."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = await db.execute(select(Staff.id, Staff.name, Staff.email).where(Staff.id.in_(wanted)))
    return {sid: name or email for sid, name, email in rows.all()}


async def org_audit(db: AsyncSession, org: str, *, limit: int = 200) -> list[AuditEntry]:
    """The newest audit entries of ``org``: recorded for its cases, or done by its staff (a
    transfer is recorded under the receiving organisation). Actions only, never message text."""
    own_staff = select(Staff.id).where(Staff.org == org)
    rows = await db.execute(select(AuditEntry).where(or_(AuditEntry.org == org, AuditEntry.staff_id.in_(own_staff)))
                            .order_by(AuditEntry.id.desc()).limit(limit))
    return list(rows.scalars())


async def case_counts(db: AsyncSession, org: str | None, column: str) -> list[tuple[str, int]]:
    """Sent cases of ``org`` (None = every organisation) counted by ``column``
    (status, topic, language or org), largest first."""
    from bot.db.consult_models import STAFF_VISIBLE, Case

    field = getattr(Case, column)
    query = select(field, func.count()).where(Case.status.in_(STAFF_VISIBLE)).group_by(field)
    if org is not None:
        query = query.where(Case.org == org)
    rows = [(str(key), int(n)) for key, n in (await db.execute(query)).all()]
    return sorted(rows, key=lambda row: (-row[1], row[0]))


async def first_response_hours(db: AsyncSession, org: str | None, *, limit: int = 5000) -> float | None:
    """Median hours from a case being sent to its first staff answer (newest ``limit`` answered cases)."""
    from statistics import median

    from bot.db.consult_models import Case

    query = (select(Case.opened_at, Case.first_response_at)
             .where(Case.opened_at.is_not(None), Case.first_response_at.is_not(None))
             .order_by(Case.id.desc()).limit(limit))
    if org is not None:
        query = query.where(Case.org == org)
    spans = [(answered - opened).total_seconds() / 3600 for opened, answered in (await db.execute(query)).all()]
    return round(median(spans), 1) if spans else None


async def satisfaction(db: AsyncSession, org: str | None, *, months: int = 12,
                       now: datetime | None = None) -> dict[str, list[tuple[str, int, int, int]]]:
    """Residents' ratings (the city's satisfaction KGI) grouped three ways:
    ``{"month": [(YYYY-MM in Japan time, ratings, sum, 4–5 count)], "org": […], "language": […]}``.

    Ratings of the last ``months`` months (by the time they were given); ``org`` limits to one
    organisation (None: all). Months without ratings are listed too (0), oldest first."""
    from bot.db.consult_models import Case
    from bot.timefmt import to_jst

    now = now or datetime.now(UTC)
    local = to_jst(now)
    month_keys = []
    year, month = local.year, local.month
    for _ in range(months):
        month_keys.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    month_keys.reverse()
    since = now - timedelta(days=31 * months + 1)
    query = select(Case.rating, Case.rated_at, Case.org, Case.language).where(
        Case.rating.is_not(None), Case.rated_at.is_not(None), Case.rated_at >= since)
    if org:
        query = query.where(Case.org == org)
    groups: dict[str, dict[str, list[int]]] = {"month": {k: [0, 0, 0] for k in month_keys}, "org": {}, "language": {}}
    for rating, rated_at, case_org, language in (await db.execute(query)).all():
        score = int(rating)
        for name, key in (("month", to_jst(rated_at).strftime("%Y-%m")), ("org", case_org), ("language", language)):
            if name == "month" and key not in groups["month"]:
                continue
            acc = groups[name].setdefault(key, [0, 0, 0])
            acc[0] += 1
            acc[1] += score
            acc[2] += score >= 4
    out: dict[str, list[tuple[str, int, int, int]]] = {}
    for name, table in groups.items():
        rows = [(key, n, total, good) for key, (n, total, good) in table.items()]
        out[name] = rows if name == "month" else sorted(rows, key=lambda r: (-r[1], r[0]))
    return out
