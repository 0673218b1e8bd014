from datetime import UTC, datetime

from sqlalchemy import inspect, select

from bot.db.models import OutboxMessage, User


async def test_migration_creates_every_table(db_engine):
    async with db_engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"users", "inbound_events", "feedback", "unanswered", "outbox", "alembic_version"} <= tables


async def test_user_defaults_and_aware_timestamps_round_trip(sessionmaker):
    async with sessionmaker() as session, session.begin():
        session.add(User(channel="line", platform_user_id="U1"))
    async with sessionmaker() as session:
        user = (await session.execute(select(User))).scalar_one()
    assert (user.opt_alerts, user.opt_events, user.opt_garbage) == (True, False, False)
    assert user.garbage_time == "19:00" and user.status == "active" and user.state == {}
    assert user.created_at.tzinfo is not None
    assert abs((datetime.now(UTC) - user.created_at).total_seconds()) < 3600


async def test_outbox_json_columns_round_trip(sessionmaker):
    payload = [{"text": "こんにちは", "quick_replies": [{"label": "a", "data": "b"}], "buttons": [], "card": None}]
    async with sessionmaker() as session, session.begin():
        session.add(OutboxMessage(channel="line", recipients=["U1", "U2"], payload=payload, kind="push",
                                  retry_key="k"))
    async with sessionmaker() as session:
        row = (await session.execute(select(OutboxMessage))).scalar_one()
    assert row.recipients == ["U1", "U2"] and row.payload == payload and row.status == "pending"
