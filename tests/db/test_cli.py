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
