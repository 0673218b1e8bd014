"""The manual alert in real headless Chromium on a tablet viewport: an operator writes it,
previews it, confirms it, and the residents get it on LINE (relay → line-bot-sdk → fake LINE)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import create_app
from tests.console.conftest import PASSWORD, Console, console_settings
from tests.fakes.line_api import DEFAULT_CHANNEL_SECRET
from tests.scheduler.conftest import add_users
from tests.web.conftest import serve

pytestmark = pytest.mark.browser
OPERATOR = "op@city.example"


@pytest.fixture
async def console(sqlite_url: str, line_api) -> AsyncIterator[Console]:
    settings = console_settings(sqlite_url, run_sender=True, line_channel_secret=DEFAULT_CHANNEL_SECRET,
                                line_channel_access_token=line_api.access_token, line_api_base_url=line_api.base_url)
    app = create_app(settings)                        # the real knowledge base (alerts.yaml, districts)
    async for url in serve(app):
        running = Console(url, app)
        await running.add_staff(OPERATOR, "city_intl", role="operator", name="Operator")
        yield running


@pytest.fixture
async def tablet(new_page):
    return await new_page(1024, 768, "ja-JP", is_mobile=True, has_touch=True)


async def test_operator_previews_and_sends_a_manual_alert_residents_get_it_on_line(console, line_api, tablet, screenshot):
    page = tablet
    await add_users(console.sessionmaker,
                    {"platform_user_id": "U" + "a1" * 16, "language": "vi", "area": "ogori"},
                    {"platform_user_id": "U" + "b2" * 16, "language": "ko", "area": "ogori"},
                    {"platform_user_id": "U" + "c3" * 16, "language": "en", "area": "yuda"})
    await page.goto(f"{console.url}/console/alerts/new")
    await page.fill('input[name="email"]', OPERATOR)
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await page.wait_for_url("**/console/alerts/new")
    await page.fill('textarea[name="text_vi"]', "Mất nước ở Ogori đến 18:00.")
    await page.fill('textarea[name="text_en"]', "Water outage in Ogori until 18:00.")
    await page.check('input[name="areas"][value="ogori"]')
    await page.click("#preview")
    await page.wait_for_selector("#p-recipients")
    assert await page.inner_text("#p-recipients") == "2"
    await screenshot(page, "alert-preview-tablet.png", full_page=True)
    await page.click("#confirm")
    await page.wait_for_selector("#r-recipients")

    await line_api.wait_for_messages("U" + "a1" * 16)
    await line_api.wait_for_messages("U" + "b2" * 16)
    assert line_api.texts_for("U" + "a1" * 16)[0].endswith("Mất nước ở Ogori đến 18:00.")
    assert line_api.texts_for("U" + "b2" * 16)[0].startswith("📢 긴급 알림")            # Korean header, English text
    assert line_api.texts_for("U" + "c3" * 16) == []
    # the relay stamps a row "sent" just after LINE accepted it: reload until the report shows it
    for _ in range(100):
        await page.reload()
        if await page.inner_text("#r-sent") == "2":
            break
        await page.wait_for_timeout(200)
    assert await page.inner_text("#r-sent") == "2" and await page.inner_text("#r-queued") == "0"
