"""The trained model: training data, the on-disk cache and its invalidation, its negatives."""
from __future__ import annotations

import json

import numpy as np
import pytest

from intents import model as model_mod
from intents.catalog import match_key
from intents.evaluate import EVAL_DIR
from intents.matcher import Matcher, Thresholds
from intents.model import OOS, IntentModel, load_negatives, training_data
from knowledge.loader import KnowledgeBase


def test_training_data_has_samples_terms_and_the_out_of_scope_class(fixture_kb):
    data = training_data(fixture_kb)
    assert set(data.labels) == set(fixture_kb.intents) | {OOS}
    assert match_key("転入届") in data.keys                       # an official term…
    assert "転入届 てんにゅうとどけ" in data.features()             # …read with its kanji reading
    assert data.labels.count(OOS) >= len(load_negatives())         # negatives + gibberish
    assert data.exact[match_key("gomi no hi")] == "garbage.collection_day"


def test_the_model_is_cached_and_loaded_when_the_knowledge_is_unchanged(fixture_kb, tmp_path):
    first = IntentModel.load_or_train(fixture_kb, tmp_path)
    assert first.cache_hit is False
    files = list(tmp_path.glob("intent-model-*.pickle"))
    assert len(files) == 1 and first.digest in files[0].name
    again = IntentModel.load_or_train(fixture_kb, tmp_path)
    assert again.cache_hit is True and again.digest == first.digest
    key = match_key("how do i sort my trash")
    assert np.allclose(first.proba(key), again.proba(key))


def test_a_changed_sample_retrains_the_model(fixture_kb, tmp_path):
    first = IntentModel.load_or_train(fixture_kb, tmp_path)
    intent = fixture_kb.intents["garbage.sorting"]
    samples = {**intent.samples, "en": [*intent.samples["en"], "which bin does a pizza box go in"]}
    changed = KnowledgeBase(intents={**fixture_kb.intents,
                                     "garbage.sorting": intent.model_copy(update={"samples": samples})},
                            groups=fixture_kb.groups)
    second = IntentModel.load_or_train(changed, tmp_path)
    assert second.cache_hit is False and second.digest != first.digest
    assert len(list(tmp_path.glob("intent-model-*.pickle"))) == 2
    # A new model version (features or training changed in code) also retrains.
    old_version = model_mod.MODEL_VERSION
    try:
        model_mod.MODEL_VERSION = old_version + "-next"
        assert IntentModel.load_or_train(fixture_kb, tmp_path).cache_hit is False
    finally:
        model_mod.MODEL_VERSION = old_version


def test_a_corrupt_cache_file_is_replaced(fixture_kb, tmp_path):
    first = IntentModel.load_or_train(fixture_kb, tmp_path)
    path = next(tmp_path.glob(f"intent-model-{first.digest}.pickle"))
    path.write_bytes(b"not a model")
    again = IntentModel.load_or_train(fixture_kb, tmp_path)
    assert again.cache_hit is False
    assert IntentModel.load_or_train(fixture_kb, tmp_path).cache_hit is True


def test_no_cache_directory_means_no_files(fixture_kb, tmp_path, monkeypatch):
    monkeypatch.setenv("KURASHI_MODEL_CACHE", "off")
    monkeypatch.chdir(tmp_path)
    m = Matcher.from_knowledge(fixture_kb, Thresholds())
    assert m.model.cache_hit is False and not list(tmp_path.rglob("*.pickle"))


def test_the_real_model_is_loaded_from_its_cache_the_second_time():
    """Start-up loads the cached model of the installed knowledge base instead of training
    (how long that takes is measured by `make bench`, not asserted here)."""
    from knowledge.loader import load_knowledge

    kb = load_knowledge()
    Matcher.from_knowledge(kb)                       # trains once if this machine has no cache yet
    m = Matcher.from_knowledge(kb)
    assert m.model.cache_hit is True


def test_negatives_are_not_evaluation_messages():
    """intents/data/out_of_scope.yaml is training data: it must not copy the evaluation set."""
    if not EVAL_DIR.is_dir():
        pytest.skip("no evaluation set")
    evals = {match_key(json.loads(line)["text"]) for f in EVAL_DIR.glob("*.jsonl")
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()}
    copied = [t for t in load_negatives() if match_key(t) in evals]
    assert not copied, copied


def test_japanese_and_nepali_keys_get_a_second_script():
    from intents.model import romanize_devanagari, with_reading, with_romanization

    assert with_reading("転入届") == "転入届 てんにゅうとどけ"
    assert with_reading("病院 どこ") == "病院 どこ びょういん どこ"
    assert with_reading("ごみ") == "ごみ"                        # no kanji: unchanged
    assert romanize_devanagari("आगो लाग्यो") == "aago lagyo"
    assert with_romanization("फोहोर") == "फोहोर phohor"
    assert with_romanization("gomi") == "gomi"


def test_fast_scoring_equals_scikit_learn(fixture_kb):
    """``IntentModel.decision`` computes TF-IDF and the scores without scikit-learn; it must
    agree with scikit-learn's own vectorisers and classifier."""
    m = IntentModel.train(training_data(fixture_kb))
    keys = [match_key(t) for t in ("how do i sort my trash", "ごみの日", "쓰레기 요일", "x", "long  words " * 40,
                                   "a b c d", "転入届 てんにゅうとどけ")]
    ours = m.proba_many(keys)
    theirs = m._sklearn[2].predict_proba(m.vectorize(keys))
    assert np.allclose(ours, theirs, atol=1e-5)


def test_a_cached_model_answers_without_scikit_learn(fixture_kb, tmp_path):
    import subprocess
    import sys

    IntentModel.load_or_train(fixture_kb, tmp_path)
    code = ("import sys; from intents.model import IntentModel; from knowledge.loader import load_knowledge; "
            f"m = IntentModel.load_or_train(load_knowledge({str(fixture_kb.root)!r}), {str(tmp_path)!r}); "
            "assert m.cache_hit; m.proba('how do i sort my trash'); "
            "assert 'sklearn' not in sys.modules, 'scikit-learn was imported'")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
