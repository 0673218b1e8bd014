"""Statistics page: ``GET /console/stats`` — the organisation's cases by status, topic and
language, the median time to a first answer, and the residents' 1–5 rating distribution
(the city measures foreign residents' satisfaction). Operators of the city organisation see
every organisation (and the split by organisation). Counts only; no resident data.
Must not import the conversation engine.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bot.consult import cases as case_service
from bot.web.console import queries
from bot.web.console.auth import CurrentStaff, is_operator
from bot.web.console.templating import NAV, NavItem, render

router = APIRouter()
if all(item.path != "/console/stats" for item in NAV):
    NAV.insert(1, NavItem("統計 Statistics", "/console/stats"))


@router.get("/stats")
async def show_stats(request: Request, staff: CurrentStaff) -> Response:
    """Counts and ratings of the staff member's organisation (all organisations for city operators)."""
    services = request.app.state.services
    org = None if is_operator(staff) else staff.org
    async with services.sessionmaker() as db:
        ratings = await case_service.rating_distribution(db, org=org)
        by = {column: await queries.case_counts(db, org, column) for column in ("status", "topic", "language")}
        by_org = await queries.case_counts(db, None, "org") if org is None else []
        median_hours = await queries.first_response_hours(db, org)
    rated = sum(n for score, n in ratings.items() if score)
    average = round(sum(score * n for score, n in ratings.items() if score) / rated, 2) if rated else None
    return render(request, "console/stats.html", {
        "ratings": ratings, "rated": rated, "average": average, "by": by, "median_hours": median_hours,
        "by_org": [(case_service.partner_name(services.kb, key, "ja"), n) for key, n in by_org],
        "all_orgs": org is None, "org_name": case_service.partner_name(services.kb, staff.org, "ja"),
    })
