"""5374 garbage calendars: every cell form, the year-end shift, item look-up, and the real
Kanazawa / Nonoichi data read from ../shared/reference/5374 (never copied into the project)."""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from knowledge.garbage import (
    DEFAULT_GARBAGE_DIR,
    GarbageFormatError,
    Rule,
    load_all,
    load_calendar,
    load_garbage_set,
    parse_cell,
)

HERE = Path(__file__).resolve().parent
FORMS = HERE / "fixtures" / "garbage" / "forms"
BROKEN = HERE / "fixtures" / "garbage" / "broken"
REF = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "5374"

needs_ref = pytest.mark.skipif(not REF.is_dir(), reason="../shared/reference/5374 (real 5374 data) is absent")
d = date


@pytest.fixture(scope="module")
def forms():
    return load_calendar(FORMS)


@pytest.fixture(scope="module")
def kanazawa():
    if not REF.is_dir():
        pytest.skip("../shared/reference/5374 (real 5374 data) is absent")
    return load_garbage_set(REF / "kanazawa")


@pytest.fixture(scope="module")
def nonoichi():
    if not REF.is_dir():
        pytest.skip("../shared/reference/5374 (real 5374 data) is absent")
    return load_garbage_set(REF / "nonoichi")


# ---- every cell form -------------------------------------------------------------------

def test_parse_cell_weekdays_every_week():
    assert parse_cell("月 木").rules == (Rule(0), Rule(3))


def test_parse_cell_nth_weekdays_and_english_names_case_insensitive():
    assert parse_cell("火1 火3").rules == (Rule(1, 1), Rule(1, 3))
    assert parse_cell("tue1 TUE3").rules == (Rule(1, 1), Rule(1, 3))
    assert parse_cell("Wed2").rules == (Rule(2, 2),)


def test_parse_cell_month_filter():
    schedule = parse_cell("火2 金4:4 6 8 10 12 2")
    assert schedule.rules == (Rule(1, 2), Rule(4, 4))
    assert schedule.months == frozenset({2, 4, 6, 8, 10, 12})


def test_parse_cell_explicit_dates_remarks_and_full_width():
    assert parse_cell("20200504 20200406").dates == (d(2020, 4, 6), d(2020, 5, 4))
    assert parse_cell("木2 *2").remarks == ("2",)
    assert parse_cell("月　木").rules == (Rule(0), Rule(3))
    assert parse_cell("水２").rules == (Rule(2, 2),)
    assert parse_cell("").empty


@pytest.mark.parametrize("cell", ["月曜", "水6", "2020-05-04", "20200231", "火2:13", "*x"])
def test_parse_cell_rejects_unreadable_tokens(cell):
    with pytest.raises(ValueError):
        parse_cell(cell)


def test_next_collections_weekly(forms):
    assert forms.next_collections("週二回", "燃やすごみ", d(2022, 12, 12), 4) == [
        d(2022, 12, 12), d(2022, 12, 15), d(2022, 12, 19), d(2022, 12, 22)]


def test_next_collections_nth_weekday(forms):
    assert forms.next_collections("English", "燃やさないごみ", d(2023, 3, 1), 2) == [d(2023, 3, 8), d(2023, 4, 12)]


def test_next_collections_month_filter_only_in_listed_months(forms):
    # 4th Friday, only in even months (Feb, Apr, Jun…): January and March are skipped.
    assert forms.next_collections("週二回", "あきびん", d(2023, 1, 1), 3) == [d(2023, 2, 24), d(2023, 4, 28), d(2023, 6, 23)]


def test_next_collections_explicit_dates_end_when_the_list_ends(forms):
    assert forms.next_collections("日付", "燃やすごみ", d(2020, 4, 1), 5) == [d(2020, 4, 6), d(2020, 5, 4)]


def test_remark_pointer_resolves_to_remarks_csv(forms):
    assert forms.remarks_for("日付", "燃やさないごみ") == ["一部地域で収集曜日が異なります。"]
    assert forms.next_collections("日付", "燃やさないごみ", d(2020, 4, 1)) == []
    assert forms.next_collections("日付", "あきびん", d(2020, 4, 1), 1) == [d(2020, 4, 9)]
    assert forms.remarks_for("日付", "あきびん") == ["祝日は休み"]


def test_full_width_cells_and_empty_cells(forms):
    assert forms.next_collections("全角", "燃やさないごみ", d(2023, 2, 1), 1) == [d(2023, 2, 8)]
    assert forms.next_collections("全角", "資源", d(2023, 2, 1)) == []


def test_escaped_commas_are_unescaped(forms):
    [match] = forms.find_items("ビールびん,一升びん", limit=1)
    assert match.item.name == "ビールびん,一升びん" and match.item.category == "あきびん"


# ---- year-end shift ----------------------------------------------------------------------

def test_year_end_shift_moves_nth_days_one_week_in_the_shutdown_month(forms):
    # 1st Tuesday of Jan 2023 is the 3rd, inside the shutdown (12/30–1/3): it and the 3rd
    # Tuesday move one week later.
    assert forms.next_collections("週二回", "資源", d(2023, 1, 1), 4) == [
        d(2023, 1, 10), d(2023, 1, 24), d(2023, 2, 7), d(2023, 2, 21)]


def test_year_end_shift_skips_weekly_days_inside_the_shutdown(forms):
    # Monday 2 January falls in the shutdown; Thursday 29 December does not.
    assert forms.next_collections("週二回", "燃やすごみ", d(2022, 12, 28), 4) == [
        d(2022, 12, 29), d(2023, 1, 5), d(2023, 1, 9), d(2023, 1, 12)]


def test_month_filtered_cells_skip_instead_of_shifting(tmp_path):
    root = tmp_path / "cal"
    shutil.copytree(FORMS, root)
    (root / "center.csv").write_text("名称,休止開始日,休止終了日\n東センター,2022/12/23,2022/12/23\nWest,2022/12/30,2023/01/03\n",
                                     encoding="utf-8")
    calendar = load_calendar(root)
    # 4th Friday of Dec 2022 is the 23rd, the shutdown day: skipped, not moved to the 30th.
    assert calendar.next_collections("週二回", "あきびん", d(2022, 12, 1), 1) == [d(2023, 2, 24)]


def test_year_end_shift_on_real_kanazawa_data(kanazawa):
    calendar = kanazawa.primary
    assert calendar.area("浅野川").center == "東部管理センター"
    # 資源 火1 火3 火5: January 2023's Tuesdays are 3 (shutdown), 10, 17, 24, 31.
    assert calendar.next_collections("浅野川", "資源", d(2023, 1, 1), 3) == [d(2023, 1, 10), d(2023, 1, 24), d(2023, 2, 7)]
    # Without the shutdown the same cell keeps its normal days (Nov 2022: 1st, 15th, 29th).
    assert calendar.next_collections("浅野川", "資源", d(2022, 11, 1), 3) == [d(2022, 11, 1), d(2022, 11, 15), d(2022, 11, 29)]
    # 燃やすごみ 月 木: Monday 2 January is skipped.
    assert d(2023, 1, 2) not in calendar.next_collections("浅野川", "燃やすごみ", d(2022, 12, 28), 4)


# ---- items ------------------------------------------------------------------------------

def test_kanazawa_iron_is_non_burnable(kanazawa):
    [match] = kanazawa.find_items("アイロン(金属)", limit=1)
    assert match.item.name == "アイロン(金属)"
    assert match.item.category == "燃やさないごみ"


def test_kanazawa_small_ironing_board_is_burnable_with_its_notice(kanazawa):
    [match] = kanazawa.find_items("アイロン台金属部分80％未満 70cm以下 足がついてないもの", limit=1)
    assert match.item.category == "燃やすごみ"
    assert "足がついてないもの" in match.item.notice


def test_kanazawa_data_shape(kanazawa):
    calendar = kanazawa.primary
    assert len(calendar.areas) == 71
    assert list(calendar.categories) == ["燃やさないごみ", "資源", "燃やすごみ", "あきびん"]
    assert len(calendar.items) > 1200


NONOICHI_PAIRS = [
    ("フライパン", "Frying pans"), ("傘", "Umbrellas"), ("電子レンジ", "Microwave oven"),
    ("乾電池", "Batteries"), ("歯ブラシ", "Toothbrushes"), ("スプレー缶", "Spray cans"),
    ("ビールびん", "Beer bottles"), ("紙おむつ", "Disposable diapers"), ("やかん", "Kettles"),
]


@pytest.mark.parametrize("ja_name, en_name", NONOICHI_PAIRS)
def test_nonoichi_same_item_same_category_in_japanese_and_english(nonoichi, ja_name, en_name):
    [ja] = nonoichi.calendars["ja"].find_items(ja_name, limit=1)
    [en] = nonoichi.calendars["en"].find_items(en_name, limit=1)
    assert (ja.item.name, en.item.name) == (ja_name, en_name)
    assert nonoichi.category_in(ja.item.category, "en") == en.item.category
    assert nonoichi.category_in(en.item.category, "ja") == ja.item.category


def test_nonoichi_english_escapes_and_weekday_names_read_like_japanese(nonoichi):
    ja, en = nonoichi.calendars["ja"], nonoichi.calendars["en"]
    assert "Non-burnable, Cans, Bottles, Plastic Containers" in en.categories
    assert nonoichi.area_in("本町１丁目", "en") == "Honmachi 1 chome"
    for label in ja.categories:
        en_label = nonoichi.category_in(label, "en")
        assert ja.next_collections("本町１丁目", label, d(2026, 1, 1), 6) == \
            en.next_collections("Honmachi 1 chome", en_label, d(2026, 1, 1), 6)


def test_nonoichi_reversed_shutdown_is_a_warning_not_a_guess(nonoichi):
    warnings = [str(w) for w in nonoichi.calendars["ja"].warnings]
    assert any("center.csv:2" in w and "ends before it starts" in w for w in warnings)


def test_nonoichi_town_area_finds_the_collection_area(nonoichi):
    calendar = nonoichi.calendars["ja"]
    assert calendar.town_areas["新庄１丁目"] == "新庄"
    assert calendar.area("新庄１丁目").name == "新庄"


# ---- broken files: clear error with file and line --------------------------------------

@pytest.mark.parametrize(
    "case, file, line, words",
    [
        ("bad_token", "area_days.csv", 3, "2020-05-04"),
        ("bad_remark", "area_days.csv", 3, "*9"),
        ("columns", "area_days.csv", 4, "5 columns"),
        ("description", "area_days.csv", 1, "あきびん"),
        ("center_date", "center.csv", 2, "2022/12/30"),
        ("no_target", "target.csv", 1, "'type'"),
    ],
)
def test_broken_calendar_reports_file_and_line(tmp_path, case, file, line, words):
    root = tmp_path / case
    shutil.copytree(FORMS, root)
    shutil.copytree(BROKEN / case, root, dirs_exist_ok=True)
    with pytest.raises(GarbageFormatError) as caught:
        load_calendar(root)
    problems = [p for p in caught.value.problems if Path(p.file).name == file and p.line == line]
    assert problems and words in problems[0].message, [str(p) for p in caught.value.problems]


def test_missing_required_file_is_named(tmp_path):
    root = tmp_path / "cal"
    shutil.copytree(FORMS, root)
    (root / "description.csv").unlink()
    with pytest.raises(GarbageFormatError, match="description.csv"):
        load_calendar(root)


# ---- the shipped Yamaguchi calendar is a marked sample -------------------------------------

def test_shipped_yamaguchi_calendar_is_marked_as_a_sample():
    sets = load_all()
    assert set(sets) == {"yamaguchi-sample"}
    sample = sets["yamaguchi-sample"]
    assert sample.sample is True
    meta = yaml.safe_load((DEFAULT_GARBAGE_DIR / "yamaguchi-sample" / "calendar.yaml").read_text(encoding="utf-8"))
    assert meta["sample"] is True and meta["verified"] is False
    assert set(sample.calendars) == {"ja", "en"}
    assert len(sample.primary.areas) == 21
    [pet] = sample.find_items("ペットボトル", limit=1)
    assert pet.item.category == "古紙・ペット"


def test_sample_calendar_maps_every_district_key_to_an_area():
    sample = load_all()["yamaguchi-sample"]
    assert len(sample.districts) == 21
    assert sample.area_for("yuda") == "湯田"
    assert sample.area_for("湯田") == "湯田"
    assert sample.area_for("nowhere") is None
    assert sample.area_in(sample.area_for("osaba"), "en") == "Osaba"


def test_district_mapping_to_an_unknown_area_is_an_error(tmp_path):
    root = tmp_path / "cal"
    shutil.copytree(FORMS, root)
    (root / "calendar.yaml").write_text("districts:\n  yuda: 湯田\n", encoding="utf-8")
    with pytest.raises(GarbageFormatError, match="湯田"):
        load_garbage_set(root)


def test_sample_calendar_districts_are_the_knowledge_base_districts():
    from knowledge.validate import check_knowledge

    messages = check_knowledge().kb.messages
    districts = {key.split(".", 1)[1] for key in messages if key.startswith("district.")}
    assert set(load_all()["yamaguchi-sample"].districts) == districts


def test_item_lookup_accepts_hiragana_for_katakana_names(kanazawa):
    [match] = kanazawa.find_items("ふらいぱん", limit=1)
    assert (match.item.name, match.item.category) == ("フライパン(金属)", "燃やさないごみ")


def test_knowledge_base_carries_the_garbage_calendars_and_prefers_a_real_one(tmp_path):
    from knowledge.garbage import city_calendar
    from knowledge.loader import load_knowledge

    kb = load_knowledge()
    assert set(kb.garbage) == {"yamaguchi-sample"}
    assert city_calendar(kb.garbage).sample is True
    real = load_garbage_set(FORMS)
    assert city_calendar({"a-sample": kb.garbage["yamaguchi-sample"], "real": real}) is real
    assert city_calendar({}) is None
