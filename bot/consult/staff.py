"""Staff accounts and per-organisation notification targets (used by ``kurashi staff``).

Passwords are hashed with argon2id (argon2-cffi defaults, the same hasher the console's
``bot.web.console.auth.verify_password`` checks); there is no default password. Functions
run in the caller's transaction. Must not import FastAPI, the engine or platform SDKs.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.consult_models import ROLES, OrgSettings, Staff
from bot.db.models import utcnow

MIN_PASSWORD = 10


class StaffError(ValueError):
    """Refused: unknown organisation, bad role, weak password, e-mail already used…"""


def _known_orgs(kb: Any) -> set[str]:
    partners = getattr(kb, "partners", None)
    return set(partners.partners) if partners is not None else set()


async def add_staff(session: AsyncSession, kb: Any, *, org: str, email: str, password: str,
                    name: str | None = None, role: str = "staff",
                    telegram_user_id: int | None = None) -> Staff:
    """Create a staff account of ``org`` (a partner key in knowledge/partners.yaml)."""
    email = email.strip().lower()
    if org not in _known_orgs(kb):
        raise StaffError(f"unknown organisation {org!r} (partners: {', '.join(sorted(_known_orgs(kb)))})")
    if role not in ROLES:
        raise StaffError(f"role must be one of {', '.join(ROLES)}")
    if "@" not in email or len(email) > 254:
        raise StaffError("not an e-mail address")
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"the password must have at least {MIN_PASSWORD} characters")
    if await session.scalar(select(Staff.id).where(Staff.email == email)) is not None:
        raise StaffError(f"{email} already has an account")
    staff = Staff(org=org, email=email, name=name, role=role, password_hash=PasswordHasher().hash(password),
                  telegram_user_id=telegram_user_id, active=True, created_at=utcnow())
    session.add(staff)
    await session.flush()
    return staff


async def _account(session: AsyncSession, email: str) -> Staff:
    staff = await session.scalar(select(Staff).where(Staff.email == email.strip().lower()))
    if staff is None:
        raise StaffError(f"no staff account {email.strip().lower()}")
    return staff


async def set_active(session: AsyncSession, email: str, active: bool) -> Staff:
    """Enable or disable an account; disabling ends its console sessions at once."""
    staff = await _account(session, email)
    staff.active = active
    if not active:
        staff.session_version = (staff.session_version or 0) + 1
    await session.flush()
    return staff


async def set_password(session: AsyncSession, email: str, password: str) -> Staff:
    """A new password; every console session of the account ends."""
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"the password must have at least {MIN_PASSWORD} characters")
    staff = await _account(session, email)
    staff.password_hash = PasswordHasher().hash(password)
    staff.session_version = (staff.session_version or 0) + 1
    await session.flush()
    return staff


async def end_sessions(session: AsyncSession, email: str) -> Staff:
    """Sign the account out everywhere (e.g. a lost laptop)."""
    staff = await _account(session, email)
    staff.session_version = (staff.session_version or 0) + 1
    await session.flush()
    return staff


async def list_staff(session: AsyncSession, org: str | None = None) -> list[Staff]:
    query = select(Staff).order_by(Staff.org, Staff.email)
    if org:
        query = query.where(Staff.org == org)
    return list((await session.execute(query)).scalars())


async def set_notify(session: AsyncSession, kb: Any, org: str, *, telegram_chat_id: str | None = None,
                     emails: Sequence[str] | None = None, email_staff: bool | None = None) -> OrgSettings:
    """Set where ``org``'s staff are notified (only the given fields change; "" clears the chat)."""
    if org not in _known_orgs(kb):
        raise StaffError(f"unknown organisation {org!r}")
    row = await session.get(OrgSettings, org)
    if row is None:
        row = OrgSettings(org=org, emails=[], email_staff=True)
        session.add(row)
    if telegram_chat_id is not None:
        chat = telegram_chat_id.strip()
        if chat and not chat.lstrip("-").isdigit():
            raise StaffError("a Telegram chat id is a number (groups are negative, e.g. -1001234567890)")
        row.telegram_chat_id = chat or None
    if emails is not None:
        row.emails = [e.strip().lower() for e in emails if e.strip()]
    if email_staff is not None:
        row.email_staff = email_staff
    row.updated_at = utcnow()
    await session.flush()
    return row


async def list_notify(session: AsyncSession) -> list[OrgSettings]:
    return list((await session.execute(select(OrgSettings).order_by(OrgSettings.org))).scalars())
