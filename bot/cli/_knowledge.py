"""One rule for which knowledge base a command reads: ``--knowledge``/``--root`` when given,
else KNOWLEDGE_DIR (environment or .env, as ``kurashi serve`` reads it), else the package's
own knowledge/."""
from __future__ import annotations

from pathlib import Path


def knowledge_dir(explicit: Path | None = None) -> Path | None:
    """The knowledge root to load (None = the package's own)."""
    if explicit is not None:
        return explicit
    try:
        from bot.settings import Settings

        return Settings().knowledge_dir
    except Exception:  # noqa: BLE001 — an unrelated broken setting must not stop an offline tool
        return None
