"""Fixtures of the garbage tests: the project's knowledge base (messages, districts)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from knowledge.loader import KnowledgeBase, load_knowledge
from scheduler.runner import close_writers


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_knowledge()


@pytest.fixture
def job_store() -> Iterator[None]:
    """Tests that write APScheduler jobs dispose of the job-store engines afterwards."""
    yield
    close_writers()
