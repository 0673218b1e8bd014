"""The validator: every error type on a deliberately broken fixture, with file and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.loader import KnowledgeError, load_knowledge
from knowledge.validate import check_knowledge

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOOD = FIXTURES / "good"
BROKEN = FIXTURES / "broken"


def _found(report, severity="errors"):
    return {(p.code, Path(p.file).name, p.line) for p in getattr(report, severity)}


def test_validate_good_fixture_has_no_errors(make_kb):
    report = check_knowledge(make_kb())
    assert report.errors == []
    assert report.intents == 2


@pytest.mark.parametrize(
    "overlay, code, file, line",
    [
        ("syntax", "yaml_syntax", "syntax.yaml", 7),
        ("schema", "unknown_key", "schema.yaml", 5),
        ("schema", "unknown_language", "schema.yaml", 6),
        ("schema", "invalid", "schema.yaml", 8),           # escalates: "maybe"
        ("schema", "missing_field", "schema.yaml", 9),     # schema.two has no answers
        ("schema", "invalid", "schema.yaml", 11),          # id not group.name
        ("duplicate_key", "duplicate_key", "contacts.yaml", 8),
        ("refs", "duplicate_id", "refs.yaml", 17),         # demo.desk is also in demo.yaml
        ("refs", "dangling_related", "refs.yaml", 5),
        ("refs", "dangling_contact", "refs.yaml", 7),
        ("refs", "dangling_contact_field", "refs.yaml", 7),   # desk has no email
        ("refs", "dangling_contact_field", "refs.yaml", 8),   # fax is not a field
        ("refs", "bad_placeholder", "refs.yaml", 9),
        ("refs", "missing_answer", "refs.yaml", 6),        # no ko answer
        ("refs", "too_few_samples", "refs.yaml", 14),      # 7 vi samples
        ("required", "missing_required_intent", "required_intents.yaml", 6),
        ("required", "escalates_not_set", "demo.yaml", 3),
        ("messages", "message_missing_language", "messages.yaml", 3),
        ("messages", "message_format_mismatch", "messages.yaml", 8),
        ("messages", "message_format_invalid", "messages.yaml", 15),
        ("messages", "dangling_contact", "messages.yaml", 21),
        ("messages", "missing_message", "messages.yaml", 2),
    ],
)
def test_validate_reports_error_with_file_and_line(make_kb, overlay, code, file, line):
    report = check_knowledge(make_kb(overlay))
    assert (code, file, line) in _found(report), [str(p) for p in report.errors]


@pytest.mark.parametrize(
    "code, file, line",
    [
        ("answer_too_long", "refs.yaml", 10),
        ("sample_in_two_intents", "refs.yaml", 12),   # differs from demo.desk's only in case/spaces
        ("duplicate_sample", "refs.yaml", 15),
        ("unverified_contact", "contacts.yaml", 10),
    ],
)
def test_validate_reports_warnings_with_file_and_line(make_kb, code, file, line):
    report = check_knowledge(make_kb("refs"))
    assert (code, file, line) in _found(report, "warnings")


def test_validate_unverified_contact_warning_lists_key_and_fields(make_kb):
    report = check_knowledge(make_kb())
    [warning] = [w for w in report.warnings if w.code == "unverified_contact"]
    assert "'maybe'" in warning.message and "phone, url" in warning.message


def test_validate_incomplete_extra_languages_are_warnings_with_counts(make_kb):
    report = check_knowledge(make_kb())
    extra = {w.message.split(":")[0]: w.message for w in report.warnings if w.code == "extra_language_incomplete"}
    assert set(extra) == {"id", "tl", "ne", "my", "pt"}
    assert extra["id"].startswith("id: 1/2 answers")
    assert report.languages["id"] == {"answered": 1, "missing": ["demo.unsure"]}
    assert report.languages["vi"] == {"answered": 2, "missing": []}


def test_validate_missing_files_are_errors(make_kb):
    root = make_kb()
    (root / "contacts.yaml").unlink()
    (root / "required_intents.yaml").unlink()
    report = check_knowledge(root)
    missing = {Path(p.file).name for p in report.errors if p.code == "missing_file"}
    assert missing == {"contacts.yaml", "required_intents.yaml"}
    # Without contacts every placeholder dangles, and says so.
    assert any(p.code == "dangling_contact" for p in report.errors)


def test_validate_spec_adds_required_ids_and_warns_when_the_copy_drifted(make_kb):
    root = make_kb("spec_drift")
    report = check_knowledge(root, spec=root / "spec.yaml")
    assert ("missing_required_intent", "spec.yaml", 5) in _found(report)
    assert any(w.code == "required_list_outdated" and "demo.extra" in w.message for w in report.warnings)


def test_validate_one_broken_intent_does_not_hide_the_rest_of_the_file(make_kb, tmp_path):
    # schema.yaml is broken as a whole, but demo.yaml's intents still load and are checked.
    report = check_knowledge(make_kb("schema"))
    assert report.intents == 2
    assert report.kb.intents["demo.desk"].terms == ["窓口", "相談"]


def test_load_knowledge_raises_one_error_carrying_every_problem(make_kb):
    root = make_kb("refs")
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(root)
    codes = {p.code for p in caught.value.problems}
    assert {"duplicate_id", "dangling_related", "bad_placeholder"} <= codes
    assert "refs.yaml:5" in str(caught.value)


def test_load_knowledge_good_fixture_returns_the_base():
    kb = load_knowledge(GOOD)
    assert kb.groups == {"demo": ["demo.desk", "demo.unsure"]}
    assert kb.contacts["maybe"].verified is False
    assert "fact.unverified" in kb.messages


def test_every_broken_fixture_is_used():
    used = {"syntax", "schema", "duplicate_key", "refs", "required", "messages", "spec_drift", "text"}
    assert {p.name for p in BROKEN.iterdir()} == used


def test_validate_broken_garbage_calendar_is_an_error_with_file_and_line(make_kb):
    root = make_kb()
    calendar = root / "garbage" / "town"
    calendar.mkdir(parents=True)
    (calendar / "description.csv").write_text("label,sublabel,description,styles,bgcolor\n燃やすごみ,,,,\n", encoding="utf-8")
    (calendar / "target.csv").write_text("type,name,notice,furigana\n燃やすごみ,紙,,か\n", encoding="utf-8")
    (calendar / "area_days.csv").write_text("地名,センター,燃やすごみ\n本町,,月曜日\n", encoding="utf-8")
    report = check_knowledge(root)
    assert ("garbage_invalid", "area_days.csv", 2) in _found(report)


def test_validate_sample_garbage_calendar_is_a_warning(make_kb):
    root = make_kb()
    calendar = root / "garbage" / "town"
    calendar.mkdir(parents=True)
    (calendar / "description.csv").write_text("label,sublabel,description,styles,bgcolor\n燃やすごみ,,,,\n", encoding="utf-8")
    (calendar / "target.csv").write_text("type,name,notice,furigana\n燃やすごみ,紙,,か\n", encoding="utf-8")
    (calendar / "area_days.csv").write_text("地名,センター,燃やすごみ\n本町,,月 木\n", encoding="utf-8")
    (calendar / "calendar.yaml").write_text("sample: true\n", encoding="utf-8")
    report = check_knowledge(root)
    assert report.errors == []
    assert any(w.code == "garbage_sample" and "'town'" in w.message for w in report.warnings)


def test_validate_file_that_is_not_utf8_is_an_error(make_kb):
    root = make_kb()
    (root / "topics" / "latin1.yaml").write_bytes("group: x\nintents: []\n# caf\xe9\n".encode("latin-1"))
    report = check_knowledge(root)
    assert any(p.code == "unreadable_file" and p.file.endswith("latin1.yaml") for p in report.errors)


def test_validate_sample_copied_from_the_evaluation_set_is_a_warning(make_kb):
    report = check_knowledge(make_kb(), eval_file=FIXTURES / "eval_overlap.jsonl")
    [warning] = [w for w in report.warnings if w.code == "sample_in_eval_set"]
    assert Path(warning.file).name == "demo.yaml" and "'desk a question 1'" in warning.message
    assert warning.line == 26


def test_validate_an_invalid_contact_is_reported_once_not_as_dangling_everywhere(make_kb):
    root = make_kb()
    text = (root / "contacts.yaml").read_text(encoding="utf-8").replace("    verified: true\n", "", 1)
    (root / "contacts.yaml").write_text(text, encoding="utf-8")
    report = check_knowledge(root)
    assert [p.code for p in report.errors] == ["missing_field"]
    assert "contacts.desk.verified" in report.errors[0].message
