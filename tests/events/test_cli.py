"""`kurashi events add/list/cancel` on a real SQLite database, with the example file and a future event."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.db.session import create_engine_and_sessionmaker
from scheduler import events
from scheduler.runner import close_writers, get_job

EXAMPLE = Path(__file__).resolve().parents[2] / "knowledge" / "events.example.yaml"


@pytest.fixture
def cli_db(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                       # no project .env
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    yield sqlite_url
    close_writers()


def _load(url: str, event_id: int):
    async def _get():
        engine, maker = create_engine_and_sessionmaker(url)
        try:
            async with maker() as session:
                return await events.get_event(session, event_id)
        finally:
            await engine.dispose()
    return asyncio.run(_get())


def test_add_list_cancel(cli_db, tmp_path, capsys):
    # The example file is valid and stays a draft (no jobs).
    assert main(["events", "add", str(EXAMPLE)]) == 0
    assert "event 1: draft" in capsys.readouterr().out

    starts = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    publish = starts - timedelta(days=5)
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump({
        "title": {"en": "Disaster drill for residents", "ja": "ぼうさい くんれん"},
        "starts_at": starts.isoformat(), "publish_at": publish.isoformat(),
        "areas": ["oodono"], "remind_day_before": True,
    }, allow_unicode=True), encoding="utf-8")
    assert main(["events", "add", str(path), "--by", "tester"]) == 0
    out = capsys.readouterr().out
    assert "event 2: scheduled" in out and "reminder" in out
    job = asyncio.run(get_job(events.publish_job_id(2), database_url=cli_db))
    assert job is not None and job.next_run_time == publish
    assert _load(cli_db, 2).created_by == "tester"

    assert main(["events", "list"]) == 0
    listing = capsys.readouterr().out
    assert "Disaster drill for residents" in listing and "areas=oodono" in listing and "draft" in listing

    assert main(["events", "cancel", "2"]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert _load(cli_db, 2).status == "cancelled"
    assert asyncio.run(get_job(events.publish_job_id(2), database_url=cli_db)) is None
    assert asyncio.run(get_job(events.remind_job_id(2), database_url=cli_db)) is None


def test_add_refuses_an_invalid_file_and_stores_nothing(cli_db, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"events": [
        {"title": {"en": "ok"}, "starts_at": "2031-01-01T10:00"},
        {"title": {"en": "bad"}, "starts_at": "2031-01-01T10:00", "areas": ["atlantis"]},
    ]}), encoding="utf-8")
    assert main(["events", "add", str(path)]) == 1
    assert "event 2: areas: unknown value(s) atlantis" in capsys.readouterr().out
    assert main(["events", "list", "--all"]) == 0
    assert "no events" in capsys.readouterr().out
    assert main(["events", "cancel", "99"]) == 1
