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
def matcher(fixture_kb, tmp_path_factory):
    # The repo thresholds are calibrated for the real knowledge base's model; the fixture
    # model (six intents) uses the documented defaults. Its own cache directory: the
    # tests never depend on (or fill) the user's cache.
    return Matcher.from_knowledge(fixture_kb, Thresholds(), cache_dir=tmp_path_factory.mktemp("model-cache"))
