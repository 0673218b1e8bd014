"""Routing rules over the real knowledge/partners.yaml: topic × segment × language × time
(opening hours, per-language lines, Japanese public holidays) and the SLA promise."""
from __future__ import annotations

from datetime import datetime

import pytest

from bot.consult.routing import TOKYO, due_at, is_holiday, is_open, next_open, route
from knowledge.loader import load_knowledge


@pytest.fixture(scope="module")
def partners():
    kb = load_knowledge()
    assert kb.partners is not None
    return kb.partners


def jst(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


WED_2PM = jst(2026, 11, 25, 14, 0)          # Wednesday
SAT_2PM = jst(2026, 11, 28, 14, 0)          # Saturday
HOLIDAY_MON = jst(2026, 11, 23, 14, 0)      # 勤労感謝の日 (Monday)


@pytest.mark.parametrize("topic, segment, lang, at, expected", [
    ("work", "trainee", "vi", WED_2PM, "otit"),              # mother-tongue line open
    ("work", "trainee", "vi", SAT_2PM, "yfrcc"),             # Vietnamese line is Mon–Fri
    ("work", "trainee", "en", SAT_2PM, "otit"),              # English line is Tue/Sat
    ("work", "trainee", "vi", jst(2026, 11, 25, 20, 0), "yfrcc"),   # after 19:00
    ("work", "trainee", "ko", WED_2PM, "yfrcc"),             # no Korean line
    ("work", "student", "vi", WED_2PM, "yfrcc"),             # OTIT is for trainees only
    ("work", None, "ja", WED_2PM, "labour_office"),          # wages/accidents in Japanese
    ("residence", "student", "en", WED_2PM, "yu_international"),
    ("residence", "student", "zh", WED_2PM, "yfrcc"),
    ("residence", "trainee", "en", WED_2PM, "yfrcc"),
    ("disaster", None, "ja", WED_2PM, "yiea"),
    ("disaster", None, "ja", jst(2026, 11, 25, 20, 0), "yfrcc"),
    ("children", "other", "ja", WED_2PM, "city_intl"),
    ("health", "trainee", "vi", WED_2PM, "yfrcc"),
    ("other", None, None, WED_2PM, "yfrcc"),
])
def test_route_picks_one_organisation(partners, topic, segment, lang, at, expected) -> None:
    assert route(partners, topic, segment, lang, at).org == expected


def test_default_when_the_rule_target_is_excluded(partners) -> None:
    picked = route(partners, "work", "trainee", "vi", WED_2PM, exclude=frozenset({"otit"}))
    assert picked.org == "yfrcc" and picked.rule is None


def test_public_holiday_closes_organisations(partners) -> None:
    assert is_holiday(HOLIDAY_MON.date()) and not is_holiday(WED_2PM.date())
    otit = partners.partners["otit"]
    assert is_open(otit, jst(2026, 11, 16, 14, 0), "vi")          # an ordinary Monday
    assert not is_open(otit, HOLIDAY_MON, "vi")
    assert route(partners, "work", "trainee", "vi", HOLIDAY_MON).org == "yfrcc"


def test_opening_hours_edges(partners) -> None:
    yfrcc = partners.partners["yfrcc"]
    assert not is_open(yfrcc, jst(2026, 11, 25, 8, 29))
    assert is_open(yfrcc, jst(2026, 11, 25, 8, 30))
    assert is_open(yfrcc, jst(2026, 11, 25, 17, 14))
    assert not is_open(yfrcc, jst(2026, 11, 25, 17, 15))
    assert not is_open(yfrcc, jst(2026, 11, 29, 12, 0))              # Sunday


def test_next_open_skips_closed_days_and_holidays(partners) -> None:
    yfrcc = partners.partners["yfrcc"]
    assert next_open(yfrcc, WED_2PM) == WED_2PM                      # open now
    # Saturday evening → Sunday, Monday closed → Tuesday 08:30
    assert next_open(yfrcc, jst(2026, 11, 28, 18, 0)) == jst(2026, 12, 1, 8, 30)
    # Sunday before a holiday Monday → Tuesday
    assert next_open(yfrcc, jst(2026, 11, 22, 10, 0)) == jst(2026, 11, 24, 8, 30)


def test_due_at_counts_the_promise_in_opening_hours(partners) -> None:
    yfrcc = partners.partners["yfrcc"]                               # Tue–Sat 08:30–17:15 (8 h 45)
    # Wed 3 h 15 + Thu 8 h 45 + Fri 8 h 45 = 20 h 45; the last 3 h 15 on Saturday morning
    assert due_at(yfrcc, WED_2PM, hours_to_answer=24) == jst(2026, 11, 28, 11, 45)
    # Saturday after closing: Sunday and Monday closed, Tue + Wed, then 6 h 30 on Thursday
    assert due_at(yfrcc, jst(2026, 11, 28, 18, 0), hours_to_answer=24) == jst(2026, 12, 3, 15, 0)
    # the reviewer's case: Saturday 16:00 — 1 h 15 on Saturday, never a closed Sunday or Monday
    sat_4pm = due_at(yfrcc, jst(2026, 11, 28, 16, 0), hours_to_answer=24)
    assert sat_4pm == jst(2026, 12, 3, 13, 45)
    assert sat_4pm.astimezone(TOKYO).weekday() not in (6, 0)
    # a public holiday (Monday 23 Nov, 勤労感謝の日) counts nothing: from Tuesday 08:30
    assert due_at(yfrcc, jst(2026, 11, 22, 10, 0), hours_to_answer=24) == jst(2026, 11, 26, 15, 0)
    # OTIT's Vietnamese line (Mon–Fri 11–19): Wed 5 h + Thu 8 + Fri 8 + Mon 3
    assert due_at(partners.partners["otit"], WED_2PM, "vi", hours_to_answer=24) == jst(2026, 11, 30, 14, 0)
    labour = partners.partners["labour_office"]                     # hours unknown: from now
    assert due_at(labour, WED_2PM) == jst(2026, 11, 27, 14, 0)     # the default 48 h


def test_response_hours_are_a_deployment_setting() -> None:
    from bot.consult.routing import ResponseHours, configure_response_hours, response_hours
    from bot.settings import Settings

    hours = ResponseHours.parse("36, yfrcc=24,otit=12")
    assert (hours.default, hours.of("yfrcc"), hours.of("otit"), hours.of("yiea")) == (36, 24, 12, 36)
    assert ResponseHours.parse("").default == 48 and ResponseHours.parse("yfrcc=24").of("x") == 48
    for bad in ("soon", "yfrcc=0", "yfrcc=400", "yfrcc=1.5"):
        with pytest.raises(ValueError):
            ResponseHours.parse(bad)
    with pytest.raises(ValueError):
        Settings(consult_response_hours="yfrcc=fast")
    try:
        configure_response_hours("yfrcc=24")
        assert response_hours("yfrcc") == 24 and response_hours("otit") == 48
    finally:
        configure_response_hours(None)
    assert response_hours("yfrcc") == 48
