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

from bot.consult.labels import org_label, segment_label, staff_language, topic_label
from bot.db.models import utcnow
from bot.timefmt import jst
from bot.web.console.auth import PREFIX, csrf_field, is_operator
from knowledge.schema import LANGUAGE_NAMES

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


def format_local(at: datetime | None, fmt: str | None = None) -> str:
    """Japan time in the one format of the console and the CLI (bot.timefmt.jst); ``fmt`` is
    accepted for old templates and ignored, so every page shows the same format."""
    return jst(at)


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


#: Staff-facing labels (Japanese · English).
STATUS_LABELS = {"open": "未対応 Open", "answered": "回答済 Answered", "closed": "終了 Closed"}
TOPIC_LABELS = {"work": "仕事 Work", "health": "健康・病院 Health", "residence": "在留・手続 Residence",
                "money": "お金・税・保険 Money", "housing": "住まい Housing", "children": "子ども・学校 Children",
                "disaster": "災害・緊急 Disaster", "other": "その他 Other"}
OUTCOME_LABELS = {"resolved": "解決 Resolved", "referred": "他機関を紹介 Referred",
                  "information_given": "情報提供 Information given", "no_response": "返信なし No response",
                  "not_our_area": "担当外 Not our area", "other": "その他 Other", "forgotten": "削除依頼 Forgotten"}
ACTION_LABELS = {"opened": "受付 Opened", "resident_wrote": "相談者から Resident wrote",
                 "replied": "返信 Replied", "noted": "メモ Note", "assigned": "担当 Assigned",
                 "transferred": "転送 Transferred", "closed": "終了 Closed", "rated": "評価 Rated",
                 "reminded": "催促 Reminded", "anonymised": "匿名化 Anonymised"}
DIRECTION_LABELS = {"in": "相談者 Resident", "out": "返信 Reply", "note": "内部メモ Internal note",
                    "system": "システム System"}

templates.env.globals.update(STATUS_LABELS=STATUS_LABELS, TOPIC_LABELS=TOPIC_LABELS,
                             OUTCOME_LABELS=OUTCOME_LABELS, ACTION_LABELS=ACTION_LABELS,
                             DIRECTION_LABELS=DIRECTION_LABELS, LANGUAGE_NAMES=LANGUAGE_NAMES)
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
    kb = getattr(getattr(request.app.state, "services", None), "kb", None)
    lang = staff_language(kb, staff.org) if staff is not None else "ja"
    ctx: dict[str, Any] = {"staff": staff, "nav": visible if staff is not None else [],
                           "current": request.url.path, "now": utcnow(), "staff_lang": lang,
                           # Readable labels in the staff member's language (bot.consult.labels).
                           "org_label": lambda key: org_label(kb, key, lang),
                           "topic_label": lambda key: topic_label(key, lang),
                           "segment_label": lambda key: segment_label(key, lang)}
    ctx.update(context or {})
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    # Case pages hold residents' personal data: never cached, never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response
