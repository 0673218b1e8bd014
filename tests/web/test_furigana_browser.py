"""Furigana in the web chat (real headless Chromium): 「かな（漢字）」 in an answer is shown
as ruby — the kanji with the reading above — built from text nodes only, so markup in an
answer stays visible text. LINE and Telegram keep the reading in brackets once per message
(bot.channels.render.readings_once)."""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from bot.app import create_app
from bot.channels.render import readings_once
from tests.conversation.kbfixture import load_fixture_kb
from tests.web.conftest import RunningApp, make_settings, serve

ANSWER = ("ざいりゅうカード（在留カード）を もって、しやくしょ（市役所）へ。"
          "ざいりゅうカード（在留カード）は だいじです。湯田（ゆだ）の まどぐち。<b>x</b><img src=x onerror=window.pwned=1>")

pytestmark = pytest.mark.browser


@pytest.fixture
async def ruby_app(sqlite_url: str) -> AsyncIterator[RunningApp]:
    kb = load_fixture_kb()
    intent = kb.intents["garbage.bulky"]
    intents = {**kb.intents, "garbage.bulky": intent.model_copy(update={"answers": {**intent.answers, "ja": ANSWER}})}
    app = create_app(make_settings(sqlite_url), kb=dataclasses.replace(kb, intents=intents))
    async for url in serve(app):
        yield RunningApp(url, app)


async def test_readings_are_ruby_in_the_web_chat_and_markup_stays_text(ruby_app: RunningApp, new_page):
    page = await new_page(390, 844, "ja-JP")
    await page.goto(ruby_app.url + "/")
    await page.locator(".msg.bot").first.wait_for()
    await page.locator(".chip[data-payload='g:garbage']").last.click()
    await page.locator(".chip[data-payload='i:garbage.bulky']").last.click()
    answer = page.locator(".msg.bot", has_text="だいじです")
    await answer.wait_for()
    rubies = await answer.locator("ruby").evaluate_all(
        "els => els.map(r => [r.firstChild.textContent, r.querySelector('rt').textContent])")
    assert rubies == [["在留カード", "ざいりゅうカード"], ["市役所", "しやくしょ"],
                      ["在留カード", "ざいりゅうカード"], ["湯田", "ゆだ"]]
    # markup in an answer is shown as text, never parsed
    assert await answer.locator("b, img").count() == 0
    assert "<b>x</b><img src=x" in await answer.inner_text()
    assert await page.evaluate("window.pwned === undefined")
    # the reading is above the kanji: the rt box sits higher than its base text
    top_rt, top_base = await answer.locator("ruby").first.evaluate(
        "r => { const range = document.createRange(); range.selectNodeContents(r.firstChild);"
        " return [r.querySelector('rt').getBoundingClientRect().top, range.getBoundingClientRect().top]; }")
    assert top_rt < top_base


def test_line_and_telegram_show_the_reading_once_per_message():
    assert readings_once(ANSWER).startswith(
        "ざいりゅうカード（在留カード）を もって、しやくしょ（市役所）へ。ざいりゅうカードは だいじです。湯田（ゆだ）の")
    assert readings_once("ゆだ（湯田） と 湯田（ゆだ）") == "ゆだ（湯田） と ゆだ"          # same term, other order
    assert readings_once("no readings here") == "no readings here"
