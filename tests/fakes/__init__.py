"""Loopback fakes of the chat platforms (LINE Messaging API, Telegram Bot API) and helpers
to build signed inbound webhooks. Test-only; nothing here imports ``bot``.

Fixtures ``line_api`` and ``telegram_api`` live in ``tests.fakes.plugin`` (registered from
tests/conftest.py).
"""
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.telegram_api import FakeTelegramAPI

__all__ = ["FakeLineAPI", "FakeTelegramAPI"]
