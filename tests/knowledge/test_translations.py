"""Per-language translation files (knowledge/translations/<lang>.yaml) merged by the validator."""
from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import schema, validate
from knowledge.validate import check_knowledge


def _write(root: Path, lang: str, text: str) -> None:
    folder = root / "translations"
    folder.mkdir(exist_ok=True)
    (folder / f"{lang}.yaml").write_text(text, encoding="utf-8")


def _codes(report) -> set[tuple[str, str]]:
    return {(p.code, Path(p.file).name) for p in report.errors}


def test_translation_file_adds_answer_samples_and_messages(make_kb):
    root = make_kb()
    _write(root, "pt", """language: pt
intents:
  demo.desk:
    answer: "Ligue para {{desk.name}}: {{desk.phone}}."
    samples: ["balcao pergunta 1", "balcao pergunta 2"]
messages:
  greeting.welcome: "Olá, {name}"
""")
    report = check_knowledge(root)
    assert report.errors == [], [str(p) for p in report.errors]
    intent = report.kb.intents["demo.desk"]
    assert intent.answers["pt"].startswith("Ligue para")
    assert intent.samples["pt"] == ["balcao pergunta 1", "balcao pergunta 2"]
    assert intent.answers["en"].startswith("Call")          # inline languages untouched
    assert report.kb.messages["greeting.welcome"]["pt"] == "Olá, {name}"


def test_translation_samples_are_joined_with_inline_ones_without_duplicates(make_kb):
    root = make_kb()
    _write(root, "en", """language: en
intents:
  demo.desk:
    samples: ["desk a question 0", "a brand new way to ask"]
""")
    report = check_knowledge(root)
    samples = report.kb.intents["demo.desk"].samples["en"]
    assert samples.count("desk a question 0") == 1
    assert samples[-1] == "a brand new way to ask"


@pytest.mark.parametrize("text, code, line", [
    ("language: id\nintents:\n  demo.desk:\n    answer: 'Dua kali'\n", "defined_twice", 4),
    ("language: pt\nintents:\n  demo.nothing:\n    answer: 'x'\n", "unknown_intent", 3),
    ("language: pt\nmessages:\n  no.such.key: 'x'\n", "unknown_message", 3),
    ("language: pt\nmessages:\n  greeting.welcome: 'Olá, {nome}'\n", "message_format_mismatch", None),
    ("language: pt\nintents:\n  demo.desk:\n    answer: '{{desk.fax}}'\n", "dangling_contact_field", 4),
    ("language: vi\nintents: {}\n", "language_mismatch", 1),
])
def test_translation_file_problems_point_at_the_file(make_kb, text, code, line):
    root = make_kb()
    lang = "id" if "language: id" in text else "pt"
    _write(root, lang, text)
    report = check_knowledge(root)
    found = {(p.code, p.line) for p in report.errors}
    if line is None:
        assert code in {c for c, _ in found}, [str(p) for p in report.errors]
    else:
        assert (code, line) in found, [str(p) for p in report.errors]


def test_a_language_not_pending_must_be_complete(make_kb):
    root = make_kb()
    assert check_knowledge(root).errors == []
    # pt counts as finished: every intent needs a pt answer and samples, every message a text.
    (root / "pending_languages.yaml").write_text("[id, tl, ne, my]\n", encoding="utf-8")
    report = check_knowledge(root)
    codes = {p.code for p in report.errors}
    assert {"missing_answer", "too_few_samples", "message_missing_language"} <= codes
    assert all(p.message.rstrip().endswith(("'pt'", " pt")) or "in 'pt'," in p.message
               for p in report.errors), [str(p) for p in report.errors]
    assert "pt" not in {w.message.split(":")[0] for w in report.warnings if w.code == "extra_language_incomplete"}


def test_without_its_own_list_a_root_uses_the_project_pending_languages(make_kb, monkeypatch):
    root = make_kb()
    (root / "pending_languages.yaml").unlink()
    monkeypatch.setattr(validate, "PENDING_LANGUAGES", schema.EXTRA_LANGUAGES)
    assert check_knowledge(root).errors == []
    monkeypatch.setattr(validate, "PENDING_LANGUAGES", tuple(x for x in schema.EXTRA_LANGUAGES if x != "pt"))
    assert {"missing_answer", "too_few_samples", "message_missing_language"} <= {
        p.code for p in check_knowledge(root).errors}


def test_the_project_knowledge_base_has_no_pending_list_of_its_own():
    # Finished languages are removed from knowledge.schema.PENDING_LANGUAGES, nowhere else.
    assert not (validate.DEFAULT_DIR / "pending_languages.yaml").exists()


@pytest.mark.parametrize("text", ["[id, xx]\n", "pt\n", "[ja, pt]\n"])
def test_an_invalid_pending_list_is_an_error(make_kb, text):
    root = make_kb()
    (root / "pending_languages.yaml").write_text(text, encoding="utf-8")
    report = check_knowledge(root)
    assert "pending_languages_invalid" in {p.code for p in report.errors}, [str(p) for p in report.errors]


def test_translation_file_localizes_contact_names_hours_and_notes(make_kb):
    from knowledge.render import render_answer

    root = make_kb()
    _write(root, "pt", """language: pt
intents:
  demo.desk:
    answer: "Ligue para {{desk.name}}: {{desk.phone}} ({{desk.hours}})."
contacts:
  desk:
    name: "Balcão de teste"
    hours: "ter–sáb"
""")
    report = check_knowledge(root)
    assert report.errors == [], [str(p) for p in report.errors]
    desk = report.kb.contacts["desk"]
    assert desk.name["pt"] == "Balcão de teste" and desk.name["en"] == "Test Desk"
    assert desk.phone == "000-000-0000"                      # facts stay in contacts.yaml
    assert render_answer(report.kb, "demo.desk", "pt") == "Ligue para Balcão de teste: 000-000-0000 (ter–sáb)."
    assert render_answer(report.kb, "demo.desk", "en").startswith("Call Test Desk")


@pytest.mark.parametrize("lang, block, code, line", [
    ("pt", "  nowhere:\n    name: 'x'\n", "unknown_contact", 3),
    ("pt", "  maybe:\n    hours: 'x'\n", "unknown_contact_field", 4),
    ("vi", "  desk:\n    name: 'Quầy'\n", "defined_twice", 4),
    ("pt", "  desk:\n    hours: '{{desk.fax}}'\n", "dangling_contact_field", 4),
    ("pt", "  desk:\n    phone: '1'\n", "schema", None),
])
def test_contact_translation_problems_point_at_the_file(make_kb, lang, block, code, line):
    root = make_kb()
    _write(root, lang, f"language: {lang}\ncontacts:\n{block}")
    report = check_knowledge(root)
    found = {(p.code, p.line) for p in report.errors if p.file.endswith(f"{lang}.yaml")}
    if line is None:
        assert found, [str(p) for p in report.errors]
    else:
        assert (code, line) in found, [str(p) for p in report.errors]


@pytest.mark.parametrize("hours, stale", [
    ("ter–sáb; ligue 000-000-0000", False),     # the contact's own phone
    ("ter–sáb; ligue 000-999-9999", True),      # a number contacts.yaml does not (or no longer) say
    ("ter–sáb 9:00–17:00", False),              # times are not phone numbers
])
def test_a_translated_contact_text_with_a_number_not_in_contacts_yaml_is_a_warning(make_kb, hours, stale):
    root = make_kb()
    _write(root, "pt", f"language: pt\ncontacts:\n  desk:\n    hours: '{hours}'\n")
    report = check_knowledge(root)
    assert report.errors == [], [str(p) for p in report.errors]
    found = [w for w in report.warnings if w.code == "contact_translation_number"]
    assert bool(found) is stale, [str(w) for w in report.warnings]
    if stale:
        assert found[0].file.endswith("pt.yaml") and found[0].line == 4 and "000-999-9999" in found[0].message
