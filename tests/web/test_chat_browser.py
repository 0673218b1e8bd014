"""The web chat page in real headless Chromium (Debian's /usr/bin/chromium via Playwright)."""
from __future__ import annotations

import pytest

from tests.web.conftest import RunningApp

pytestmark = pytest.mark.browser


@pytest.fixture
async def phone_page(new_page):
    return await new_page(390, 844, "vi-VN", device_scale_factor=2, is_mobile=True, has_touch=True)


async def test_vietnamese_question_gets_a_vietnamese_answer_and_buttons_work(web_app: RunningApp, phone_page, screenshot):
    kb = web_app.services.kb
    page = phone_page
    await page.goto(web_app.url + "/")
    # The greeting arrives in the browser's language (navigator.language = vi-VN).
    await page.locator(".msg.bot").first.wait_for()
    assert await page.locator(".msg.bot").first.inner_text() == kb.messages["greeting.follow"]["vi"]
    assert await page.locator("#text").get_attribute("placeholder") == kb.messages["web.placeholder"]["vi"]

    await page.fill("#text", "vứt ghế sofa thế nào")
    await page.press("#text", "Enter")
    answer = page.locator(".msg.bot", has_text="Câu trả lời về rác cỡ lớn.")
    await answer.wait_for()

    related = page.locator(".chip[data-payload='i:garbage.collection_day']").last
    assert await related.inner_text() == kb.messages["topic.garbage.collection_day"]["vi"]
    await related.tap()
    await page.locator(".msg.bot", has_text="Câu trả lời về ngày thu gom rác.").wait_for()
    await screenshot(page, "web-chat-phone.png")


async def test_language_switch_changes_the_page_and_the_bot(web_app: RunningApp, phone_page):
    kb = web_app.services.kb
    page = phone_page
    await page.goto(web_app.url + "/")
    await page.locator(".msg.bot").first.wait_for()
    await page.select_option("#lang", "ko")
    await page.locator(".msg.bot", has_text=kb.messages["lang.set"]["ko"]).wait_for()
    assert await page.locator("#text").get_attribute("placeholder") == kb.messages["web.placeholder"]["ko"]


async def test_real_knowledge_base_in_the_browser(real_web_app: RunningApp, phone_page, screenshot):
    from knowledge.render import render_answer

    services = real_web_app.services
    kb, matcher = services.kb, services.matcher
    detectors = services.engine.item_detectors      # "vứt ghế sofa": the item's own answer instead
    question = next(s for s in kb.intents["garbage.bulky"].samples["vi"]
                    if (m := matcher.match(s)).intent == "garbage.bulky" and m.decision == "answer"
                    and m.language == "vi" and not any(detect(s) for detect in detectors))
    first_line = render_answer(kb, "garbage.bulky", "vi").splitlines()[0]
    related = kb.intents["garbage.bulky"].related[0]

    page = phone_page
    await page.goto(real_web_app.url + "/")
    await page.locator(".msg.bot").first.wait_for()
    await page.fill("#text", question)
    await page.click("#send")
    await page.locator(".msg.bot", has_text=first_line).wait_for()
    await page.locator(f".chip[data-payload='i:{related}']").last.tap()
    related_line = render_answer(kb, related, "vi").splitlines()[0]
    await page.locator(".msg.bot", has_text=related_line).wait_for()
    await screenshot(page, "web-chat-phone-real-kb.png")
