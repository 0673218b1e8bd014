"""`kurashi events add|list|cancel` — event notices from the command line (operators).

- ``kurashi events add FILE.yaml [--by NAME]``: one event (a mapping) or several (a list, or
  a mapping with ``events:``) as in knowledge/events.example.yaml; each is validated, stored
  as scheduled (or draft) and its publish/reminder jobs are written to the scheduler's job
  store (the scheduler leader sends it at ``publish_at``; the events sweep catches up if
  the job store cannot be reached now).
- ``kurashi events list [--all]``: upcoming (or all) events with status and times.
- ``kurashi events cancel ID``: cancel; its jobs are removed and unsent notices withdrawn.

Owns the command line only; the logic is scheduler/events.py. Output is for operators
(plain English). Imports no platform SDK.
"""
from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import yaml


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("events", help="event notices: add from YAML, list, cancel")
    sub = parser.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add event(s) from a YAML file (see knowledge/events.example.yaml)")
    add.add_argument("file", type=Path)
    add.add_argument("--by", default="cli", help="who adds it (recorded with the event)")
    add.set_defaults(func=run_add)
    listing = sub.add_parser("list", help="upcoming events (--all: past ones too)")
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(func=run_list)
    cancel = sub.add_parser("cancel", help="cancel an event (nothing more is sent)")
    cancel.add_argument("event_id", type=int)
    cancel.set_defaults(func=run_cancel)


async def _setup() -> tuple[Any, Any, Any, Any]:
    from bot.db.session import create_engine_and_sessionmaker, upgrade_database
    from bot.settings import Settings
    from knowledge.loader import load_knowledge

    settings = Settings()
    await upgrade_database(settings.database_url)
    engine, sessionmaker = create_engine_and_sessionmaker(settings.database_url)
    return settings, engine, sessionmaker, load_knowledge(settings.knowledge_dir)


def _districts(kb: Any) -> list[str]:
    return [key.split(".", 1)[1] for key in kb.messages if key.startswith("district.")]


def _read(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "events" in data:
        data = data["events"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ValueError("expected an event mapping, a list of events, or 'events: [...]'")
    return data


def _fmt(moment: Any) -> str:
    from bot.timefmt import jst

    return jst(moment)


async def _sync(event_id: int, settings: Any, sessionmaker: Any) -> dict[str, Any] | None:
    from scheduler.events import sync_event_jobs

    try:
        return await sync_event_jobs(event_id, database_url=settings.database_url, sessionmaker=sessionmaker)
    except Exception as exc:  # noqa: BLE001  (any job-store failure: the sweep job publishes due events anyway)
        print(f"  warning: could not write the scheduler jobs ({exc}); the events sweep will send it when due")
        return None


def run_add(args: argparse.Namespace) -> int:
    """Validate every event of the file first; store none if one is invalid. Exit 1 on errors."""
    try:
        items = _read(args.file)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}")
        return 1
    except yaml.YAMLError as exc:
        print(f"{args.file}: YAML error: {exc}")
        return 1
    return asyncio.run(_add(items, args))


async def _add(items: list[dict[str, Any]], args: argparse.Namespace) -> int:
    from scheduler.events import EventError, EventSpec, create_event
    from scheduler.runner import close_writers

    settings, engine, sessionmaker, kb = await _setup()
    try:
        specs = []
        for index, item in enumerate(items, 1):
            try:
                specs.append(EventSpec.from_dict(item, districts=_districts(kb)))
            except EventError as exc:
                print(f"{args.file}: event {index}: {exc}")
                return 1
        try:
            async with sessionmaker() as session, session.begin():
                events = [await create_event(session, spec, created_by=args.by) for spec in specs]
                ids = [e.id for e in events]
        except EventError as exc:
            print(f"{args.file}: {exc}")
            return 1
        for event_id, spec in zip(ids, specs):
            jobs = await _sync(event_id, settings, sessionmaker)
            state = "draft (not scheduled)" if spec.draft else "scheduled"
            print(f"event {event_id}: {state}; starts {_fmt(spec.starts_at)}")
            if jobs is not None and not spec.draft:
                print(f"  publish {_fmt(jobs['publish'])}; reminder {_fmt(jobs['remind'])}")
        return 0
    finally:
        close_writers()
        await engine.dispose()


def run_list(args: argparse.Namespace) -> int:
    return asyncio.run(_list(args))


async def _list(args: argparse.Namespace) -> int:
    from scheduler.events import list_events, pick_language

    _, engine, sessionmaker, _kb = await _setup()
    try:
        async with sessionmaker() as session:
            events = await list_events(session, include_past=args.all)
        if not events:
            print("no events")
        for e in events:
            title = e.title.get(pick_language(e.title, "en"), "")
            targets = ", ".join(f"{name}={'/'.join(v)}" for name, v in
                                (("areas", e.areas), ("segments", e.segments), ("languages", e.languages)) if v)
            print(f"{e.id:>5}  {e.status:<9}  starts {_fmt(e.starts_at)}  publish {_fmt(e.publish_at)}"
                  f"{'  reminder' if e.remind_day_before else ''}  {title}"
                  f"{'  [' + targets + ']' if targets else ''}")
        return 0
    finally:
        await engine.dispose()


def run_cancel(args: argparse.Namespace) -> int:
    return asyncio.run(_cancel(args))


async def _cancel(args: argparse.Namespace) -> int:
    from scheduler.events import EventError, cancel_event
    from scheduler.runner import close_writers

    settings, engine, sessionmaker, _kb = await _setup()
    try:
        try:
            async with sessionmaker() as session, session.begin():
                _, withdrawn = await cancel_event(session, args.event_id)
        except EventError as exc:
            print(str(exc))
            return 1
        await _sync(args.event_id, settings, sessionmaker)
        print(f"event {args.event_id}: cancelled; {withdrawn} unsent notice row(s) withdrawn")
        return 0
    finally:
        close_writers()
        await engine.dispose()
