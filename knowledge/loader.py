"""Load the knowledge base from YAML into immutable objects, once, at start-up.

Owns reading files; everything else in the project works on the returned
``KnowledgeBase``. All parsing and checking happens in ``knowledge.validate`` (the same
code ``kurashi kb check`` runs), so the app refuses to start on exactly the problems the
operator sees. Imports nothing from bot/, intents/ or scheduler/.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.schema import Contact, Intent

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.validate import Problem

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


class KnowledgeError(Exception):
    """The knowledge base is invalid; ``problems`` lists every error with file and line."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        more = f"\n  … and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(
            f"the knowledge base has {len(self.problems)} error(s) "
            f"(run `kurashi kb check` for the full report):\n{shown}{more}"
        )


def load_knowledge(root: Path | str | None = None) -> KnowledgeBase:
    """Load and validate every knowledge file under ``root`` (default: this package).

    Raises ``KnowledgeError`` carrying every error (with file and line) when the knowledge
    base is invalid — the same list ``kurashi kb check`` reports. Warnings do not stop it.
    """
    from knowledge.validate import check_knowledge  # validate builds KnowledgeBase: import late

    report = check_knowledge(root)
    if report.errors:
        raise KnowledgeError(report.errors)
    return report.kb
