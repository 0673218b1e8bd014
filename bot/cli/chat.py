"""`kurashi chat [--lang L] [--user ID]`: talk to the conversation core in a terminal.

The same engine as LINE, Telegram and the web chat (channel "cli"), on the configured
database (by default the SQLite file under var/, upgraded first). Buttons are printed as
numbered choices; type the number to press one. Owns only terminal input/output.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable
from typing import IO

from delivery.messages import Channel, Choice, IncomingMessage, Kind, Reply

QUIT_WORDS = {"/quit", "/exit", ":q"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("chat", help="chat with the bot in the terminal (numbered buttons)")
    parser.add_argument("--lang", default=None, help="language hint, e.g. vi, en, ja (as a phone would send)")
    parser.add_argument("--user", default="terminal", help="user id to chat as (default: terminal)")
    parser.set_defaults(func=run_chat_command)


def print_replies(replies: list[Reply], out: IO[str]) -> list[Choice]:
    """Print replies; returns the choices in the numbering shown."""
    choices: list[Choice] = []
    for reply in replies:
        out.write(f"\nkurashi> {reply.text}\n")
        if reply.card is not None:
            out.write(f"         [{reply.card.title}] {reply.card.text} {reply.card.url or ''}\n")
        for choice in (*reply.buttons, *reply.quick_replies):
            choices.append(choice)
            out.write(f"   [{len(choices)}] {choice.label}\n")
    out.flush()
    return choices


async def chat_loop(engine, lines: Iterable[str], out: IO[str], *, user: str = "terminal",
                    lang: str | None = None) -> int:
    """Feed ``lines`` to the engine as one resident; a number presses the numbered button."""
    replies = await engine.handle(IncomingMessage(Channel.CLI, user, Kind.FOLLOW, language_hint=lang))
    choices = print_replies(replies, out)
    for raw in lines:
        line = raw.rstrip("\n")
        if line.strip() in QUIT_WORDS:
            break
        stripped = line.strip()
        if stripped.isdigit() and 1 <= int(stripped) <= len(choices):
            msg = IncomingMessage(Channel.CLI, user, Kind.POSTBACK, data=choices[int(stripped) - 1].data,
                                  language_hint=lang)
        else:
            msg = IncomingMessage(Channel.CLI, user, Kind.TEXT, text=line, language_hint=lang)
        replies = await engine.handle(msg)
        choices = print_replies(replies, out)
    return 0


async def _run(args: argparse.Namespace) -> int:
    from bot.db.session import upgrade_database
    from bot.services import build_core
    from bot.settings import Settings

    settings = Settings()
    await upgrade_database(settings.database_url)
    services = build_core(settings)
    interactive = sys.stdin.isatty()
    if interactive:
        sys.stderr.write("kurashi chat — type a question, a number to press a button, /quit to leave\n")

    def read_lines():
        while True:
            if interactive:
                sys.stdout.write("\nyou> ")
                sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                return
            yield line

    try:
        return await chat_loop(services.engine, read_lines(), sys.stdout, user=args.user, lang=args.lang)
    finally:
        await services.aclose()


def run_chat_command(args: argparse.Namespace) -> int:
    """Run the terminal chat until EOF or /quit."""
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
