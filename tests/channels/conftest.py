"""Fixtures of the channel tests."""
from __future__ import annotations

import pytest

from tests.fakes.telegram_api import telegram_spec_available


@pytest.fixture
def telegram_api_spec() -> None:
    if not telegram_spec_available():
        pytest.skip("../shared/reference/telegram-bot-api is absent")
