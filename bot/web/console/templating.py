"""Jinja2 templates of the staff console and the pieces every page shares.

Owns ``templates`` (templates live in ``bot/web/console/templates/``; the console's own
under ``console/``, the scheduler's operator pages under ``scheduler/``), ``render``
(adds the signed-in staff, the nav and flash/error texts to the context), the nav registry
``register_nav`` and Jinja filters (``local`` = Asia/Tokyo time, ``ago`` = waiting time).

Staff-facing labels (Japanese with English) are written in the templates: staff text is
not resident-facing, so it is not in knowledge/ YAML. Resident-facing texts (canned
replies, organisation names) still come from the knowledge base.

Must not import the conversation engine or platform SDKs.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from bot.db.models import utcnow
from bot.web.console.auth import PREFIX, csrf_field, is_operator

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
TOKYO = ZoneInfo("Asia/Tokyo")

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    operator_only: bool = False


#: The console's navigation, in order. Other features append their pages with ``register_nav``.
NAV: list[NavItem] = [
    NavItem("受信箱 Inbox", f"{PREFIX}/"),
    NavItem("監査ログ Audit", f"{PREFIX}/audit"),
]


def register_nav(label: str, path: str, *, operator_only: bool = False) -> None:
    """Add a nav entry (idempotent by path), e.g. the scheduler's ``/console/events``."""
    if all(item.path != path for item in NAV):
        NAV.append(NavItem(label, path, operator_only))


def format_local(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return at.astimezone(TOKYO).strftime(fmt) if at else "–"


def format_ago(at: datetime | None, now: datetime | None = None) -> str:
    """A waiting time as staff read it: "35分", "4時間", "2日 3時間"."""
    if at is None:
        return "–"
    minutes = max(0, int(((now or utcnow()) - at).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}分"
    hours, days = minutes // 60, minutes // 1440
    if days:
        rest = hours - days * 24
        return f"{days}日" + (f" {rest}時間" if rest else "")
    return f"{hours}時間"


templates.env.globals["csrf_field"] = csrf_field
templates.env.globals["PREFIX"] = PREFIX
templates.env.filters["local"] = format_local
templates.env.filters["ago"] = format_ago


def render(request: Request, name: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200) -> Response:
    """Render ``name`` with the shared context: ``staff`` (or None), ``nav`` (visible items),
    ``current`` (path), ``now``. Pages extend ``console/base.html``."""
    staff = getattr(request.state, "staff", None)
    visible = [item for item in NAV if not item.operator_only or (staff is not None and is_operator(staff))]
    ctx: dict[str, Any] = {"staff": staff, "nav": visible if staff is not None else [],
                           "current": request.url.path, "now": utcnow()}
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
