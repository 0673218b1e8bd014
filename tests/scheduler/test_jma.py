"""Parsing JMA's real feeds and telegrams (../shared/reference/jma) and judging them for the city."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from scheduler.jma import (
    CityConfig,
    assess,
    intensity_rank,
    is_relevant_title,
    parse_feed,
    parse_telegram,
)

JMA = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "jma"
pytestmark = pytest.mark.skipif(not JMA.is_dir(), reason="../shared/reference/jma is absent (JMA sample telegrams)")


def _telegram(name: str):
    path = next(JMA.glob(f"*/{name}"))
    return parse_telegram(path.read_bytes())


def test_feed_entries_are_read_in_order_with_links():
    entries = parse_feed((JMA / "feeds" / "eqvol.xml").read_bytes())
    assert len(entries) == 23
    assert all(e.id and e.link.endswith(".xml") for e in entries)
    titles = {e.title for e in entries}
    assert "震度速報" in titles and "降灰予報（定時）" in titles
    assert is_relevant_title("震度速報") and not is_relevant_title("降灰予報（定時）")
    assert is_relevant_title("気象警報・注意報（Ｒ０６）（大雨）")


def test_yamaguchi_storm_surge_warning_alerts_the_city():
    telegram = _telegram("15_11_01_150916_VPWW54.xml")
    decision = assess(telegram)
    assert decision is not None
    assert decision.kind == "weather"
    assert decision.issued == (("storm_surge", "warning", "高潮警報"),)
    assert decision.level == 3 and not decision.urgent


def test_advisories_alone_are_not_pushed_unless_configured():
    telegram = _telegram("15_11_01_150916_VPWW54.xml")
    decision = assess(telegram, CityConfig(min_weather_severity="advisory"))
    assert {name for _, _, name in decision.issued} == {"高潮警報", "乾燥注意報", "霜注意報"}


def test_warnings_for_other_prefectures_do_not_alert_the_city():
    for name in ("15_12_01_161130_VPWW53.xml", "15_15_01_220314_VPWW54.xml", "17_01_01_190529_VXWW50.xml"):
        assert assess(_telegram(name)) is None, name


def test_special_warning_is_urgent_for_an_area_that_has_it():
    telegram = _telegram("15_12_01_161130_VPWW53.xml")
    area = next(a for a in telegram.warnings if any(k.code == "33" for k in a.kinds))
    decision = assess(telegram, CityConfig(warning_city_codes=frozenset({area.area_code})))
    assert decision.urgent and decision.level == 5


def test_level_based_warnings_parse_without_crashing():
    rain = _telegram("15_17_01_250630_VPWW55.xml")
    assert rain.type == "weather" and rain.warnings
    continuing = next(a for a in rain.warnings if any(k.code == "03" and k.status == "継続" for k in a.kinds))
    # a warning that continues (継続) was pushed when it was issued: nothing new to send
    assert assess(rain, CityConfig(warning_city_codes=frozenset({continuing.area_code}))) is None
    landslide = _telegram("15_17_01_250630_VPWW56.xml")
    area = next(a for a in landslide.warnings if any(k.code == "49" and k.status == "発表" for k in a.kinds))
    decision = assess(landslide, CityConfig(warning_city_codes=frozenset({area.area_code})))
    assert decision.level == 4
    assert ("landslide", "danger", "レベル４土砂災害危険警報") in decision.issued


def test_landslide_alert_and_its_lifting():
    telegram = _telegram("17_01_01_190529_VXWW50.xml")
    lifted = next(a for a in telegram.warnings if a.kinds[0].status == "解除")
    decision = assess(telegram, CityConfig(warning_city_codes=frozenset({lifted.area_code})))
    assert decision.is_cancellation
    continuing = next(a for a in telegram.warnings if a.kinds[0].status == "継続")
    assert assess(telegram, CityConfig(warning_city_codes=frozenset({continuing.area_code}))) is None


def test_real_yamaguchi_quake_is_below_the_threshold_but_parsed():
    telegram = _telegram("20210217204607_0_VXSE53_270000.xml")
    assert telegram.quake.hypocentre == "山口県北部"
    assert telegram.quake.magnitude == "2.7"
    assert telegram.quake.city_intensity == {"3521300": "1"}
    assert assess(telegram) is None
    decision = assess(telegram, CityConfig(quake_area_codes=frozenset({"700"}), min_intensity="1"))
    assert decision.kind == "earthquake" and decision.intensity == "1"
    assert decision.no_tsunami is True and not decision.urgent


def test_intensity_values_order_including_not_yet_received():
    assert intensity_rank("3") < intensity_rank("5-") < intensity_rank("5+") < intensity_rank("7")
    assert intensity_rank("4 ") == intensity_rank("4")
    assert intensity_rank("震度５弱以上未入電") == intensity_rank("5-")
    assert intensity_rank(None) == 0


def test_drill_tsunami_is_never_pushed():
    telegram = _telegram("32-39_12_02_250206_VTSE41.xml")
    assert telegram.is_drill
    assert assess(telegram) is None


def test_tsunami_issue_then_cancellation_for_yamaguchi_coasts():
    # The official samples are drills that cover both Yamaguchi coasts; judged as if real.
    issued = replace(_telegram("32-39_12_02_250206_VTSE41.xml"), status="通常")
    lifted = replace(_telegram("32-39_12_13_250206_VTSE41.xml"), status="通常")
    first, second = assess(issued), assess(lifted)
    assert first.urgent and not first.is_cancellation
    assert second.is_cancellation and second.key == first.key


def test_real_tsunami_advisory_elsewhere_does_not_alert_the_city():
    assert assess(_telegram("20231009064018_06274659_VTSE41.xml")) is None
    assert assess(_telegram("20231009120003_08446949_VTSE41.xml")) is None


def test_not_a_report_is_a_clear_error():
    with pytest.raises(ValueError, match="not a JMA report"):
        parse_telegram(b"<feed/>")
    with pytest.raises(ValueError, match="well-formed"):
        parse_telegram(b"<Report>")
