"""Issue 12, web chat: a reload restores the recent conversation (server-side, per browser
session) with usable buttons; the 2,000-character limit is said, never a silent cut; the
privacy banner follows the state (chat / writing a consultation / case). HTTP API and real
headless Chromium (/usr/bin/chromium via Playwright), on the project's real knowledge base."""
from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from bot.db.models import User, WebTurn, utcnow
from bot.db.web_turns import WEB_TURNS_KEPT, append_web_turns, prune_web_turns, recent_web_turns
from tests.web.conftest import RunningApp


def client(app: RunningApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=app.url, trust_env=False, timeout=30)


async def test_history_returns_the_exchange_with_button_labels_and_the_mode(web_app: RunningApp):
    kb = web_app.services.kb
    async with client(web_app) as http:
        assert (await http.get("/api/chat/history")).json() == {"turns": [], "mode": "chat", "lang": None}
        await http.post("/api/chat", json={"event": "start", "lang": "vi"})
        answer = (await http.post("/api/chat", json={"text": "vứt ghế sofa thế nào"})).json()
        assert answer["mode"] == "chat"
        await http.post("/api/chat", json={"data": "fb:+:garbage.bulky", "label": "👍"})
        history = (await http.get("/api/chat/history")).json()
    turns = history["turns"]
    assert history["mode"] == "chat" and history["lang"] == "vi"
    assert turns[0]["role"] == "bot" and turns[0]["text"] == kb.messages["greeting.follow"]["vi"]
    asked = turns.index({"role": "user", "text": "vứt ghế sofa thế nào"})
    answer = turns[asked + 1]
    assert answer["role"] == "bot" and answer["text"].startswith("Câu trả lời về rác cỡ lớn.")
    assert "fb:+:garbage.bulky" in [c["data"] for c in answer["quick_replies"]]
    assert turns[-2] == {"role": "user", "text": "👍"} and turns[-1]["text"] == kb.messages["fb.thanks"]["vi"]


async def test_history_is_per_session_bounded_and_forgotten_with_the_user(sessionmaker):
    from bot.db import repo

    async with sessionmaker() as session, session.begin():
        await repo.get_or_create_user(session, "web", "a" * 32)
        await repo.get_or_create_user(session, "web", "b" * 32)
        await append_web_turns(session, "a" * 32, [("user", {"text": f"q{n}"}) for n in range(WEB_TURNS_KEPT + 5)])
        await append_web_turns(session, "b" * 32, [("user", {"text": "other"})])
        assert await append_web_turns(session, "c" * 32, [("user", {"text": "nobody"})]) == 0
    async with sessionmaker() as session:
        mine = await recent_web_turns(session, "a" * 32)
        assert len(mine) == WEB_TURNS_KEPT and mine[-1]["text"] == f"q{WEB_TURNS_KEPT + 4}"
        assert [t["text"] for t in await recent_web_turns(session, "b" * 32)] == ["other"]
    async with sessionmaker() as session, session.begin():
        user = (await session.execute(select(User).where(User.platform_user_id == "a" * 32))).scalar_one()
        await repo.delete_user_data(session, user)
    async with sessionmaker() as session:
        left = (await session.execute(select(WebTurn.payload))).scalars().all()
    assert left == [{"text": "other"}]
    # The daily prune drops lines once they would no longer be shown (2 days).
    async with sessionmaker() as session, session.begin():
        assert await prune_web_turns(session, now=utcnow() + timedelta(days=1)) == 0
        assert await prune_web_turns(session, now=utcnow() + timedelta(days=3)) == 1


# ----------------------------------------------------------------------------- browser


@pytest.fixture
async def phone(new_page):
    return await new_page(390, 844, "en-US", device_scale_factor=1, is_mobile=True, has_touch=True)


async def _page_fits(page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page is {width}px wide on a 390px phone"


@pytest.mark.browser
async def test_reload_restores_the_conversation_and_its_buttons_still_work(real_web_app: RunningApp, phone, screenshot):
    from tests.conversation.test_rephrase_and_items import asking_back

    kb = real_web_app.services.kb
    # The model answers "how to throw away glass" at once; this test needs its "Did you mean…".
    real_web_app.services.engine.matcher = asking_back(real_web_app.services.matcher)
    page = phone
    await page.goto(real_web_app.url + "/")
    await page.locator(".msg.bot").first.wait_for()
    await page.fill("#text", "how to throw away glass")
    await page.press("#text", "Enter")
    await page.locator(".chip[data-payload='i:garbage.sorting']").wait_for()
    before = await page.locator(".msg").count()

    await page.reload()
    await page.locator(".earlier").wait_for()
    await page.locator(".msg.user", has_text="how to throw away glass").wait_for()
    assert await page.locator(".msg").count() == before        # the same lines, no second greeting
    chip = page.locator(".chip[data-payload='i:garbage.sorting']").last
    assert await chip.is_visible()
    await _page_fits(page)
    await screenshot(page, "web-chat-restored.png")

    await chip.tap()                                           # the "Did you mean…" is still answered
    await page.locator(".msg.bot", has_text='"Glass" goes in').wait_for()
    assert kb.messages["web.notice"]["en"] == await page.locator("#notice").inner_text()


@pytest.mark.browser
async def test_the_input_says_when_the_2000_character_limit_is_reached(real_web_app: RunningApp, phone, screenshot):
    kb = real_web_app.services.kb
    page = phone
    await page.goto(real_web_app.url + "/")
    await page.locator(".msg.bot").first.wait_for()
    bubbles = await page.locator(".msg").count()
    await page.fill("#text", "x" * 2500)
    limit = page.locator("#limit")
    await limit.wait_for(state="visible")
    expected = kb.messages["web.too_long"]["en"].format(max=2000, count=2500)
    assert await limit.inner_text() == expected
    assert await page.locator("#send").is_disabled()
    assert len(await page.input_value("#text")) == 2500           # nothing was cut silently
    await page.press("#text", "Enter")
    assert await page.locator(".msg").count() == bubbles          # and nothing was sent
    await _page_fits(page)
    await screenshot(page, "web-chat-too-long.png")

    await page.fill("#text", "y" * 1900)                            # near the limit: a counter
    assert await limit.inner_text() == "1900 / 2000" and not await page.locator("#send").is_disabled()


@pytest.mark.browser
async def test_the_banner_follows_the_consultation_and_survives_a_reload(real_web_app: RunningApp, phone, screenshot):
    from tests.consult.conftest import make_reachable

    kb = real_web_app.services.kb
    await make_reachable(real_web_app.services)     # consultations are offered only when staff read them
    page = phone
    await page.goto(real_web_app.url + "/")
    await page.locator(".msg.bot").first.wait_for()
    notice = page.locator("#notice")
    assert await notice.inner_text() == kb.messages["web.notice"]["en"]
    await page.fill("#text", "consult")
    await page.press("#text", "Enter")
    await page.locator(".chip[data-payload='k:t:housing']").last.tap()
    # The segment question comes only when routing needs it; then the consent question.
    await page.locator(".chip[data-payload='k:g:-'], .chip[data-payload='k:y']").last.wait_for()
    if await page.locator(".chip[data-payload='k:g:-']").count():
        await page.locator(".chip[data-payload='k:g:-']").last.tap()
    await page.locator(".chip[data-payload='k:y']").last.tap()
    await page.locator("#notice[data-mode='compose']").wait_for()
    assert await notice.inner_text() == kb.messages["web.notice_compose"]["en"]
    await screenshot(page, "web-chat-compose-banner.png")

    await page.reload()
    await page.locator(".earlier").wait_for()
    await page.locator("#notice[data-mode='compose']").wait_for()
    await page.fill("#text", "My landlord keeps my deposit.")
    await page.press("#text", "Enter")
    await page.locator(".chip[data-payload='k:s']").last.tap()
    await page.locator("#notice[data-mode='case']").wait_for()
    assert await notice.inner_text() == kb.messages["web.notice_case"]["en"]
    await _page_fits(page)
