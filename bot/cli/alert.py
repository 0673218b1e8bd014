"""`kurashi alert …`: disaster alerts by hand.

- ``kurashi alert ingest FILE.xml [--dry-run]``: what a JMA telegram would send, to how many
  residents, in which languages (and the message in each); without --dry-run it is queued
  in the outbox like a polled one (the app's relay sends it).
- ``kurashi alert report ID``: queued / sent / failed / blocked for one alert.
- ``kurashi alert list``: the latest alerts.
- ``kurashi alert poll``: poll JMA_FEED_URL once now.
- ``kurashi alert manual --text en=… [--text ja=…] [--area KEY] [--language L] [--urgent] [--send]``:
  an operator's alert from the command line (preview unless --send), as on the console page.

Owns only the command line; the pipeline is scheduler/alerts.py.
"""
from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("alert", help="disaster alerts: ingest a JMA telegram, delivery reports")
    sub = parser.add_subparsers(dest="alert_command", metavar="ACTION", required=True)
    ingest = sub.add_parser("ingest", help="assess a JMA XML telegram and queue (or only show) its alert")
    ingest.add_argument("file", type=Path, help="a JMA telegram (XML)")
    ingest.add_argument("--dry-run", action="store_true", help="show what would be sent; write nothing")
    ingest.add_argument("--json", action="store_true", help="machine-readable output")
    ingest.set_defaults(func=run_ingest)
    report = sub.add_parser("report", help="delivery report of one alert")
    report.add_argument("alert_id", type=int)
    report.add_argument("--json", action="store_true", help="machine-readable output")
    report.set_defaults(func=run_report)
    listing = sub.add_parser("list", help="the latest alerts")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(func=run_list)
    poll = sub.add_parser("poll", help="poll the JMA feeds (JMA_FEED_URL) once now")
    poll.set_defaults(func=run_poll)
    manual = sub.add_parser("manual", help="an operator's alert: show who would get it, or queue it with --send")
    manual.add_argument("--text", action="append", required=True, metavar="LANG=TEXT",
                        help="the text in one language (repeat per language; others fall back to en, then ja)")
    manual.add_argument("--area", action="append", default=[], metavar="DISTRICT",
                        help="limit to a district key (repeatable; default the whole city)")
    manual.add_argument("--language", action="append", default=[], metavar="LANG",
                        help="limit to residents using this language (repeatable)")
    manual.add_argument("--urgent", action="store_true", help="ignore residents' quiet hours")
    manual.add_argument("--send", action="store_true", help="queue it (without this: a preview only)")
    manual.add_argument("--by", default="cli", help="who sends it (recorded with the alert)")
    manual.set_defaults(func=run_manual)


async def _setup():
    from bot.db.session import create_engine_and_sessionmaker, upgrade_database
    from bot.settings import Settings
    from knowledge.loader import load_knowledge

    settings = Settings()
    await upgrade_database(settings.database_url)
    engine, sessionmaker = create_engine_and_sessionmaker(settings.database_url)
    return settings, engine, sessionmaker, load_knowledge(settings.knowledge_dir)


def run_ingest(args: argparse.Namespace) -> int:
    """Print the telegram, the decision and the recipients; queue unless --dry-run. Exit 1 on a bad file."""
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"cannot read {args.file}: {exc}")
        return 1
    return asyncio.run(_ingest(data, args))


async def _ingest(data: bytes, args: argparse.Namespace) -> int:
    from scheduler.alerts import ingest_telegram

    _, engine, sessionmaker, kb = await _setup()
    try:
        async with sessionmaker() as session, session.begin():
            try:
                result = await ingest_telegram(session, kb, data, dry_run=args.dry_run)
            except ValueError as exc:
                print(f"{args.file}: {exc}")
                return 1
    finally:
        await engine.dispose()
    tg = result.telegram
    plan = result.plan
    summary = plan.summary() if plan else None
    if args.json:
        print(json.dumps({
            "telegram": {"type": tg.type, "title": tg.title, "status": tg.status, "info_type": tg.info_type,
                         "office": tg.office, "report_time": tg.report_time} if tg else None,
            "queued": result.queued, "alert_id": result.alert_id, "reason": result.reason, "plan": summary,
            "stale": result.stale,
            "messages": {lang: plan.replies[lang].text for lang in sorted(summary["by_language"])} if plan else {},
        }, ensure_ascii=False, indent=2))
        return 0
    print(f"telegram: {tg.title} / {tg.status} / {tg.info_type} / {tg.office} / {tg.report_time}")
    if result.stale:
        print(f"WARNING {result.stale}")
    if result.decision is None:
        print(f"nothing to send: {result.reason}")
        return 0
    d = result.decision
    print(f"decision: {d.kind} key={d.key} urgent={d.urgent} cancellation={d.is_cancellation}")
    for category, severity, name in d.issued:
        print(f"  issued: {name} ({category}, {severity})")
    for category, severity, name in d.cancelled:
        print(f"  lifted: {name} ({category}, {severity})")
    if plan is not None:
        print(f"level: {plan.level or '-'}")
        print(f"recipients: {summary['recipients']} in {summary['messages']} message group(s); "
              f"deferred by quiet hours: {summary['deferred']}")
        print("  by language: " + (", ".join(f"{k} {v}" for k, v in sorted(summary["by_language"].items())) or "-"))
        print("  by channel:  " + (", ".join(f"{k} {v}" for k, v in sorted(summary["by_channel"].items())) or "-"))
        for lang in sorted(summary["by_language"]) or ["ja", "en"]:
            print(f"--- {lang} ---\n{plan.replies[lang].text}")
    if result.queued:
        print(f"queued as alert {result.alert_id} (kurashi alert report {result.alert_id})")
    else:
        print(f"not queued: {result.reason}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Print queued / deferred / sent / failed / blocked of one alert; exit 1 when it does not exist."""
    return asyncio.run(_report(args))


async def _report(args: argparse.Namespace) -> int:
    from bot.timefmt import jst_iso
    from scheduler.alerts import delivery_report

    _, engine, sessionmaker, _ = await _setup()
    try:
        async with sessionmaker() as session:
            try:
                report = await delivery_report(session, args.alert_id)
            except LookupError as exc:
                print(exc)
                return 1
    finally:
        await engine.dispose()
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"alert {report['alert_id']} ({report['source']} {report['kind']}"
          f"{', cancellation' if report['cancellation'] else ''}) created {jst_iso(report['created_at'])}")
    print(f"recipients {report['recipients']}: queued {report['queued']} (deferred {report['deferred']}), "
          f"sent {report['sent']}, failed {report['failed']}, blocked {report['blocked']}, "
          f"withdrawn {report['withdrawn']}")
    for title, table in (("language", report["by_language"]), ("channel", report["by_channel"])):
        for key, counts in table.items():
            print(f"  {title} {key}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def run_list(args: argparse.Namespace) -> int:
    """The latest alerts, newest first."""
    return asyncio.run(_list(args))


async def _list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bot.db.scheduler_models import Alert
    from bot.timefmt import jst

    _, engine, sessionmaker, _ = await _setup()
    try:
        async with sessionmaker() as session:
            alerts = list((await session.execute(
                select(Alert).order_by(Alert.id.desc()).limit(args.limit))).scalars())
    finally:
        await engine.dispose()
    for a in alerts:
        print(f"{a.id}\t{jst(a.created_at)}\t{a.source}\t{a.kind}{' (cancel)' if a.is_cancellation else ''}"
              f"\t{a.recipient_count} recipients\t{a.hazard_key}")
    print(f"{len(alerts)} alert(s)")
    return 0


def run_poll(args: argparse.Namespace) -> int:
    """Poll JMA_FEED_URL once (the same work as the scheduler's minute job)."""
    return asyncio.run(_poll())


async def _poll() -> int:
    from scheduler.jobs import poll_jma_feeds
    from scheduler.runner import JobContext

    settings, engine, sessionmaker, kb = await _setup()
    try:
        stats = await poll_jma_feeds(ctx=JobContext(database_url=settings.database_url, sessionmaker=sessionmaker,
                                                    kb=kb, settings=settings))
    finally:
        await engine.dispose()
    print(json.dumps(stats, ensure_ascii=False))
    return 0 if not stats.get("feed_errors") else 1


def run_manual(args: argparse.Namespace) -> int:
    """Preview (default) or queue (--send) a manual alert; exit 2 on a malformed --text."""
    texts = {}
    for item in args.text:
        lang, sep, body = item.partition("=")
        if not sep or not body.strip():
            print(f"--text must look like LANG=TEXT, not {item!r}")
            return 2
        texts[lang.strip()] = body.strip()
    return asyncio.run(_manual(args, texts))


async def _manual(args: argparse.Namespace, texts: dict[str, str]) -> int:
    from scheduler.alerts import city_areas, plan_manual_alert, queue_alert

    _, engine, sessionmaker, kb = await _setup()
    unknown = [a for a in args.area if a not in city_areas(kb)]
    if unknown:
        await engine.dispose()
        print(f"unknown district(s): {', '.join(unknown)} (known: {', '.join(sorted(city_areas(kb)))})")
        return 2
    try:
        async with sessionmaker() as session, session.begin():
            plan = await plan_manual_alert(session, kb, texts, areas=args.area or None,
                                           languages=args.language or None, urgent=args.urgent)
            alert = await queue_alert(session, plan, created_by=args.by) if args.send else None
    finally:
        await engine.dispose()
    summary = plan.summary()
    print(f"recipients: {summary['recipients']}; deferred by quiet hours: {summary['deferred']}")
    print("  by language: " + (", ".join(f"{k} {v}" for k, v in sorted(summary["by_language"].items())) or "-"))
    print("  by channel:  " + (", ".join(f"{k} {v}" for k, v in sorted(summary["by_channel"].items())) or "-"))
    for lang in sorted(summary["by_language"]) or ["ja", "en"]:
        print(f"--- {lang} ---\n{plan.replies[lang].text}")
    print(f"queued as alert {alert.id}" if alert else "preview only: add --send to queue it")
    return 0
