"""Garbage collection calendars in Code for Kanazawa's 5374 (ゴミナシ) data format.

Owns: reading and validating one calendar directory (``area_days.csv``, ``center.csv``,
``description.csv``, ``remarks.csv``, ``target.csv`` and Nonoichi's optional
``addendum.csv`` / ``town_area.csv``), every collection-cell form of the format, the
collection dates of an area (``next_collections``) with the year-end centre shutdown,
and item look-up by name (rapidfuzz) → category + notice. Also the on-disk layout of
``knowledge/garbage/<name>/`` (one directory per city; language sub-directories such as
``ja/`` and ``en-US/`` when the city publishes translations; ``calendar.yaml`` with
``sample: true`` for calendars that are not the city's real data).

Format (codeforkanazawa-org/5374, LOCALIZE.md), as implemented here:
- ``area_days.csv``: ``地名,センター,<category>,…``; each category cell is space-separated
  tokens: weekday ``月`` (every week), nth weekday ``水2`` (2nd Wednesday of the month),
  ``YYYYMMDD`` explicit dates, ``*N`` pointer to remarks.csv ID N, and an optional month
  filter after a colon (``火2 金4:4 6 8 10 12 2`` = only in those months). English data
  uses ``Mon``…``Sun`` (``Wed1``); English files escape commas in fields as ``&#44;``.
- ``center.csv``: ``名称,休止開始日,休止終了日`` — a collection centre's shutdown (year end).
  As in Kanazawa's app (WeekShift): in the month of a shutdown, a collection day that
  falls inside it moves one week later, and so do the later ones of that month for the
  same token; a date pushed out of its month is dropped. Cells with a month filter skip
  shutdown days instead (the format's WeekShift=false variant).
- ``target.csv``: ``type`` (or ``label``),``name``,``notice``,``furigana``. A type may be a
  category with no collection day (e.g. 有料粗大ごみ, 市で収集しない); that is allowed.

Pure functions and frozen data after loading; imports nothing from bot/, intents/ or
scheduler/.
"""
from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

DEFAULT_GARBAGE_DIR = Path(__file__).resolve().parent / "garbage"
META_FILE = "calendar.yaml"
REQUIRED_FILES: tuple[str, ...] = ("area_days.csv", "description.csv", "target.csv")
OPTIONAL_FILES: tuple[str, ...] = ("center.csv", "remarks.csv", "addendum.csv", "town_area.csv")
#: Horizon for next_collections: a calendar whose next day is further away is not a calendar.
MAX_MONTHS_AHEAD = 24

_WEEKDAYS_JA = {"月": 0, "火": 1, "水": 2, "木": 3, "金": 4, "土": 5, "日": 6}
_WEEKDAYS_EN = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_WEEKDAY_TOKEN = re.compile(r"^(?P<day>[月火水木金土日]|mon|tue|wed|thu|fri|sat|sun)(?P<nth>[1-5])?$", re.IGNORECASE)
_DATE_TOKEN = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_REMARK_TOKEN = re.compile(r"^\*(\d+)$")
_NUMERIC_ENTITY = re.compile(r"&#(x[0-9a-fA-F]+|\d+);")
#: Directory names of language sub-directories (5374 uses BCP-47 like en-US) → our codes.
_LANG_DIR = re.compile(r"^(?P<lang>[a-z]{2})(?:[-_][A-Za-z]{2,4})?$")


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GarbageProblem:
    file: str
    line: int | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


class GarbageFormatError(ValueError):
    """A calendar directory is not valid 5374 data; ``problems`` say file and line."""

    def __init__(self, problems: list[GarbageProblem]):
        self.problems = problems
        super().__init__("invalid garbage calendar:\n" + "\n".join(f"  {p}" for p in problems))


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """Every ``weekday`` (0 = Monday), or only its ``nth`` occurrence in the month."""

    weekday: int
    nth: int | None = None


@dataclass(frozen=True)
class Schedule:
    """One area_days cell, parsed."""

    raw: str
    rules: tuple[Rule, ...] = ()
    dates: tuple[date, ...] = ()
    months: frozenset[int] | None = None     # None: every month
    remarks: tuple[str, ...] = ()            # remarks.csv IDs

    @property
    def empty(self) -> bool:
        return not self.rules and not self.dates


@dataclass(frozen=True)
class Category:
    label: str
    index: int                               # position in description.csv (aligns languages)
    description: str = ""
    color: str = ""


@dataclass(frozen=True)
class Center:
    name: str
    start: date | None
    end: date | None

    def closed_on(self, day: date) -> bool:
        return self.start is not None and self.end is not None and self.start <= day <= self.end


@dataclass(frozen=True)
class Area:
    name: str
    index: int                               # row position (aligns languages)
    center: str | None
    schedules: dict[str, Schedule]


@dataclass(frozen=True)
class Item:
    name: str
    category: str
    notice: str = ""
    furigana: str = ""


@dataclass(frozen=True)
class ItemMatch:
    item: Item
    score: float
    lang: str
    alias: str = ""                          # the calendar.yaml alias found in the query, if any


@dataclass
class GarbageCalendar:
    """One language of one city's 5374 data."""

    lang: str
    path: Path
    areas: dict[str, Area]
    categories: dict[str, Category]          # label -> category, in description order
    items: list[Item]
    remarks: dict[str, str] = field(default_factory=dict)
    centers: dict[str, Center] = field(default_factory=dict)
    town_areas: dict[str, str] = field(default_factory=dict)   # town name -> area name
    warnings: list[GarbageProblem] = field(default_factory=list)
    _names: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._names = [_fold(item.name) for item in self.items]

    # ---- schedule --------------------------------------------------------------------
    def area(self, name: str) -> Area:
        """The area by exact name, by normalised name, or through town_area.csv."""
        if name in self.areas:
            return self.areas[name]
        folded = _fold(name)
        for area in self.areas.values():
            if _fold(area.name) == folded:
                return area
        for town, area_name in self.town_areas.items():
            if _fold(town) == folded and area_name in self.areas:
                return self.areas[area_name]
        raise KeyError(f"no area {name!r} in {self.path}")

    def next_collections(self, area: str, category: str, from_date: date, n: int = 3) -> list[date]:
        """The next ``n`` collection days (``from_date`` included) of ``category`` in ``area``."""
        area_obj = self.area(area)
        if category not in area_obj.schedules:
            raise KeyError(f"no category {category!r} in {self.path} (have {', '.join(area_obj.schedules)})")
        schedule = area_obj.schedules[category]
        center = self.centers.get(area_obj.center or "")
        found: list[date] = []
        year, month = from_date.year, from_date.month
        for _ in range(MAX_MONTHS_AHEAD + 1):
            found.extend(d for d in month_dates(schedule, year, month, center) if d >= from_date)
            if len(found) >= n:
                break
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return sorted(set(found))[:n]

    def upcoming(self, area: str, from_date: date, n: int = 1) -> dict[str, list[date]]:
        """Every category of the area → its next ``n`` days, soonest category first."""
        area_obj = self.area(area)
        result = {label: self.next_collections(area_obj.name, label, from_date, n) for label in area_obj.schedules}
        return dict(sorted(result.items(), key=lambda kv: (kv[1][0] if kv[1] else date.max, kv[0])))

    def remarks_for(self, area: str, category: str) -> list[str]:
        schedule = self.area(area).schedules.get(category)
        return [self.remarks[r] for r in (schedule.remarks if schedule else ()) if r in self.remarks]

    # ---- items -----------------------------------------------------------------------
    def find_items(self, query: str, limit: int = 3, score_cutoff: float = 70.0) -> list[ItemMatch]:
        """Items whose name matches ``query`` best (exact normalised name first)."""
        folded = _fold(query)
        if not folded or not self.items:
            return []
        exact = [ItemMatch(self.items[i], 100.0, self.lang) for i, name in enumerate(self._names) if name == folded]
        # WRatio handles both a short query inside a long name and the whole name; among
        # equal WRatio scores, the plain ratio prefers names of the query's length.
        candidates = process.extract(folded, self._names, scorer=fuzz.WRatio, processor=None,
                                     limit=max(limit * 8, 20), score_cutoff=score_cutoff)
        ranked = sorted(candidates, key=lambda c: (-c[1], -fuzz.ratio(folded, c[0]), c[2]))
        seen = {id(m.item) for m in exact}
        result = list(exact)
        for _, score, index in ranked:
            item = self.items[index]
            if id(item) not in seen:
                seen.add(id(item))
                result.append(ItemMatch(item, float(score), self.lang))
        return result[:limit]


@dataclass
class GarbageSet:
    """One city's calendar in one or more languages (aligned by row / description order)."""

    name: str
    path: Path
    calendars: dict[str, GarbageCalendar]    # lang -> calendar; the first is the primary
    sample: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def primary(self) -> GarbageCalendar:
        return self.calendars.get("ja") or next(iter(self.calendars.values()))

    def calendar(self, lang: str) -> GarbageCalendar:
        """The calendar in ``lang``, else English, else the primary (Japanese)."""
        return self.calendars.get(lang) or self.calendars.get("en") or self.primary

    @property
    def districts(self) -> dict[str, str]:
        """users.area district key → area name of the primary calendar (calendar.yaml)."""
        return dict(self.meta.get("districts") or {})

    def area_for(self, district_or_area: str | None) -> str | None:
        """The primary calendar's area for a users.area district key, an area name or a
        town name (town_area.csv); None when the calendar does not cover it."""
        if not district_or_area:
            return None
        name = self.districts.get(district_or_area, district_or_area)
        try:
            return self.primary.area(name).name
        except KeyError:
            return None

    def category_in(self, label: str, lang: str) -> str:
        """The same category's label in another language (by description.csv order)."""
        index = self._category_index(label)
        for category in self.calendar(lang).categories.values():
            if category.index == index:
                return category.label
        return label

    def area_in(self, area: str, lang: str) -> str:
        """The same area's name in another language (by area_days.csv row order)."""
        for calendar in self.calendars.values():
            try:
                index = calendar.area(area).index
            except KeyError:
                continue
            for candidate in self.calendar(lang).areas.values():
                if candidate.index == index:
                    return candidate.name
        raise KeyError(f"no area {area!r} in {self.path}")

    def find_items(self, query: str, lang: str | None = None, limit: int = 3) -> list[ItemMatch]:
        """Search every language's item list; best matches first (``lang``'s list wins ties).

        An item alias of calendar.yaml (``item_aliases``) named in ``query`` comes first:
        "where does a frying pan go", "pin bỏ thế nào", "电池怎么扔" name an item in a sentence.
        """
        aliased = self.find_by_alias(query)
        if aliased:
            return aliased[:limit]
        matches: list[ItemMatch] = []
        for calendar in self.calendars.values():
            matches.extend(calendar.find_items(query, limit=limit))
        matches.sort(key=lambda m: (-m.score, m.lang != lang))
        return matches[:limit]

    def _aliases(self) -> list[tuple[str, bool, Item]]:
        """(folded alias, matched on word boundaries, primary item), longest alias first."""
        cached = self.__dict__.get("_alias_cache")
        if cached is not None:
            return cached
        by_name = {item.name: item for item in self.primary.items}
        out: list[tuple[str, bool, Item]] = []
        for name, per_lang in (self.meta.get("item_aliases") or {}).items():
            item = by_name.get(str(name))
            if item is None or not isinstance(per_lang, dict):
                continue
            for words in per_lang.values():
                for word in words if isinstance(words, list) else [words]:
                    folded = _fold(str(word))
                    if folded:
                        out.append((folded, _spaced_script(folded), item))
        out.sort(key=lambda entry: -len(entry[0]))
        self.__dict__["_alias_cache"] = out
        return out

    def find_by_alias(self, query: str) -> list[ItemMatch]:
        """Items whose alias (any language) occurs in ``query``: whole words for scripts that
        separate words with spaces (a plural "s"/"es" allowed), a substring otherwise."""
        folded = _fold(query)
        if not folded:
            return []
        padded = f" {folded} "
        found: list[ItemMatch] = []
        for alias, spaced, item in self._aliases():
            hit = (any(f" {alias}{end} " in padded for end in ("", "s", "es")) if spaced else alias in folded)
            if hit and all(m.item is not item for m in found):
                found.append(ItemMatch(item, 100.0, self.primary.lang, alias=alias))
        return found

    def item_in(self, item: Item, lang: str) -> Item | None:
        """The same target.csv row in another language's data (rows are aligned by order), if any."""
        for calendar in self.calendars.values():
            for index, candidate in enumerate(calendar.items):
                if candidate is item:
                    other = self.calendars.get(lang)
                    if other is None or len(other.items) != len(calendar.items):
                        return None
                    return other.items[index]
        return None

    def _category_index(self, label: str) -> int | None:
        for calendar in self.calendars.values():
            if label in calendar.categories:
                return calendar.categories[label].index
        return None


# --------------------------------------------------------------------------------------
# Schedule arithmetic
# --------------------------------------------------------------------------------------

def _nth_weekdays(year: int, month: int, weekday: int) -> list[date]:
    first = date(year, month, 1)
    day = first + timedelta(days=(weekday - first.weekday()) % 7)
    days = []
    while day.month == month:
        days.append(day)
        day += timedelta(days=7)
    return days


def month_dates(schedule: Schedule, year: int, month: int, center: Center | None = None) -> list[date]:
    """Collection days of one cell in one month, after the centre's shutdown shift."""
    result: set[date] = set()
    if schedule.months is None or month in schedule.months:
        shift_mode = schedule.months is None       # month-filtered cells skip instead of shifting
        for rule in schedule.rules:
            shifted = False
            for week, day in enumerate(_nth_weekdays(year, month, rule.weekday)):
                if center is not None and center.closed_on(day):
                    if not shift_mode:
                        continue
                    shifted = True
                if shifted:
                    day += timedelta(days=7)
                if day.month != month:
                    continue                        # pushed out of its month: dropped
                if rule.nth is None or rule.nth == week + 1:
                    result.add(day)
    for day in schedule.dates:
        if day.year == year and day.month == month and not (center and center.closed_on(day)):
            result.add(day)
    return sorted(result)


def parse_cell(text: str) -> Schedule:
    """Parse one area_days cell; raises ValueError naming the bad token."""
    raw = _unescape(text).strip()
    body, months = raw, None
    if ":" in raw:
        body, month_part = raw.split(":", 1)
        try:
            months = frozenset(int(m) for m in month_part.split())
        except ValueError:
            raise ValueError(f"month filter {month_part.strip()!r} must be month numbers separated by spaces") from None
        if not months or not all(1 <= m <= 12 for m in months):
            raise ValueError(f"month filter {month_part.strip()!r} must list months 1-12")
    rules: list[Rule] = []
    dates: list[date] = []
    remarks: list[str] = []
    for token in unicodedata.normalize("NFKC", body).split():
        if m := _WEEKDAY_TOKEN.match(token):
            day = m.group("day")
            weekday = _WEEKDAYS_JA.get(day, _WEEKDAYS_EN.get(day.lower()))
            rules.append(Rule(weekday, int(m.group("nth")) if m.group("nth") else None))
        elif m := _DATE_TOKEN.match(token):
            try:
                dates.append(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
            except ValueError:
                raise ValueError(f"{token!r} is not a real date (YYYYMMDD)") from None
        elif m := _REMARK_TOKEN.match(token):
            remarks.append(m.group(1))
        else:
            raise ValueError(
                f"cannot read {token!r}: expected a weekday (月 or Mon), an nth weekday (水2 / Wed2), "
                "a date YYYYMMDD, a remark pointer *N, or a month filter after ':'"
            )
    return Schedule(raw=raw, rules=tuple(rules), dates=tuple(sorted(dates)), months=months, remarks=tuple(remarks))


# --------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------

def _unescape(text: str) -> str:
    """Numeric character references (Nonoichi's English data writes commas as &#44;)."""
    def _char(m: re.Match) -> str:
        ref = m.group(1)
        return chr(int(ref[1:], 16) if ref[0] in "xX" else int(ref))
    return _NUMERIC_ENTITY.sub(_char, text)


#: Hiragana → katakana, so "ふらいぱん" finds "フライパン" (residents type either).
_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in range(0x3041, 0x3097)}


def _fold(text: str) -> str:
    """Normalised form for matching names: NFKC, case-folded, hiragana as katakana,
    punctuation → spaces."""
    text = unicodedata.normalize("NFKC", _unescape(text)).casefold().translate(_HIRAGANA_TO_KATAKANA)
    text = "".join(ch if ch.isalnum() else " " for ch in text)
    return " ".join(text.split())


def _spaced_script(text: str) -> bool:
    """Whether ``text`` is written in a script that separates words with spaces (Latin,
    Vietnamese, Devanagari, Hangul…): such aliases match whole words only."""
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            return name.startswith(("LATIN", "DEVANAGARI", "HANGUL", "CYRILLIC"))
    return True


def _rows(path: Path, problems: list[GarbageProblem], display: str) -> list[tuple[int, list[str]]]:
    """(line, cells) of every non-blank row, header included; cells unescaped and stripped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(GarbageProblem(display, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return []
    except OSError as exc:
        problems.append(GarbageProblem(display, None, f"cannot read: {exc}"))
        return []
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        problems.append(GarbageProblem(display, line, "NUL byte in a text file (not a CSV export?)"))
        return []
    if not text.strip():
        problems.append(GarbageProblem(display, None, "empty file (expected at least a header row)"))
        return []
    reader = csv.reader(text.splitlines())
    rows = []
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                rows.append((reader.line_num, [_unescape(c).strip() for c in cells]))
    except csv.Error as exc:
        problems.append(GarbageProblem(display, reader.line_num, f"CSV error: {exc}"))
    return rows


def _parse_day(text: str) -> date:
    parts = re.split(r"[/\-.]", text.strip())
    if len(parts) != 3:
        raise ValueError
    return date(int(parts[0]), int(parts[1]), int(parts[2]))


def load_calendar(directory: Path | str, lang: str = "ja") -> GarbageCalendar:
    """Read and validate one 5374 data directory; raises GarbageFormatError (file, line)."""
    directory = Path(directory)
    problems: list[GarbageProblem] = []
    warnings: list[GarbageProblem] = []

    def show(name: str) -> str:
        return str(directory / name)

    for name in REQUIRED_FILES:
        if not (directory / name).is_file():
            problems.append(GarbageProblem(show(name), None, f"missing required file {name}"))
    if problems:
        raise GarbageFormatError(problems)

    # description.csv: categories
    categories: dict[str, Category] = {}
    rows = _rows(directory / "description.csv", problems, show("description.csv"))
    for position, (line, cells) in enumerate(rows[1:]):
        label = cells[0] if cells else ""
        if not label:
            problems.append(GarbageProblem(show("description.csv"), line, "empty label"))
            continue
        if label in categories:
            problems.append(GarbageProblem(show("description.csv"), line, f"duplicate label {label!r}"))
            continue
        categories[label] = Category(label, position, cells[2] if len(cells) > 2 else "",
                                     cells[4] if len(cells) > 4 else "")
    if rows and not categories:
        problems.append(GarbageProblem(show("description.csv"), rows[0][0], "no categories"))

    # remarks.csv
    remarks: dict[str, str] = {}
    if (directory / "remarks.csv").is_file():
        for line, cells in _rows(directory / "remarks.csv", problems, show("remarks.csv"))[1:]:
            if len(cells) < 2 or not cells[0].strip().isdigit():
                problems.append(GarbageProblem(show("remarks.csv"), line, "expected 'ID,注意事項' with a numeric ID"))
                continue
            remarks[cells[0].strip()] = ",".join(cells[1:]).strip()

    # center.csv
    centers: dict[str, Center] = {}
    if (directory / "center.csv").is_file():
        for line, cells in _rows(directory / "center.csv", problems, show("center.csv"))[1:]:
            if len(cells) < 3:
                problems.append(GarbageProblem(show("center.csv"), line, "expected '名称,休止開始日,休止終了日'"))
                continue
            try:
                start, end = _parse_day(cells[1]), _parse_day(cells[2])
            except ValueError:
                problems.append(GarbageProblem(show("center.csv"), line,
                                               f"dates must look like 2022/12/30 (got {cells[1]!r}, {cells[2]!r})"))
                continue
            if end < start:
                # Nonoichi's published file has such a row (2015/12/29 → 2014/01/03); the
                # period cannot be right, so it is ignored rather than guessed at.
                warnings.append(GarbageProblem(show("center.csv"), line,
                                               f"shutdown of {cells[0]!r} ends before it starts "
                                               f"({cells[1]} → {cells[2]}); ignored", "warning"))
                centers[cells[0]] = Center(cells[0], None, None)
                continue
            centers[cells[0]] = Center(cells[0], start, end)

    # area_days.csv
    areas: dict[str, Area] = {}
    rows = _rows(directory / "area_days.csv", problems, show("area_days.csv"))
    if rows:
        header_line, header = rows[0]
        while header and not header[-1]:
            header = header[:-1]
        columns = header[2:]
        if len(header) < 3:
            problems.append(GarbageProblem(show("area_days.csv"), header_line,
                                           "header must be 地名,センター,<category>,…"))
        for label in columns:
            if categories and label not in categories:
                problems.append(GarbageProblem(show("area_days.csv"), header_line,
                                               f"category column {label!r} has no row in description.csv"))
        for label in categories:
            if label not in columns:
                warnings.append(GarbageProblem(show("description.csv"), None,
                                               f"category {label!r} has no column in area_days.csv", "warning"))
        for index, (line, cells) in enumerate(rows[1:]):
            while len(cells) > len(header) and not cells[-1]:
                cells = cells[:-1]
            if len(cells) != len(header):
                problems.append(GarbageProblem(show("area_days.csv"), line,
                                               f"{len(cells)} columns, the header has {len(header)}"))
                continue
            name, center = cells[0], cells[1] or None
            if not name:
                problems.append(GarbageProblem(show("area_days.csv"), line, "empty area name"))
                continue
            if name in areas:
                problems.append(GarbageProblem(show("area_days.csv"), line, f"duplicate area {name!r}"))
                continue
            if center and (directory / "center.csv").is_file() and center not in centers:
                problems.append(GarbageProblem(show("area_days.csv"), line,
                                               f"centre {center!r} is not in center.csv"))
            schedules: dict[str, Schedule] = {}
            for label, cell in zip(columns, cells[2:]):
                try:
                    schedule = parse_cell(cell)
                except ValueError as exc:
                    problems.append(GarbageProblem(show("area_days.csv"), line, f"{name} / {label}: {exc}"))
                    continue
                for remark in schedule.remarks:
                    if remark not in remarks:
                        problems.append(GarbageProblem(show("area_days.csv"), line,
                                                       f"{name} / {label}: remark *{remark} is not in remarks.csv"))
                schedules[label] = schedule
            areas[name] = Area(name, index, center, schedules)
        if not areas and len(rows) == 1:
            problems.append(GarbageProblem(show("area_days.csv"), header_line, "no areas"))

    # target.csv (+ addendum.csv): items
    items: list[Item] = []
    for file_name in ("target.csv", "addendum.csv"):
        if not (directory / file_name).is_file():
            continue
        rows = _rows(directory / file_name, problems, show(file_name))
        if not rows:
            continue
        header_line, header = rows[0]
        head = [h.strip().lower() for h in header]
        type_col = head.index("type") if "type" in head else head.index("label") if "label" in head else None
        if type_col is None or "name" not in head:
            problems.append(GarbageProblem(show(file_name), header_line,
                                           "header must have 'type' (or 'label') and 'name' columns"))
            continue
        name_col = head.index("name")
        notice_col = head.index("notice") if "notice" in head else None
        kana_col = head.index("furigana") if "furigana" in head else None
        for line, cells in rows[1:]:
            kind, name, notice, kana = (
                cells[col] if col is not None and col < len(cells) else ""
                for col in (type_col, name_col, notice_col, kana_col)
            )
            if not kind or not name:
                problems.append(GarbageProblem(show(file_name), line, "every item needs a type and a name"))
                continue
            items.append(Item(name, kind, notice, kana))

    town_areas: dict[str, str] = {}
    if (directory / "town_area.csv").is_file():
        for line, cells in _rows(directory / "town_area.csv", problems, show("town_area.csv"))[1:]:
            if len(cells) >= 2 and cells[0] and cells[1]:
                town_areas[cells[0]] = cells[1]
            else:
                problems.append(GarbageProblem(show("town_area.csv"), line, "expected 'town,area'"))

    if problems:
        raise GarbageFormatError(problems)
    return GarbageCalendar(lang=lang, path=directory, areas=areas, categories=categories, items=items,
                           remarks=remarks, centers=centers, town_areas=town_areas, warnings=warnings)


def _language_dirs(directory: Path) -> list[tuple[str, Path]]:
    """[(lang, dir)]: language sub-directories (ja/, en-US/), or the directory itself."""
    if all((directory / f).is_file() for f in REQUIRED_FILES):
        return [("", directory)]
    found = []
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()):
        m = _LANG_DIR.match(sub.name)
        if m and (sub / "area_days.csv").is_file():
            found.append((m.group("lang").lower(), sub))
    # Japanese first: it is the data as printed on the bags and the primary calendar.
    return sorted(found, key=lambda pair: pair[0] != "ja")


def read_meta(directory: Path) -> dict:
    path = directory / META_FILE
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise GarbageFormatError([GarbageProblem(str(path), mark.line + 1 if mark else None,
                                                 f"YAML error: {exc}")]) from None
    if not isinstance(data, dict):
        raise GarbageFormatError([GarbageProblem(str(path), 1, "calendar.yaml must be a mapping")])
    return data


def load_garbage_set(directory: Path | str, name: str | None = None) -> GarbageSet:
    """Read one city's calendar (all its languages); raises GarbageFormatError."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GarbageFormatError([GarbageProblem(str(directory), None, "not a directory")])
    meta = read_meta(directory)
    pairs = _language_dirs(directory)
    if not pairs:
        raise GarbageFormatError([GarbageProblem(
            str(directory), None,
            f"no 5374 data: expected {', '.join(REQUIRED_FILES)} here or in language sub-directories (ja/, en-US/)")])
    calendars: dict[str, GarbageCalendar] = {}
    problems: list[GarbageProblem] = []
    for lang, sub in pairs:
        try:
            calendars[lang or str(meta.get("language", "ja"))] = load_calendar(sub, lang or str(meta.get("language", "ja")))
        except GarbageFormatError as exc:
            problems.extend(exc.problems)
    if problems:
        raise GarbageFormatError(problems)
    garbage = GarbageSet(name=name or str(meta.get("name") or directory.name), path=directory,
                         calendars=calendars, sample=bool(meta.get("sample", False)), meta=meta)
    problems = _check_alignment(garbage)
    districts = meta.get("districts") or {}
    if not isinstance(districts, dict):
        problems.append(GarbageProblem(str(directory / META_FILE), None, "'districts' must map district keys to area names"))
    else:
        for key, area in districts.items():
            try:
                garbage.primary.area(str(area))
            except KeyError:
                problems.append(GarbageProblem(str(directory / META_FILE), None,
                                               f"district {key!r} maps to {area!r}, which is not an area of "
                                               f"{garbage.primary.path / 'area_days.csv'}"))
    aliases = meta.get("item_aliases") or {}
    if not isinstance(aliases, dict):
        problems.append(GarbageProblem(str(directory / META_FILE), None,
                                       "'item_aliases' must map item names of the Japanese target.csv to words per language"))
    else:
        names = {item.name for item in garbage.primary.items}
        for item_name, per_lang in aliases.items():
            if str(item_name) not in names:
                problems.append(GarbageProblem(str(directory / META_FILE), None,
                                               f"item alias for {item_name!r}, which is not an item of "
                                               f"{garbage.primary.path / 'target.csv'}"))
            elif not isinstance(per_lang, dict):
                problems.append(GarbageProblem(str(directory / META_FILE), None,
                                               f"item_aliases[{item_name!r}] must map languages to lists of words"))
    if problems:
        raise GarbageFormatError(problems)
    return garbage


def _check_alignment(garbage: GarbageSet) -> list[GarbageProblem]:
    """Translations must describe the same calendar: same number of categories and areas
    and the same schedule in each aligned cell."""
    problems = []
    primary = garbage.primary
    for calendar in garbage.calendars.values():
        if calendar is primary:
            continue
        where = str(calendar.path / "area_days.csv")
        if len(calendar.categories) != len(primary.categories):
            problems.append(GarbageProblem(where, 1, f"{len(calendar.categories)} categories, "
                                                     f"the {primary.lang} data has {len(primary.categories)}"))
            continue
        if len(calendar.areas) != len(primary.areas):
            problems.append(GarbageProblem(where, None, f"{len(calendar.areas)} areas, "
                                                        f"the {primary.lang} data has {len(primary.areas)}"))
            continue
        by_index = {a.index: a for a in primary.areas.values()}
        order = {c.index: c.label for c in primary.categories.values()}
        for area in calendar.areas.values():
            other = by_index[area.index]
            for label, schedule in area.schedules.items():
                other_label = order.get(calendar.categories[label].index) if label in calendar.categories else None
                other_schedule = other.schedules.get(other_label or "")
                if other_schedule is not None and (other_schedule.rules, other_schedule.dates, other_schedule.months) != (
                        schedule.rules, schedule.dates, schedule.months):
                    problems.append(GarbageProblem(where, area.index + 2,
                                                   f"{area.name} / {label} ({schedule.raw!r}) differs from "
                                                   f"{other.name} / {other_label} ({other_schedule.raw!r}) in {primary.lang}"))
    return problems


def load_all(root: Path | str | None = None) -> dict[str, GarbageSet]:
    """Every calendar under ``root`` (default ``knowledge/garbage``), by directory name."""
    root = Path(root) if root else DEFAULT_GARBAGE_DIR
    if not root.is_dir():
        return {}
    return {sub.name: load_garbage_set(sub) for sub in sorted(root.iterdir()) if sub.is_dir()}


def city_calendar(sets: dict[str, GarbageSet]) -> GarbageSet | None:
    """The calendar residents' answers should use: a real (non-sample) one when installed,
    else the sample (answers from it must say it is a sample), else None."""
    real = [s for s in sets.values() if not s.sample]
    if real:
        return real[0]
    return next(iter(sets.values()), None)


def describe_schedule(schedule: Schedule) -> Iterable[str]:
    """Machine-neutral pieces of a cell (for summaries): 'Mon', 'Wed#2', '2020-04-06', 'months 4,6'."""
    names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    for rule in schedule.rules:
        yield names[rule.weekday] + (f"#{rule.nth}" if rule.nth else "")
    for day in schedule.dates:
        yield day.isoformat()
    if schedule.months is not None:
        yield "months " + ",".join(str(m) for m in sorted(schedule.months))


__all__ = [
    "DEFAULT_GARBAGE_DIR",
    "Area",
    "Category",
    "Center",
    "GarbageCalendar",
    "GarbageFormatError",
    "GarbageProblem",
    "GarbageSet",
    "Item",
    "ItemMatch",
    "Rule",
    "Schedule",
    "city_calendar",
    "describe_schedule",
    "load_all",
    "load_calendar",
    "load_garbage_set",
    "month_dates",
    "parse_cell",
]
