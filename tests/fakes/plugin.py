"""pytest plugin: the ``line_api`` and ``telegram_api`` fixtures (loopback fake platforms).

Registered from tests/conftest.py with ``pytest_plugins = ["tests.fakes.plugin"]``. Each
fixture starts its fake on 127.0.0.1 in the test's event loop and, at teardown, fails the
test if kurashi sent any request that breaks the platform's spec (set
``fake.allow_violations = True`` in a test that sends bad requests on purpose). They skip
with a reason when ../shared/reference (the specs) is absent.
"""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.line_api import FakeLineAPI, line_spec_available
from tests.fakes.telegram_api import FakeTelegramAPI, telegram_spec_available


def _fail_on_violations(fake: FakeLineAPI | FakeTelegramAPI, name: str) -> None:
    if fake.violations and not getattr(fake, "allow_violations", False):
        listing = "\n  ".join(fake.violations[:20])
        pytest.fail(f"{name}: {len(fake.violations)} request(s) broke the platform spec:\n  {listing}", pytrace=False)


@pytest.fixture
async def line_api() -> AsyncIterator[FakeLineAPI]:
    """A running FakeLineAPI; point line-bot-sdk at ``line_api.base_url``."""
    if not line_spec_available():
        pytest.skip("../shared/reference/line-openapi/messaging-api.yml is absent: "
                    "the fake LINE API cannot validate requests")
    fake = FakeLineAPI()
    async with fake:
        yield fake
    _fail_on_violations(fake, "FakeLineAPI")


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegramAPI]:
    """A running FakeTelegramAPI; point python-telegram-bot at ``f"{telegram_api.base_url}/bot"``."""
    if not telegram_spec_available():
        pytest.skip("../shared/reference/telegram-bot-api/api-bot-api-10.0.json is absent: "
                    "the fake Telegram API cannot validate calls")
    fake = FakeTelegramAPI()
    async with fake:
        yield fake
    _fail_on_violations(fake, "FakeTelegramAPI")
