"""`kurashi staff …` and `kurashi consult stats` against a real SQLite file."""
from __future__ import annotations

import io
import json
import sqlite3

import pytest
from argon2 import PasswordHasher

from bot.cli import main


@pytest.fixture
def db_file(tmp_path, monkeypatch):
    path = tmp_path / "kurashi.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.chdir(tmp_path)  # no stray .env
    return path


def test_staff_add_hashes_the_password_read_from_stdin(db_file, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    assert main(["staff", "add", "--org", "otit", "--email", "Mai@OTIT.example", "--name", "Mai",
                 "--role", "operator", "--telegram-id", "4242", "--password-stdin"]) == 0
    with sqlite3.connect(db_file) as conn:
        org, email, role, digest, tg = conn.execute(
            "select org, email, role, password_hash, telegram_user_id from staff").fetchone()
    assert (org, email, role, tg) == ("otit", "mai@otit.example", "operator", 4242)
    assert digest.startswith("$argon2id$") and PasswordHasher().verify(digest, "a long enough secret")
    assert main(["staff", "list"]) == 0
    assert "mai@otit.example" in capsys.readouterr().out


@pytest.mark.parametrize("args, password, message", [
    (["--org", "otit", "--email", "a@b.example"], "short\n", "at least"),            # no weak passwords
    (["--org", "nowhere", "--email", "a@b.example"], "long enough pass\n", "unknown organisation"),
    (["--org", "otit", "--email", "not-an-email"], "long enough pass\n", "e-mail"),
])
def test_staff_add_refuses_bad_input(db_file, monkeypatch, capsys, args, password, message) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(password))
    assert main(["staff", "add", *args, "--password-stdin"]) == 1
    assert message in capsys.readouterr().err


def test_duplicate_email_is_refused(db_file, monkeypatch, capsys) -> None:
    for expected in (0, 1):
        monkeypatch.setattr("sys.stdin", io.StringIO("long enough pass\n"))
        assert main(["staff", "add", "--org", "yfrcc", "--email", "x@y.example", "--password-stdin"]) == expected
    assert "already" in capsys.readouterr().err


def test_notify_targets_and_stats(db_file, capsys) -> None:
    assert main(["staff", "notify", "--org", "otit", "--telegram-chat", "-1001234", "--email", "desk@otit.example"]) == 0
    assert "telegram=-1001234" in capsys.readouterr().out
    assert main(["staff", "notify", "--org", "otit", "--telegram-chat", "not a number"]) == 1
    assert main(["staff", "notify", "--list"]) == 0
    listing, errors = capsys.readouterr()
    assert "desk@otit.example" in listing
    otit = next(line for line in listing.splitlines() if line.startswith("otit\t"))
    assert "⚠" not in otit and "✖" not in otit
    yfrcc = next(line for line in listing.splitlines() if line.startswith("yfrcc\t"))
    assert "consultations are not offered" in yfrcc and "phone number" in yfrcc   # not configured yet
    assert "answers-within=48h" in yfrcc                                    # CONSULT_RESPONSE_HOURS default
    city = next(line for line in listing.splitlines() if line.startswith("city_intl\t"))
    assert "routing skips it" in city
    assert "kurashi staff add --org yfrcc" in errors
    assert main(["consult", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["rated"] == 0 and stats["ratings"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}
    assert main(["consult", "stats"]) == 0
    assert "ratings" in capsys.readouterr().out


def test_staff_add_without_a_terminal_exits_2_with_a_clear_error(db_file, monkeypatch, capsys) -> None:
    class NoTerminal(io.StringIO):
        def isatty(self) -> bool:
            return False

    monkeypatch.setattr("sys.stdin", NoTerminal(""))          # e.g. run from a script or cron, no pipe
    assert main(["staff", "add", "--org", "otit", "--email", "a@b.example"]) == 2
    err = capsys.readouterr().err
    assert "--password-stdin" in err and "Traceback" not in err
    with sqlite3.connect(db_file) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        assert "staff" not in tables or conn.execute("select count(*) from staff").fetchone()[0] == 0


def test_staff_notify_list_without_a_default_target_is_clean_once_staff_exist(db_file, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("long enough pass\n"))
    assert main(["staff", "add", "--org", "yfrcc", "--email", "desk@yfrcc.example", "--password-stdin"]) == 0
    capsys.readouterr()
    assert main(["staff", "notify", "--list"]) == 0
    out, err = capsys.readouterr()
    yfrcc = next(line for line in out.splitlines() if line.startswith("yfrcc\t"))
    assert "⚠" not in yfrcc and "default centre" not in err            # an active staff account reads cases


def test_db_prune_removes_the_content_of_long_closed_cases(db_file, capsys) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from bot.consult.staff import add_staff
    from bot.db import repo
    from bot.db.session import create_engine_and_sessionmaker, upgrade_database
    from knowledge.loader import load_knowledge
    from tests.consult.conftest import add_closed_case

    url = f"sqlite+aiosqlite:///{db_file}"
    kb = load_knowledge()

    async def seed() -> None:
        await upgrade_database(url)
        engine, maker = create_engine_and_sessionmaker(url)
        try:
            async with maker() as s, s.begin():
                staff = await add_staff(s, kb, org="yfrcc", email="p@yfrcc.example", password="long password 5")
                for days, uid in ((400, "U" + "3" * 32), (30, "U" + "4" * 32)):
                    at = datetime.now(UTC) - timedelta(days=days)
                    user, _ = await repo.get_or_create_user(s, "line", uid, now=at)
                    await add_closed_case(s, kb, staff, user, at=at)
        finally:
            await engine.dispose()

    asyncio.run(seed())
    assert main(["db", "prune"]) == 0                                    # CASE_RETENTION_DAYS default 365
    assert "removed the messages of 1 consultation cases closed more than 365 days ago" in capsys.readouterr().out
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("select count(*) from consult_messages").fetchone()[0] == 1   # the recent case's
        assert conn.execute("select count(*) from consult_cases").fetchone()[0] == 2      # statistics stay
    assert main(["db", "prune", "--case-days", "10"]) == 0
    assert "removed the messages of 1 consultation" in capsys.readouterr().out
