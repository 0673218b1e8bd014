"""One delivery per answer on LINE when a process dies mid-event (kill -9 after the reply,
before the "done" stamp): the event is answered again within seconds, while its reply token
is fresh; LINE refuses the used token, which tells us the resident has the answer — no
second answer by push. Pushes made for an event carry a retry key derived from the event,
so the same push made again is dropped by LINE. Also: a dead process's events are taken
over in seconds, not minutes."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from bot.db import repo
from bot.db.models import EVENT_PROCESSING, InboundEvent, OutboxMessage, utcnow
from bot.inbound import RESUME_INTERVAL_SECONDS, process_stored_events
from tests.fakes.webhooks import line_body, line_text_event

USER = "U" + "c" * 32


async def _as_if_the_process_died(app, *, received_ago: timedelta | None = None) -> None:
    """The row back to "processing" with its lease run out, as a killed processor leaves it."""
    values = {"status": EVENT_PROCESSING, "processed_at": None, "claimed_until": utcnow() - timedelta(seconds=1)}
    if received_ago is not None:
        values["received_at"] = utcnow() - received_ago
    async with app.services.sessionmaker() as session, session.begin():
        await session.execute(update(InboundEvent).values(**values))


async def _stored_and_claimed(app, text: str, reply_token: str, *, lease: timedelta) -> InboundEvent:
    """A LINE event of USER stored and claimed as another worker (or a process that then died)
    holds it: claimed, unanswered, its lease ``lease`` from now. Returns the row as it holds it."""
    body = line_body(line_text_event(USER, text, reply_token=reply_token))
    event_id, payload = app.services.channels["line"].split_body(body)[0]
    received = utcnow()
    async with app.services.sessionmaker() as session, session.begin():
        [row_id] = await repo.store_claimed_inbound_events(session, [("line", event_id, payload, received)],
                                                           lease=lease)
    return InboundEvent(id=row_id, channel="line", event_id=event_id, payload=payload, status=EVENT_PROCESSING,
                        attempts=1, received_at=received)


async def _wait_for_the_relay(app) -> None:
    app.services.relay.notify()
    for _ in range(40):
        async with app.services.sessionmaker() as session:
            pending = (await session.execute(select(OutboxMessage).where(OutboxMessage.status == "pending"))).all()
        if not pending:
            return
        await asyncio.sleep(0.1)


async def test_a_recovered_event_whose_reply_went_out_is_not_answered_again(kurashi_any_db) -> None:
    app = kurashi_any_db
    token = app.line_api.issue_reply_token(USER)
    await app.post_line(line_body(line_text_event(USER, "when is burnable garbage collected", reply_token=token)))
    await app.settle()
    answered = list(app.line_api.messages_for(USER))
    assert answered
    await _as_if_the_process_died(app)
    await process_stored_events(app.services)       # or the app's sweep, whichever claims it first
    await app.finished_events()
    await app.settle()
    await _wait_for_the_relay(app)
    assert app.line_api.messages_for(USER) == answered            # nothing a second time
    assert app.line_api.requests_to("/v2/bot/message/push") == []
    assert [(e.status, e.attempts) for e in await app.stored_events()] == [("done", 2)]


async def test_an_event_pushed_twice_is_delivered_once(kurashi_any_db) -> None:
    """The reply token had expired: the answer went by push; the event is processed again
    (crash before its stamp) after the token's minute — it is pushed again with the same
    retry key, and LINE drops the second push."""
    app = kurashi_any_db
    token = app.line_api.issue_reply_token(USER)
    app.line_api.expire_reply_token(token)
    await app.post_line(line_body(line_text_event(USER, "when is burnable garbage collected", reply_token=token)))
    await app.settle()
    await _wait_for_the_relay(app)
    first = list(app.line_api.messages_for(USER))
    assert first
    await _as_if_the_process_died(app, received_ago=timedelta(minutes=2))
    await process_stored_events(app.services)       # or the app's sweep, whichever claims it first
    await app.finished_events()
    await app.settle()
    await _wait_for_the_relay(app)
    pushes = app.line_api.requests_to("/v2/bot/message/push")
    keys = {p.headers.get("X-Line-Retry-Key") for p in pushes}
    assert len(pushes) == 2 and len(keys) == 1
    uuid.UUID(keys.pop())                                          # a UUID, as LINE requires
    assert app.line_api.messages_for(USER) == first


async def test_a_dead_processors_events_are_answered_within_seconds(kurashi) -> None:
    """Stored and claimed by a process that then died (not this one): its lease runs out and
    the sweep answers it — seconds, within the reply token's minute."""
    app = kurashi
    token = app.line_api.issue_reply_token(USER)
    await _stored_and_claimed(app, "when is burnable garbage collected", token, lease=timedelta(seconds=2))
    started = asyncio.get_running_loop().time()
    await app.line_api.wait_for_reply(token, timeout=2 + RESUME_INTERVAL_SECONDS + 10)
    assert asyncio.get_running_loop().time() - started < 2 + RESUME_INTERVAL_SECONDS + 5


async def test_leases_of_events_being_answered_are_renewed(kurashi) -> None:
    """A slow turn (longer than the 15 s lease) keeps its event: another process's sweep
    would otherwise answer it a second time. Here: the held row's lease is pushed forward."""
    from bot.inbound import _inflight, renew_leases

    app = kurashi
    row_id = (await _stored_and_claimed(app, "hello", app.line_api.issue_reply_token(USER),
                                        lease=timedelta(seconds=1))).id
    _inflight(app.services)[row_id] = False          # being answered by this process
    try:
        assert await renew_leases(app.services) >= 1
        async with app.services.sessionmaker() as session:
            (until,) = (await session.execute(select(InboundEvent.claimed_until))).scalars()
        assert (until - utcnow()).total_seconds() > 10
    finally:
        _inflight(app.services).pop(row_id, None)


async def test_a_residents_messages_are_answered_in_the_order_they_were_stored(kurashi_any_db) -> None:
    """Another worker holds this resident's older event (claimed, unanswered): the newer one
    waits for it — on PostgreSQL with several workers the advisory lock alone would let the
    newer turn go first — while other residents are answered at once."""
    app = kurashi_any_db
    older = await _stored_and_claimed(app, "hello", app.line_api.issue_reply_token(USER), lease=timedelta(seconds=60))
    newer_token = app.line_api.issue_reply_token(USER)
    other = "U" + "d" * 32
    other_token = app.line_api.issue_reply_token(other)
    assert (await app.post_line(line_body(line_text_event(USER, "garbage", reply_token=newer_token)))).status_code == 200
    assert (await app.post_line(line_body(line_text_event(other, "garbage", reply_token=other_token)))).status_code == 200
    await app.line_api.wait_for_reply(other_token, timeout=15)        # someone else: not held up
    await asyncio.sleep(1.0)
    assert app.line_api.replies_to_token(newer_token) == []           # waits for the older event
    async with app.services.sessionmaker() as session, session.begin():
        await repo.finish_inbound_events(session, [older.id])         # the other worker answered it
    await app.line_api.wait_for_reply(newer_token, timeout=15)


async def test_an_older_event_of_this_process_goes_first_while_the_newer_one_waits(kurashi) -> None:
    """The newer event waits outside the resident's lock and its processing slot: the older
    one, answered by this same process, is not blocked behind it (no 20-second stand-off)."""
    from bot.inbound import process_claimed_events

    app = kurashi
    older_token = app.line_api.issue_reply_token(USER)
    older = await _stored_and_claimed(app, "hello", older_token, lease=timedelta(seconds=60))
    newer_token = app.line_api.issue_reply_token(USER)
    assert (await app.post_line(line_body(line_text_event(USER, "garbage", reply_token=newer_token)))).status_code == 200
    await asyncio.sleep(0.5)
    assert app.line_api.replies_to_token(newer_token) == []
    await asyncio.wait_for(process_claimed_events(app.services, [older]), timeout=10)
    await app.line_api.wait_for_reply(newer_token, timeout=10)
    tokens = [(r.json or {}).get("replyToken") for r in app.line_api.requests_to("/v2/bot/message/reply")]
    assert tokens.index(older_token) < tokens.index(newer_token)
