"""`kurashi kb check` on knowledge/partners.yaml: the real file passes; each broken copy is
reported with its code, file and line."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from knowledge.validate import check_knowledge

KNOWLEDGE = Path(__file__).resolve().parents[2] / "knowledge"


def test_real_partners_file_has_no_errors() -> None:
    report = check_knowledge(KNOWLEDGE)
    assert [p for p in report.errors if p.file.endswith("partners.yaml")] == []
    assert report.kb.partners is not None and report.kb.partners.default == "yfrcc"
    unverified = {p.message.split("'")[1] for p in report.warnings if p.code == "unverified_partner"}
    assert {"otit", "labour_office"} <= unverified and "yfrcc" not in unverified


@pytest.fixture
def broken(tmp_path: Path):
    """Copy the knowledge base; return a function that edits partners.yaml and re-checks it."""
    root = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))

    def edit(change) -> list:
        path = root / "partners.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return [p for p in check_knowledge(root).errors if p.file.endswith("partners.yaml")]

    return edit


def _codes(problems) -> set[str]:
    return {p.code for p in problems}


def test_response_times_and_notification_channels_are_not_knowledge(broken) -> None:
    # deployment settings (CONSULT_RESPONSE_HOURS, kurashi staff notify), not claims in partners.yaml
    assert "unknown_key" in _codes(broken(lambda d: d["partners"]["yiea"].update(notify=["email"])))
    assert "unknown_key" in _codes(broken(lambda d: d["partners"]["yiea"].update(response_hours=24)))


def test_an_unverified_default_is_an_error(broken) -> None:
    problems = broken(lambda d: d["partners"]["yfrcc"].update(verified=False))
    assert "default_not_presentable" in _codes(problems)
    problems = broken(lambda d: d["partners"]["yfrcc"].update(contact="otit_hotline"))   # an unverified contact
    assert "default_not_presentable" in _codes(problems)


def test_partners_without_a_verified_contact_are_not_presented() -> None:
    from knowledge.partners import presentable

    kb = check_knowledge(KNOWLEDGE).kb
    shown = {key for key, p in kb.partners.partners.items() if presentable(p, kb.contacts)}
    assert "yfrcc" in shown
    assert "yu_international" not in shown                        # no contact at all
    assert "otit" not in shown                                    # third-party copy of the hotline


def test_topic_nobody_takes(broken) -> None:
    def change(d):
        d["partners"]["yfrcc"]["topics"] = ["work", "health"]
        for p in d["partners"].values():
            p["topics"] = [t for t in p["topics"] if t != "children"]
        d["rules"] = [r for r in d["rules"] if "children" not in r.get("topics", [])]

    problems = broken(change)
    assert any(p.code == "topic_unreachable" and "'children'" in p.message for p in problems)


def test_rule_naming_an_unknown_organisation(broken) -> None:
    problems = broken(lambda d: d["rules"].append({"org": "nowhere", "topics": ["work"]}))
    assert "unknown_partner" in _codes(problems)


def test_rule_that_can_never_apply(broken) -> None:
    problems = broken(lambda d: d["rules"].append({"org": "labour_office", "topics": ["work"], "languages": ["ko"]}))
    assert "rule_never_applies" in _codes(problems)


def test_unknown_default_and_contact(broken) -> None:
    def change(d):
        d["default"] = "missing"
        d["partners"]["yiea"]["contact"] = "no_such_contact"

    codes = _codes(broken(change))
    assert {"unknown_partner", "unknown_contact"} <= codes


def test_bad_opening_hours(broken) -> None:
    problems = broken(lambda d: d["partners"]["yfrcc"]["hours"].update(tue="17:15-08:30"))
    assert any("08:30" in p.message and p.line for p in problems)


def test_name_missing_in_a_core_language(broken) -> None:
    problems = broken(lambda d: d["partners"]["yiea"]["name"].pop("vi"))
    assert "partner_missing_language" in _codes(problems)
