"""A small knowledge base for the conversation tests: fixture topics + the real contacts and messages.

Built straight from the schema models (the validator's sample-count floor is for the real
knowledge base, not for a fixture), so the engine is tested against the project's own
system messages and contacts.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from knowledge.loader import DEFAULT_DIR, KnowledgeBase
from knowledge.schema import ContactsFile, Intent, MessagesFile, TopicFile

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _read(path: Path):
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_fixture_kb() -> KnowledgeBase:
    intents: dict[str, Intent] = {}
    groups: dict[str, list[str]] = {}
    for path in sorted((FIXTURES / "topics").glob("*.yaml")):
        topic = TopicFile.model_validate(_read(path))
        for intent in topic.intents:
            intents[intent.id] = intent
            groups.setdefault(topic.group, []).append(intent.id)
    contacts = ContactsFile.model_validate(_read(DEFAULT_DIR / "contacts.yaml")).contacts
    messages = MessagesFile.model_validate(_read(DEFAULT_DIR / "messages.yaml")).messages
    return KnowledgeBase(intents=intents, groups=groups, contacts=dict(contacts),
                         messages={k: dict(v) for k, v in messages.items()}, root=FIXTURES)
