"""A turn does not hold SQLite's write lock (BEGIN IMMEDIATE) while the matcher works: the
question is matched before the turn's transaction begins, so other writers (webhooks being
stored, other residents' turns) are not queued behind matching."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from bot.app import create_app
from intents.matcher import Matcher
from tests.conversation.kbfixture import load_fixture_kb
from tests.web.conftest import make_settings


class LockProbe:
    """The real matcher, noting whether another connection could take the write lock during match()."""

    def __init__(self, inner: Matcher, db_path: Path) -> None:
        self.inner, self.db_path = inner, db_path
        self.locked: list[bool] = []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def match(self, text: str, lang: str | None = None):
        probe = sqlite3.connect(self.db_path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            self.locked.append(False)
        except sqlite3.OperationalError:
            self.locked.append(True)
        finally:
            probe.close()
        return self.inner.match(text, lang)


async def test_matching_runs_outside_the_turns_write_transaction(sqlite_url) -> None:
    kb = load_fixture_kb()
    probe = LockProbe(Matcher.from_knowledge(kb), Path(make_url(sqlite_url).database))
    app = create_app(make_settings(sqlite_url), kb=kb, matcher=probe)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kurashi.test") as http:
            for text in ("where do I put plastic bottles", "zqxv blorfen", "residence card lost"):
                assert (await http.post("/api/chat", json={"text": text, "lang": "en"})).status_code == 200
    assert probe.locked and not any(probe.locked)
