"""Alert messages: every kind renders in every language (core and extra) from knowledge/alerts.yaml,
with the Japanese terms residents hear; the templates file is checked by `kurashi kb check`;
quiet hours and alert levels."""
from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest
import yaml

from knowledge.alerts import REQUIRED_CATEGORIES, REQUIRED_TSUNAMI_KINDS, load_alerts
from knowledge.schema import EXTRA_LANGUAGES, LANGUAGES
from knowledge.validate import check_knowledge
from scheduler.alerts import alert_level, compose_jma, compose_manual, message_language, quiet_until
from scheduler.jma import TSUNAMI_KINDS, WARNING_KINDS, AlertDecision

DECISIONS = {
    "heavy_rain_special": AlertDecision(kind="weather", key="w", issued=(("heavy_rain", "special", "大雨特別警報"),),
                                        level=5, urgent=True),
    "rain_and_flood": AlertDecision(kind="weather", key="w", issued=(("heavy_rain", "warning", "大雨警報"),
                                                                   ("flood", "warning", "洪水警報"))),
    "lifted": AlertDecision(kind="weather", key="w", cancelled=(("heavy_rain", "warning", "大雨警報"),)),
    "landslide": AlertDecision(kind="landslide", key="l", issued=(("landslide", "danger", "土砂災害警戒情報"),)),
    "landslide_lifted": AlertDecision(kind="landslide", key="l", cancelled=(("landslide", "danger", "土砂災害警戒情報"),)),
    "quake": AlertDecision(kind="earthquake", key="q", issued=(("earthquake", "warning", "震度5-"),), urgent=True,
                           intensity="5-", magnitude="6.1", hypocentre="山口県中部", no_tsunami=True),
    "tsunami": AlertDecision(kind="tsunami", key="t", issued=(("tsunami", "warning", "津波警報"),), urgent=True),
    "tsunami_lifted": AlertDecision(kind="tsunami", key="t", cancelled=(("tsunami", "warning_cancelled", "警報解除"),)),
}


@pytest.fixture(scope="module")
def alerts(kb):
    return load_alerts(kb.root)


def test_every_jma_category_and_tsunami_kind_has_a_name(alerts):
    categories = {c for c, _ in WARNING_KINDS.values()}
    assert categories == set(REQUIRED_CATEGORIES) <= set(alerts.categories)
    pushed = {m for m in TSUNAMI_KINDS.values() if m not in ("forecast", "none")}
    assert pushed == set(REQUIRED_TSUNAMI_KINDS) <= set(alerts.tsunami_kinds)


@pytest.mark.parametrize("name", sorted(DECISIONS))
@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_kind_renders_in_each_language(kb, alerts, name, lang):
    decision = DECISIONS[name]
    reply = compose_jma(kb, alerts, decision, lang)
    text = reply.text
    assert "{" not in text and "}" not in text and "出典：気象庁" in text
    for _, _, jma_name in decision.issued + decision.cancelled:
        if decision.kind in ("weather", "landslide"):
            assert jma_name in text                       # the Japanese name as on TV / loudspeakers
    if decision.issued:
        assert reply.buttons[0].data == "i:disaster.shelter"
    else:
        assert "解除" in text and not reply.buttons
    if name == "heavy_rain_special":
        assert "緊急安全確保" in text and "警戒レベル5相当" in text
    if name == "rain_and_flood":
        assert "高齢者等避難" in text and "警戒レベル3相当" in text
    if name == "landslide":
        assert "避難指示" in text and "警戒レベル4相当" in text
    if name == "quake":
        assert "震度5弱" in text and "山口県中部" in text and "119" in text


def test_levels_follow_the_japanese_guideline():
    def level(*issued, kind="weather"):
        return alert_level(AlertDecision(kind=kind, key="k", issued=issued))

    assert level(("storm_surge", "warning", "高潮警報")) == 4              # old system: 高潮警報 = Level 4 相当
    assert level(("storm_surge", "warning", "レベル３高潮警報")) == 3      # 2026 system states it
    assert level(("heavy_rain", "danger", "レベル４大雨危険警報")) == 4
    assert level(("storm", "warning", "暴風警報")) is None                  # wind has no alert level
    assert level(("heavy_rain", "warning", "大雨警報"), ("heavy_rain", "special", "大雨特別警報")) == 5


def test_manual_alerts_fall_back_to_english_then_japanese(kb, alerts):
    assert compose_manual(kb, alerts, {"en": "Water outage", "ja": "だんすい"}, "vi").text.endswith("Water outage")
    assert compose_manual(kb, alerts, {"ja": "だんすい"}, "ko").text.endswith("だんすい")
    assert message_language("ko", alerts) == "ko"
    assert message_language("fr", alerts) == "en" and message_language(None, alerts) == "en"


@pytest.mark.parametrize("lang", EXTRA_LANGUAGES)
def test_extra_language_residents_get_alerts_in_their_language(kb, alerts, lang):
    assert message_language(lang, alerts) == lang
    english = compose_jma(kb, alerts, DECISIONS["heavy_rain_special"], "en").text
    text = compose_jma(kb, alerts, DECISIONS["heavy_rain_special"], lang).text
    english_lines = set(english.splitlines())
    # no line of the alert falls back to English (the JMA attribution line differs too)
    assert not [line for line in text.splitlines() if line in english_lines and line.strip()]


@pytest.mark.parametrize(("local_now", "start", "end", "until"), [
    ("23:30", "22:00", "07:00", "07:00+1"),     # over midnight, before it
    ("02:10", "22:00", "07:00", "07:00"),       # over midnight, after it
    ("12:00", "22:00", "07:00", None),
    ("13:00", "12:00", "14:00", "14:00"),
    ("14:00", "12:00", "14:00", None),          # the end is not inside
    ("13:00", None, "14:00", None),
    ("13:00", "12:00", "12:00", None),
])
def test_quiet_hours_defer_to_their_end_in_tokyo_time(local_now, start, end, until):
    from zoneinfo import ZoneInfo

    tokyo = ZoneInfo("Asia/Tokyo")
    hh, mm = map(int, local_now.split(":"))
    now = datetime(2026, 11, 25, hh, mm, tzinfo=tokyo).astimezone(UTC)
    got = quiet_until(now, start, end)
    if until is None:
        assert got is None
    else:
        day = 26 if until.endswith("+1") else 25
        h, m = map(int, until.split("+")[0].split(":"))
        assert got == datetime(2026, 11, day, h, m, tzinfo=tokyo).astimezone(UTC)


def _broken_copy(kb, tmp_path, mutate):
    root = tmp_path / "knowledge"
    shutil.copytree(kb.root, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    data = yaml.safe_load((root / "alerts.yaml").read_text(encoding="utf-8"))
    mutate(data)
    (root / "alerts.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return check_knowledge(root)


def test_kb_check_accepts_the_shipped_templates(kb):
    report = check_knowledge(kb.root)
    assert not [p for p in report.errors if "alerts.yaml" in p.file]


@pytest.mark.parametrize(("mutate", "code"), [
    (lambda d: d["templates"]["weather.issued"].pop("ko"), "alert_missing_language"),
    (lambda d: d["categories"]["storm_surge"].pop("ne"), "alert_incomplete_language"),
    (lambda d: d["templates"]["weather.issued"].update(pt="⚠️ {whaat}"), "alert_format_fields"),
    (lambda d: d["templates"]["weather.issued"].update(vi="Cảnh báo {whaat}"), "alert_format_fields"),
    (lambda d: d["templates"].pop("action.tsunami"), "alert_missing_template"),
    (lambda d: d["categories"].pop("storm_surge"), "alert_missing_entry"),
    (lambda d: d.update(shelter_intent="disaster.nowhere"), "alert_unknown_intent"),
    (lambda d: d["templates"]["source"].update(en="{{nobody.phone}}"), "dangling_contact"),
])
def test_kb_check_reports_broken_templates(kb, tmp_path, mutate, code):
    report = _broken_copy(kb, tmp_path, mutate)
    assert code in {p.code for p in report.errors if p.file.endswith("alerts.yaml")}
