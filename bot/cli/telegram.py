"""`kurashi telegram webhook set|delete|info` and `kurashi telegram commands set`: register
kurashi's webhook and its localized "/" command menu with Telegram.

Owns only these commands. ``commands set`` calls setMyCommands once per core language
(language_code) plus the default menu, descriptions from knowledge/messages.yaml ``tgcmd.*``. ``set`` registers ``{PUBLIC_BASE_URL}/webhooks/telegram`` (or
``--url``) with TELEGRAM_WEBHOOK_SECRET as the secret token Telegram will send back in
``X-Telegram-Bot-Api-Secret-Token``; ``info`` shows what Telegram has. LINE's webhook URL is
set in the LINE Developers console instead (no API call needed here).
"""
from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("telegram", help="Telegram webhook registration")
    commands = parser.add_subparsers(dest="telegram_command", metavar="COMMAND", required=True)
    webhook = commands.add_parser("webhook", help="set, delete or show the bot's webhook")
    webhook.add_argument("action", choices=("set", "delete", "info"))
    webhook.add_argument("--url", help="public URL of POST /webhooks/telegram (default: PUBLIC_BASE_URL + path)")
    webhook.set_defaults(func=run_webhook)
    menu = commands.add_parser("commands", help="register the localized / command menu (setMyCommands)")
    menu.add_argument("action", choices=("set",))
    menu.set_defaults(func=run_commands)


async def manage_webhook(settings: Any, action: str, url: str | None = None) -> dict[str, Any]:
    """Perform ``action`` ("set", "delete", "info") against the Bot API; returns what Telegram reports."""
    from bot.channels.telegram import TelegramChannel

    channel = TelegramChannel(settings)
    try:
        if action == "set":
            if not settings.telegram_webhook_secret:
                raise ValueError("set TELEGRAM_WEBHOOK_SECRET first: kurashi refuses webhooks without it")
            target = url or f"{settings.public_base_url.rstrip('/')}/webhooks/telegram"
            if not target.startswith("https://"):
                raise ValueError(f"Telegram only delivers to https:// URLs, not {target}")
            await channel.set_webhook(target)
        elif action == "delete":
            await channel.ensure_started()
            await channel.bot.delete_webhook()
        await channel.ensure_started()
        info = await channel.bot.get_webhook_info()
        return {"url": info.url, "pending_update_count": info.pending_update_count,
                "last_error_message": info.last_error_message}
    finally:
        await channel.close()


def run_webhook(args: argparse.Namespace) -> int:
    """Print Telegram's webhook info after the action; exit 1 with a reason on failure."""
    from telegram.error import TelegramError

    from bot.settings import Settings
    from delivery.senders import SendError

    settings = Settings()
    if not settings.telegram_enabled:
        print("TELEGRAM_BOT_TOKEN is not set")
        return 1
    try:
        info = asyncio.run(manage_webhook(settings, args.action, args.url))
    except (ValueError, SendError, TelegramError) as exc:  # report, do not trace back
        print(f"failed: {exc}")
        return 1
    print(json.dumps(info, ensure_ascii=False, indent=2))
    return 0


async def set_command_menu(settings: Any, kb: Any = None) -> dict[str, int]:
    """setMyCommands for every menu language; returns {language_code or "default": commands}."""
    from bot.channels.telegram import TelegramChannel
    from bot.conversation.locale import Texts
    from knowledge.loader import load_knowledge

    kb = kb or load_knowledge(getattr(settings, "knowledge_dir", None))
    menus = Texts(kb).command_menus()
    channel = TelegramChannel(settings)
    try:
        await channel.set_commands(menus)
    finally:
        await channel.close()
    return {lang or "default": len(commands) for lang, commands in menus.items()}


def run_commands(args: argparse.Namespace) -> int:
    """Print how many commands were registered per language; exit 1 with a reason on failure."""
    from telegram.error import TelegramError

    from bot.settings import Settings
    from delivery.senders import SendError

    settings = Settings()
    if not settings.telegram_enabled:
        print("TELEGRAM_BOT_TOKEN is not set")
        return 1
    try:
        registered = asyncio.run(set_command_menu(settings))
    except (ValueError, SendError, TelegramError) as exc:  # report, do not trace back
        print(f"failed: {exc}")
        return 1
    print(json.dumps(registered, ensure_ascii=False, indent=2))
    return 0
