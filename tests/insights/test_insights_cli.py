"""`kurashi insights …` and `kurashi db prune` as an operator runs them: a subprocess of the
real entry point on DATABASE_URL (SQLite and PostgreSQL), its JSON contract and YAML output."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Feedback, Unanswered, utcnow
from tests.insights.conftest import add_unanswered, add_votes

KURASHI = Path(sys.executable).parent / "kurashi"


def kurashi(database_url: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `kurashi` command (cwd without a .env) on this database."""
    environ = {k: v for k, v in os.environ.items()
               if k not in {"DATABASE_URL", "KNOWLEDGE_DIR", "INSIGHTS_RETENTION_DAYS"}}
    environ.update(DATABASE_URL=database_url, PYTHONIOENCODING="utf-8", **env)
    command = [str(KURASHI)] if KURASHI.exists() else [sys.executable, "-c",
                                                       "import sys; from bot.cli import main; sys.exit(main())"]
    return subprocess.run([*command, *args], check=False, cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=120)


QUESTIONS = [
    ("Where can I buy a bicycle?", "en", "decline"),
    ("where can I buy a bicycle", "en", "clarify_abandoned"),
    ("How do I separate my trash?", "en", "decline"),      # already a sample of garbage.sorting
    ("xe đạp mua ở đâu", "vi", "decline"),
    ("wifi password at the city hall: \"guest\"", "en", "decline"),
    ("🙂", "en", "decline"),
]


async def test_unanswered_json_groups_and_filters(database_url: str, sessionmaker, tmp_path: Path):
    await add_unanswered(sessionmaker, QUESTIONS)
    every = kurashi(database_url, tmp_path, "insights", "unanswered", "--json")
    vi = kurashi(database_url, tmp_path, "insights", "unanswered", "--lang", "vi", "--json")
    top = kurashi(database_url, tmp_path, "insights", "unanswered", "--limit", "1", "--decision", "decline", "--json")
    text = kurashi(database_url, tmp_path, "insights", "unanswered")

    assert every.returncode == 0, every.stderr
    data = json.loads(every.stdout)
    assert data["filters"] == {"language": None, "decision": None, "status": "open"}
    assert (data["total_rows"], data["total_groups"], data["truncated"]) == (6, 5, False)
    bike = data["groups"][0]
    assert (bike["key"], bike["text"], bike["count"], bike["variants"]) == (
        "where can i buy a bicycle", "where can I buy a bicycle", 2, 2)
    assert bike["languages"] == {"en": 2} and bike["decisions"] == {"decline": 1, "clarify_abandoned": 1}
    assert bike["first_at"] < bike["last_at"]
    assert [g["count"] for g in data["groups"]] == [2, 1, 1, 1, 1]
    assert [g["key"] for g in json.loads(vi.stdout)["groups"]] == ["xe đạp mua ở đâu"]
    limited = json.loads(top.stdout)
    assert limited["total_groups"] == 5 and len(limited["groups"]) == 1 and limited["groups"][0]["count"] == 1
    assert text.returncode == 0 and text.stdout.startswith("6 open unanswered questions in 5 groups")


async def test_feedback_json_counts_votes_and_lists_the_thumbs_down(database_url: str, sessionmaker, tmp_path: Path):
    await add_votes(sessionmaker, [
        ("garbage.sorting", 1, "en", None),
        ("garbage.sorting", -1, "vi", "pin bỏ ở đâu"),
        ("garbage.sorting", -1, "en", "batteries?"),
        ("medical.night", 1, "ja", None),
    ])
    every = kurashi(database_url, tmp_path, "insights", "feedback", "--json")
    one = kurashi(database_url, tmp_path, "insights", "feedback", "--intent", "medical.night", "--json")

    assert every.returncode == 0, every.stderr
    data = json.loads(every.stdout)
    assert data["filters"] == {"intent": None, "language": None}
    assert data["intents"] == [
        {"intent": "garbage.sorting", "up": 1, "down": 2, "total": 3, "down_ratio": 0.667},
        {"intent": "medical.night", "up": 1, "down": 0, "total": 1, "down_ratio": 0.0},
    ]
    assert data["negative_total"] == 2
    assert [(f["intent"], f["language"], f["question"]) for f in data["negative"]] == [
        ("garbage.sorting", "en", "batteries?"), ("garbage.sorting", "vi", "pin bỏ ở đâu")]
    assert json.loads(one.stdout)["negative"] == [] and len(json.loads(one.stdout)["intents"]) == 1


async def test_export_samples_prints_a_yaml_list_to_paste(database_url: str, sessionmaker, tmp_path: Path):
    rows = await add_unanswered(sessionmaker, QUESTIONS)
    async with sessionmaker() as s, s.begin():
        (await s.get(Unanswered, rows[4].id)).resolved = True        # the wifi one is dealt with
    plain = kurashi(database_url, tmp_path, "insights", "export-samples", "--intent", "garbage.sorting", "--lang", "en")
    indented = kurashi(database_url, tmp_path, "insights", "export-samples", "--intent", "garbage.sorting",
                       "--lang", "en", "--indent", "8")
    unknown = kurashi(database_url, tmp_path, "insights", "export-samples", "--intent", "garbage.nope", "--lang", "en")
    bad_lang = kurashi(database_url, tmp_path, "insights", "export-samples", "--intent", "garbage.sorting",
                       "--lang", "xx")

    assert plain.returncode == 0, plain.stderr
    # Most frequent first, one wording per group, the existing sample and the emoji left out.
    assert yaml.safe_load(plain.stdout) == ["where can I buy a bicycle"]
    assert "1 already among the samples" in plain.stdout and "knowledge/topics/garbage.yaml" in plain.stdout
    assert all(line.startswith(" " * 8) for line in indented.stdout.splitlines())
    nested = yaml.safe_load("samples:\n      en:\n" + indented.stdout)
    assert nested == {"samples": {"en": ["where can I buy a bicycle"]}}
    assert unknown.returncode == 2 and "unknown intent 'garbage.nope'" in unknown.stderr
    assert bad_lang.returncode == 2 and "unknown language" in bad_lang.stderr


async def count_rows(maker: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with maker() as s:
        return (await s.scalar(select(func.count()).select_from(Unanswered)),
                await s.scalar(select(func.count()).select_from(Feedback)))


async def test_db_prune_deletes_insights_older_than_the_retention_period(database_url: str, sessionmaker,
                                                                         tmp_path: Path):
    now = utcnow()
    await add_unanswered(sessionmaker, QUESTIONS[:2], start=now - timedelta(days=200))
    await add_unanswered(sessionmaker, QUESTIONS[2:3], start=now - timedelta(days=100), user="U-recent")
    await add_votes(sessionmaker, [("garbage.sorting", -1, "en", "old")], start=now - timedelta(days=200))
    await add_votes(sessionmaker, [("garbage.sorting", 1, "en", None)], start=now - timedelta(days=1), user="U-2")

    kept = kurashi(database_url, tmp_path, "db", "prune", "--insights-days", "0")
    assert kept.returncode == 0, kept.stderr
    assert await count_rows(sessionmaker) == (3, 2)
    default = kurashi(database_url, tmp_path, "db", "prune")                 # INSIGHTS_RETENTION_DAYS = 180
    assert default.returncode == 0, default.stderr
    assert "pruned 2 unanswered questions and 1 feedback votes older than 180 days" in default.stdout
    assert await count_rows(sessionmaker) == (1, 1)
    shorter = kurashi(database_url, tmp_path, "db", "prune", INSIGHTS_RETENTION_DAYS="30")
    assert shorter.returncode == 0 and await count_rows(sessionmaker) == (0, 1)


def test_a_database_without_the_schema_is_a_clear_error(tmp_path: Path):
    result = kurashi(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path, "insights", "unanswered", "--json")
    assert result.returncode == 1 and "kurashi db upgrade" in result.stderr and result.stdout == ""
