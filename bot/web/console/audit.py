"""The organisation's audit view: ``GET /console/audit`` — the newest entries of who
opened, replied to, assigned, transferred and closed its cases (no message text).
Per-case audit is on the case page's ``/console/cases/{id}/audit``.
Must not import the conversation engine.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bot.consult import cases as case_service
from bot.web.console import queries
from bot.web.console.auth import CurrentStaff
from bot.web.console.templating import render

router = APIRouter()


@router.get("/audit")
async def show_audit(request: Request, staff: CurrentStaff) -> Response:
    """The last 200 audit entries recorded for the staff member's organisation."""
    services = request.app.state.services
    async with services.sessionmaker() as db:
        entries = await queries.org_audit(db, staff.org)
        names = await queries.staff_names(db, [e.staff_id for e in entries])
    return render(request, "console/audit.html", {
        "entries": entries, "names": names, "case": None,
        "org_name": case_service.partner_name(services.kb, staff.org, "ja"),
    })
