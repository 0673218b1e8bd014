"""Load the knowledge base from YAML into immutable objects, once, at start-up.

Owns reading files; everything else in the project works on the returned
``KnowledgeBase``. All parsing and checking happens in ``knowledge.validate`` (the same
code ``kurashi kb check`` runs), so the app refuses to start on exactly the problems the
operator sees. The top of knowledge/: it imports the checks, nothing imports it back
(``KnowledgeBase`` itself lives in knowledge/base.py and is re-exported here). Imports
nothing from bot/, intents/ or scheduler/.
"""
from __future__ import annotations

from pathlib import Path

from knowledge.base import DEFAULT_DIR, KnowledgeBase
from knowledge.validate import check_knowledge
from knowledge.yamlio import Problem

__all__ = ["DEFAULT_DIR", "KnowledgeBase", "KnowledgeError", "load_knowledge"]


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
    report = check_knowledge(root)
    if report.errors:
        raise KnowledgeError(report.errors)
    return report.kb
