"""The text checks of `kurashi kb check` (knowledge/textcheck.py): Easy Japanese, the
glossary, rendered length and ambiguous dates — on a fixture with file and line, and the
measuring functions one by one."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.render import render_answer, render_sections, split_sections
from knowledge.schema import GlossaryFile
from knowledge.textcheck import (
    RENDERED_BUDGET,
    ambiguous_dates,
    banned_uses,
    basic_kanji,
    double_negatives,
    easy_japanese_findings,
    missing_words,
    plain_form,
    sentence_length,
    unread_kanji,
)
from knowledge.validate import check_knowledge
from tests.knowledge.test_kb_cli import run_kurashi


def _found(problems):
    return {(p.code, Path(p.file).name, p.line) for p in problems}


@pytest.fixture
def report(make_kb):
    return check_knowledge(make_kb("text"))


@pytest.mark.parametrize("code, line", [
    ("glossary_banned", 13),        # vi "thẻ ngoại kiều"
    ("glossary_banned", 14),        # zh 转入届
    ("glossary_banned", 28),        # zh bare 法テラス (the preferred word wraps it elsewhere)
])
def test_glossary_banned_variant_is_an_error_with_file_line_and_preferred_word(report, code, line):
    assert (code, "text.yaml", line) in _found(report.errors)
    [problem] = [p for p in report.errors if p.code == code and p.line == line]
    assert "write '" in problem.message


def test_glossary_variant_inside_the_preferred_word_is_allowed(report):
    # line 14 also says 日本司法支援中心（法テラス）: only 转入届 is reported there
    messages = [p.message for p in report.errors if p.line == 14]
    assert len(messages) == 1 and "转入届" in messages[0]


@pytest.mark.parametrize("code, line", [
    ("easy_ja_long_sentence", 5),
    ("easy_ja_kanji", 5),
    ("easy_ja_plain_form", 5),
    ("easy_ja_double_negative", 5),
    ("ambiguous_date", 5),
    ("ambiguous_date", 12),
    ("glossary_word_missing", 14),
    ("answer_too_long", 27),        # vi: one section of 559 characters
    ("answer_too_long", 29),        # ko: section 1 over 250 after rendering
])
def test_text_warnings_with_file_and_line(report, code, line):
    assert (code, "text.yaml", line) in _found(report.warnings), [str(p) for p in report.warnings]


def test_kanji_warning_names_only_words_without_reading(report):
    [problem] = [p for p in report.warnings if p.code == "easy_ja_kanji"]
    assert "国籍" in problem.message and "納付書" in problem.message
    assert "国民健康保険" not in problem.message and "市役所" not in problem.message
    assert "在留カード" not in problem.message


def test_sections_are_measured_one_by_one(report):
    # en of text.sections is over 500 in total but each section is under: no warning
    assert ("answer_too_long", "text.yaml", 23) not in _found(report.warnings)
    [ko] = [p for p in report.warnings if p.code == "answer_too_long" and p.line == 29]
    assert "section 1" in ko.message and "section 2" not in ko.message


def test_good_fixture_has_no_text_problems(make_kb):
    report = check_knowledge(make_kb())
    text_codes = {"glossary_banned", "glossary_word_missing", "answer_too_long", "ambiguous_date"}
    assert not [p for p in report.errors + report.warnings if p.code in text_codes or p.code.startswith("easy_ja")]


def test_glossary_invalid_when_a_word_is_both_preferred_and_banned(make_kb):
    root = make_kb("text")
    (root / "glossary.yaml").write_text(
        "terms:\n  在留カード:\n    words: {vi: thẻ lưu trú}\n    banned: {vi: [Thẻ lưu trú]}\n", encoding="utf-8")
    report = check_knowledge(root)
    assert ("glossary_invalid", "glossary.yaml", 4) in _found(report.errors)


def test_glossary_schema_errors_have_lines(make_kb):
    root = make_kb("text")
    (root / "glossary.yaml").write_text("terms:\n  在留カード:\n    word: {vi: x}\n", encoding="utf-8")
    report = check_knowledge(root)
    assert ("unknown_key", "glossary.yaml", 3) in _found(report.errors)


def test_cli_prints_a_per_check_summary(make_kb):
    root = make_kb("text")
    run = run_kurashi("kb", "check", "--root", str(root))
    assert run.returncode == 1
    assert "per check:" in run.stdout
    line = next(x for x in run.stdout.splitlines() if x.strip().startswith("glossary_banned"))
    assert "3 error(s)" in line
    run = run_kurashi("kb", "check", "--json", "--root", str(root))
    data = json.loads(run.stdout)
    assert data["per_check"]["glossary_banned"] == {"errors": 3, "warnings": 0}


# ---------------------------------------------------------------------------- functions

def test_basic_kanji_is_grades_one_and_two():
    known = basic_kanji()
    assert len(known) == 240
    assert {"一", "山", "口", "市", "国", "曜"} <= known
    assert not {"籍", "届", "院"} & known


@pytest.mark.parametrize("text, words", [
    ("ねんきん（年金）を はらいます。", []),
    ("年金（ねんきん）を はらいます。", []),
    ("「免除」を もうしこみます。", ["免除"]),
    ("山口市の 日本語 教室と 病院", ["病院"]),
    ("{{city_hall.name}}で 更新します。", ["更新"]),
    ("ざいりゅうカード（在留カード）と 紹介状", ["紹介状"]),
])
def test_unread_kanji(text, words):
    assert unread_kanji(text) == words


@pytest.mark.parametrize("sentence, plain", [
    ("ゆれが おわる まで うごかない。", True),
    ("すぐ たかい ところへ にげる。", True),
    ("これは たいせつだ。", True),
    ("にげて ください。", False),
    ("でんわ します。", False),
    ("4. あなたの なまえと でんわばんごう", False),      # a list item ending in a noun
    ("くわしく:", False),
    ("・もどらない", True),
    ("ここへ いきます（しやくしょ）。", False),
])
def test_plain_form(sentence, plain):
    assert (plain_form(sentence) is not None) is plain


def test_sentence_length_counts_a_term_with_reading_once_and_no_spaces():
    assert sentence_length("ねんきん（年金）を はらいます。") == len("ねんきんをはらいます。")


@pytest.mark.parametrize("text, found", [
    ("はらわなければ なりません。", True),
    ("いかなくては いけません。", True),
    ("こない わけでは ありません。", True),
    ("はらって ください。", False),
])
def test_double_negatives(text, found):
    assert bool(double_negatives(text)) is found


def test_easy_japanese_findings_clean_text():
    assert easy_japanese_findings("ごみは あさ 8じまでに だして ください。") == []


@pytest.mark.parametrize("text, dates", [
    ("Deadline 12/08.", ["12/08"]),
    ("hạn 8/12", ["8/12"]),
    ("open 24/7", []),
    ("2026/12/08", []),
    ("see https://example.org/2026/12/08/x", []),
    ("50/60 Hz", []),
    ("1/2 of the fee", ["1/2"]),
])
def test_ambiguous_dates(text, dates):
    assert ambiguous_dates(text) == dates


def test_banned_and_missing_words():
    glossary = GlossaryFile.model_validate({"terms": {
        "脱退一時金": {"words": {"en": "Lump-sum Withdrawal Payment"},
                   "banned": {"en": ["pension lump-sum"]}},
        "在留カード": {"words": {"vi": "thẻ lưu trú"}, "banned": {"vi": ["thẻ ngoại kiều"]}},
    }})
    assert banned_uses(glossary, "en", "Your Pension Lump-Sum (脱退一時金)") == [
        ("脱退一時金", "pension lump-sum", "Lump-sum Withdrawal Payment")]
    assert banned_uses(glossary, "en", "pension lump-sums") == []          # whole words only
    assert banned_uses(glossary, "vi", "Mang THẺ NGOẠI KIỀU.") != []
    assert missing_words(glossary, "en", "Claim the 脱退一時金.") == [("脱退一時金", "Lump-sum Withdrawal Payment")]
    assert missing_words(glossary, "en", "The lump-sum withdrawal payment (脱退一時金).") == []


def test_rendered_budget_per_language():
    assert RENDERED_BUDGET["ja"] == RENDERED_BUDGET["zh"] == RENDERED_BUDGET["ko"] == 250
    assert all(RENDERED_BUDGET[lang] == 500 for lang in ("en", "vi", "id", "tl", "pt"))


# ---------------------------------------------------------------------------- sections

def test_split_sections():
    assert split_sections("a\n---\nb\n  ---  \nc") == ["a", "b", "c"]
    assert split_sections("a --- b") == ["a --- b"]
    assert split_sections("a\n---\n") == ["a"]


def test_render_sections_and_answer(make_kb):
    from knowledge.loader import load_knowledge

    root = make_kb()
    topic = root / "topics" / "demo.yaml"
    text = topic.read_text(encoding="utf-8").replace(
        "    en: '{{maybe.name}}: {{maybe.phone}}, {{maybe.url}}'",
        "    en: \"{{maybe.name}}\\n---\\nPhone {{maybe.phone}}\"")
    topic.write_text(text, encoding="utf-8")
    kb = load_knowledge(root)
    sections = render_sections(kb, "demo.unsure", "en")
    assert sections[0] == "Unconfirmed Office"                    # no ※ fact: no note
    assert sections[1].startswith("Phone 000-111-2222※") and sections[1].endswith("※ Not yet confirmed.")
    assert render_answer(kb, "demo.unsure", "en") == "Unconfirmed Office\n\nPhone 000-111-2222※\n\n※ Not yet confirmed."
    assert "---" not in render_answer(kb, "demo.unsure", "en")


def test_staff_messages_are_not_held_to_easy_japanese(make_kb):
    root = make_kb("text")
    with (root / "messages.yaml").open("a", encoding="utf-8") as fh:
        fh.write('  staff.test:\n    ja: "相談者に 返信して ください。"\n    en: "Reply."\n    vi: "Trả lời."\n'
                 '    zh: "回复。"\n    ko: "답장."\n  resident.test:\n    ja: "相談者に 返信して ください。"\n'
                 '    en: "Reply."\n    vi: "Trả lời."\n    zh: "回复。"\n    ko: "답장."\n')
    kanji = [p.message for p in check_knowledge(root).warnings if p.code == "easy_ja_kanji"]
    assert any("resident.test" in m for m in kanji) and not any("staff.test" in m for m in kanji)


def test_command_keyword_lists_are_not_prose(make_kb):
    """cmd.* lists words residents may type (like samples): no Easy Japanese or glossary check."""
    root = make_kb("text")
    (root / "glossary.yaml").write_text(
        "terms:\n  転入届:\n    words: {zh: 迁入申报}\n    banned: {zh: [转入届]}\n", encoding="utf-8")
    with (root / "messages.yaml").open("a", encoding="utf-8") as fh:
        for key in ("cmd.test", "menu.test"):
            fh.write(f'  {key}:\n    ja: "言語設定|言葉を変える|ことばを かえる|言語を変えたい|げんごを かえたい|ことばを えらびたい|ことば"\n'
                     '    en: "language"\n    vi: "ngôn ngữ"\n    zh: "转入届|语言"\n    ko: "언어"\n')
    report = check_knowledge(root)
    found = {(p.code, key) for p in report.errors + report.warnings
             for key in ("cmd.test", "menu.test") if key in p.message}
    assert {("easy_ja_kanji", "menu.test"), ("easy_ja_long_sentence", "menu.test"),
            ("glossary_banned", "menu.test")} <= found
    assert not [f for f in found if f[1] == "cmd.test"]


def test_a_contact_word_from_a_translation_file_is_reported_there(make_kb):
    root = make_kb("text")
    (root / "translations").mkdir(exist_ok=True)
    (root / "translations" / "vi.yaml").write_text(
        "language: vi\ncontacts:\n  desk:\n    hours: 'Thứ Ba, mang thẻ ngoại kiều'\n", encoding="utf-8")
    found = _found(check_knowledge(root).errors)
    assert ("glossary_banned", "vi.yaml", 4) in found
