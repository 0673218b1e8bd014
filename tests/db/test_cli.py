import sqlite3

from bot.cli import main


def test_kurashi_db_upgrade_creates_the_schema_in_a_new_folder(tmp_path, monkeypatch):
    db_file = tmp_path / "var" / "kurashi.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db_file}")
    monkeypatch.chdir(tmp_path)  # no stray .env

    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0  # idempotent

    with sqlite3.connect(db_file) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert {"users", "inbound_events", "feedback", "unanswered", "outbox"} <= tables
    assert main(["db", "prune", "--days", "1"]) == 0


async def _old_and_new_rows(url: str) -> None:
    """Of each kind `kurashi db prune` deletes, one row older than its default period, one newer."""
    from datetime import timedelta

    from bot.consult.staff import add_staff
    from bot.db import repo
    from bot.db.models import utcnow
    from bot.db.session import create_engine_and_sessionmaker
    from knowledge.loader import load_knowledge
    from tests.consult.conftest import add_closed_case

    kb = load_knowledge()
    engine, maker = create_engine_and_sessionmaker(url)
    try:
        async with maker() as s, s.begin():
            staff = await add_staff(s, kb, org="yfrcc", email="p@yfrcc.example", password="long password 5")
            for n, days in enumerate((400, 3)):
                at = utcnow() - timedelta(days=days)
                await repo.store_inbound_event(s, "line", f"event-{n}", "{}", now=at)
                user, _ = await repo.get_or_create_user(s, "line", "U" + str(n) * 32, now=at)
                (await repo.record_unanswered(s, user, "where is the bicycle parking", language="en",
                                              decision="decline")).created_at = at
                (await repo.record_feedback(s, user, "garbage.sorting", -1, language="en",
                                            question="batteries?")).created_at = at
                await add_closed_case(s, kb, staff, user, at=at)
    finally:
        await engine.dispose()


def test_kurashi_db_prune_says_what_it_removed(database_url, tmp_path, monkeypatch, capsys):
    import asyncio

    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("INSIGHTS_RETENTION_DAYS", "CASE_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    asyncio.run(_old_and_new_rows(database_url))

    assert main(["db", "prune", "--insights-days", "0", "--case-days", "0"]) == 0
    assert capsys.readouterr().out == ("pruned 1 webhook events\n"
                                       "unanswered questions and feedback kept (retention 0 = forever)\n")
    assert main(["db", "prune"]) == 0
    assert capsys.readouterr().out == ("removed the messages of 1 consultation cases closed more than 365 days ago\n"
                                       "pruned 0 webhook events\n"
                                       "pruned 1 unanswered questions and 1 feedback votes older than 180 days\n")
    assert main(["db", "prune", "--days", "1", "--insights-days", "1", "--case-days", "1"]) == 0
    assert capsys.readouterr().out == ("removed the messages of 1 consultation cases closed more than 1 days ago\n"
                                       "pruned 1 webhook events\n"
                                       "pruned 1 unanswered questions and 1 feedback votes older than 1 days\n")
