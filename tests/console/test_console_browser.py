"""The staff console in real headless Chromium (Debian's /usr/bin/chromium via Playwright),
tablet-sized, against the app on uvicorn whose outbox relay pushes to the fake LINE API."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.consult import cases as case_service
from bot.consult.cases import MediaContent
from bot.consult.routing import canned_replies
from bot.db.consult_models import Case
from tests.console.conftest import Console, console_settings, start_console
from tests.console.test_console_http import make_png
from tests.fakes.line_api import DEFAULT_CHANNEL_SECRET

RESIDENT = "U" + "ab" * 16

pytestmark = pytest.mark.browser


@pytest.fixture
async def line_console(database_url: str, line_api) -> AsyncIterator[Console]:
    """The app with LINE pointed at the fake and the outbox relay running (RUN_SENDER)."""
    settings = console_settings(database_url, run_sender=True, line_channel_secret=DEFAULT_CHANNEL_SECRET,
                                line_channel_access_token=line_api.access_token,
                                line_api_base_url=line_api.base_url)
    async for console in start_console(settings):
        yield console


@pytest.fixture
async def tablet(new_page):
    # accept_dialogs: the "close this case?" confirmation
    return await new_page(1024, 768, "ja-JP", device_scale_factor=2, is_mobile=True, has_touch=True,
                          accept_dialogs=True)


async def test_staff_log_in_reply_and_close_a_case_and_the_resident_gets_it_on_line(
        line_console: Console, line_api, tablet, screenshot):
    console, page = line_console, tablet
    kb = console.services.kb
    await console.add_staff("nguyen@otit.example", "otit", name="Nguyen")
    case = await console.add_case(user_id=RESIDENT, media=MediaContent(make_png(320, 200), "image/png"))

    # Log in (the inbox was asked for first, so the login page sends staff back to it).
    await page.goto(console.url + "/console/")
    await page.fill("#email", "nguyen@otit.example")
    await page.fill("#password", "correct horse battery staple")
    await page.tap("#login")
    row = page.locator(f"tr[data-case='{case.number}']")
    await row.wait_for()
    assert "Công ty không trả lương" in await row.inner_text()
    await screenshot(page, "console-inbox-tablet.png", full_page=True)

    # Open the case: the resident's original text, its language, the matched topic, the image.
    await row.locator("a.num").tap()
    await page.locator("#case-title").wait_for()
    first = page.locator(".msg.in").first
    assert "Công ty không trả lương cho tôi 2 tháng." in await first.inner_text()
    assert await first.locator(".lang").inner_text() == "vi"
    assert await first.locator(".intent").count() == 1
    image = page.locator(".msg img")
    await image.wait_for()
    assert await image.evaluate("img => img.complete && img.naturalWidth") == 320

    await screenshot(page, "console-case-tablet.png", full_page=True)

    # Reply: a canned reply in Vietnamese, plus a line of one's own.
    received = canned_replies(kb, "vi")["received"]
    await page.locator("#canned button[data-key='received']").tap()
    assert await page.input_value("#reply-text") == received
    await page.locator("#reply-text").press("End")
    await page.locator("#reply-text").type(" Vui lòng gửi ảnh hợp đồng.")
    await page.tap("#send-reply")
    await page.locator(".flash.ok").wait_for()
    assert await page.locator("#case-status").inner_text() == "回答済 Answered"

    # The relay pushes it to the resident's LINE chat, with a retry key.
    [message] = await line_api.wait_for_messages(RESIDENT, 1)
    assert received in message["text"] and "Vui lòng gửi ảnh hợp đồng." in message["text"]
    assert case.number in message["text"]
    [push] = line_api.requests_to("/v2/bot/message/push")
    assert push.headers.get("X-Line-Retry-Key")

    # The resident answers; staff see it after a reload.
    async with console.sessionmaker() as s, s.begin():
        stored = await s.get(Case, case.id)
        await case_service.resident_message(s, kb, stored, text="Đây là hợp đồng của tôi.", language="vi")
    await page.reload()
    assert "Đây là hợp đồng của tôi." in await page.locator(".msg.in").last.inner_text()
    assert await page.locator("#case-status").inner_text() == "未対応 Open"

    # Close with an outcome: the resident is asked to rate it 1–5.
    await page.select_option("#close-outcome", "resolved")
    await page.tap("#close-case")
    await page.locator("#case-outcome").wait_for()
    messages = await line_api.wait_for_messages(RESIDENT, 2)
    rating = messages[-1]
    assert case.number in rating["text"]
    assert [item["action"]["label"] for item in rating["quickReply"]["items"]][:5] == ["1", "2", "3", "4", "5"]
    assert len({r.headers.get("X-Line-Retry-Key") for r in line_api.requests_to("/v2/bot/message/push")}) == 2

    await page.goto(console.url + "/console/?status=closed")
    await page.locator(f"tr[data-case='{case.number}']").wait_for()
    await page.set_viewport_size({"width": 768, "height": 1024})
    await page.goto(console.url + f"/console/cases/{case.id}/audit")
    actions = await page.locator("#audit tbody tr").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert actions == ["opened", "replied", "resident_wrote", "closed"]
    await screenshot(page, "console-audit-tablet-portrait.png", full_page=True)
