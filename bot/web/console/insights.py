"""Operator pages for improving the knowledge base (DESIGN.md, "city operator": see
unanswered questions and 👎 feedback): ``/console/insights``.

- ``GET  /insights``                           unanswered questions: grouped by normalised text
                                               (most frequent gaps first) and one by one (newest
                                               first, paged); filters language, decision, status;
- ``POST /insights/unanswered/{id}/resolve``   mark one question resolved;
- ``POST /insights/unanswered/resolve-group``  mark every open question of one group resolved
                                               (within the filters the operator was looking at);
- ``GET  /insights/feedback``                  👍/👎 per intent with the 👎 share, and the 👎 with
                                               the question the resident typed (paged); filters
                                               intent and language.

Operators of the city organisation only (``require_operator``: other staff get 403); every
POST checks the CSRF field. Resident text is shown through Jinja autoescape only. The data
comes from bot/insights.py (the same functions as ``kurashi insights``).
Must not import the conversation engine or platform SDKs.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from bot import insights
from bot.web.console.auth import PREFIX, CurrentOperator, verify_csrf
from bot.web.console.templating import register_nav, render

log = logging.getLogger("kurashi.web.console.insights")

router = APIRouter()
register_nav("改善 Insights", f"{PREFIX}/insights", operator_only=True)

#: Staff-facing labels of ``unanswered.decision`` (Japanese · English).
DECISION_LABELS = {"decline": "答えられない Declined", "clarify_abandoned": "候補を選ばず Clarification abandoned"}
PAGE_SIZE = 50
#: Groups shown at most on the page (the rest are counted in a visible note).
GROUP_LIMIT = 50


def _text(value: Any, limit: int = 64) -> str | None:
    value = str(value or "").strip()[:limit]
    return value or None


def _page(value: Any) -> int:
    try:
        return max(1, min(int(str(value)), 10_000))
    except ValueError:
        return 1


def _count(value: str | None) -> int | None:
    """The ``done`` count after a resolve (None when absent or not a number)."""
    try:
        return max(0, int(value)) if value is not None else None
    except ValueError:
        return None


def _unanswered_filters(params: Any) -> dict[str, Any]:
    decision = _text(params.get("decision"))
    status = _text(params.get("status")) or "open"
    return {
        "language": _text(params.get("language"), 16),
        "decision": decision if decision in insights.DECISIONS else None,
        "status": status if status in insights.STATUSES else "open",
    }


def _query(values: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in values.items() if v not in (None, "", 1) or k == "done"})


@router.get("/insights")
async def show_unanswered(request: Request, operator: CurrentOperator) -> Response:
    """Unanswered questions: the most frequent gaps, then each question newest first."""
    services = request.app.state.services
    filters = _unanswered_filters(request.query_params)
    page = _page(request.query_params.get("page", 1))
    async with services.sessionmaker() as db:
        grouped = await insights.unanswered_groups(db, **filters, limit=GROUP_LIMIT)
        total = await insights.count_unanswered(db, **filters)
        rows = await insights.unanswered_rows(db, **filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        languages = await insights.unanswered_languages(db)
    pages = max(1, -(-total // PAGE_SIZE))
    done = _count(request.query_params.get("done"))
    return render(request, "insights/unanswered.html", {
        "tab": "unanswered", "filters": filters, "grouped": grouped, "rows": rows, "total": total, "page": page,
        "pages": pages,        "page_size": PAGE_SIZE, "group_limit": GROUP_LIMIT, "languages": languages,
        "decisions": insights.DECISIONS, "decision_labels": DECISION_LABELS, "statuses": insights.STATUSES,
        "page_query": lambda n: _query({**filters, "page": n}),
        "flash": f"{done}件を解決済みにしました。 Marked {done} resolved." if done
        else ("変更はありません。 Nothing was open." if done == 0 else None),
    })


def _back(form: Any, done: int) -> RedirectResponse:
    filters = _unanswered_filters(form)
    return RedirectResponse(f"{PREFIX}/insights?{_query({**filters, 'page': _page(form.get('page', 1)), 'done': done})}",
                            status_code=303)


@router.post("/insights/unanswered/{row_id}/resolve", dependencies=[Depends(verify_csrf)])
async def resolve_question(request: Request, row_id: int, operator: CurrentOperator) -> Response:
    """Mark one unanswered question resolved (the knowledge base now covers it, or it is noise)."""
    form = await request.form()
    async with request.app.state.services.sessionmaker() as db, db.begin():
        done = await insights.resolve_unanswered(db, [row_id])
    log.info("unanswered question resolved", extra={"staff_id": operator.id, "count": done})
    return _back(form, done)


@router.post("/insights/unanswered/resolve-group", dependencies=[Depends(verify_csrf)])
async def resolve_group(request: Request, operator: CurrentOperator) -> Response:
    """Mark every open question of one normalised text resolved (within the page's filters)."""
    form = await request.form()
    key = str(form.get("key") or "")[:2000]
    filters = _unanswered_filters(form)
    async with request.app.state.services.sessionmaker() as db, db.begin():
        done = await insights.resolve_unanswered_group(db, key, language=filters["language"],
                                                       decision=filters["decision"])
    log.info("unanswered group resolved", extra={"staff_id": operator.id, "count": done})
    return _back(form, done)


@router.get("/insights/feedback")
async def show_feedback(request: Request, operator: CurrentOperator) -> Response:
    """👍/👎 per intent and the 👎 with the resident's question, newest first."""
    services = request.app.state.services
    params = request.query_params
    filters = {"intent": _text(params.get("intent"), 128), "language": _text(params.get("language"), 16)}
    page = _page(params.get("page", 1))
    async with services.sessionmaker() as db:
        votes = await insights.intent_votes(db, **filters)
        total = await insights.count_negative_feedback(db, **filters)
        negative = await insights.negative_feedback(db, **filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        intents, languages = await insights.feedback_facets(db)
    return render(request, "insights/feedback.html", {
        "tab": "feedback", "filters": filters, "votes": votes, "negative": negative, "total": total, "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)), "page_size": PAGE_SIZE, "intents": intents,
        "languages": languages, "page_query": lambda n: _query({**filters, "page": n}),
    })
