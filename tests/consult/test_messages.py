"""The consultation's system messages: button labels fit LINE's 20-character quick-reply
limit (case numbers included), every message renders in every core language."""
from __future__ import annotations

import pytest

from bot.conversation.locale import Texts
from knowledge.loader import load_knowledge
from knowledge.schema import CONSULT_TOPICS, CORE_LANGUAGES

LINE_LABEL_LIMIT = 20


@pytest.fixture(scope="module")
def texts() -> Texts:
    return Texts(load_knowledge())


def test_consultation_buttons_fit_line_quick_replies(texts) -> None:
    keys = [f"consult.topic.{t}" for t in CONSULT_TOPICS]
    keys += [k for k in texts.kb.messages if k.startswith("consult.btn.")]
    for key in keys:
        for lang in CORE_LANGUAGES:
            label = texts.t(key, lang, case_no="K-99999")
            assert 0 < len(label) <= LINE_LABEL_LIMIT, (key, lang, label)


def test_every_consultation_message_renders_in_every_core_language(texts) -> None:
    fields = {"org": "ORG", "hours": "H", "due": "D", "next_open": "N", "case_no": "K-00001", "count": 2,
              "text": "T", "reason": "R", "topic": "P", "language": "L", "segment": "S", "body": "B",
              "event": "E"}
    keys = [k for k in texts.kb.messages if k.startswith(("consult.", "staff."))]
    assert len(keys) > 40
    for key in keys:
        for lang in CORE_LANGUAGES:
            assert texts.kb.messages[key].get(lang), (key, lang)
            assert texts.t(key, lang, **fields).strip()
