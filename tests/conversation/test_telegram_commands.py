"""The localized Telegram "/" command menu: setMyCommands per language (descriptions
from knowledge/messages.yaml), by `kurashi telegram commands set` and once at app start,
against the fake Bot API (which validates every call against the Bot API spec)."""
from __future__ import annotations

import re

from bot.app import create_app
from bot.cli.telegram import run_commands, set_command_menu
from bot.conversation.locale import COMMANDS, SLASH_COMMANDS
from bot.settings import Settings
from knowledge.loader import load_knowledge
from knowledge.schema import CORE_LANGUAGES, LANGUAGES

COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")   # Bot API: BotCommand.command


def telegram_settings(telegram_api, **more) -> Settings:
    return Settings(_env_file=None, telegram_bot_token=telegram_api.token,
                    telegram_api_base_url=telegram_api.base_url, **more)


def menus_sent(telegram_api) -> dict[str | None, list[dict]]:
    return {call.params.get("language_code"): call.params["commands"]
            for call in telegram_api.calls_of("setMyCommands")}


def menu_languages(kb) -> list[str]:
    """Every language whose command descriptions are all written (the five core ones at least)."""
    written = [lang for lang in LANGUAGES if all(kb.messages[f"tgcmd.{c}"].get(lang) for c in COMMANDS)]
    assert set(CORE_LANGUAGES) <= set(written)
    return written


def assert_localized_menus(menus: dict[str | None, list[dict]], kb) -> None:
    assert set(menus) == {None, *menu_languages(kb)}
    for lang, commands in menus.items():
        assert [c["command"] for c in commands] == list(COMMANDS)
        for c in commands:
            assert COMMAND_NAME.match(c["command"]) and SLASH_COMMANDS[c["command"]] == c["command"]
            assert c["description"] == kb.messages[f"tgcmd.{c['command']}"][lang or "en"]
            assert 1 <= len(c["description"]) <= 256
    assert menus["ko"][0]["description"] != menus["en"][0]["description"]


async def test_commands_set_registers_a_menu_per_core_language(telegram_api):
    kb = load_knowledge()
    registered = await set_command_menu(telegram_settings(telegram_api), kb)
    assert registered == {"default": len(COMMANDS), **{lang: len(COMMANDS) for lang in menu_languages(kb)}}
    assert_localized_menus(menus_sent(telegram_api), kb)


async def test_app_start_registers_the_menu_when_telegram_is_configured(telegram_api, sqlite_url):
    settings = telegram_settings(telegram_api, database_url=sqlite_url, run_sender=False,
                                 run_scheduler=False, log_level="WARNING")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await telegram_api.wait_for_calls("setMyCommands", 1 + len(menu_languages(app.state.services.kb)))
    assert_localized_menus(menus_sent(telegram_api), app.state.services.kb)


async def test_app_start_survives_a_failing_command_registration(telegram_api, sqlite_url):
    telegram_api.fail_next("setMyCommands", 500, times=10)
    settings = telegram_settings(telegram_api, database_url=sqlite_url, run_sender=False,
                                 run_scheduler=False, log_level="WARNING")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await telegram_api.wait_for_calls("setMyCommands", 1)
        assert "telegram" in app.state.services.channels


def test_commands_set_without_a_token_says_so(monkeypatch, capsys):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.chdir("/")   # no .env file here
    assert run_commands(None) == 1
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().out
