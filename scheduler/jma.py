"""JMA disaster XML (気象庁防災情報XML): Atom feeds and telegrams, parsed into plain data.

Owns: reading JMA's Atom feeds (extra.xml / eqvol.xml and their long ``_l`` variants) and
the telegrams they point at — weather warnings (VPWW53/54 and the level-based VPWW55–61),
landslide alerts (VXWW50), seismic intensity reports (VXSE51), hypocentre and intensity
(VXSE53) and tsunami warnings (VTSE41) — and deciding what they mean for Yamaguchi City.
Pure functions: no I/O, no database, nothing from bot/. XML is parsed with defusedxml
(JMA's feed is external input). Source of the codes: ../shared/reference/DATA.md and the
code tables in ../shared/reference/jma/codes/ (出典：気象庁).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

ATOM = "{http://www.w3.org/2005/Atom}"

#: Feed entry titles (情報名) worth fetching; everything else in a feed is skipped unread.
RELEVANT_TITLES: frozenset[str] = frozenset({
    "気象特別警報・警報・注意報",
    "気象警報・注意報",
    "気象警報・注意報（Ｈ２７）",
    "土砂災害警戒情報",
    "震度速報",
    "震源・震度に関する情報",
    "津波警報・注意報・予報a",
    "津波警報・注意報・予報",
})
#: The level-based system (2026-) titles look like 気象警報・注意報（Ｒ０６）（大雨）.
_RELEVANT_PREFIXES = ("気象警報・注意報（Ｒ", "気象特別警報・警報・注意報", "気象警報・注意報")

# --- codes -----------------------------------------------------------------------------

#: Weather warning kind code → (category, severity). Severity: "special" (特別警報),
#: "danger" (レベル4 危険警報 / 土砂災害警戒情報), "warning" (警報), "advisory" (注意報).
WARNING_KINDS: dict[str, tuple[str, str]] = {
    "02": ("snowstorm", "warning"), "03": ("heavy_rain", "warning"), "04": ("flood", "warning"),
    "05": ("storm", "warning"), "06": ("heavy_snow", "warning"), "07": ("high_waves", "warning"),
    "08": ("storm_surge", "warning"), "09": ("landslide", "warning"),
    "10": ("heavy_rain", "advisory"), "12": ("heavy_snow", "advisory"), "13": ("snowstorm", "advisory"),
    "14": ("thunderstorm", "advisory"), "15": ("strong_wind", "advisory"), "16": ("high_waves", "advisory"),
    "17": ("snowmelt", "advisory"), "18": ("flood", "advisory"), "19": ("storm_surge", "advisory"),
    "20": ("dense_fog", "advisory"), "21": ("dry_air", "advisory"), "22": ("avalanche", "advisory"),
    "23": ("low_temperature", "advisory"), "24": ("frost", "advisory"), "25": ("icing", "advisory"),
    "26": ("snow_accretion", "advisory"), "27": ("other", "advisory"), "29": ("landslide", "advisory"),
    "32": ("snowstorm", "special"), "33": ("heavy_rain", "special"), "35": ("storm", "special"),
    "36": ("heavy_snow", "special"), "37": ("high_waves", "special"), "38": ("storm_surge", "special"),
    "39": ("landslide", "special"),
    "43": ("heavy_rain", "danger"), "48": ("storm_surge", "danger"), "49": ("landslide", "danger"),
}
SEVERITY_RANK = {"advisory": 1, "warning": 2, "danger": 3, "special": 4}
#: 警戒レベル that each severity corresponds to (Cabinet Office guideline, DATA.md §6):
#: 注意報 = Level 2, 警報 = Level 3 相当, 危険警報/土砂災害警戒情報 = Level 4 相当,
#: 特別警報 = Level 5 相当.
SEVERITY_LEVEL = {"advisory": 2, "warning": 3, "danger": 4, "special": 5}

TSUNAMI_KINDS: dict[str, str] = {
    "52": "major_warning", "53": "major_warning", "51": "warning", "62": "advisory",
    "71": "forecast", "72": "forecast", "73": "forecast",
    "50": "warning_cancelled", "60": "advisory_cancelled", "00": "none",
}

INTENSITY_ORDER = ["1", "2", "3", "4", "5-", "5+", "6-", "6+", "7"]
_INTENSITY_NORMAL = {"５弱": "5-", "５強": "5+", "６弱": "6-", "６強": "6+"}


def intensity_rank(value: str | None) -> int:
    """Order of a JMA intensity value ('1'…'7', '5-', '5+'); 0 when absent or unknown.

    ``震度５弱以上未入電`` (5-lower or more, not yet received) ranks as 5-.
    """
    if not value:
        return 0
    value = value.strip()
    if "未入電" in value:
        return INTENSITY_ORDER.index("5-") + 1
    value = _INTENSITY_NORMAL.get(value, value)
    return INTENSITY_ORDER.index(value) + 1 if value in INTENSITY_ORDER else 0


# --- data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEntry:
    id: str
    title: str
    updated: str
    link: str
    author: str = ""
    content: str = ""


@dataclass(frozen=True)
class WarningKind:
    code: str
    name: str
    status: str          # 発表 / 継続 / 解除 / なし / 特別警報から警報 … (as JMA writes it)


@dataclass(frozen=True)
class AreaWarning:
    area_code: str
    area_name: str
    kinds: tuple[WarningKind, ...]


@dataclass(frozen=True)
class TsunamiItem:
    area_code: str
    area_name: str
    kind_code: str
    kind_name: str
    last_kind_code: str | None = None


@dataclass(frozen=True)
class Quake:
    origin_time: str | None
    hypocentre: str | None
    magnitude: str | None
    max_intensity: str | None
    #: intensity by code: prefecture codes ("35"), area codes ("704"), city codes ("3520300")
    pref_intensity: dict[str, str] = field(default_factory=dict)
    area_intensity: dict[str, str] = field(default_factory=dict)
    city_intensity: dict[str, str] = field(default_factory=dict)
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Telegram:
    """One JMA report, reduced to what kurashi needs."""

    type: str                # "weather", "landslide", "intensity", "quake", "tsunami", "other"
    title: str               # Control/Title (情報名)
    status: str              # Control/Status: 通常 / 訓練 / 試験
    info_type: str           # Head/InfoType: 発表 / 訂正 / 遅延 / 取消
    event_id: str
    report_time: str
    office: str
    headline: str
    warnings: tuple[AreaWarning, ...] = ()
    quake: Quake | None = None
    tsunami: tuple[TsunamiItem, ...] = ()

    @property
    def is_drill(self) -> bool:
        """訓練 (drill) and 試験 (test) telegrams are never pushed to residents."""
        return self.status != "通常"


# --- parsing ----------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(el: Element | None, name: str) -> list[Element]:
    return [c for c in el if _local(c.tag) == name] if el is not None else []


def _child(el: Element | None, name: str) -> Element | None:
    found = _children(el, name)
    return found[0] if found else None


def _text(el: Element | None, *path: str) -> str:
    for name in path:
        el = _child(el, name)
    return (el.text or "").strip() if el is not None else ""


def _iter(el: Element, name: str) -> Iterable[Element]:
    return (e for e in el.iter() if _local(e.tag) == name)


def is_relevant_title(title: str) -> bool:
    title = title.strip()
    return title in RELEVANT_TITLES or title.startswith(_RELEVANT_PREFIXES)


def parse_feed(data: bytes | str) -> list[FeedEntry]:
    """Entries of a JMA Atom feed, in feed order."""
    root = SafeET.fromstring(data)
    entries = []
    for entry in root.findall(f"{ATOM}entry"):
        link = ""
        for link_el in entry.findall(f"{ATOM}link"):
            if link_el.get("type", "application/xml") == "application/xml" or not link:
                link = link_el.get("href", "")
        entries.append(FeedEntry(
            id=(entry.findtext(f"{ATOM}id") or "").strip(),
            title=(entry.findtext(f"{ATOM}title") or "").strip(),
            updated=(entry.findtext(f"{ATOM}updated") or "").strip(),
            link=link.strip(),
            author=(entry.findtext(f"{ATOM}author/{ATOM}name") or "").strip(),
            content=(entry.findtext(f"{ATOM}content") or "").strip(),
        ))
    return entries


def _telegram_type(title: str) -> str:
    if title.startswith(("気象特別警報", "気象警報")):
        return "weather"
    if title.startswith("土砂災害警戒情報"):
        return "landslide"
    if title == "震度速報":
        return "intensity"
    if title.startswith(("震源・震度", "震源に関する")):
        return "quake"
    if title.startswith("津波警報"):
        return "tsunami"
    return "other"


def _parse_warnings(body: Element) -> tuple[AreaWarning, ...]:
    out = []
    for warning in _children(body, "Warning"):
        for item in _children(warning, "Item"):
            kinds = tuple(
                WarningKind(code=_text(k, "Code"), name=_text(k, "Name"), status=_text(k, "Status"))
                for k in _children(item, "Kind")
            )
            areas = _children(item, "Area") or _children(_child(item, "Areas"), "Area")
            for area in areas:
                out.append(AreaWarning(area_code=_text(area, "Code"), area_name=_text(area, "Name"), kinds=kinds))
    return tuple(out)


def _parse_quake(body: Element) -> Quake | None:
    earthquake = _child(body, "Earthquake")
    intensity = _child(body, "Intensity")
    if earthquake is None and intensity is None:
        return None
    observation = _child(intensity, "Observation")
    pref_int: dict[str, str] = {}
    area_int: dict[str, str] = {}
    city_int: dict[str, str] = {}
    for pref in _children(observation, "Pref"):
        pref_int[_text(pref, "Code")] = _text(pref, "MaxInt")
        for area in _children(pref, "Area"):
            area_int[_text(area, "Code")] = _text(area, "MaxInt")
            for city in _children(area, "City"):
                city_int[_text(city, "Code")] = _text(city, "MaxInt") or _text(city, "Condition")
    magnitude = None
    if earthquake is not None:
        for el in earthquake:
            if _local(el.tag) == "Magnitude":
                magnitude = (el.text or "").strip() or el.get("description")
    comments = tuple(t.text.strip() for t in _iter(_child(body, "Comments") or body, "Text")
                     if t.text and _child(body, "Comments") is not None)
    return Quake(
        origin_time=_text(earthquake, "OriginTime") or None,
        hypocentre=_text(earthquake, "Hypocenter", "Area", "Name") or None,
        magnitude=magnitude,
        max_intensity=_text(observation, "MaxInt") or None,
        pref_intensity=pref_int, area_intensity=area_int, city_intensity=city_int,
        comments=comments,
    )


def _parse_tsunami(body: Element) -> tuple[TsunamiItem, ...]:
    forecast = _child(_child(body, "Tsunami"), "Forecast")
    items = []
    for item in _children(forecast, "Item"):
        category = _child(item, "Category")
        items.append(TsunamiItem(
            area_code=_text(item, "Area", "Code"), area_name=_text(item, "Area", "Name"),
            kind_code=_text(category, "Kind", "Code"), kind_name=_text(category, "Kind", "Name"),
            last_kind_code=_text(category, "LastKind", "Code") or None,
        ))
    return tuple(items)


def parse_telegram(data: bytes | str) -> Telegram:
    """Parse one JMA XML telegram. Raises ``ValueError`` for a document that is not one."""
    try:
        root = SafeET.fromstring(data)
    except SafeET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from exc
    if _local(root.tag) != "Report":
        raise ValueError(f"not a JMA report (root element {_local(root.tag)!r})")
    control, head, body = _child(root, "Control"), _child(root, "Head"), _child(root, "Body")
    title = _text(control, "Title")
    kind = _telegram_type(title)
    headline = _text(head, "Headline", "Text")
    telegram = Telegram(
        type=kind, title=title, status=_text(control, "Status"), info_type=_text(head, "InfoType"),
        event_id=_text(head, "EventID"), report_time=_text(head, "ReportDateTime"),
        office=_text(control, "PublishingOffice"), headline=headline,
    )
    if body is None:
        return telegram
    if kind in ("weather", "landslide"):
        return _replace(telegram, warnings=_parse_warnings(body))
    if kind in ("intensity", "quake"):
        return _replace(telegram, quake=_parse_quake(body))
    if kind == "tsunami":
        return _replace(telegram, tsunami=_parse_tsunami(body), quake=_parse_quake(body))
    return telegram


def _replace(telegram: Telegram, **changes) -> Telegram:
    from dataclasses import replace
    return replace(telegram, **changes)


# --- relevance for the city --------------------------------------------------------------


@dataclass(frozen=True)
class CityConfig:
    """Where Yamaguchi City is in JMA's code tables (DATA.md §4) and what is worth a push."""

    #: warning areas: 市町村等 3520300 山口市 (the most specific; JMA lists the city itself)
    warning_city_codes: frozenset[str] = frozenset({"3520300"})
    #: earthquake 細分区域 covering the city (山口県中部 704; check against JMA's table)
    quake_area_codes: frozenset[str] = frozenset({"704"})
    quake_city_codes: frozenset[str] = frozenset({"3520300"})
    quake_pref_code: str = "35"
    #: the prefecture's coasts (山口県日本海沿岸 700, 山口県瀬戸内海沿岸 701)
    tsunami_area_codes: frozenset[str] = frozenset({"700", "701"})
    #: push an earthquake at this intensity or more in the city (JMA value, e.g. "3")
    min_intensity: str = "3"
    #: intensity from which quiet hours are ignored
    urgent_intensity: str = "5-"
    #: lowest weather severity pushed ("warning" = 警報 and above; "advisory" adds 注意報)
    min_weather_severity: str = "warning"


@dataclass(frozen=True)
class AlertDecision:
    """What one telegram means for residents of the city: what to push, or cancel."""

    kind: str                       # "weather", "landslide", "earthquake", "tsunami"
    key: str                        # stable id of the hazard (for de-duplication and cancellation)
    issued: tuple[tuple[str, str, str], ...] = ()      # (category, severity, JMA name) newly in force
    cancelled: tuple[tuple[str, str, str], ...] = ()   # (category, severity, JMA name) lifted
    level: int | None = None        # 警戒レベル where it applies (3, 4, 5)
    urgent: bool = False            # ignores quiet hours (特別警報, tsunami, strong quakes)
    intensity: str | None = None
    magnitude: str | None = None
    hypocentre: str | None = None
    no_tsunami: bool | None = None
    headline: str = ""

    @property
    def is_cancellation(self) -> bool:
        return not self.issued and bool(self.cancelled)


_ISSUE_STATUSES = ("発表", "特別警報から警報", "警報から特別警報", "注意報から警報", "警報から注意報")


def assess(telegram: Telegram, config: CityConfig = CityConfig()) -> AlertDecision | None:
    """Decide whether ``telegram`` warrants a push (or a cancellation) for the city.

    Returns None for drills/tests, corrections with nothing new, other areas, and
    continuing (継続) warnings that residents already got.
    """
    if telegram.is_drill or telegram.info_type == "取消":
        return None
    if telegram.type == "weather":
        return _assess_weather(telegram, config)
    if telegram.type == "landslide":
        return _assess_landslide(telegram, config)
    if telegram.type in ("intensity", "quake"):
        return _assess_quake(telegram, config)
    if telegram.type == "tsunami":
        return _assess_tsunami(telegram, config)
    return None


def _assess_weather(telegram: Telegram, config: CityConfig) -> AlertDecision | None:
    floor = SEVERITY_RANK[config.min_weather_severity]
    issued, cancelled = [], []
    for area in telegram.warnings:
        if area.area_code not in config.warning_city_codes:
            continue
        for kind in area.kinds:
            category, severity = WARNING_KINDS.get(kind.code, (None, None))
            if category is None or SEVERITY_RANK[severity] < floor:
                continue
            entry = (category, severity, kind.name)
            if kind.status == "解除":
                cancelled.append(entry)
            elif kind.status in _ISSUE_STATUSES or kind.status.endswith("から特別警報"):
                issued.append(entry)
        break  # the city appears once; later duplicates (other Warning types) add nothing
    # a warning downgraded to an advisory (警報から注意報) shows up with the advisory code:
    # it is below the floor, so the warning counts as lifted only when JMA says 解除.
    issued = _dedupe(issued)
    cancelled = _dedupe(cancelled)
    if not issued and not cancelled:
        return None
    top = max((SEVERITY_RANK[s] for _, s, _ in issued), default=0)
    severity = next((s for s, r in SEVERITY_RANK.items() if r == top), None)
    return AlertDecision(
        kind="weather", key=f"weather:{telegram.office}",
        issued=tuple(issued), cancelled=tuple(cancelled),
        level=SEVERITY_LEVEL.get(severity) if severity else None,
        urgent=severity == "special", headline=telegram.headline,
    )


def _assess_landslide(telegram: Telegram, config: CityConfig) -> AlertDecision | None:
    for area in telegram.warnings:
        if area.area_code not in config.warning_city_codes:
            continue
        for kind in area.kinds:
            entry = ("landslide", "danger", "土砂災害警戒情報")
            if kind.code == "3" and kind.status == "発表":
                return AlertDecision(kind="landslide", key=f"landslide:{area.area_code}", issued=(entry,),
                                     level=4, headline=telegram.headline)
            if kind.code == "1" or kind.status == "解除":
                return AlertDecision(kind="landslide", key=f"landslide:{area.area_code}", cancelled=(entry,),
                                     headline=telegram.headline)
    return None


def _assess_quake(telegram: Telegram, config: CityConfig) -> AlertDecision | None:
    quake = telegram.quake
    if quake is None:
        return None
    values = [v for c, v in quake.city_intensity.items() if c in config.quake_city_codes]
    if not values:
        values = [v for c, v in quake.area_intensity.items() if c in config.quake_area_codes]
    intensity = max(values, key=intensity_rank, default=None)
    if intensity_rank(intensity) < intensity_rank(config.min_intensity):
        return None
    comments = " ".join(quake.comments)
    return AlertDecision(
        kind="earthquake", key=f"earthquake:{telegram.event_id}",
        issued=(("earthquake", "warning", f"震度{intensity}"),),
        urgent=intensity_rank(intensity) >= intensity_rank(config.urgent_intensity),
        intensity=intensity, magnitude=quake.magnitude, hypocentre=quake.hypocentre,
        no_tsunami=("津波の心配はありません" in comments) or None,
        headline=telegram.headline,
    )


def _assess_tsunami(telegram: Telegram, config: CityConfig) -> AlertDecision | None:
    issued, cancelled = [], []
    for item in telegram.tsunami:
        if item.area_code not in config.tsunami_area_codes:
            continue
        meaning = TSUNAMI_KINDS.get(item.kind_code)
        if meaning in ("major_warning", "warning", "advisory"):
            issued.append(("tsunami", meaning, item.kind_name))
        elif meaning in ("warning_cancelled", "advisory_cancelled"):
            cancelled.append(("tsunami", meaning, item.kind_name))
    issued, cancelled = _dedupe(issued), _dedupe(cancelled)
    if not issued and not cancelled:
        return None
    return AlertDecision(
        kind="tsunami", key=f"tsunami:{telegram.event_id}", issued=tuple(issued), cancelled=tuple(cancelled),
        urgent=bool(issued), headline=telegram.headline,
    )


def _dedupe(entries: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    seen, out = set(), []
    for entry in entries:
        if entry not in seen:
            seen.add(entry)
            out.append(entry)
    return out


def parse_time(value: str) -> datetime | None:
    """ISO-8601 time as JMA writes it (with offset or Z)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(re.sub(r"Z$", "+00:00", value))
    except ValueError:
        return None
