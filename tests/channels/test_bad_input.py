"""Bad input on the public routes, case by case (the fuzz test in test_fuzz_inputs.py draws
many more): body caps → 413, bodies that are not strict UTF-8 JSON or nest too deeply →
400, lone surrogates and NUL stripped from text that is otherwise fine (also on
PostgreSQL, which refuses NUL in text), over-long event ids, stored rows that cannot be
answered marked invalid with a one-line reason."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.db import repo
from bot.db.models import User
from bot.inbound import process_stored_events
from tests.fakes.webhooks import line_body, line_text_event, telegram_text_update

USER = "U" + "b" * 32


async def _asked(app, channel: str, user_id: str) -> str | None:
    """The question the engine kept with the user (users.state["asked"]), as stored."""
    user = await app.user(channel, user_id)
    return ((user.state or {}).get("asked") or {}).get("text") if user else None


def _ascii_body(*events) -> bytes:
    """Serialised like line_body but with \\uXXXX escapes, so lone surrogates and NUL survive as JSON."""
    return json.dumps({"destination": "U" + "0" * 32, "events": list(events)}, ensure_ascii=True).encode()


async def test_chat_body_over_64_kb_is_413_before_reading(kurashi) -> None:
    big = json.dumps({"text": "x" * 70_000}).encode()
    response = await kurashi.client.post("/api/chat", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413

    async def chunks():   # no Content-Length: counted as it arrives
        for _ in range(200):
            yield b" " * 1024
    response = await kurashi.client.post("/api/chat", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    ok = await kurashi.client.post("/api/chat", json={"text": "hello"})
    assert ok.status_code == 200


@pytest.mark.parametrize("raw", [
    b'{"text": "\xff\xfe"}',                      # not UTF-8
    '{"text": "\ud800"}'.encode("utf-8", "surrogatepass"),   # a raw (not escaped) surrogate is not UTF-8 either
    b"[" * 20_000 + b"]" * 20_000,                # deep nesting: the parser's recursion limit
    b'{"a": ' * 70 + b"1" + b"}" * 70,            # deeper than MAX_JSON_DEPTH
    b'{"text": NaN}',
    b"\xef\xbb\xbf{}",                            # a BOM
])
async def test_public_routes_answer_400_to_bodies_that_are_not_json(kurashi, raw) -> None:
    chat = await kurashi.client.post("/api/chat", content=raw, headers={"Content-Type": "application/json"})
    line = await kurashi.post_line(raw)
    telegram = await kurashi.post_telegram(None, raw=raw)
    assert (chat.status_code, line.status_code, telegram.status_code) == (400, 400, 400)
    assert await kurashi.count_events() == 0


async def test_nul_and_lone_surrogates_are_stripped_and_the_question_answered(kurashi_any_db) -> None:
    """On PostgreSQL a NUL used to fail the event (text columns refuse it): nothing answered."""
    app = kurashi_any_db
    token = app.line_api.issue_reply_token(USER)
    question = "zqxv\x00 blorfen \ud800wibble"        # kept with the user as the last question
    response = await app.post_line(_ascii_body(line_text_event(USER, question, reply_token=token)))
    await app.settle()
    assert response.status_code == 200
    events = await app.stored_events()
    assert [(e.status, e.error) for e in events] == [("done", None)]
    assert "\\u0000" not in events[0].payload and "\\ud800" not in events[0].payload
    assert app.line_api.replies_to_token(token)
    assert await _asked(app, "line", USER) == "zqxv blorfen wibble"


async def test_web_chat_strips_nul_and_surrogates(kurashi_any_db) -> None:
    app = kurashi_any_db
    raw = json.dumps({"text": "zqxv\x00 blorfen \udfffwibble", "lang": "en\x00"}, ensure_ascii=True).encode()
    response = await app.client.post("/api/chat", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["replies"]
    async with app.services.sessionmaker() as session:
        (web_user,) = (await session.execute(select(User.platform_user_id).where(User.channel == "web"))).scalars()
    assert await _asked(app, "web", web_user) == "zqxv blorfen wibble"


async def test_long_line_event_ids_fit_the_column_and_do_not_collide(kurashi_any_db) -> None:
    app = kurashi_any_db
    prefix = "E" * 200
    body = line_body(line_text_event(USER, "hello", event_id=prefix + "1"),
                     line_text_event(USER, "hello", event_id=prefix + "2"))
    response = await app.post_line(body)
    await app.settle()
    assert response.status_code == 200 and response.json()["stored"] == 2
    events = await app.stored_events()
    assert len({e.event_id for e in events}) == 2 and all(len(e.event_id) <= 128 for e in events)
    again = await app.post_line(body)                 # a redelivery is still recognised
    assert again.json()["stored"] == 0


@pytest.mark.parametrize("update_id", [2**64, -5])
async def test_telegram_update_id_out_of_range_is_400(kurashi_any_db, update_id) -> None:
    update = telegram_text_update(4242, "hello")
    update["update_id"] = update_id
    response = await kurashi_any_db.post_telegram(update)
    assert response.status_code == 400
    assert await kurashi_any_db.count_events() == 0


async def test_stored_rows_that_cannot_be_answered_are_marked_invalid_with_one_line(kurashi_any_db) -> None:
    """Rows stored by an older version (or edited by hand): never a traceback, a reason."""
    app = kurashi_any_db
    weird = {"destination": "x", "events": [{"type": "message", "source": ["not", "an", "object"],
                                             "message": {"type": "text", "text": "hi"}}]}
    long_user = {"destination": "x", "events": [{"type": "message", "source": {"type": "user", "userId": "U" * 500},
                                                 "message": {"type": "text", "text": "hi"}}]}
    async with app.services.sessionmaker() as session, session.begin():
        await repo.store_inbound_event(session, "line", "old-1", "{not json")
        await repo.store_inbound_event(session, "line", "old-2", json.dumps(weird))
        await repo.store_inbound_event(session, "line", "old-3", json.dumps(long_user))
    # Answered here, or by the app's own 3-second sweep if it claims them first (either way once).
    handled = await process_stored_events(app.services)
    rows = {e.event_id: e for e in await app.finished_events()}
    assert handled <= 3 and all(r.attempts == 1 for r in rows.values())   # each claimed once
    assert {k: r.status for k, r in rows.items()} == {"old-1": "failed", "old-2": "failed", "old-3": "failed"}
    assert rows["old-1"].error == "invalid: stored payload: body is not JSON"
    assert rows["old-2"].error == "invalid: malformed line event (AttributeError)"
    assert rows["old-3"].error.startswith("invalid: user id")
    assert app.line_api.requests == []
