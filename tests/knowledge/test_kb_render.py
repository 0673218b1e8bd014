"""render_answer / render_terms on a small fixture knowledge base (tests/knowledge/fixtures/good)."""
from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.loader import load_knowledge
from knowledge.render import RenderError, fill_placeholders, render_answer, render_terms

GOOD = Path(__file__).resolve().parent / "fixtures" / "good"


@pytest.fixture(scope="module")
def kb():
    return load_knowledge(GOOD)


def test_render_fills_contact_placeholders_in_the_requested_language(kb):
    text = render_answer(kb, "demo.desk", "en")
    assert text == "Call Test Desk at 000-000-0000 (Tue–Sat)."


def test_render_localized_field_falls_back_to_english_when_the_language_lacks_it(kb):
    # desk.hours has only ja and en; the vi answer must show the English hours, not nothing.
    assert render_answer(kb, "demo.desk", "vi") == "Gọi Quầy thử nghiệm: 000-000-0000 (Tue–Sat)."


def test_render_verified_facts_carry_no_marker_or_note(kb):
    text = render_answer(kb, "demo.desk", "ja")
    assert "※" not in text
    assert text.startswith("テスト窓口に")


def test_render_unverified_facts_are_marked_and_the_answer_ends_with_the_note(kb):
    text = render_answer(kb, "demo.unsure", "en")
    assert "000-111-2222※" in text
    # A URL's marker is separated so chat apps do not make it part of the link.
    assert "https://example.org/maybe ※" in text
    assert "Unconfirmed Office※" not in text  # names are not facts
    assert text.endswith("\n\n※ Not yet confirmed.")


def test_render_unverified_note_is_in_the_answer_language(kb):
    assert render_answer(kb, "demo.unsure", "ko").endswith("※ 아직 확인되지 않았습니다.")


def test_render_extra_language_present_is_used(kb):
    assert render_answer(kb, "demo.desk", "id") == "Hubungi Test Desk: 000-000-0000."


def test_render_missing_translation_gives_english_and_easy_japanese(kb):
    text = render_answer(kb, "demo.unsure", "tl")
    english, japanese = text.split("\n\n※ Not yet confirmed.\n\n")
    assert english == "Unconfirmed Office: 000-111-2222※, https://example.org/maybe ※"
    assert japanese.startswith("みかくにん窓口: 000-111-2222※")
    assert japanese.endswith("※の じょうほうは まだ かくにん して いません。")


def test_render_unknown_language_code_also_falls_back(kb):
    assert render_answer(kb, "demo.desk", "fr").startswith("Call Test Desk")


def test_render_unknown_intent_raises_key_error(kb):
    with pytest.raises(KeyError):
        render_answer(kb, "demo.nope", "en")


def test_render_dangling_placeholder_raises_render_error(kb):
    with pytest.raises(RenderError, match="nobody"):
        fill_placeholders(kb, "call {{nobody.phone}}", "en")
    with pytest.raises(RenderError, match="email"):
        fill_placeholders(kb, "mail {{desk.email}}", "en")


def test_render_terms_joins_official_japanese_terms(kb):
    assert render_terms(kb, "demo.desk") == "窓口・相談"
    assert render_terms(kb, "demo.unsure") == ""


def test_render_message_formats_fields_in_the_language(kb):
    from knowledge.render import render_message

    assert render_message(kb, "greeting.welcome", "ko", name="Minh") == "안녕하세요, Minh님"


def test_render_message_missing_language_falls_back_to_english(kb):
    from knowledge.render import render_message

    assert render_message(kb, "greeting.welcome", "pt", name="Ana") == "Hello, Ana"
