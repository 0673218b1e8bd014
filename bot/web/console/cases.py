"""The case page and every staff action on a case.

Owns ``GET /console/cases/{id}`` (facts, the thread with original text, language and
matched topic of each resident message, images, locations, internal notes; the reply box
with canned replies in the case's language; assign to me; transfer with a reason; close
with an outcome), the actions ``POST /console/cases/{id}/{reply,note,assign,transfer,close}``
(CSRF-checked; each redirects back with a fixed confirmation — no reflected text),
``GET /console/cases/{id}/audit`` and ``GET /console/media/{id}`` (an image's bytes).

Organisation isolation: every page and action goes through bot.consult.cases, whose
``get_case`` raises ``CaseNotFound`` for another organisation's case; this module answers
404 for it exactly as for a case that does not exist.
Must not import the conversation engine.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from bot.consult import cases as case_service
from bot.consult.canned import offered_for_case
from bot.consult.cases import CaseClosed, CaseNotFound, InvalidAction
from bot.db.consult_models import CASE_CLOSED, Case, Staff
from bot.web.console import queries
from bot.web.console.auth import PREFIX, CurrentStaff, verify_csrf
from bot.web.console.templating import render

log = logging.getLogger("kurashi.web.console")
router = APIRouter()

#: Confirmations after an action (keys of ``?done=``; fixed texts, never from the URL).
DONE = {
    "reply": "返信を送りました（相談者のチャットに届きます）。 Reply sent to the resident's chat.",
    "note": "内部メモを保存しました。 Internal note saved.",
    "assign": "この相談の担当になりました。 You are now assigned.",
    "close": "相談を終了しました。相談者に評価をお願いしました。 Case closed; the resident was asked for a rating.",
}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}


def _services(request: Request) -> Any:
    return request.app.state.services


def not_found(request: Request) -> Response:
    """The 404 page (also for another organisation's case: the same answer, nothing leaks)."""
    return render(request, "console/not_found.html", status_code=404)


async def _case_page(request: Request, staff: Staff, case_id: int, *, error: str | None = None,
                     status_code: int = 200, form: dict[str, str] | None = None) -> Response:
    services = _services(request)
    kb = services.kb
    async with services.sessionmaker() as db:
        try:
            case = await case_service.get_case(db, staff, case_id)
            messages = await case_service.list_messages(db, staff, case_id)
        except CaseNotFound:
            return not_found(request)
        canned = await offered_for_case(db, kb, case.topic, case.language)
        people = await queries.org_staff(db, staff.org)
        names = await queries.staff_names(db, [m.staff_id for m in messages] + [case.assigned_staff_id])
    done = request.query_params.get("done")
    targets = [(key, case_service.partner_name(kb, key, "ja")) for key in case_service.transfer_targets(kb, case)]
    return render(request, "console/case.html", {
        "case": case, "messages": messages, "people": people, "names": names,
        "canned": canned,
        "outcomes": case_service.OUTCOMES, "targets": targets,
        "org_name": case_service.partner_name(kb, staff.org, "ja"),
        "intent_titles": _intent_titles(kb, [case.intent] + [m.intent for m in messages]),
        "closed": case.status == CASE_CLOSED, "image_types": IMAGE_TYPES,
        "flash": DONE.get(done or ""), "error": error, "form": form or {},
    }, status_code=status_code)


def _intent_titles(kb: Any, intents: list[str | None]) -> dict[str, str]:
    """Intent id → its button label (knowledge/messages.yaml ``topic.<id>``, ja then en), where one exists."""
    out: dict[str, str] = {}
    messages = getattr(kb, "messages", {}) or {}
    for intent_id in filter(None, intents):
        label = messages.get(f"topic.{intent_id}") or {}
        title = label.get("ja") or label.get("en")
        if title:
            out[intent_id] = title
    return out


@router.get("/cases/{case_id}")
async def show_case(request: Request, case_id: int, staff: CurrentStaff) -> Response:
    """One case: facts, thread, actions."""
    return await _case_page(request, staff, case_id)


async def _act(request: Request, staff: Staff, case_id: int, action: str,
               do: Callable[[Any], Awaitable[Any]], form: dict[str, str] | None = None,
               redirect: str | None = None) -> Response:
    """Run one case action in a transaction; map the service's errors to pages."""
    services = _services(request)
    try:
        async with services.sessionmaker() as db, db.begin():
            await do(db)
    except CaseNotFound:
        return not_found(request)
    except CaseClosed as exc:
        return await _case_page(request, staff, case_id, status_code=409, form=form,
                                error=f"この相談は終了しています。 This case is closed. ({exc})")
    except InvalidAction as exc:
        return await _case_page(request, staff, case_id, status_code=400, form=form,
                                error=f"入力を確認してください。 Please check the form: {exc}")
    relay = getattr(services, "relay", None)
    if relay is not None and hasattr(relay, "notify"):
        relay.notify()   # a queued push to the resident goes out now, not at the next poll
    log.info("console case action", extra={"action": action, "case_id": case_id, "staff_id": staff.id})
    return RedirectResponse(redirect or f"{PREFIX}/cases/{case_id}?done={action}", status_code=303)


@router.post("/cases/{case_id}/reply", dependencies=[Depends(verify_csrf)])
async def submit_reply(request: Request, case_id: int, staff: CurrentStaff,
                       text: str = Form("")) -> Response:
    """Send a reply to the resident (outbox push in the same transaction)."""
    kb = _services(request).kb
    return await _act(request, staff, case_id, "reply",
                      lambda db: case_service.staff_reply(db, kb, staff, case_id, text), form={"text": text})


@router.post("/cases/{case_id}/note", dependencies=[Depends(verify_csrf)])
async def submit_note(request: Request, case_id: int, staff: CurrentStaff,
                       text: str = Form("")) -> Response:
    """Add an internal note (never sent to the resident)."""
    return await _act(request, staff, case_id, "note",
                      lambda db: case_service.add_note(db, staff, case_id, text), form={"note": text})


@router.post("/cases/{case_id}/assign", dependencies=[Depends(verify_csrf)])
async def submit_assign(request: Request, case_id: int, staff: CurrentStaff) -> Response:
    """Assign the case to the signed-in staff member."""
    return await _act(request, staff, case_id, "assign", lambda db: case_service.assign(db, staff, case_id))


@router.post("/cases/{case_id}/transfer", dependencies=[Depends(verify_csrf)])
async def submit_transfer(request: Request, case_id: int, staff: CurrentStaff,
                          to_org: str = Form(""), reason: str = Form("")) -> Response:
    """Hand the case to another organisation; the resident is told. It then leaves this inbox."""
    kb = _services(request).kb
    return await _act(request, staff, case_id, "transfer",
                      lambda db: case_service.transfer(db, kb, staff, case_id, to_org, reason),
                      form={"reason": reason, "to_org": to_org},
                      redirect=f"{PREFIX}/?transferred={case_id}")


@router.post("/cases/{case_id}/close", dependencies=[Depends(verify_csrf)])
async def submit_close(request: Request, case_id: int, staff: CurrentStaff,
                       outcome: str = Form("")) -> Response:
    """Close with an outcome; the resident is asked to rate the help 1–5."""
    kb = _services(request).kb
    return await _act(request, staff, case_id, "close",
                      lambda db: case_service.close(db, kb, staff, case_id, outcome))


@router.get("/cases/{case_id}/audit")
async def show_case_audit(request: Request, case_id: int, staff: CurrentStaff) -> Response:
    """Who opened, replied to, transferred and closed this case, and when."""
    services = _services(request)
    async with services.sessionmaker() as db:
        try:
            case: Case = await case_service.get_case(db, staff, case_id)
            entries = await case_service.audit_log(db, staff, case_id)
        except CaseNotFound:
            return not_found(request)
        names = await queries.staff_names(db, [e.staff_id for e in entries])
    return render(request, "console/audit.html", {
        "entries": entries, "names": names, "case": case,
        "org_name": case_service.partner_name(services.kb, staff.org, "ja"),
    })


@router.get("/media/{media_id}")
async def send_media(request: Request, media_id: int, staff: CurrentStaff) -> Response:
    """The bytes of an image the resident sent (only for a case of the staff member's organisation)."""
    async with _services(request).sessionmaker() as db:
        try:
            media = await case_service.get_media(db, staff, media_id)
        except CaseNotFound:
            return not_found(request)
    if media.data is None:
        return not_found(request)
    inline = media.mime_type in IMAGE_TYPES
    return Response(media.data, media_type=media.mime_type if inline else "application/octet-stream", headers={
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline" if inline else f'attachment; filename="media-{media.id}"',
        # Whatever the bytes are, they may not run anything in the console's origin.
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    })
