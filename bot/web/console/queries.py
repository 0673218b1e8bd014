"""Read-only queries the console needs beyond bot/consult/cases.py (which owns every write).

Owns: ``previews`` (the resident's first text of each case, for the inbox), ``org_staff``
(staff accounts of one organisation), ``org_audit`` (recent audit entries of one
organisation). Every function is limited to the caller's organisation by its arguments.
Must not write, and must not import the conversation engine.
"""
from __future__ import annotations

from collections.abc import Sequence

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
