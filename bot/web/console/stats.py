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
from bot.consult.labels import org_label, staff_language
from bot.web.console import queries
from bot.web.console.auth import CurrentStaff, is_operator
from bot.web.console.charts import Bar, satisfaction_chart
from bot.web.console.templating import NAV, NavItem, render
from knowledge.schema import LANGUAGE_NAMES

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
        kgi = await queries.satisfaction(db, org)
        by = {column: await queries.case_counts(db, org, column) for column in ("status", "topic", "language")}
        by_org = await queries.case_counts(db, None, "org") if org is None else []
        median_hours = await queries.first_response_hours(db, org)
    rated = sum(n for score, n in ratings.items() if score)
    average = round(sum(score * n for score, n in ratings.items() if score) / rated, 2) if rated else None
    lang = staff_language(services.kb, staff.org)
    names = {"month": lambda key: key, "org": lambda key: org_label(services.kb, key, lang),
             "language": lambda key: f"{LANGUAGE_NAMES.get(key, key)} ({key})"}
    titles = {"month": "満足度（月別） Satisfaction per month",
              "org": "満足度（団体別） Satisfaction per organisation",
              "language": "満足度（言語別） Satisfaction per language"}
    charts = []
    for name in ("month", "org", "language"):
        if name == "org" and org is not None:
            continue   # one organisation: nothing to compare
        rows = [(names[name](key), n, total, good) for key, n, total, good in kgi[name]]
        bars = [Bar(label, round(total / n, 2) if n else None, n, good) for label, n, total, good in rows]
        charts.append({"id": f"chart-{name}", "title": titles[name], "rows": rows,
                       "svg": satisfaction_chart(bars, title=titles[name], chart_id=f"svg-{name}")})
    return render(request, "console/stats.html", {
        "charts": charts,
        "ratings": ratings, "rated": rated, "average": average, "by": by, "median_hours": median_hours,
        "by_org": [(case_service.partner_name(services.kb, key, "ja"), n) for key, n in by_org],
        "all_orgs": org is None, "org_name": case_service.partner_name(services.kb, staff.org, "ja"),
    })
