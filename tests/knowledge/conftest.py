"""Fixtures for the knowledge tests: a valid fixture KB and broken overlays of it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOOD = FIXTURES / "good"
BROKEN = FIXTURES / "broken"
#: ../shared beside the repository root (read-only reference material).
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


@pytest.fixture
def make_kb(tmp_path):
    """Build a knowledge root: the good fixture with a broken overlay copied on top."""

    def _make(overlay: str | None = None) -> Path:
        root = tmp_path / (overlay or "good")
        shutil.copytree(GOOD, root)
        if overlay:
            shutil.copytree(BROKEN / overlay, root, dirs_exist_ok=True)
        return root

    return _make
