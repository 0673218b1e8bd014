"""The project's knowledge base with its SAMPLE garbage calendar relabelled as a real one
(``sample: false``): what kurashi does once Yamaguchi City's calendar is installed."""
from __future__ import annotations

import dataclasses

from knowledge.loader import KnowledgeBase


def as_real_calendar(kb: KnowledgeBase) -> KnowledgeBase:
    """A copy of ``kb`` whose garbage calendars are marked real (same days, same areas)."""
    garbage = {name: dataclasses.replace(s, sample=False, meta={**s.meta, "sample": False})
               for name, s in (kb.garbage or {}).items()}
    return dataclasses.replace(kb, garbage=garbage)
