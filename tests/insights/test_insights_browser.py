"""The insights pages in real headless Chromium (Debian's /usr/bin/chromium via Playwright):
an operator logs in, opens Insights from the nav, filters, resolves the biggest gap and reads
the 👎 feedback; the resident's markup stays text."""
from __future__ import annotations

import pytest

from tests.console.conftest import PASSWORD, Console
from tests.insights.conftest import OPERATOR, add_unanswered, add_votes

pytestmark = pytest.mark.browser


@pytest.fixture
async def page(new_page):
    return await new_page(1280, 900, "ja-JP")


async def test_operator_finds_the_biggest_gap_resolves_it_and_reads_feedback(console: Console, page, screenshot):
    await add_unanswered(console.sessionmaker, [
        ("Where can I buy a bicycle?", "en", "decline"),
        ("where can i buy a bicycle", "en", "clarify_abandoned"),
        ("<img src=x onerror=alert(1)> bus?", "en", "decline"),
        ("xe đạp mua ở đâu", "vi", "decline"),
    ])
    await add_votes(console.sessionmaker, [("garbage.sorting", -1, "vi", "pin bỏ ở đâu"),
                                           ("garbage.sorting", 1, "en", None)])

    await page.goto(console.url + "/console/login")
    await page.fill("#email", OPERATOR)
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    await page.click("nav.nav a[href='/console/insights']")
    first = page.locator("#groups tr.group").first
    await first.wait_for()
    assert await first.get_attribute("data-count") == "2"
    assert "where can i buy a bicycle" in await first.locator("td.text").inner_text()
    assert "<img src=x onerror=alert(1)> bus?" in await page.locator("#questions").inner_text()
    assert await page.locator("#questions img").count() == 0
    await screenshot(page, "console-insights.png", full_page=True)

    await page.select_option("#f-language", "en")
    await page.click("#apply-filters")
    await page.wait_for_url("**language=en**")
    assert await page.locator("#groups tr.group").count() == 2
    await page.locator("#groups tr.group").first.locator("button.resolve-group").click()
    await page.locator(".flash.ok").wait_for()
    assert "Marked 2 resolved" in await page.locator(".flash.ok").inner_text()
    assert await page.locator("#groups tr.group").count() == 1
    assert await page.locator("#f-language").input_value() == "en"       # the filters were kept

    await page.click("#insight-tabs a[href='/console/insights/feedback']")
    row = page.locator("tr.intent-votes[data-intent='garbage.sorting']")
    await row.wait_for()
    assert await row.locator("td.ratio").inner_text() == "50%"
    assert "pin bỏ ở đâu" in await page.locator("#negative").inner_text()
