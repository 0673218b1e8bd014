"""Shared fixtures for the matcher tests: the small fixture knowledge base and its matcher."""
from __future__ import annotations

from pathlib import Path

import pytest

from intents.matcher import Matcher, Thresholds
from knowledge.loader import load_knowledge

FIXTURE_KB = Path(__file__).resolve().parent / "fixtures" / "knowledge"
REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT / ".." / "shared"


@pytest.fixture(scope="session")
def fixture_kb():
    return load_knowledge(FIXTURE_KB)


@pytest.fixture(scope="session")
def matcher(fixture_kb):
    # The fixture KB is tiny; the repo thresholds are calibrated on the real one, so use
    # thresholds calibrated on the fixture itself (what `kurashi kb calibrate` would do).
    from intents.calibrate import calibrate

    base = Matcher.from_knowledge(fixture_kb, Thresholds.load())
    return Matcher(base.catalog, calibrate(base))
