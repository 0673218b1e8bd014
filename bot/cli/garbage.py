"""`kurashi garbage import|check|next|item` — operator tools for 5374 garbage calendars.

Owns the command line only; parsing, validation and date arithmetic are in
``knowledge.garbage``. Output is for operators (not residents), so it is plain English here.
Imports no platform SDK.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from datetime import date
from pathlib import Path

#: Files copied by `import` (everything else in the source directory is left behind).
_COPIED = ("area_days.csv", "center.csv", "description.csv", "remarks.csv", "target.csv",
           "addendum.csv", "town_area.csv", "calendar.yaml", "README.md")


#: A calendar name is one folder under the garbage root: never a path.
_PLAIN_NAME = re.compile(r"(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def register(subparsers: argparse._SubParsersAction) -> None:
    garbage = subparsers.add_parser("garbage", help="import and query garbage collection calendars (5374 format)")
    sub = garbage.add_subparsers(dest="garbage_command", metavar="GARBAGE_COMMAND")
    garbage.set_defaults(func=lambda args: (garbage.print_help(), 2)[1])

    imp = sub.add_parser("import", help="validate a 5374 data directory and copy it into the knowledge base")
    imp.add_argument("dir", type=Path, help="directory with area_days.csv, description.csv, target.csv … "
                                            "(or language sub-directories ja/, en-US/)")
    imp.add_argument("--name", default=None, help="calendar name (default: the directory's name)")
    imp.add_argument("--dest", type=Path, default=None, help="garbage data root (default: $KNOWLEDGE_DIR/garbage, else knowledge/garbage)")
    imp.add_argument("--force", action="store_true", help="replace an existing calendar of that name")
    imp.set_defaults(func=import_calendar)

    check = sub.add_parser("check", help="validate a 5374 data directory and print a summary")
    check.add_argument("dir", type=Path)
    check.set_defaults(func=check_calendar)

    nxt = sub.add_parser("next", help="next collection days of an area")
    nxt.add_argument("area", help="area name as in area_days.csv (or a town in town_area.csv)")
    nxt.add_argument("--calendar", default=None, help="calendar name under knowledge/garbage (default: the only one)")
    nxt.add_argument("--root", type=Path, default=None, help="garbage data root (default: $KNOWLEDGE_DIR/garbage, else knowledge/garbage)")
    nxt.add_argument("--from", dest="from_date", type=date.fromisoformat, default=None,
                     help="YYYY-MM-DD (default: today)")
    nxt.add_argument("-n", type=int, default=3, help="days per category")
    nxt.add_argument("--lang", default="ja", help="language of the calendar to read")
    nxt.set_defaults(func=show_next)

    item = sub.add_parser("item", help="which category an item belongs to")
    item.add_argument("query")
    item.add_argument("--calendar", default=None)
    item.add_argument("--root", type=Path, default=None)
    item.add_argument("--lang", default=None, help="prefer this language's item list")
    item.set_defaults(func=show_item)


def _garbage_root() -> Path:
    """knowledge/garbage of the configured knowledge base (KNOWLEDGE_DIR), else the package's."""
    from bot.cli._knowledge import knowledge_dir
    from knowledge.garbage import DEFAULT_GARBAGE_DIR

    configured = knowledge_dir()
    return Path(configured) / "garbage" if configured else DEFAULT_GARBAGE_DIR


def _print_problems(exc) -> int:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    print(f"{len(exc.problems)} error(s); nothing imported", file=sys.stderr)
    return 1


def _summary(garbage) -> None:
    primary = garbage.primary
    print(f"calendar {garbage.name}: languages {', '.join(garbage.calendars)}"
          + ("  [SAMPLE — invented collection days, not the city's data]" if garbage.sample else ""))
    print(f"  {len(primary.areas)} areas, {len(primary.categories)} categories, "
          f"{len(primary.items)} items, {len(primary.remarks)} remarks, {len(primary.centers)} centres")
    print(f"  categories: {', '.join(primary.categories)}")
    for calendar in garbage.calendars.values():
        for warning in calendar.warnings:
            print(f"  {warning}")
    if primary.areas:
        first = next(iter(primary.areas))
        print(f"  e.g. {first}, from {date.today().isoformat()}:")
        for label, days in primary.upcoming(first, date.today()).items():
            print(f"    {label}: {', '.join(d.isoformat() for d in days) or '-'}")


def check_calendar(args: argparse.Namespace) -> int:
    """Validate a directory and print its summary; 1 with file:line errors when invalid."""
    from knowledge.garbage import GarbageFormatError, load_garbage_set

    try:
        garbage = load_garbage_set(args.dir)
    except GarbageFormatError as exc:
        return _print_problems(exc)
    _summary(garbage)
    return 0


def import_calendar(args: argparse.Namespace) -> int:
    """Validate, then copy the calendar to <dest>/<name>/ (languages kept as sub-directories)."""
    from knowledge.garbage import GarbageFormatError, load_garbage_set

    source: Path = args.dir
    name = args.name or source.resolve().name
    if not _PLAIN_NAME.fullmatch(name):
        print(f"calendar name {name!r} must be a plain folder name (letters, digits, '.', '_', '-'; "
              "no '/', no '..', not absolute); choose one with --name", file=sys.stderr)
        return 2
    try:
        garbage = load_garbage_set(source, name=name)
    except GarbageFormatError as exc:
        return _print_problems(exc)
    linked = [path for calendar in garbage.calendars.values()
              for path in [calendar.path, *(calendar.path / n for n in _COPIED), *(source / n for n in _COPIED)]
              if path.is_symlink()]
    if linked:
        # A link would copy whatever it points at (anything the operator's account can read).
        for path in linked:
            print(f"{path}: is a symbolic link; copy the real file into the directory", file=sys.stderr)
        print(f"{len(linked)} error(s); nothing imported", file=sys.stderr)
        return 1
    root = args.dest or _garbage_root()
    target = root / name
    if target.exists():
        if not args.force:
            print(f"{target} exists; use --force to replace it", file=sys.stderr)
            return 1
        shutil.rmtree(target)
    staging = target.with_name(target.name + ".importing")
    if staging.exists():
        shutil.rmtree(staging)
    for calendar in garbage.calendars.values():
        relative = calendar.path.resolve().relative_to(source.resolve())
        (staging / relative).mkdir(parents=True, exist_ok=True)
        for name in _COPIED:
            if (calendar.path / name).is_file():
                shutil.copy2(calendar.path / name, staging / relative / name)
    for name in ("calendar.yaml", "README.md"):
        if (source / name).is_file():
            shutil.copy2(source / name, staging / name)
    # Copy to a staging directory first, then rename: a half-copied calendar is never live.
    staging.rename(target)
    load_garbage_set(target)   # the copy must read back exactly like the source
    print(f"imported into {target}")
    _summary(garbage)
    return 0


def _pick(args: argparse.Namespace):
    from knowledge.garbage import load_all

    sets = load_all(args.root or _garbage_root())
    if not sets:
        raise SystemExit("no garbage calendars installed (kurashi garbage import DIR)")
    if args.calendar:
        if args.calendar not in sets:
            raise SystemExit(f"no calendar {args.calendar!r}; have {', '.join(sets)}")
        return sets[args.calendar]
    if len(sets) > 1:
        raise SystemExit(f"several calendars ({', '.join(sets)}); choose one with --calendar")
    return next(iter(sets.values()))


def show_next(args: argparse.Namespace) -> int:
    """Print the next collection days of each category for one area."""
    garbage = _pick(args)
    calendar = garbage.calendar(args.lang)
    try:
        upcoming = calendar.upcoming(args.area, args.from_date or date.today(), args.n)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 1
    if garbage.sample:
        print("SAMPLE calendar: invented collection days")
    for label, days in upcoming.items():
        remarks = calendar.remarks_for(args.area, label)
        print(f"{label}: {', '.join(d.isoformat() for d in days) or '-'}" + (f"  ({'; '.join(remarks)})" if remarks else ""))
    return 0


def show_item(args: argparse.Namespace) -> int:
    """Print the best-matching items with their category and notice."""
    garbage = _pick(args)
    matches = garbage.find_items(args.query, lang=args.lang)
    if not matches:
        print("no matching item", file=sys.stderr)
        return 1
    for match in matches:
        # The row in the asked language when the calendar has it (rows are aligned), with the Japanese category.
        item = (garbage.item_in(match.item, args.lang) if args.lang else None) or match.item
        ja = garbage.item_in(match.item, "ja") or match.item
        category = item.category if ja.category in item.category else f"{item.category} ({ja.category})"
        notice = f" — {item.notice}" if item.notice else ""
        via = f"'{match.alias}' = " if match.alias else ""
        print(f"{via}{item.name} → {category}{notice}  [{match.lang}, {match.score:.0f}]")
    return 0
