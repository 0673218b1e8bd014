"""Disaster alert templates: ``knowledge/alerts.yaml`` read and checked.

Owns: ``check_alerts`` (called from ``knowledge.validate.check_knowledge``, i.e. by
``kurashi kb check`` and at start-up: every template the alert pipeline uses exists in
every core language with the same format fields — and in every extra language that has
``templates.weather.issued``, since that makes scheduler/alerts.py write the whole alert in
it (a partly translated language would mix languages) —, contact placeholders resolve, the
shelter answer exists, every JMA warning category and tsunami kind has a name) and
``load_alerts(root)`` (the parsed file, cached per root, for scheduler/alerts.py).

Imports nothing from bot/, intents/ or scheduler/ (the category list below mirrors
scheduler/jma.py; tests/scheduler checks that the two agree).
"""
from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from knowledge.placeholders import check_placeholders
from knowledge.schema import CORE_LANGUAGES, EXTRA_LANGUAGES, PLACEHOLDER, AlertsFile, Contact, Intent
from knowledge.yamlio import read_optional_model

FILE = "alerts.yaml"

#: Template keys the alert pipeline looks up, with the format fields each must use.
REQUIRED_TEMPLATES: dict[str, frozenset[str]] = {
    "what": frozenset({"name", "jma"}),
    "weather.issued": frozenset({"what"}),
    "weather.cancelled": frozenset({"what"}),
    "landslide.issued": frozenset(),
    "landslide.cancelled": frozenset(),
    "earthquake.issued": frozenset({"intensity", "intensity_ja"}),
    "earthquake.detail": frozenset({"hypocentre", "magnitude"}),
    "earthquake.no_tsunami": frozenset(),
    "intensity.lower": frozenset({"n"}),
    "intensity.upper": frozenset({"n"}),
    "tsunami.issued": frozenset({"what"}),
    "tsunami.cancelled": frozenset({"what"}),
    "manual": frozenset({"text"}),
    "action.weather.advisory": frozenset(),
    "action.weather.warning": frozenset(),
    "action.weather.danger": frozenset(),
    "action.weather.special": frozenset(),
    "action.landslide": frozenset(),
    "action.earthquake": frozenset(),
    "action.earthquake.strong": frozenset(),
    "action.tsunami": frozenset(),
    "action.tsunami.advisory": frozenset(),
    "action.cancelled": frozenset(),
    "source": frozenset(),
    "button.shelter": frozenset(),
}
REQUIRED_LEVELS = (3, 4, 5)
REQUIRED_SEVERITIES = ("advisory", "warning", "danger", "special")
#: Categories of scheduler.jma.WARNING_KINDS.
REQUIRED_CATEGORIES = (
    "heavy_rain", "flood", "storm", "snowstorm", "heavy_snow", "high_waves", "storm_surge", "landslide",
    "thunderstorm", "strong_wind", "snowmelt", "dense_fog", "dry_air", "avalanche", "low_temperature",
    "frost", "icing", "snow_accretion", "other",
)
REQUIRED_TSUNAMI_KINDS = ("major_warning", "warning", "advisory", "warning_cancelled", "advisory_cancelled")


def _fields(template: str) -> set[str]:
    # Contact placeholders {{key.field}} are filled before str.format; hide them here.
    template = PLACEHOLDER.sub("", template)
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


def check_alerts(root: Path, contacts: dict[str, Contact] | None, intents: dict[str, Intent] | None,
                 out: Any) -> AlertsFile | None:
    """Validate ``<root>/alerts.yaml`` into ``out`` (validate's collector); the parsed file or None.

    A knowledge base without the file is valid (no disaster alerts can be pushed; the
    scheduler refuses to start the JMA poll); a file that exists must be complete.
    """
    loaded = read_optional_model(root / FILE, AlertsFile, out)
    if loaded is None:
        return None
    doc, parsed = loaded
    assert isinstance(parsed, AlertsFile)
    name = doc.name

    # An extra language with the title template is an alert language (message_language): complete.
    alert_extra = [lang for lang in EXTRA_LANGUAGES
                   if (parsed.templates.get("weather.issued") or {}).get(lang, "").strip()]

    def check_localized(section: str, key: Any, values: dict[str, str], fields: frozenset[str] | None) -> None:
        where = (section, key)
        for lang in CORE_LANGUAGES:
            if not (values.get(lang) or "").strip():
                out.add(name, doc.line(where), "alert_missing_language",
                        f"{section}.{key} has no text in core language {lang!r}")
        for lang in alert_extra:
            if not (values.get(lang) or "").strip():
                out.add(name, doc.line(where), "alert_incomplete_language",
                        f"{section}.{key} has no text in {lang!r}, although alerts are written in {lang!r} "
                        "(templates.weather.issued has it): translate it or remove the language")
        for lang, text in values.items():
            check_placeholders(text, contacts, doc, where + (lang,), out, f"alerts {section}.{key} {lang}")
            try:
                used = _fields(text)
            except ValueError as exc:
                out.add(name, doc.line(where + (lang,)), "alert_format_invalid",
                        f"{section}.{key} ({lang}) is not a valid format template: {exc}")
                continue
            if fields is not None and used != set(fields):
                out.add(name, doc.line(where + (lang,)), "alert_format_fields",
                        f"{section}.{key} ({lang}) uses fields {sorted(used)}; expected {sorted(fields)}")

    for key, fields in REQUIRED_TEMPLATES.items():
        if key not in parsed.templates:
            out.add(name, doc.line(("templates",)), "alert_missing_template", f"template {key!r} is missing")
    for key, values in parsed.templates.items():
        check_localized("templates", key, dict(values), REQUIRED_TEMPLATES.get(key))
    for section, required, fields in (
        ("levels", REQUIRED_LEVELS, frozenset()),
        ("severities", REQUIRED_SEVERITIES, frozenset({"category"})),
        ("categories", REQUIRED_CATEGORIES, frozenset()),
        ("tsunami_kinds", REQUIRED_TSUNAMI_KINDS, frozenset()),
    ):
        table = getattr(parsed, section)
        for key in required:
            if key not in table:
                out.add(name, doc.line((section,)), "alert_missing_entry", f"{section}: {key!r} is missing")
        for key, values in table.items():
            check_localized(section, key, dict(values), fields)
    for category in parsed.level_categories:
        if category not in parsed.categories:
            out.add(name, doc.line(("level_categories",)), "alert_unknown_category",
                    f"level_categories names unknown category {category!r}")
    if intents is not None and parsed.shelter_intent not in intents:
        out.add(name, doc.line(("shelter_intent",)), "alert_unknown_intent",
                f"shelter_intent {parsed.shelter_intent!r} is not an intent in topics/*.yaml")
    return parsed


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> AlertsFile:
    with open(path, encoding="utf-8") as fh:
        return AlertsFile.model_validate(yaml.safe_load(fh))


def load_alerts(root: Path | str) -> AlertsFile:
    """The parsed ``<root>/alerts.yaml`` (validated by ``kurashi kb check`` at start-up).

    Raises FileNotFoundError when the knowledge base has no alert templates.
    """
    path = Path(root) / FILE
    return _load(str(path), path.stat().st_mtime)
