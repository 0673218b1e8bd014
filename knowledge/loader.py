"""Load the knowledge base from YAML into immutable objects, once, at start-up.

Owns reading files; everything else in the project works on the returned
``KnowledgeBase``. Imports nothing from bot/, intents/ or scheduler/.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge.schema import ContactsFile, Intent, MessagesFile, TopicFile, Contact

DEFAULT_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class KnowledgeBase:
    intents: dict[str, Intent]
    groups: dict[str, list[str]]                    # group -> intent ids, in file order
    contacts: dict[str, Contact] = field(default_factory=dict)
    messages: dict[str, dict[str, str]] = field(default_factory=dict)
    root: Path = DEFAULT_DIR


def _read(path: Path):
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def load_knowledge(root: Path | str | None = None) -> KnowledgeBase:
    """Load and validate every knowledge file under ``root`` (default: this package).

    Raises pydantic.ValidationError / yaml.YAMLError on broken files; ``kurashi kb check``
    reports the same problems with file and line.
    """
    root = Path(root) if root else DEFAULT_DIR
    intents: dict[str, Intent] = {}
    groups: dict[str, list[str]] = {}
    for path in sorted((root / "topics").glob("*.yaml")):
        topic = TopicFile.model_validate(_read(path))
        ids = groups.setdefault(topic.group, [])
        for intent in topic.intents:
            intents[intent.id] = intent
            ids.append(intent.id)
    contacts: dict[str, Contact] = {}
    if (root / "contacts.yaml").exists():
        contacts = dict(ContactsFile.model_validate(_read(root / "contacts.yaml")).contacts)
    messages: dict[str, dict[str, str]] = {}
    if (root / "messages.yaml").exists():
        messages = {k: dict(v) for k, v in MessagesFile.model_validate(_read(root / "messages.yaml")).messages.items()}
    return KnowledgeBase(intents=intents, groups=groups, contacts=contacts, messages=messages, root=root)
