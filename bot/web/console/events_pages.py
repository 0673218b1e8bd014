"""Operator pages for event notices (issue 5): ``/console/events``.

- ``GET  /events``               upcoming and recent events with status, times and targets;
- ``GET  /events/new``           the event form (title/body per core language, start, place, map,
                                 segments, districts, languages, publish time, reminder, draft);
- ``POST /events/new``           create (validated like ``kurashi events add``), then its jobs are written;
- ``GET  /events/{id}``          one event: how many residents it reaches now, queued/sent notices, edit form;
- ``POST /events/{id}/edit``     change it (before publishing this changes what will be sent);
- ``POST /events/{id}/cancel``   cancel (jobs removed, unsent notices withdrawn).

Operators of the city organisation only (``require_operator``); every form carries the CSRF
field. Staff-facing labels are in the templates (templates/events/); resident-facing text is
what the operator types (the notice's frame comes from knowledge/messages.yaml ``events.*``).
Must not import the conversation engine or platform SDKs.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from bot.db.events_models import EVENT_CANCELLED, Event
from bot.db.models import OutboxMessage, utcnow
from bot.web.console.auth import PREFIX, CurrentOperator, verify_csrf
from bot.web.console.templating import register_nav, render
from knowledge.schema import CORE_LANGUAGES, LANGUAGES
from scheduler import events as ev

router = APIRouter()
register_nav("行事 Events", f"{PREFIX}/events", operator_only=True)

MAX_TEXT = 2000


def _districts(kb: Any) -> list[tuple[str, str]]:
    """(key, Japanese name) of the city's districts, in messages.yaml order."""
    return [(k.split(".", 1)[1], (v.get("ja") or k)) for k, v in kb.messages.items() if k.startswith("district.")]


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()

    def text(name: str, limit: int = MAX_TEXT) -> str:
        return str(form.get(name) or "").strip()[:limit]

    return {
        "title": {lang: text(f"title_{lang}", 200) for lang in CORE_LANGUAGES if text(f"title_{lang}", 200)},
        "body": {lang: text(f"body_{lang}") for lang in CORE_LANGUAGES if text(f"body_{lang}")},
        "starts_at": text("starts_at", 40),
        "place": text("place", 300) or None,
        "map_url": text("map_url", 1000) or None,
        "segments": [str(s) for s in form.getlist("segments")],
        "areas": [str(a) for a in form.getlist("areas")],
        "languages": [str(x) for x in form.getlist("languages") if str(x) in LANGUAGES],
        "publish_at": text("publish_at", 40) or None,
        "remind_day_before": form.get("remind_day_before") == "on",
        "draft": form.get("draft") == "on",
    }


def _as_form(event: Event) -> dict[str, Any]:
    local = "%Y-%m-%dT%H:%M"
    return {
        "title": dict(event.title), "body": dict(event.body or {}),
        "starts_at": event.starts_at.astimezone(ev.TOKYO).strftime(local),
        "place": event.place, "map_url": event.map_url, "segments": list(event.segments or []),
        "areas": list(event.areas or []), "languages": list(event.languages or []),
        "publish_at": event.publish_at.astimezone(ev.TOKYO).strftime(local) if event.publish_at else None,
        "remind_day_before": event.remind_day_before, "draft": event.status == "draft",
    }


def _form_page(request: Request, form: dict[str, Any], *, event: Event | None = None, error: str | None = None,
               stats: dict[str, Any] | None = None, flash: str | None = None, status_code: int = 200) -> Response:
    kb = request.app.state.services.kb
    return render(request, "events/form.html", {
        "form": form, "event": event, "error": error, "stats": stats, "flash": flash,
        "districts": _districts(kb), "core_languages": CORE_LANGUAGES, "all_languages": LANGUAGES,
        "segments": ev.SEGMENTS,
    }, status_code=status_code)


async def _sync(request: Request, event_id: int) -> str | None:
    services = request.app.state.services
    try:
        await ev.sync_event_jobs(event_id, database_url=services.settings.database_url,
                                 sessionmaker=services.sessionmaker)
    except Exception:  # noqa: BLE001  (the events sweep publishes due events anyway)
        return "スケジューラに登録できませんでした（定期処理で送信されます）。 Could not write the scheduler job; the periodic sweep will send it."
    return None


@router.get("/events")
async def list_events(request: Request, operator: CurrentOperator) -> Response:
    """Upcoming events and those of the last 30 days, soonest first."""
    services = request.app.state.services
    since = utcnow() - timedelta(days=30)
    async with services.sessionmaker() as db:
        events = list((await db.execute(
            select(Event).where(Event.starts_at > since).order_by(Event.starts_at, Event.id)
        )).scalars())
    titles = {e.id: e.title.get(ev.pick_language(e.title, "ja"), "") for e in events}
    return render(request, "events/list.html", {"events": events, "titles": titles})


@router.get("/events/new")
async def new_event(request: Request, operator: CurrentOperator) -> Response:
    return _form_page(request, {"title": {}, "body": {}, "segments": [], "areas": [], "languages": [],
                                "remind_day_before": True, "draft": False})


@router.post("/events/new", dependencies=[Depends(verify_csrf)])
async def create_event(request: Request, operator: CurrentOperator) -> Response:
    services = request.app.state.services
    form = await _form(request)
    try:
        spec = ev.EventSpec.from_dict(form, districts=[k for k, _ in _districts(services.kb)])
        async with services.sessionmaker() as db, db.begin():
            event = await ev.create_event(db, spec, created_by=operator.email)
            event_id = event.id
    except ev.EventError as exc:
        return _form_page(request, form, error=str(exc), status_code=400)
    warning = await _sync(request, event_id)
    return RedirectResponse(f"{PREFIX}/events/{event_id}?done={'warn' if warning else 'created'}", status_code=303)


async def _stats(db: Any, event: Event) -> dict[str, Any]:
    reach = len(await ev._targets(db, event))
    rows = (await db.execute(
        select(OutboxMessage.kind, OutboxMessage.status, func.count())
        .where(OutboxMessage.ref == f"event:{event.id}").group_by(OutboxMessage.kind, OutboxMessage.status)
    )).all()
    return {"reach": reach, "outbox": {f"{kind}/{status}": n for kind, status, n in rows},
            "remind_at": ev.remind_time(event)}


FLASH = {"created": "登録しました。 Saved.", "saved": "変更しました。 Changed.",
         "cancelled": "中止しました。 Cancelled.",
         "warn": "保存しましたが、スケジューラに登録できませんでした（定期処理で送信されます）。 Saved; the scheduler job could not be written (the periodic sweep will send it)."}


@router.get("/events/{event_id}")
async def show_event(request: Request, event_id: int, operator: CurrentOperator) -> Response:
    services = request.app.state.services
    async with services.sessionmaker() as db:
        event = await db.get(Event, event_id)
        if event is None:
            return render(request, "console/not_found.html", {}, status_code=404)
        stats = await _stats(db, event)
    return _form_page(request, _as_form(event), event=event, stats=stats,
                      flash=FLASH.get(request.query_params.get("done") or ""))


@router.post("/events/{event_id}/edit", dependencies=[Depends(verify_csrf)])
async def edit_event(request: Request, event_id: int, operator: CurrentOperator) -> Response:
    services = request.app.state.services
    form = await _form(request)
    try:
        spec = ev.EventSpec.from_dict(form, districts=[k for k, _ in _districts(services.kb)])
        async with services.sessionmaker() as db, db.begin():
            await ev.update_event(db, event_id, spec)
    except ev.EventError as exc:
        async with services.sessionmaker() as db:
            event = await db.get(Event, event_id)
            if event is None:
                return render(request, "console/not_found.html", {}, status_code=404)
            stats = await _stats(db, event)
        return _form_page(request, form, event=event, stats=stats, error=str(exc), status_code=400)
    warning = await _sync(request, event_id)
    return RedirectResponse(f"{PREFIX}/events/{event_id}?done={'warn' if warning else 'saved'}", status_code=303)


@router.post("/events/{event_id}/cancel", dependencies=[Depends(verify_csrf)])
async def cancel_event(request: Request, event_id: int, operator: CurrentOperator) -> Response:
    services = request.app.state.services
    try:
        async with services.sessionmaker() as db, db.begin():
            event = await db.get(Event, event_id)
            if event is None:
                return render(request, "console/not_found.html", {}, status_code=404)
            if event.status != EVENT_CANCELLED:
                await ev.cancel_event(db, event_id)
    except ev.EventError:
        return render(request, "console/not_found.html", {}, status_code=404)
    await _sync(request, event_id)
    return RedirectResponse(f"{PREFIX}/events/{event_id}?done=cancelled", status_code=303)
