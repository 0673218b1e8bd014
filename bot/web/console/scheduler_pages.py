"""Operator pages for disaster alerts (issue 5): ``/console/alerts``.

- ``GET  /alerts``            the latest alerts (JMA and manual) with their delivery counts, and
                              the JMA poller's state (feeds last checked, recent telegrams);
- ``GET  /alerts/{id}``       one alert: its message per language and its delivery report
                              (queued / deferred / sent / failed / blocked, by language and channel);
- ``GET  /alerts/new``        the manual alert form (text per core language, districts, languages, urgent);
- ``POST /alerts/preview``    what would be sent, to how many, in which languages — nothing written;
- ``POST /alerts/send``       confirm: queued through the outbox in one transaction (a second
                              confirmation of the same preview queues nothing).

Operators of the city organisation only (``require_operator``); every form carries the CSRF
field. Staff-facing labels are in the templates (templates/scheduler/); resident-facing text is
what the operator types, wrapped by knowledge/alerts.yaml's ``manual`` template.
Must not import the conversation engine or platform SDKs.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select, text

from bot.db.models import utcnow
from bot.db.scheduler_models import ENTRY_SKIPPED, Alert, JmaEntry, JmaFeed
from bot.web.console.auth import PREFIX, CurrentOperator, verify_csrf
from bot.web.console.templating import register_nav, render
from knowledge.schema import CORE_LANGUAGES, LANGUAGES
from scheduler.alerts import delivery_report, find_manual_alert, plan_manual_alert, queue_alert

router = APIRouter()
register_nav("警報 Alerts", f"{PREFIX}/alerts", operator_only=True)

MAX_TEXT = 1000
STALE_AFTER = timedelta(minutes=5)


def _districts(kb: Any) -> list[tuple[str, str]]:
    """(key, Japanese name) of the city's districts, in messages.yaml order."""
    return [(k.split(".", 1)[1], (v.get("ja") or k)) for k, v in kb.messages.items() if k.startswith("district.")]


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    texts = {lang: str(form.get(f"text_{lang}") or "").strip()[:MAX_TEXT] for lang in CORE_LANGUAGES}
    return {
        "texts": texts,
        "areas": [str(a) for a in form.getlist("areas")],
        "languages": [str(x) for x in form.getlist("languages") if str(x) in LANGUAGES],
        "urgent": form.get("urgent") == "on",
        "key": str(form.get("key") or ""),
    }


@router.get("/alerts")
async def list_alerts(request: Request, operator: CurrentOperator) -> Response:
    """The latest 50 alerts, newest first, with their delivery counts."""
    services = request.app.state.services
    async with services.sessionmaker() as db:
        alerts = list((await db.execute(select(Alert).order_by(Alert.id.desc()).limit(50))).scalars())
        reports = {a.id: await delivery_report(db, a.id) for a in alerts}
        feeds = list((await db.execute(select(JmaFeed).order_by(JmaFeed.url))).scalars())
        entries = list((await db.execute(
            select(JmaEntry).where(JmaEntry.status != ENTRY_SKIPPED).order_by(JmaEntry.id.desc()).limit(20)
        )).scalars())
    now = utcnow()
    # The poller runs every minute: a feed not checked for STALE_AFTER means it is not running.
    stale = [f.url for f in feeds if f.checked_at is None or now - f.checked_at > STALE_AFTER]
    return render(request, "scheduler/alerts.html", {"alerts": alerts, "reports": reports, "feeds": feeds,
                                                     "entries": entries, "stale": stale})


@router.get("/alerts/new")
async def new_alert(request: Request, operator: CurrentOperator) -> Response:
    """The manual alert form."""
    return _form_page(request, {"texts": {}, "areas": [], "languages": [], "urgent": False})


def _form_page(request: Request, form: dict[str, Any], error: str | None = None, status_code: int = 200) -> Response:
    kb = request.app.state.services.kb
    return render(request, "scheduler/alert_new.html", {
        "form": form, "error": error, "districts": _districts(kb), "core_languages": CORE_LANGUAGES,
        "all_languages": LANGUAGES,
    }, status_code=status_code)


@router.post("/alerts/preview", dependencies=[Depends(verify_csrf)])
async def preview_alert(request: Request, operator: CurrentOperator) -> Response:
    """Who would get the alert and what each language group would read; writes nothing."""
    services = request.app.state.services
    form = await _form(request)
    if not any(form["texts"].values()):
        return _form_page(request, form, "本文を1つ以上の言語で入力してください。 Write the text in at least one language.",
                          status_code=400)
    form["key"] = uuid.uuid4().hex
    async with services.sessionmaker() as db:
        plan = await plan_manual_alert(db, services.kb, form["texts"], areas=form["areas"] or None,
                                       languages=form["languages"] or None, urgent=form["urgent"], key=form["key"])
    summary = plan.summary()
    used = sorted(summary["by_language"]) or ["ja", "en"]
    return render(request, "scheduler/alert_preview.html", {
        "form": form, "summary": summary, "messages": {lang: plan.replies[lang].text for lang in used},
        "district_names": dict(_districts(services.kb)),
    })


@router.post("/alerts/send", dependencies=[Depends(verify_csrf)])
async def send_alert(request: Request, operator: CurrentOperator) -> Response:
    """Queue the previewed alert (same form, same one-time key) and show its report."""
    services = request.app.state.services
    form = await _form(request)
    if not form["key"] or not any(form["texts"].values()):
        return _form_page(request, form, "プレビューからやり直してください。 Please preview first.", status_code=400)
    async with services.sessionmaker() as db, db.begin():
        if db.bind.dialect.name == "postgresql":
            # two confirmations of one preview at the same moment: the second waits, then finds the first
            await db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"manual:{form['key']}"})
        existing = await find_manual_alert(db, form["key"])
        if existing is None:
            plan = await plan_manual_alert(db, services.kb, form["texts"], areas=form["areas"] or None,
                                           languages=form["languages"] or None, urgent=form["urgent"],
                                           key=form["key"])
            alert = await queue_alert(db, plan, created_by=operator.email)
            alert_id = alert.id
        else:
            alert_id = existing.id
    relay = getattr(services, "relay", None)
    if relay is not None:
        relay.notify()
    return RedirectResponse(f"{PREFIX}/alerts/{alert_id}?done=1", status_code=303)


@router.get("/alerts/{alert_id}")
async def show_alert(request: Request, alert_id: int, operator: CurrentOperator) -> Response:
    """One alert: texts and delivery report."""
    services = request.app.state.services
    async with services.sessionmaker() as db:
        alert = await db.get(Alert, alert_id)
        if alert is None:
            return render(request, "console/not_found.html", {}, status_code=404)
        report = await delivery_report(db, alert_id)
    languages = sorted(report["by_language"]) or sorted(alert.texts)
    return render(request, "scheduler/alert.html", {
        "alert": alert, "report": report, "texts": {k: alert.texts.get(k, "") for k in languages},
        "flash": "送信を予約しました。 Queued for sending." if request.query_params.get("done") else None,
    })
