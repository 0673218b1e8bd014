"""The "More" button of a long answer on LINE (quick reply) and Telegram (inline button),
through the real app and the fake platform APIs, on the project's knowledge base."""
from __future__ import annotations

from typing import Any

from knowledge.render import render_sections
from tests.fakes.webhooks import line_body, line_postback_event, telegram_callback_update

LINE_USER = "U" + "9" * 32
CHAT = 5550999


def _long_intent(kb: Any) -> str:
    return next(i for i in kb.intents if not i.startswith(("bot.", "greeting.")) and kb.intents[i].answers.get("en")
                and len(render_sections(kb, i, "en")) >= 2)


async def test_more_on_line_and_telegram(kurashi) -> None:
    kb = kurashi.services.kb
    intent = _long_intent(kb)
    sections = render_sections(kb, intent, "en")
    kurashi.line_api.set_profile(LINE_USER, language="en")

    async def line_press(data: str) -> list[dict[str, Any]]:
        before = len(kurashi.line_api.messages_for(LINE_USER))
        token = kurashi.line_api.issue_reply_token(LINE_USER)
        await kurashi.post_line(line_body(line_postback_event(LINE_USER, data, reply_token=token)))
        await kurashi.settle()
        return kurashi.line_api.messages_for(LINE_USER)[before:]

    await line_press("l:en")
    first = await line_press(f"i:{intent}")
    items = first[-1]["quickReply"]["items"]
    assert items[0]["action"]["data"] == f"mo:{intent}:1" and items[0]["action"]["label"] == kb.messages["answer.more"]["en"]
    assert sections[0] in "\n".join(m.get("text", "") for m in first)
    second = await line_press(f"mo:{intent}:1")
    assert second[0]["text"] == sections[1]
    assert kurashi.line_api.violations == []

    async def tg_press(data: str) -> list[dict[str, Any]]:
        before = len(kurashi.telegram_api.messages_to(CHAT))
        assert (await kurashi.post_telegram(telegram_callback_update(CHAT, data))).status_code == 200
        await kurashi.settle()
        return kurashi.telegram_api.messages_to(CHAT)[before:]

    await tg_press("l:en")
    first = await tg_press(f"i:{intent}")
    answer = next(m for m in first if sections[0][:40] in m.get("text", ""))
    buttons = [b for row in answer["reply_markup"]["inline_keyboard"] for b in row]
    assert {"text": kb.messages["answer.more"]["en"], "callback_data": f"mo:{intent}:1"} in buttons
    second = await tg_press(f"mo:{intent}:1")
    assert second[0]["text"] == sections[1]
