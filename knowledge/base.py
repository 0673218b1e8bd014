"""``KnowledgeBase``: the loaded knowledge, immutable, shared by the whole process.

Built by ``knowledge.validate.check_knowledge`` (and so by ``knowledge.loader.load_knowledge``,
which re-exports it); read by everything else. At the bottom of knowledge/ with schema and
yamlio, so the checks and the renderer can name it without importing the loader.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge.schema import Contact, Intent

#: Knowledge root of the installed package.
DEFAULT_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class KnowledgeBase:
    intents: dict[str, Intent]
    groups: dict[str, list[str]]                    # group -> intent ids, in file order
    contacts: dict[str, Contact] = field(default_factory=dict)
    messages: dict[str, dict[str, str]] = field(default_factory=dict)
    root: Path = DEFAULT_DIR
    partners: Any = None                            # knowledge.schema.PartnersFile (partners.yaml) or None
    #: Garbage calendars under knowledge/garbage/: name -> knowledge.garbage.GarbageSet.
    garbage: dict[str, Any] = field(default_factory=dict)
