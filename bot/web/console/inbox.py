"""The inbox: the signed-in staff member's organisation's cases, filtered.

Owns ``GET /console/`` with query filters ``status`` (active = open+answered, open,
answered, closed, all), ``topic``, ``language``, ``wait`` (minimum waiting time for staff:
1h, 4h, 24h, or "overdue" = past the organisation's promise) and ``mine`` (assigned to me).
Cases come from ``bot.consult.cases.list_cases`` (organisation isolation is enforced there).
Must not import the conversation engine.
"""
from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bot.consult import cases as case_service
from bot.db.consult_models import CASE_ANSWERED, CASE_CLOSED, CASE_OPEN, case_number
from bot.db.models import utcnow
from bot.web.console import queries
from bot.web.console.auth import CurrentStaff
from bot.web.console.templating import render
from knowledge.schema import CONSULT_TOPICS, LANGUAGE_NAMES

router = APIRouter()

STATUS_FILTERS = {
    "active": (CASE_OPEN, CASE_ANSWERED),
    CASE_OPEN: (CASE_OPEN,),
    CASE_ANSWERED: (CASE_ANSWERED,),
    CASE_CLOSED: (CASE_CLOSED,),
    "all": (CASE_OPEN, CASE_ANSWERED, CASE_CLOSED),
}
WAIT_FILTERS = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "24h": timedelta(hours=24)}


@router.get("/")
async def show_inbox(request: Request, staff: CurrentStaff, status: str = "active",
                     topic: str = "", language: str = "", wait: str = "", mine: str = "") -> Response:
    """The case list, longest-waiting first."""
    services = request.app.state.services
    now = utcnow()
    status = status if status in STATUS_FILTERS else "active"
    topic = topic if topic in CONSULT_TOPICS else ""
    language = language if language in LANGUAGE_NAMES else ""
    async with services.sessionmaker() as db:
        found = await case_service.list_cases(
            db, staff, status=STATUS_FILTERS[status], topic=topic or None, language=language or None,
            min_wait=WAIT_FILTERS.get(wait), assigned_to=staff.id if mine else None, now=now)
        if wait == "overdue":
            found = [c for c in found if c.due_at is not None and c.due_at < now]
        texts = await queries.previews(db, [c.id for c in found])
        people = await queries.org_staff(db, staff.org)
    moved = request.query_params.get("transferred", "")
    flash = (f"{case_number(int(moved))} を転送しました。相談者にも知らせました。"
             f" Case transferred; the resident was told.") if moved.isdigit() else None
    return render(request, "console/inbox.html", {
        "flash": flash,
        "cases": found, "previews": texts, "people": people, "languages": list(LANGUAGE_NAMES),
        "topics": CONSULT_TOPICS, "org_name": case_service.partner_name(services.kb, staff.org, "ja"),
        "filters": {"status": status, "topic": topic, "language": language, "wait": wait, "mine": mine},
    })
