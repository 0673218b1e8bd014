"""Issue 12 in the staff console, over SQLite and PostgreSQL, in real headless Chromium
(/usr/bin/chromium via Playwright) with screenshots: the case page starts with the
resident's own words and the bot's answer at the time; readable labels; canned replies
kept by operators per language and topic, inserted in the resident's language with the
Japanese beside; long texts wrap; satisfaction charts (server-rendered SVG); the JMA poll
error; one Japan-time format."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.consult import cases as case_service
from bot.db import repo
from bot.db.consult_models import Case
from bot.db.models import User, utcnow
from delivery.messages import Channel, IncomingMessage, Kind
from tests.console.conftest import Console, console_settings, csrf_of, start_console

OPERATOR = "ops@city.example"
JST_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} JST")



#: Real headless Chromium (tests/conftest.py skips it with a reason where /usr/bin/chromium is missing).
browser_only = pytest.mark.browser


@pytest.fixture
async def console(database_url: str) -> AsyncIterator[Console]:
    async for running in start_console(console_settings(database_url)):
        await running.add_staff(OPERATOR, "city_intl", role="operator", name="Operator")
        yield running


@pytest.fixture
async def tablet(new_page):
    return await new_page(1024, 768, "ja-JP", device_scale_factor=1, is_mobile=True, has_touch=True,
                          accept_dialogs=True)


async def login(page, console: Console, email: str) -> None:
    await page.context.clear_cookies()          # a fresh sign-in (also when switching accounts)
    await page.goto(console.url + "/console/login")
    await page.fill("#email", email)
    await page.fill("#password", "correct horse battery staple")
    await page.tap("#login")
    await page.locator("nav.nav").wait_for()


async def fits(page, width: int = 1024) -> None:
    scroll = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll}px wide in a {width}px window"


async def resident_hands_off(console: Console, user_id: str, question: str) -> Case:
    """A resident asks the bot, then goes through the real consultation flow and sends a case."""
    from tests.consult.conftest import make_reachable

    await make_reachable(console.services)      # consultations are offered only when staff read them
    engine = console.services.engine

    async def say(**fields):
        return await engine.handle(IncomingMessage(Channel.LINE, user_id, **fields))

    await say(kind=Kind.FOLLOW, language_hint="vi")
    await say(kind=Kind.TEXT, text=question)
    replies = await say(kind=Kind.POSTBACK, data="k:t:housing")
    if any(c.data == "k:g:-" for r in replies for c in r.quick_replies):
        await say(kind=Kind.POSTBACK, data="k:g:trainee")
    await say(kind=Kind.POSTBACK, data="k:y")
    await say(kind=Kind.TEXT, text="Chủ nhà không trả lại tiền cọc.")
    await say(kind=Kind.POSTBACK, data="k:s")
    async with console.sessionmaker() as s:
        user = (await s.execute(select(User).where(User.platform_user_id == user_id))).scalar_one()
        return (await s.execute(select(Case).where(Case.user_id == user.id))).scalar_one()


@browser_only
async def test_case_page_starts_with_the_residents_words_and_readable_labels(console: Console, tablet, screenshot):
    question = "Tôi muốn hỏi về tiền đặt cọc nhà, chủ nhà không trả lại"
    case = await resident_hands_off(console, "U-handoff-1", question)
    await console.add_staff("staff@org.example", case.org, name="Staff")
    page = tablet
    await login(page, console, "staff@org.example")
    await page.goto(f"{console.url}/console/cases/{case.id}")
    handoff = page.locator("#handoff")
    await handoff.wait_for()
    assert await page.locator("#handoff-question").inner_text() == question
    answer = await page.locator("#handoff-answer").inner_text()
    assert answer and answer != "–"                               # what the bot said at the time
    # The hand-off comes first on the page, before the facts and the thread.
    box_handoff = await handoff.bounding_box()
    box_thread = await page.locator("#thread").bounding_box()
    assert box_handoff["y"] < box_thread["y"]
    assert "Chủ nhà không trả lại tiền cọc." in await page.locator("#thread").inner_text()
    assert await page.locator("#thread .msg", has_text=question).count() == 0   # not repeated below
    # Readable labels in the staff language (ja): no keys, no residents' easy Japanese.
    segment = await page.locator("#case-segment").inner_text()
    assert segment == "技能実習生 Technical intern trainee"      # not the key "trainee", not "ぎのうじっしゅうせい"
    org = await page.locator("#case-org").inner_text()
    assert org == console.services.kb.partners.partners[case.org].name["ja"] and org != case.org
    assert await page.locator("#case-topic").inner_text() == "住まい Housing"
    facts = await page.locator("#case-facts").inner_text()
    assert JST_TIME.search(facts)                                 # dates in Japan time, one format
    await fits(page)
    await screenshot(page, "console-case-handoff.png", full_page=True, min_bytes=10_000)


@browser_only
async def test_operators_keep_canned_replies_and_staff_insert_them_in_the_residents_language(
        console: Console, tablet, screenshot):
    case = await console.add_case(user_id="U-canned-1", org="otit", topic="work", language="vi")
    await console.add_staff("tanaka@otit.example", "otit", name="Tanaka")
    page = tablet
    await login(page, console, OPERATOR)
    await page.goto(console.url + "/console/canned")
    await page.tap("#import-canned")                                # partners.yaml's defaults into the DB
    await page.locator("#canned-list tr[data-key='received']").wait_for()
    await page.fill("#canned-key", "payslip")
    await page.select_option("#canned-topic", "work")
    await page.fill("#canned-text-ja", "きゅうよめいさいの しゃしんを おくって ください。")
    await page.fill("#canned-text-vi", "Vui lòng gửi ảnh bảng lương của bạn.")
    await page.tap("#save-canned")
    await page.locator("#canned-list tr[data-key='payslip']").wait_for()
    # Japanese is required: staff must be able to read what they insert.
    await page.fill("#canned-key", "no_japanese")
    await page.fill("#canned-text-ja", "")
    await page.evaluate("document.getElementById('canned-text-ja').removeAttribute('required')")
    await page.fill("#canned-text-en", "Hello")
    await page.tap("#save-canned")
    await page.locator(".flash.err").wait_for()
    await fits(page)
    await screenshot(page, "console-canned.png", full_page=True, min_bytes=10_000)

    # Another topic's case does not offer the work-only reply.
    other = await console.add_case(user_id="U-canned-2", org="otit", topic="housing", language="vi")
    await login(page, console, "tanaka@otit.example")
    await page.goto(f"{console.url}/console/cases/{other.id}")
    await page.locator("#canned").wait_for()
    assert await page.locator("#canned button[data-key='payslip']").count() == 0

    await page.goto(f"{console.url}/console/cases/{case.id}")
    button = page.locator("#canned button[data-key='payslip']")
    await button.wait_for()
    assert await button.get_attribute("data-lang") == "vi"
    assert "きゅうよめいさい" in await button.locator(".ja").inner_text()     # the Japanese beside it
    await button.tap()
    assert await page.input_value("#reply-text") == "Vui lòng gửi ảnh bảng lương của bạn."
    await fits(page)
    await screenshot(page, "console-case-canned.png", full_page=True, min_bytes=10_000)


@browser_only
async def test_a_20000_character_question_wraps_on_the_insights_page(console: Console, tablet, screenshot):
    async with console.sessionmaker() as s, s.begin():
        resident, _ = await repo.get_or_create_user(s, "line", "U-long")
        await repo.record_unanswered(s, resident, "x" * 20_000, language="en", decision="decline")
        await repo.record_feedback(s, resident, "garbage.bulky", -1, language="en", question="y" * 20_000)
    page = tablet
    await login(page, console, OPERATOR)
    for path, name in (("/console/insights", "console-insights-long.png"),
                       ("/console/insights/feedback", "console-feedback-long.png")):
        await page.goto(console.url + path)
        await page.locator(".longtext").first.wait_for()
        await fits(page)
        await screenshot(page, name, full_page=True, min_bytes=10_000)


@browser_only
async def test_satisfaction_charts_per_month_organisation_and_language(console: Console, tablet, screenshot):
    kb = console.services.kb
    scores = [("otit", "vi", 5), ("otit", "vi", 4), ("otit", "zh", 2), ("yiea", "en", 3)]
    async with console.sessionmaker() as s, s.begin():
        for n, (org, language, score) in enumerate(scores):
            user, _ = await repo.get_or_create_user(s, "line", f"U-rated-{n}")
            case = await case_service.create_case(s, user, topic="work", org=org, language=language)
            await case_service.add_message(s, case, text="help", language=language)
            await case_service.submit_case(s, kb, case)
            await case_service.close(s, kb, case_service.SYSTEM, case.id, "resolved")
            await case_service.rate(s, user, case.id, score)
    page = tablet
    await login(page, console, OPERATOR)
    await page.goto(console.url + "/console/stats")
    month = page.locator("#svg-month")
    await month.wait_for()
    this_month = utcnow().astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")
    bar = page.locator(f"#svg-month rect.bar[data-label='{this_month}']")
    assert await bar.get_attribute("data-rated") == "4" and await bar.get_attribute("data-average") == "3.50"
    orgs = page.locator("#svg-org rect.bar")
    assert await orgs.count() == 2
    otit_name = kb.partners.partners["otit"].name["ja"]
    otit = page.locator(f"#svg-org rect.bar[data-label='{otit_name}']")
    assert await otit.get_attribute("data-average") == "3.67"
    assert await page.locator("#chart-language tr[data-label^='Tiếng Việt'] td.n").inner_text() == "2"
    # Server-rendered: no script builds the chart, nothing comes from another origin.
    assert await page.locator("script[src^='http'], link[href^='http'], img[src^='http']").count() == 0
    assert await page.locator("#svg-month").evaluate("svg => svg.closest('.chart').querySelector('script')") is None
    await fits(page)
    await screenshot(page, "console-stats-satisfaction.png", full_page=True, min_bytes=10_000)


@browser_only
async def test_jma_status_shows_the_last_error_when_every_poll_failed(console: Console, tablet):
    from types import SimpleNamespace

    from scheduler.alerts import _record_feed_error

    ctx = SimpleNamespace(sessionmaker=console.sessionmaker, now=utcnow)
    await _record_feed_error(ctx, "https://www.data.jma.go.jp/developer/xml/feed/extra.xml",
                             OSError("[Errno -3] Temporary failure in name resolution"))
    page = tablet
    await login(page, console, OPERATOR)
    await page.goto(console.url + "/console/alerts")
    feeds = page.locator("#feeds")
    await feeds.wait_for()
    text = await feeds.inner_text()
    assert "Not polled yet" not in text and "No successful poll yet" in text
    assert "OSError: [Errno -3] Temporary failure in name resolution" in text and JST_TIME.search(text)
    assert await page.locator("#feeds tr[data-feed-error='yes']").count() == 1
    await fits(page)


async def test_canned_reply_form_is_for_operators_only(console: Console):
    await console.add_staff("tanaka@otit.example", "otit", name="Tanaka")
    async with console.client() as http:
        await console.login(http, "tanaka@otit.example")
        page = await http.get("/console/canned")
        assert page.status_code in (403, 404)
        inbox = await http.get("/console/")
        denied = await http.post("/console/canned", data={"csrf_token": csrf_of(inbox.text), "key": "x",
                                                          "text_ja": "x"})
        assert denied.status_code in (403, 404)
