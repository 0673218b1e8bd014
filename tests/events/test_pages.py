"""Operator pages for events, over a real uvicorn with the project's knowledge base:
create → event page (reach, jobs) → edit → publish job sends the edited text → cancel; other
staff are refused; forms need the CSRF token."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import create_app
from scheduler import events
from scheduler.runner import close_writers, get_job
from tests.console.conftest import Console, console_settings, csrf_of
from tests.events.helpers import add_users, make_ctx, outbox_rows, texts_by_recipient
from tests.web.conftest import serve

OPERATOR = "op@city.example"


@pytest.fixture
async def console(database_url: str) -> AsyncIterator[Console]:
    app = create_app(console_settings(database_url))
    async for url in serve(app):
        running = Console(url, app)
        await running.add_staff(OPERATOR, "city_intl", role="operator")
        await running.add_staff("staff@otit.example", "otit")
        yield running
    close_writers()


def _local(moment: datetime) -> str:
    return moment.astimezone(events.TOKYO).strftime("%Y-%m-%dT%H:%M")


async def test_create_edit_publish_cancel(console):
    await add_users(console.sessionmaker,
                    {"platform_user_id": "U-vi", "language": "vi", "area": "ogori", "opt_events": True},
                    {"platform_user_id": "U-yuda", "language": "en", "area": "yuda", "opt_events": True})
    starts = (datetime.now(UTC) + timedelta(days=7)).replace(second=0, microsecond=0)
    publish = starts - timedelta(days=3)
    async with console.client() as client:
        assert (await console.login(client, OPERATOR)).status_code == 303
        page = await client.get("/console/events/new")
        assert page.status_code == 200 and 'name="title_vi"' in page.text and "小郡" in page.text
        form = {"csrf_token": csrf_of(page.text), "title_en": "Bon dance", "title_vi": "Múa Bon",
                "body_en": "Everyone welcome.", "starts_at": _local(starts), "publish_at": _local(publish),
                "areas": "ogori", "remind_day_before": "on"}
        bad = await client.post("/console/events/new", data={**form, "title_en": "", "title_vi": ""})
        assert bad.status_code == 400 and 'id="error"' in bad.text
        created = await client.post("/console/events/new", data=form)
        assert created.status_code == 303
        location = created.headers["location"]
        event_id = int(re.search(r"/events/(\d+)", location).group(1))
        shown = await client.get(location)
        assert re.search(r'id="reach">1<', shown.text) and 'data-status="scheduled"' in shown.text
        job = await get_job(events.publish_job_id(event_id), database_url=console.services.settings.database_url)
        assert job is not None and job.next_run_time == publish

        edited = await client.post(f"/console/events/{event_id}/edit",
                                   data={**form, "csrf_token": csrf_of(shown.text), "title_vi": "Múa Bon (đổi giờ)"})
        assert edited.status_code == 303
        listing = await client.get("/console/events")
        assert f'data-event="{event_id}"' in listing.text

    ctx, _ = make_ctx(console.services.settings.database_url, console.sessionmaker, console.services.kb,
                      publish + timedelta(minutes=1))
    assert await events.publish_event(event_id, ctx=ctx) == 1
    texts = texts_by_recipient(await outbox_rows(console.sessionmaker, "event"))
    assert set(texts) == {"U-vi"} and "Múa Bon (đổi giờ)" in texts["U-vi"]

    async with console.client() as client:
        await console.login(client, OPERATOR)
        shown = await client.get(f"/console/events/{event_id}")
        cancelled = await client.post(f"/console/events/{event_id}/cancel", data={"csrf_token": csrf_of(shown.text)})
        assert cancelled.status_code == 303
        after = await client.get(cancelled.headers["location"])
    assert 'data-status="cancelled"' in after.text and 'id="event-form"' not in after.text
    assert await outbox_rows(console.sessionmaker, "event") == []          # the unsent notice was withdrawn


async def test_pages_need_an_operator_and_csrf(console):
    async with console.client() as client:
        await console.login(client, OPERATOR)
        forged = await client.post("/console/events/new", data={"csrf_token": "x", "title_en": "hi"})
        assert forged.status_code == 403
        assert (await client.get("/console/events/999")).status_code == 404
    async with console.client() as client:
        await console.login(client, "staff@otit.example")
        assert (await client.get("/console/events")).status_code == 403
    async with console.client() as client:
        assert (await client.get("/console/events")).status_code == 303


async def test_segments_are_shown_as_words_not_keys(console):
    """Issue 12: resident types read as labels in the staff language ("技能実習生 …"), not "trainee"."""
    starts = (datetime.now(UTC) + timedelta(days=7)).replace(second=0, microsecond=0)
    async with console.client() as client:
        await console.login(client, OPERATOR)
        page = await client.get("/console/events/new")
        assert "技能実習生 Technical intern trainee" in page.text
        form = {"csrf_token": csrf_of(page.text), "title_en": "Welcome party", "body_en": "For trainees.",
                "starts_at": _local(starts), "publish_at": _local(starts - timedelta(days=1)), "segments": "trainee"}
        assert (await client.post("/console/events/new", data=form)).status_code == 303
        listing = await client.get("/console/events")
    assert "技能実習生 Technical intern trainee" in listing.text and "· trainee" not in listing.text
