"""`kurashi alert ingest/report/list` on a real SQLite database and the real JMA telegrams."""
from __future__ import annotations

import asyncio
import json

import pytest

from bot.cli import main
from bot.db.session import create_engine_and_sessionmaker
from tests.scheduler.conftest import add_users, outbox_rows
from tests.scheduler.test_alerts import CITY_USERS, OTHER_USERS, TSUNAMI_DRILL, YAMAGUCHI_WARNING

# The CLI runs on the real clock: no quiet hours here, so the counts do not depend on the time of day.
USERS = [{k: v for k, v in u.items() if not k.startswith("quiet")} for u in CITY_USERS]


@pytest.fixture
def cli_db(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                       # no project .env
    monkeypatch.setenv("DATABASE_URL", sqlite_url)

    async def _users():
        engine, maker = create_engine_and_sessionmaker(sqlite_url)
        try:
            await add_users(maker, *USERS, *OTHER_USERS)
        finally:
            await engine.dispose()

    asyncio.run(_users())
    return sqlite_url


def _outbox(url):
    async def _rows():
        engine, maker = create_engine_and_sessionmaker(url)
        try:
            return await outbox_rows(maker)
        finally:
            await engine.dispose()
    return asyncio.run(_rows())


def test_ingest_dry_run_shows_counts_and_languages_and_writes_nothing(cli_db, jma_dir, capsys):
    code = main(["alert", "ingest", str(jma_dir / "official_samples" / YAMAGUCHI_WARNING), "--dry-run", "--json"])
    out = json.loads(capsys.readouterr().out)

    assert code == 0 and out["queued"] is False and out["reason"] == "dry run"
    assert out["plan"]["recipients"] == len(USERS)
    assert out["plan"]["by_language"] == {"ja": 1, "en": 2, "vi": 2, "zh": 1, "ko": 1, "id": 1}
    assert out["plan"]["by_channel"] == {"line": 5, "telegram": 3}
    assert "高潮警報" in out["messages"]["vi"]
    assert _outbox(cli_db) == []


def test_ingest_queues_and_report_counts_it(cli_db, jma_dir, capsys):
    assert main(["alert", "ingest", str(jma_dir / "official_samples" / YAMAGUCHI_WARNING)]) == 0
    text = capsys.readouterr().out
    assert "queued as alert 1" in text and "by language: en 2, id 1, ja 1, ko 1, vi 2, zh 1" in text
    assert len(_outbox(cli_db)) == 6                  # LINE: ja, en, vi multicasts; Telegram: 3 chats

    assert main(["alert", "report", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queued"] == len(USERS) and report["sent"] == 0

    assert main(["alert", "list"]) == 0
    assert "weather" in capsys.readouterr().out
    assert main(["alert", "report", "99"]) == 1


def test_ingest_of_a_drill_and_of_a_non_telegram(cli_db, jma_dir, tmp_path, capsys):
    assert main(["alert", "ingest", str(jma_dir / "official_samples" / TSUNAMI_DRILL)]) == 0
    assert "nothing to send: drill" in capsys.readouterr().out
    bad = tmp_path / "not-jma.xml"
    bad.write_text("<html/>")
    assert main(["alert", "ingest", str(bad)]) == 1
    assert _outbox(cli_db) == []


def test_manual_alert_preview_then_send(cli_db, capsys):
    args = ["alert", "manual", "--text", "en=Water outage in Ogori until 18:00.", "--text", "ja=おごおり で だんすい。",
            "--area", "ogori"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "recipients: 1" in out and "preview only" in out                 # U-vi2 lives in Ogori
    assert "Thông báo khẩn\nWater outage in Ogori" in out                   # no Vietnamese text: English
    assert main(["alert", "manual", "--text", "en=Boil water before drinking.", "--language", "vi", "--send"]) == 0
    out = capsys.readouterr().out
    assert "recipients: 2" in out and "by language: vi 2" in out and "queued as alert 1" in out
    assert {r for row in _outbox(cli_db) for r in row.recipients} == {"U-vi1", "U-vi2"}
    assert main(["alert", "manual", "--text", "oops"]) == 2
    assert main(["alert", "manual", "--text", "en=x", "--area", "atlantis"]) == 2


def test_ingest_dry_run_says_stale_and_not_for_the_city(cli_db, jma_dir, capsys):
    """Issue 12: an old telegram is called stale (the poller's window); another region's is
    "not for Yamaguchi City" rather than "nothing new"."""
    assert main(["alert", "ingest", str(jma_dir / "official_samples" / YAMAGUCHI_WARNING), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "WARNING stale: reported 2015-06-22 18:00 JST" in out and "push window" in out

    assert main(["alert", "ingest", str(jma_dir / "official_samples" / "15_12_01_161130_VPWW53.xml"),
                 "--dry-run", "--json"]) == 0
    shimane = json.loads(capsys.readouterr().out)
    assert shimane["reason"].startswith("not for Yamaguchi City (島根県")
    assert shimane["stale"].startswith("stale: reported 2016-02-12 15:44 JST")
    assert _outbox(cli_db) == []
