"""`kurashi staff …`: staff accounts of partner organisations and where they are notified.

  kurashi staff add --org ORG --email E [--name N] [--role staff|operator] [--telegram-id ID]
                    [--password-stdin]     (otherwise the password is asked twice, hidden)
  kurashi staff list [--org ORG]
  kurashi staff disable|enable|logout EMAIL     (disable and logout end its console sessions at once)
  kurashi staff password EMAIL [--password-stdin]   (every console session of the account ends)
  kurashi staff notify --org ORG [--telegram-chat ID] [--email E ...] [--no-staff-emails|--staff-emails]
  kurashi staff notify --list

There is no default password. Owns only argument parsing and printing; the work is in
bot/consult/staff.py. Must not import the conversation engine or channel adapters.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("staff", help="staff accounts of partner organisations")
    sub = parser.add_subparsers(dest="staff_command", metavar="STAFF_COMMAND")

    add = sub.add_parser("add", help="create a staff account (asks for the password)")
    add.add_argument("--org", required=True, help="organisation key in knowledge/partners.yaml")
    add.add_argument("--email", required=True)
    add.add_argument("--name")
    add.add_argument("--role", choices=("staff", "operator"), default="staff")
    add.add_argument("--telegram-id", type=int, help="the staff member's Telegram user id (group replies)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=run_add)

    lst = sub.add_parser("list", help="list staff accounts")
    lst.add_argument("--org")
    lst.set_defaults(func=run_list)

    for name, help_text in (("disable", "disable an account (its console sessions end at once)"),
                            ("enable", "enable a disabled account"),
                            ("logout", "end every console session of an account (sign out everywhere)")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("email")
        cmd.set_defaults(func=run_account, action=name)
    pw = sub.add_parser("password", help="set a new password (asks for it; every console session ends)")
    pw.add_argument("email")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    pw.set_defaults(func=run_password)

    notify = sub.add_parser("notify", help="set where an organisation's staff are notified")
    notify.add_argument("--org")
    notify.add_argument("--telegram-chat", help="the staff group's chat id ('' to remove)")
    notify.add_argument("--email", action="append", help="an extra address (repeat; replaces the list)")
    staff_emails = notify.add_mutually_exclusive_group()
    staff_emails.add_argument("--staff-emails", dest="email_staff", action="store_true", default=None,
                              help="also e-mail every active staff account (default)")
    staff_emails.add_argument("--no-staff-emails", dest="email_staff", action="store_false")
    notify.add_argument("--list", action="store_true", help="show every organisation's targets")
    notify.set_defaults(func=run_notify)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _run(work: Callable[[Any, Any], Awaitable[int]]) -> int:
    """Run ``work(session, kb)`` in one transaction on DATABASE_URL (schema upgraded first)."""
    from bot.db.session import create_engine_and_sessionmaker, upgrade_database
    from bot.settings import Settings
    from knowledge.loader import load_knowledge

    settings = Settings()
    kb = load_knowledge(settings.knowledge_dir)
    from bot.consult.routing import configure_response_hours

    configure_response_hours(settings.consult_response_hours)

    async def main() -> int:
        await upgrade_database(settings.database_url)
        engine, maker = create_engine_and_sessionmaker(settings.database_url)
        try:
            async with maker() as session, session.begin():
                return await work(session, kb)
        finally:
            await engine.dispose()

    return asyncio.run(main())


class NoPassword(Exception):
    """No terminal to ask on and no --password-stdin."""


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise NoPassword
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        print("the passwords differ", file=sys.stderr)
        return None
    return first


def run_add(args: argparse.Namespace) -> int:
    from bot.consult.staff import StaffError, add_staff

    try:
        password = _read_password(args.password_stdin)
    except (NoPassword, EOFError):
        print("error: no terminal to ask for the password; pipe it with --password-stdin "
              "(e.g. `printf '%s\\n' \"$PW\" | kurashi staff add ... --password-stdin`)", file=sys.stderr)
        return 2
    if password is None:
        return 1

    async def work(session: Any, kb: Any) -> int:
        try:
            staff = await add_staff(session, kb, org=args.org, email=args.email, password=password,
                                    name=args.name, role=args.role, telegram_user_id=args.telegram_id)
        except StaffError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"staff {staff.id} {staff.email} ({staff.role}) of {staff.org} created")
        return 0

    return _run(work)


def run_account(args: argparse.Namespace) -> int:
    """`staff disable|enable|logout EMAIL`."""
    from bot.consult.staff import StaffError, end_sessions, set_active

    async def work(session: Any, kb: Any) -> int:
        try:
            if args.action == "logout":
                staff = await end_sessions(session, args.email)
            else:
                staff = await set_active(session, args.email, args.action == "enable")
        except StaffError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        done = {"disable": "disabled; its console sessions ended", "enable": "enabled",
                "logout": "signed out of every console session"}[args.action]
        print(f"staff {staff.id} {staff.email} {done}")
        return 0

    return _run(work)


def run_password(args: argparse.Namespace) -> int:
    """`staff password EMAIL [--password-stdin]`."""
    from bot.consult.staff import StaffError, set_password

    try:
        password = _read_password(args.password_stdin)
    except (NoPassword, EOFError):
        print("error: no terminal to ask for the password; pipe it with --password-stdin", file=sys.stderr)
        return 2
    if password is None:
        return 1

    async def work(session: Any, kb: Any) -> int:
        try:
            staff = await set_password(session, args.email, password)
        except StaffError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"staff {staff.id} {staff.email}: password changed; its console sessions ended")
        return 0

    return _run(work)


def run_list(args: argparse.Namespace) -> int:
    from bot.consult.staff import list_staff

    async def work(session: Any, kb: Any) -> int:
        rows = await list_staff(session, args.org)
        for s in rows:
            state = "active" if s.active else "disabled"
            tg = f" telegram:{s.telegram_user_id}" if s.telegram_user_id else ""
            print(f"{s.id}\t{s.org}\t{s.email}\t{s.role}\t{state}\t{s.name or ''}{tg}")
        if not rows:
            print("no staff accounts", file=sys.stderr)
        return 0

    return _run(work)


def run_notify(args: argparse.Namespace) -> int:
    from bot.consult.notify import reachable_orgs, targets
    from bot.consult.routing import response_hours
    from bot.consult.staff import StaffError, list_notify, set_notify

    async def work(session: Any, kb: Any) -> int:
        if not args.list:
            if not args.org:
                print("error: --org is required (or --list)", file=sys.stderr)
                return 2
            try:
                await set_notify(session, kb, args.org, telegram_chat_id=args.telegram_chat,
                                 emails=args.email, email_staff=args.email_staff)
            except StaffError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
        partners = getattr(kb, "partners", None)
        if args.org and not args.list:
            orgs = [args.org]
        else:   # every partner, so that one nobody would hear about stands out
            known = list(partners.partners) if partners is not None else []
            orgs = known + [r.org for r in await list_notify(session) if r.org not in known]
        reachable = await reachable_orgs(session)
        default = partners.default if partners is not None else None
        for org in orgs:
            chat, emails = await targets(session, org)
            hours = response_hours(org)
            warn = ""
            if org not in reachable and org == default:
                warn = ("\t⚠ no target and no staff: consultations are not offered; residents get the "
                        "phone number and hours instead")
            elif org not in reachable:
                warn = "\t⚠ no target and no staff: routing skips it"
            elif not (chat or emails):
                warn = "\t⚠ nobody is notified of new cases (staff see them in the console)"
            print(f"{org}\tanswers-within={hours}h\ttelegram={chat or '-'}\temail={','.join(emails) or '-'}{warn}")
        if default is not None and default not in reachable:
            print(f"note: the default centre {default!r} has no staff account and no notification target: "
                  f"add one with `kurashi staff add --org {default} --email ADDRESS` or "
                  f"`kurashi staff notify --org {default} --telegram-chat ID`", file=sys.stderr)
        return 0

    return _run(work)
