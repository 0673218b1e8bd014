"""A turn does not hold SQLite's write lock (BEGIN IMMEDIATE) while the matcher works: the
question is matched before the turn's transaction begins, so other writers (webhooks being
stored, other residents' turns) are not queued behind matching."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.services import build_services
from delivery.messages import Channel, IncomingMessage, Kind
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
    # The engine alone (no background sweeps, whose own short transactions would show too).
    kb = load_fixture_kb()
    probe = LockProbe(Matcher.from_knowledge(kb), Path(make_url(sqlite_url).database))
    services = await build_services(make_settings(sqlite_url), kb=kb, matcher=probe)
    try:
        for text in ("where do I put plastic bottles", "zqxv blorfen", "residence card lost"):
            assert await services.engine.handle(IncomingMessage(Channel.WEB, "a" * 32, Kind.TEXT, text=text,
                                                                language_hint="en"))
    finally:
        await services.aclose()
    assert probe.locked and not any(probe.locked)
