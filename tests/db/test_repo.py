import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.db import repo
from bot.db.models import Feedback, InboundEvent, OutboxMessage, Unanswered, User

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


async def test_get_or_create_user_creates_once_and_touches_last_seen(sessionmaker):
    async with sessionmaker() as s, s.begin():
        user, created = await repo.get_or_create_user(s, "line", "U1", now=T0)
    async with sessionmaker() as s, s.begin():
        again, created_again = await repo.get_or_create_user(s, "line", "U1", now=T0 + timedelta(hours=1))
    assert created and not created_again
    assert again.id == user.id
    assert again.created_at == T0 and again.last_seen_at == T0 + timedelta(hours=1)


async def test_same_platform_id_on_two_channels_is_two_users(sessionmaker):
    async with sessionmaker() as s, s.begin():
        a, _ = await repo.get_or_create_user(s, "line", "42")
        b, _ = await repo.get_or_create_user(s, "telegram", "42")
    assert a.id != b.id


async def test_concurrent_first_contact_creates_one_user(sessionmaker):
    async def contact() -> tuple[int, bool]:
        async with sessionmaker() as s, s.begin():
            user, created = await repo.get_or_create_user(s, "telegram", "777")
            await asyncio.sleep(0.05)  # hold the transaction open so the two overlap
            return user.id, created

    results = await asyncio.gather(*(contact() for _ in range(4)))
    assert len({uid for uid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 1


async def test_state_changes_are_saved(sessionmaker):
    async with sessionmaker() as s, s.begin():
        user, _ = await repo.get_or_create_user(s, "web", "sess-1")
        user.state["step"] = "ask_area"
    async with sessionmaker() as s:
        user = await repo.get_user(s, "web", "sess-1")
    assert user.state == {"step": "ask_area"}


async def test_turn_user_is_created_once_under_concurrent_first_messages(sessionmaker):
    async def contact() -> tuple[int, bool]:
        async with sessionmaker() as s, s.begin():
            user, created, _ = await repo.load_turn_user(s, "line", "Uturn", now=T0)
            await asyncio.sleep(0.05)  # hold the transaction open so the first contacts overlap
            return user.id, created

    results = await asyncio.gather(*(contact() for _ in range(4)))
    assert len({uid for uid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    async with sessionmaker() as s:
        row = await repo.get_user(s, "line", "Uturn")
    assert row.created_at == T0 and row.opt_alerts is True and row.garbage_time == "19:00" and row.state == {}


async def test_turn_user_writes_back_exactly_what_the_turn_changed(sessionmaker):
    async with sessionmaker() as s, s.begin():
        user, created, snapshot = await repo.load_turn_user(s, "line", "U2", now=T0)
        assert created and user not in s   # never in the unit of work: nothing flushed behind the turn's back
        user.language = "vi"
        user.state["step"] = {"ask": ["area"]}
        assert await repo.save_turn_user(s, user, snapshot)
    async with sessionmaker() as s, s.begin():
        user, created, snapshot = await repo.load_turn_user(s, "line", "U2", now=T0)
        assert not created
        # last_seen_at is the same instant: nothing changed, nothing written
        assert not await repo.save_turn_user(s, user, snapshot)
        user.state["step"]["ask"].append("segment")      # a nested change counts too
        assert await repo.save_turn_user(s, user, snapshot)
    async with sessionmaker() as s, s.begin():
        user, _, snapshot = await repo.load_turn_user(s, "line", "U2", now=T0 + timedelta(hours=2))
        assert await repo.save_turn_user(s, user, snapshot)   # last_seen_at moved
    async with sessionmaker() as s:
        row = await repo.get_user(s, "line", "U2")
    assert row.language == "vi" and row.state == {"step": {"ask": ["area", "segment"]}}
    assert row.last_seen_at == T0 + timedelta(hours=2) and row.created_at == T0


async def test_turn_user_statements_are_part_of_the_turns_transaction(sessionmaker):
    """Driver-level SQL runs inside the session's transaction (PostgreSQL's BEGIN is lazy in
    SQLAlchemy's asyncpg adapter): a turn that fails leaves no user behind, and the lock and
    the user's row are released/undone with it."""
    class Boom(Exception):
        pass

    try:
        async with sessionmaker() as s, s.begin():
            await repo.lock_turn(s, repo.TurnLock(42))
            user, created, snapshot = await repo.load_turn_user(s, "line", "U4", now=T0)
            user.language = "ko"
            await repo.save_turn_user(s, user, snapshot)
            raise Boom
    except Boom:
        pass
    async with sessionmaker() as s:
        assert await repo.get_user(s, "line", "U4") is None
    async with sessionmaker() as s, s.begin():
        await repo.lock_turn(s, repo.TurnLock(42))   # free again: it ended with the transaction
        user, created, _ = await repo.load_turn_user(s, "line", "U4", now=T0)
    assert created and user.language is None


async def test_forget_me_deletes_a_turn_user_that_is_not_in_the_session(sessionmaker):
    async with sessionmaker() as s, s.begin():
        user, _, _ = await repo.load_turn_user(s, "line", "U3", now=T0)
        await repo.record_unanswered(s, user, "???", language="en", decision="decline")
    async with sessionmaker() as s, s.begin():
        user, _, _ = await repo.load_turn_user(s, "line", "U3", now=T0)
        await repo.delete_user_data(s, user)
    async with sessionmaker() as s:
        assert await repo.get_user(s, "line", "U3") is None
        assert await s.scalar(select(func.count()).select_from(Unanswered)) == 0


async def test_mark_status_changes_only_named_users_of_that_channel(sessionmaker):
    async with sessionmaker() as s, s.begin():
        for pid in ("A", "B", "C"):
            await repo.get_or_create_user(s, "line", pid)
        await repo.get_or_create_user(s, "telegram", "A")
    async with sessionmaker() as s, s.begin():
        changed = await repo.mark_status(s, "line", ["A", "B", "nobody"], "blocked")
    async with sessionmaker() as s:
        rows = (await s.execute(select(User.channel, User.platform_user_id, User.status))).all()
    assert changed == 2
    assert {(c, p): st for c, p, st in rows} == {
        ("line", "A"): "blocked", ("line", "B"): "blocked", ("line", "C"): "active", ("telegram", "A"): "active",
    }


async def test_feedback_keeps_the_question_only_with_thumbs_down(sessionmaker):
    async with sessionmaker() as s, s.begin():
        user, _ = await repo.get_or_create_user(s, "line", "U1")
        await repo.record_feedback(s, user, "garbage.bulky", 1, language="en", question="ignored")
        await repo.record_feedback(s, user, "garbage.bulky", -1, language="en", question="how big?")
    async with sessionmaker() as s:
        rows = (await s.execute(select(Feedback.vote, Feedback.question).order_by(Feedback.id))).all()
    assert rows == [(1, None), (-1, "how big?")]


async def test_forget_user_removes_everything_about_the_user(sessionmaker):
    """Forget-me (bot.privacy.forget_user) asks every feature, then repo.delete_user_data."""
    from bot.privacy import forget_user

    async with sessionmaker() as s, s.begin():
        user, _ = await repo.get_or_create_user(s, "line", "Ugone")
        other, _ = await repo.get_or_create_user(s, "line", "Ustay")
        await repo.record_feedback(s, user, "x", -1, question="q")
        await repo.record_unanswered(s, user, "??", language="vi", decision="decline", suggestions=["a"])
        await repo.record_feedback(s, other, "x", 1)
        s.add(OutboxMessage(channel="line", recipients=["Ugone"], payload=[], kind="push", retry_key="1"))
        s.add(OutboxMessage(channel="line", recipients=["Ugone", "Ustay"], payload=[], kind="alert", retry_key="2"))
        for i, uid in enumerate(("Ugone", "Ustay")):
            event = {"type": "message", "source": {"type": "user", "userId": uid}, "message": {"text": "hi"}}
            await repo.store_inbound_event(s, "line", f"ev{i}", json.dumps({"events": [event]}))
        for row_id in (await s.execute(select(InboundEvent.id))).scalars():
            await repo.finish_inbound_event(s, row_id)
    async with sessionmaker() as s, s.begin():
        user = await repo.get_user(s, "line", "Ugone")
        await forget_user(s, user)
    async with sessionmaker() as s:
        assert [u.platform_user_id for u in (await s.execute(select(User))).scalars()] == ["Ustay"]
        assert await s.scalar(select(func.count()).select_from(Feedback)) == 1
        assert await s.scalar(select(func.count()).select_from(Unanswered)) == 0
        assert [o.recipients for o in (await s.execute(select(OutboxMessage))).scalars()] == [["Ustay"]]
        assert [e.event_id for e in (await s.execute(select(InboundEvent))).scalars()] == ["ev1"]


async def test_store_inbound_event_refuses_a_redelivery(sessionmaker):
    async with sessionmaker() as s, s.begin():
        first = await repo.store_inbound_event(s, "line", "e1", "{}")
    async with sessionmaker() as s, s.begin():
        second = await repo.store_inbound_event(s, "line", "e1", "{}")
        other_channel = await repo.store_inbound_event(s, "telegram", "e1", "{}")
    assert (first, second, other_channel) == (True, False, True)


async def test_concurrent_identical_deliveries_store_one_event(sessionmaker):
    async def deliver() -> bool:
        async with sessionmaker() as s, s.begin():
            stored = await repo.store_inbound_event(s, "telegram", "1001", '{"update_id": 1001}')
            await asyncio.sleep(0.05)
            return stored

    results = await asyncio.gather(*(deliver() for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]


async def test_claim_finish_and_reclaim_after_an_expired_lease(sessionmaker):
    async with sessionmaker() as s, s.begin():
        for i in range(3):
            await repo.store_inbound_event(s, "line", f"e{i}", "{}", now=T0 + timedelta(seconds=i))
    async with sessionmaker() as s, s.begin():
        claimed = await repo.claim_inbound_events(s, limit=2, now=T0, lease=timedelta(seconds=60))
        ids = [r.id for r in claimed]
    async with sessionmaker() as s, s.begin():
        rest = await repo.claim_inbound_events(s, now=T0 + timedelta(seconds=10), lease=timedelta(seconds=120))
        await repo.finish_inbound_event(s, ids[0])
    async with sessionmaker() as s, s.begin():
        nothing = await repo.claim_inbound_events(s, now=T0 + timedelta(seconds=30))
    async with sessionmaker() as s, s.begin():
        reclaimed = await repo.claim_inbound_events(s, now=T0 + timedelta(seconds=61))
    assert [r.event_id for r in claimed] == ["e0", "e1"]
    assert [r.event_id for r in rest] == ["e2"]
    assert nothing == []
    # e1's processor "died": its lease ran out, so it is claimable again; e2's lease (10 s + 120 s) has not
    assert [(r.event_id, r.attempts) for r in reclaimed] == [("e1", 2)]


async def test_claim_gives_up_after_max_attempts(sessionmaker):
    async with sessionmaker() as s, s.begin():
        await repo.store_inbound_event(s, "line", "poison", "{}")
    now = datetime.now(UTC)
    for attempt in range(3):
        async with sessionmaker() as s, s.begin():
            got = await repo.claim_inbound_events(s, now=now + timedelta(hours=attempt), max_attempts=3)
            assert len(got) == 1
    async with sessionmaker() as s, s.begin():
        assert await repo.claim_inbound_events(s, now=now + timedelta(hours=5), max_attempts=3) == []
    async with sessionmaker() as s:
        row = (await s.execute(select(InboundEvent))).scalar_one()
    assert row.status == "failed" and "gave up" in row.error


async def test_claim_by_ids_claims_only_those(sessionmaker):
    async with sessionmaker() as s, s.begin():
        await repo.store_inbound_event(s, "line", "a", "{}")
        await repo.store_inbound_event(s, "line", "b", "{}")
        b_id = await s.scalar(select(InboundEvent.id).where(InboundEvent.event_id == "b"))
    async with sessionmaker() as s, s.begin():
        got = await repo.claim_inbound_events(s, ids=[b_id])
    assert [r.event_id for r in got] == ["b"]


async def test_prune_deletes_events_older_than_the_retention(sessionmaker):
    async with sessionmaker() as s, s.begin():
        await repo.store_inbound_event(s, "line", "old", "{}", now=T0 - timedelta(days=8))
        await repo.store_inbound_event(s, "line", "new", "{}", now=T0 - timedelta(days=6))
    async with sessionmaker() as s, s.begin():
        pruned = await repo.prune_inbound_events(s, now=T0)
    async with sessionmaker() as s:
        left = [e.event_id for e in (await s.execute(select(InboundEvent))).scalars()]
    assert pruned == 1 and left == ["new"]


async def test_webhook_writer_statements_at_the_driver_match_the_orm_ones(db_engine, sessionmaker):
    """The group commit's driver-level store/finish (bot/db/rawsql.py) keeps the ORM versions'
    answers: a new id per new event, None for one stored already or twice in the batch, and
    the done stamp; a failing block stores nothing."""
    from bot.db import rawsql

    async with sessionmaker() as s, s.begin():
        [old] = await repo.store_claimed_inbound_events(s, [("line", "E-old", "{}", T0)])
    items = [("line", "E-new", '{"a": 1}', T0), ("line", "E-old", "{}", T0), ("line", "E-new", "{}", T0),
             ("telegram", "E-new", "{}", T0)]
    async with rawsql.transaction(db_engine) as driver:
        ids = await repo.store_claimed_inbound_events_raw(driver, items)
    assert ids[0] is not None and ids[1] is None and ids[2] is None and ids[3] is not None and old is not None
    async with sessionmaker() as s:
        row = await s.get(InboundEvent, ids[0])
        assert (row.status, row.attempts, row.payload) == ("processing", 1, '{"a": 1}')
        assert row.received_at == T0 and row.claimed_until == T0 + repo.INBOUND_LEASE
    async with rawsql.transaction(db_engine) as driver:
        await repo.finish_inbound_events_raw(driver, [ids[0], ids[3]], now=T0 + timedelta(seconds=1))
    async with sessionmaker() as s:
        for row_id in (ids[0], ids[3]):
            row = await s.get(InboundEvent, row_id)
            assert (row.status, row.claimed_until, row.processed_at) == ("done", None, T0 + timedelta(seconds=1))
    try:
        async with rawsql.transaction(db_engine) as driver:
            await repo.store_claimed_inbound_events_raw(driver, [("line", "E-rolled-back", "{}", T0)])
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(InboundEvent)
                              .where(InboundEvent.event_id == "E-rolled-back")) == 0


async def test_a_group_commit_of_stores_and_stamps_is_one_atomic_write(db_engine, sessionmaker):
    """The webhook writer's batch (events stored + events stamped done) as it runs it: one
    statement without a transaction of its own where the database allows (PostgreSQL, or one
    kind of write), else one transaction — either way all of it or nothing."""
    from bot.db import rawsql

    async with sessionmaker() as s, s.begin():
        answered = await repo.store_claimed_inbound_events(s, [("line", "E-1", "{}", T0), ("line", "E-2", "{}", T0)])
    postgres = db_engine.dialect.name == "postgresql"
    items = [("line", "E-3", "{}", T0), ("line", "E-1", "{}", T0)]
    single = repo.one_statement(postgres, len(items), len(answered))
    assert single is postgres
    async with (rawsql.connection if single else rawsql.transaction)(db_engine) as driver:
        ids = await repo.write_inbound_batch_raw(driver, items, answered, now=T0 + timedelta(seconds=1))
    assert ids[0] is not None and ids[1] is None
    async with sessionmaker() as s:
        rows = {e.event_id: e for e in (await s.execute(select(InboundEvent))).scalars()}
    assert [(rows[k].status, rows[k].processed_at) for k in ("E-1", "E-2")] == [("done", T0 + timedelta(seconds=1))] * 2
    assert (rows["E-3"].status, rows["E-3"].claimed_until) == ("processing", T0 + repo.INBOUND_LEASE)

    # Stamps alone and stores alone are single statements everywhere.
    assert repo.one_statement(False, 0, 3) and repo.one_statement(False, 3, 0)
    async with rawsql.connection(db_engine) as driver:
        assert await repo.write_inbound_batch_raw(driver, [], [ids[0]]) == []
    async with sessionmaker() as s:
        assert (await s.get(InboundEvent, ids[0])).status == "done"

    if postgres:
        # All or nothing without a transaction of its own: a store PostgreSQL refuses (an
        # event id longer than the column) takes the stamps of the same statement with it.
        async with sessionmaker() as s, s.begin():
            [pending] = await repo.store_claimed_inbound_events(s, [("line", "E-4", "{}", T0)])
        with pytest.raises(Exception):  # noqa: B017 - asyncpg's "value too long"
            async with rawsql.connection(db_engine) as driver:
                await repo.write_inbound_batch_raw(driver, [("line", "E" * 5000, "{}", T0)], [pending])
        async with sessionmaker() as s:
            assert (await s.get(InboundEvent, pending)).status == "processing"


async def test_the_in_order_look_reads_only_the_events_in_flight(sqlite_url):
    """The look for a resident's older unanswered events runs on every turn: SQLite must find
    them through the status index (the few rows in flight), never by scanning a channel's
    stored events (seven days of them)."""
    import sqlite3

    from bot.db.session import upgrade_database

    await upgrade_database(sqlite_url)
    path = sqlite_url.split("///", 1)[1]
    with sqlite3.connect(path) as db:
        plan = " ".join(str(row) for row in db.execute("EXPLAIN QUERY PLAN " + repo._EARLIER_SQL, ("%U1%",)))
    assert "ix_inbound_events_status_received_at" in plan and "SCAN" not in plan


async def test_the_in_order_look_finds_only_older_unfinished_events_of_that_resident(sessionmaker, db_engine):
    from bot.db import rawsql

    def payload(user: str) -> str:
        return json.dumps({"destination": "x", "events": [{"type": "message", "source": {"type": "user", "userId": user}}]})

    async with sessionmaker() as s, s.begin():
        older, _other, done, newer = await repo.store_claimed_inbound_events(s, [
            ("line", "a", payload("Uaa"), T0), ("line", "b", payload("Ubb"), T0),
            ("line", "c", payload("Uaa"), T0), ("line", "d", payload("Uaa"), T0)])
        await repo.store_inbound_event(s, "telegram", "e", payload("Uaa"))
        await repo.finish_inbound_events(s, [done])
    async with rawsql.connection(db_engine) as driver:
        assert await repo.earlier_unfinished_events(driver, "line", "Uaa", newer) == [older]
        assert await repo.earlier_unfinished_events(driver, "line", "Uaa", older) == []
        assert await repo.earlier_unfinished_events(driver, "line", "U_a", newer) == []   # LIKE wildcards escaped


async def test_the_in_order_look_takes_the_turns_lock_in_the_same_statement(sessionmaker, db_engine):
    """On PostgreSQL the look and the resident's advisory lock are one round trip: the lock is
    held when the look returns, whether or not anything is in flight; the rows are the ones the
    look alone finds. On SQLite there is no lock to take and the look is the plain one."""
    from bot.db import rawsql

    def payload(user: str) -> str:
        return json.dumps({"destination": "x", "events": [{"type": "message", "source": {"type": "user", "userId": user}}]})

    async with sessionmaker() as s, s.begin():
        older, newer = await repo.store_claimed_inbound_events(s, [
            ("line", "a", payload("Uaa"), T0), ("line", "b", payload("Uaa"), T0)])
    for user, expected in (("Uaa", [older]), ("Uzz", [])):
        async with rawsql.transaction(db_engine) as driver:
            key = 4242 if driver.postgres else None
            lock = repo.TurnLock(key)
            assert await repo.earlier_unfinished_events(driver, "line", user, newer, lock=lock) == expected
            assert lock.held
            if driver.postgres:
                async with rawsql.connection(db_engine) as other:
                    [(free,)] = await other.rows("SELECT pg_try_advisory_xact_lock(?)", (key,))
                    assert free is False      # held by the look's transaction
        if key is not None:
            async with rawsql.connection(db_engine) as other:
                [(free,)] = await other.rows("SELECT pg_try_advisory_xact_lock(?)", (key,))
                assert free is True           # released with the transaction
