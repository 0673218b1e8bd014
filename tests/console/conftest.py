"""The staff console under a real uvicorn on 127.0.0.1 (lifespan included), over the
``database_url`` databases (SQLite and PostgreSQL), with the conversation fixture KB plus
the real knowledge/partners.yaml; helpers to create staff accounts and cases through the
real service functions, and an httpx client that logs in like a browser (form + CSRF)."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from bot.app import create_app
from bot.consult import cases as case_service
from bot.consult.staff import add_staff
from bot.db import repo
from bot.db.consult_models import Case, Staff
from bot.settings import Settings
from knowledge.loader import DEFAULT_DIR, KnowledgeBase
from knowledge.schema import PartnersFile
from tests.conversation.kbfixture import load_fixture_kb
from tests.web.conftest import serve

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_kb() -> KnowledgeBase:
    with (DEFAULT_DIR / "partners.yaml").open(encoding="utf-8") as fh:
        partners = PartnersFile.model_validate(yaml.safe_load(fh))
    return replace(load_fixture_kb(), partners=partners)


@dataclass
class Console:
    url: str
    app: FastAPI

    @property
    def services(self) -> Any:
        return self.app.state.services

    @property
    def sessionmaker(self) -> Any:
        return self.services.sessionmaker

    async def add_staff(self, email: str, org: str, *, role: str = "staff", name: str | None = None,
                        password: str = PASSWORD) -> Staff:
        """A staff account made the way ``kurashi staff add`` makes it."""
        async with self.sessionmaker() as s, s.begin():
            return await add_staff(s, self.services.kb, org=org, email=email, password=password, name=name,
                                   role=role)

    async def add_case(self, *, user_id: str, org: str = "otit", topic: str = "work", language: str = "vi",
                       texts: tuple[str, ...] = ("Công ty không trả lương cho tôi 2 tháng.",),
                       intent: str | None = "work.unpaid_wages", channel: str = "line",
                       media: case_service.MediaContent | None = None) -> Case:
        """A sent case of a resident (through the same service functions the resident flow uses)."""
        kb = self.services.kb
        async with self.sessionmaker() as s, s.begin():
            user, _ = await repo.get_or_create_user(s, channel, user_id)
            case = await case_service.create_case(s, user, topic=topic, org=org, language=language,
                                                  segment="trainee", intent=intent)
            for text in texts:
                await case_service.add_message(s, case, text=text, language=language, intent=intent)
            if media is not None:
                await case_service.add_message(s, case, kind="image", media=media)
            await case_service.submit_case(s, kb, case)
        return case

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=20, trust_env=False)

    async def login(self, client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
        page = await client.get("/console/login")
        token = CSRF.search(page.text).group(1)
        return await client.post("/console/login", data={"email": email, "password": password,
                                                         "csrf_token": token, "next": "/console/"})


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def console_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None, "database_url": database_url, "run_sender": False, "run_scheduler": False,
        "line_channel_secret": None, "line_channel_access_token": None, "telegram_bot_token": None,
        "secret_key": "console-test-secret-0123456789abcdef",
    }
    values.update(overrides)
    return Settings(**values)


async def start_console(settings: Settings) -> AsyncIterator[Console]:
    app = create_app(settings, kb=console_kb())
    async for url in serve(app):
        yield Console(url, app)


@pytest.fixture
async def console(database_url: str) -> AsyncIterator[Console]:
    """The app without platforms or the relay (pushes stay queued in the outbox)."""
    async for running in start_console(console_settings(database_url)):
        yield running
