"""Operator pages for alerts, over a real uvicorn with the project's knowledge base:
manual alert form → preview (nothing written) → confirm (queued once) → delivery report;
JMA alerts listed; other staff are refused."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.db.models import OutboxMessage
from bot.db.scheduler_models import Alert
from tests.console.conftest import Console, console_settings, csrf_of
from tests.scheduler.conftest import add_users
from tests.web.conftest import serve

OPERATOR = "op@city.example"


@pytest.fixture
async def console(database_url: str) -> AsyncIterator[Console]:
    app = create_app(console_settings(database_url))            # the real knowledge base (alerts.yaml)
    async for url in serve(app):
        running = Console(url, app)
        await running.add_staff(OPERATOR, "city_intl", role="operator")
        await running.add_staff("staff@otit.example", "otit")
        yield running


async def _count(console, model) -> int:
    async with console.sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(model))).scalar_one()


async def test_manual_alert_preview_then_confirm_queues_once_and_reports(console):
    await add_users(console.sessionmaker,
                    {"platform_user_id": "U-ja", "language": "ja", "area": "ogori"},
                    {"platform_user_id": "U-vi", "language": "vi", "area": "ogori"},
                    {"platform_user_id": "U-ne", "language": "ne", "area": "ogori"},
                    {"platform_user_id": "U-yuda", "language": "en", "area": "yuda"},
                    {"platform_user_id": "100", "channel": "telegram", "language": "vi", "area": "ogori"})
    async with console.client() as client:
        assert (await console.login(client, OPERATOR)).status_code == 303
        page = await client.get("/console/alerts/new")
        assert page.status_code == 200 and 'name="text_vi"' in page.text and "小郡" in page.text
        form = {"csrf_token": csrf_of(page.text), "text_ja": "おごおり で だんすい です。",
                "text_en": "Water outage in Ogori until 18:00.", "text_vi": "Mất nước ở Ogori đến 18:00.",
                "areas": "ogori"}

        preview = await client.post("/console/alerts/preview", data=form)
        assert preview.status_code == 200
        assert re.search(r'id="p-recipients">4<', preview.text)          # not the Yuda resident
        assert "Mất nước ở Ogori" in preview.text and "Water outage" in preview.text
        assert await _count(console, Alert) == 0 and await _count(console, OutboxMessage) == 0

        confirm = {"csrf_token": csrf_of(preview.text),
                   "key": re.search(r'name="key" value="([0-9a-f]+)"', preview.text).group(1),
                   "text_ja": form["text_ja"], "text_en": form["text_en"], "text_vi": form["text_vi"],
                   "text_zh": "", "text_ko": "", "areas": "ogori"}
        sent = await client.post("/console/alerts/send", data=confirm)
        again = await client.post("/console/alerts/send", data=confirm)          # double click
        assert sent.status_code == again.status_code == 303
        assert sent.headers["location"] == again.headers["location"]
        report = await client.get(sent.headers["location"])

    assert await _count(console, Alert) == 1
    async with console.sessionmaker() as s:
        rows = list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
        alert = (await s.execute(select(Alert))).scalar_one()
    to = {r: row.payload[0]["text"] for row in rows for r in row.recipients}
    assert set(to) == {"U-ja", "U-vi", "U-ne", "100"}
    assert to["U-vi"].endswith("Mất nước ở Ogori đến 18:00.") and to["U-ne"].endswith("Water outage in Ogori until 18:00.")
    assert alert.created_by == OPERATOR and alert.source == "manual"
    assert report.status_code == 200 and re.search(r'id="r-queued">4<', report.text)
    async with console.client() as client:
        await console.login(client, OPERATOR)
        listing = await client.get("/console/alerts")
    assert listing.status_code == 200 and f'data-alert="{alert.id}"' in listing.text
    assert 'id="stale"' not in listing.text and "Not polled yet" in listing.text


async def test_the_alerts_page_shows_the_poller_state(console, jma_server):
    from datetime import timedelta

    from bot.db.models import utcnow
    from scheduler.alerts import poll_feeds
    from scheduler.runner import JobContext
    from tests.scheduler.test_alerts import YAMAGUCHI_WARNING

    jma_server.publish("気象警報・注意報（Ｈ２７）", YAMAGUCHI_WARNING, "2015-06-22T09:00:00Z")
    services = console.services
    ctx = JobContext(database_url=services.settings.database_url, sessionmaker=services.sessionmaker,
                     kb=services.kb, now=lambda: utcnow() - timedelta(minutes=10))    # polled 10 minutes ago
    await poll_feeds(ctx, [jma_server.feed_url], max_age=None)
    async with console.client() as client:
        await console.login(client, OPERATOR)
        page = await client.get("/console/alerts")
    assert jma_server.feed_url in page.text and 'id="stale"' in page.text
    assert 'data-status="alerted"' in page.text and 'data-status="skipped"' not in page.text


async def test_preview_needs_a_text_and_pages_need_an_operator(console):
    async with console.client() as client:
        await console.login(client, OPERATOR)
        page = await client.get("/console/alerts/new")
        empty = await client.post("/console/alerts/preview", data={"csrf_token": csrf_of(page.text)})
        forged = await client.post("/console/alerts/preview", data={"csrf_token": "x", "text_en": "hi"})
    assert empty.status_code == 400 and forged.status_code == 403
    async with console.client() as client:
        await console.login(client, "staff@otit.example")
        assert (await client.get("/console/alerts")).status_code == 403
    async with console.client() as client:
        assert (await client.get("/console/alerts")).status_code == 303                 # to the login page
