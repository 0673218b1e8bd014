"""knowledge/dates.py: every language reads a date and time without guessing the order."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from knowledge.dates import TOKYO, format_date, format_datetime, format_time, japan_time_label
from knowledge.schema import LANGUAGES
from knowledge.textcheck import ambiguous_dates

#: Tuesday 8 December 2026, 18:30 in Japan (09:30 UTC).
MOMENT = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("lang, expected", [
    ("ja", "2026年12月8日火曜日 18:30（日本時間）"),
    ("en", "Tuesday, December 8, 2026, 18:30 (Japan Time)"),
    ("vi", "Thứ Ba, 8 tháng 12, 2026, 18:30 (Giờ Nhật Bản)"),
    ("zh", "2026年12月8日星期二 18:30（日本时间）"),
    ("ko", "2026년 12월 8일 화요일 18:30 (일본 시간)"),
    ("id", "Selasa, 08 Desember 2026, 18:30 (Waktu Jepang)"),
    ("tl", "Martes, Disyembre 8, 2026, 18:30 (Oras sa Japan)"),
    ("ne", "2026 डिसेम्बर 8, मङ्गलबार, 18:30 (जापान समय)"),
    ("my", "2026 ဒီဇင်ဘာ 8၊ အင်္ဂါ, 18:30 (ဂျပန် အချိန်)"),
    ("pt", "terça-feira, 8 de dezembro de 2026, 18:30 (Horário Japão)"),
])
def test_format_datetime_per_language(lang, expected):
    assert format_datetime(MOMENT, lang) == expected


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_language_gets_a_numeric_day_month(lang):
    text = format_datetime(MOMENT, lang)
    assert ambiguous_dates(text) == [] and "12/8" not in text and "8/12" not in text
    assert "18:30" in text                                  # 24-hour, Japan time (UTC 09:30)
    assert japan_time_label(lang) in text


def test_the_day_is_the_day_in_japan():
    late_utc = datetime(2026, 12, 8, 20, 0, tzinfo=UTC)     # already Wednesday 05:00 in Japan
    assert format_date(late_utc, "en") == "Wednesday, December 9, 2026"
    assert format_time(late_utc) == "05:00"
    assert format_date(date(2026, 12, 9), "en") == "Wednesday, December 9, 2026"


def test_zone_can_be_left_to_the_sentence_and_unknown_languages_fall_back_to_english():
    assert format_datetime(MOMENT, "ja", zone=False) == "2026年12月8日火曜日 18:30"
    assert format_datetime(MOMENT, "xx") == "Tuesday, December 8, 2026, 18:30 (Japan Time)"
    assert format_datetime(MOMENT.astimezone(TOKYO), None).startswith("Tuesday")


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        format_datetime(datetime(2026, 12, 8, 18, 30), "en")
