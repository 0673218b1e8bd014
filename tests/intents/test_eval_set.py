"""The project's own labelled evaluation set (intents/data/eval/<lang>.jsonl) is well formed.

It must stay independent of the knowledge base: no line may equal (after normalisation) a
sample of any intent, otherwise the figures it reports would measure memory, not
understanding.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from intents.normalize import fold_diacritics, normalize
from knowledge.loader import KnowledgeError, load_knowledge

REPO_ROOT = Path(__file__).resolve().parents[2]
EVAL_DIR = REPO_ROOT / "intents" / "data" / "eval"
KNOWLEDGE_DIR = REPO_ROOT / "knowledge"
SPEC = REPO_ROOT / ".." / "shared" / "spec" / "intents.yaml"
LANGS = ("ja", "en", "vi", "zh", "ko", "id", "tl", "ne", "my", "pt")
KINDS = {"in_scope", "urgent", "crisis", "everyday_trap", "out_of_scope"}
SPLITS = {"tune", "test"}
FIELDS = {"text", "lang", "intent", "kind", "split"}
MIN_PER_LANG = 40


def _rows(lang: str) -> list[tuple[int, dict]]:
    path = EVAL_DIR / f"{lang}.jsonl"
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:  # pragma: no cover - reported by the assert
                pytest.fail(f"{path.name}:{n}: invalid JSON ({exc})")
            rows.append((n, row))
    return rows


def _key(text: str) -> str:
    return fold_diacritics(normalize(text))


def _required_ids() -> set[str]:
    """Ids of the project's copy of the required list, plus the shared spec when present."""
    ids: set[str] = set()
    for path in (KNOWLEDGE_DIR / "required_intents.yaml", SPEC):
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                ids |= {entry["id"] for entry in yaml.safe_load(fh)}
    return ids


def _knowledge_samples() -> tuple[set[str], dict[str, bool]]:
    """(normalised samples of every intent, intent id -> urgent) from the knowledge base.

    Falls back to reading knowledge/topics/*.yaml directly when the knowledge base does not
    validate (e.g. while a required intent is still being written), so the independence check
    never silently stops running.
    """
    try:
        kb = load_knowledge()
    except KnowledgeError:
        samples: set[str] = set()
        urgent: dict[str, bool] = {}
        for path in sorted((KNOWLEDGE_DIR / "topics").glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for intent in data.get("intents", []) or []:
                urgent[intent["id"]] = bool(intent.get("urgent", False))
                for texts in (intent.get("samples") or {}).values():
                    samples.update(_key(t) for t in texts or [])
        return samples, urgent
    samples = {_key(t) for intent in kb.intents.values() for texts in intent.samples.values() for t in texts}
    return samples, {iid: intent.urgent for iid, intent in kb.intents.items()}


@pytest.fixture(scope="module")
def all_rows() -> dict[str, list[tuple[int, dict]]]:
    return {lang: _rows(lang) for lang in LANGS}


def test_every_language_has_a_file_and_enough_lines(all_rows):
    files = {p.stem for p in EVAL_DIR.glob("*.jsonl")}
    assert set(LANGS) <= files, f"missing eval files: {sorted(set(LANGS) - files)}"
    assert files <= set(LANGS), f"eval files for unknown languages: {sorted(files - set(LANGS))}"
    for lang, rows in all_rows.items():
        assert len(rows) >= MIN_PER_LANG, f"{lang}.jsonl has {len(rows)} lines, need ≥ {MIN_PER_LANG}"
    assert sum(len(r) for r in all_rows.values()) >= 600


def test_fields_and_values(all_rows):
    known = _required_ids() | set(_knowledge_samples()[1])
    problems = []
    for lang, rows in all_rows.items():
        for n, row in rows:
            where = f"{lang}.jsonl:{n}"
            if set(row) != FIELDS:
                problems.append(f"{where}: fields {sorted(row)} != {sorted(FIELDS)}")
                continue
            if not isinstance(row["text"], str) or not row["text"].strip():
                problems.append(f"{where}: empty text")
            if row["lang"] != lang:
                problems.append(f"{where}: lang {row['lang']!r} in {lang}.jsonl")
            if row["kind"] not in KINDS:
                problems.append(f"{where}: unknown kind {row['kind']!r}")
            if row["split"] not in SPLITS:
                problems.append(f"{where}: unknown split {row['split']!r}")
            intent = row["intent"]
            if intent is not None and intent not in known:
                problems.append(f"{where}: unknown intent {intent!r}")
            if row["kind"] == "out_of_scope" and intent is not None:
                problems.append(f"{where}: out_of_scope line labelled {intent!r}")
            if row["kind"] in {"in_scope", "urgent", "crisis"} and intent is None:
                problems.append(f"{where}: {row['kind']} line without an intent")
            if row["kind"] == "crisis" and intent != "emergency.crisis":
                problems.append(f"{where}: crisis line labelled {intent!r}")
    assert not problems, "\n".join(problems)


def test_kinds_are_labelled_consistently_with_urgency(all_rows):
    """Urgent lines carry an urgent intent; everyday traps never do."""
    _, urgent = _knowledge_samples()
    if not any(urgent.values()):
        pytest.skip("the knowledge base marks no intent urgent")
    problems = []
    for lang, rows in all_rows.items():
        for n, row in rows:
            intent = row["intent"]
            if intent not in urgent:
                continue
            if row["kind"] == "urgent" and not urgent[intent]:
                problems.append(f"{lang}.jsonl:{n}: urgent line labelled non-urgent {intent!r}")
            if row["kind"] == "everyday_trap" and urgent[intent]:
                problems.append(f"{lang}.jsonl:{n}: everyday trap labelled urgent {intent!r}")
    assert not problems, "\n".join(problems)


def test_each_language_has_every_kind_and_both_splits(all_rows):
    for lang, rows in all_rows.items():
        kinds = Counter(row["kind"] for _, row in rows)
        assert set(kinds) == KINDS, f"{lang}: kinds present {dict(kinds)}"
        splits = Counter(row["split"] for _, row in rows)
        assert set(splits) == SPLITS, f"{lang}: splits present {dict(splits)}"
        # Roughly half tune, half test, so thresholds fitted on tune are reported on test.
        assert abs(splits["tune"] - splits["test"]) <= max(4, len(rows) // 10), f"{lang}: {dict(splits)}"


def test_no_duplicate_lines(all_rows):
    seen: dict[str, str] = {}
    dupes = []
    for lang, rows in all_rows.items():
        for n, row in rows:
            key = _key(row["text"])
            if key in seen:
                dupes.append(f"{lang}.jsonl:{n} repeats {seen[key]}")
            seen.setdefault(key, f"{lang}.jsonl:{n}")
    assert not dupes, "\n".join(dupes)


def test_independent_of_knowledge_samples(all_rows):
    samples, _ = _knowledge_samples()
    assert samples, "no knowledge samples found"
    copied = [
        f"{lang}.jsonl:{n}: {row['text']!r}"
        for lang, rows in all_rows.items()
        for n, row in rows
        if _key(row["text"]) in samples
    ]
    assert not copied, "eval lines identical to a knowledge sample (rephrase them):\n" + "\n".join(copied)
