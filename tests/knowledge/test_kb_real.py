"""The project's own knowledge base passes `kurashi kb check` (no errors)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from knowledge.loader import DEFAULT_DIR
from knowledge.render import render_answer
from knowledge.schema import CORE_LANGUAGES
from knowledge.validate import check_knowledge

SPEC = Path(__file__).resolve().parents[2] / ".." / "shared" / "spec" / "intents.yaml"


def test_real_knowledge_base_has_no_errors():
    report = check_knowledge()
    assert [str(p) for p in report.errors] == []


def test_real_knowledge_base_renders_every_answer_in_every_core_language():
    report = check_knowledge()
    for intent_id in report.kb.intents:
        for lang in CORE_LANGUAGES:
            text = render_answer(report.kb, intent_id, lang)
            assert text.strip() and "{{" not in text, (intent_id, lang)


def test_required_intents_copy_matches_the_spec():
    if not SPEC.exists():
        pytest.skip("../shared/spec/intents.yaml is absent (read-only reference material not mounted)")
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    copy = yaml.safe_load((DEFAULT_DIR / "required_intents.yaml").read_text(encoding="utf-8"))
    as_pairs = lambda items: [(i["id"], bool(i.get("escalates", False))) for i in items]
    assert as_pairs(copy) == as_pairs(spec)
