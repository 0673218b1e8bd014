"""`intents.evaluate` metrics and CLI, and `intents.calibrate` (tune split only, deterministic)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from intents import calibrate as cal
from intents.evaluate import cli_eval, evaluate, load_labelled
from intents.matcher import Matcher, Thresholds

FIXTURE_KB = Path(__file__).resolve().parent / "fixtures" / "knowledge"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


ROWS = [
    {"lang": "en", "intent": "garbage.sorting", "text": "how do i sort my trash", "kind": "in_scope", "split": "test"},
    {"lang": "vi", "intent": "garbage.sorting", "text": "phan loai rac the nao", "kind": "in_scope", "split": "test"},
    {"lang": "ja", "intent": "garbage.collection_day", "text": "ごみの日 いつ", "kind": "in_scope", "split": "test"},
    # deliberately mislabelled: counted as answered wrong
    {"lang": "en", "intent": "insurance.health", "text": "ごみの日", "kind": "in_scope", "split": "test"},
    {"lang": "en", "intent": None, "text": "😀", "kind": "out_of_scope", "split": "test"},
    {"lang": "en", "intent": None, "text": "qwxz kjhgf", "kind": "out_of_scope", "split": "test"},
    {"lang": "en", "intent": "medical.emergency", "text": "ambulance please", "kind": "urgent", "split": "test"},
    {"lang": "en", "intent": None, "text": "recommend a cheap laptop", "kind": "everyday_trap", "split": "tune"},
]


def test_evaluate_counts_per_language_and_kind(matcher, tmp_path):
    rows = load_labelled(write_jsonl(tmp_path / "e.jsonl", ROWS))
    r = evaluate(matcher, rows)
    assert r["in_scope"] == 5 and r["out_of_scope"] == 3
    assert r["answered_correct_rate"] == 0.8 and r["answered_wrong_rate"] == 0.2
    assert r["oos_decline_rate"] == 1.0
    assert r["per_language"]["vi"]["right"] == 1.0
    assert r["per_language"]["en"]["n"] == 3 and r["per_language"]["en"]["wrong"] == pytest.approx(1 / 3, abs=1e-3)
    assert r["per_language"]["en"]["oos"] == 3
    assert r["urgent"] == 1 and r["urgent_right_rate"] == 1.0
    assert r["everyday_trap"] == 1 and r["trap_emergency"] == 0
    assert r["confused_pairs"][0] == {"expected": "insurance.health", "got": "garbage.collection_day", "count": 1}


def test_splits_are_read_from_a_file_or_a_directory(tmp_path):
    write_jsonl(tmp_path / "en.jsonl", ROWS[:4])
    write_jsonl(tmp_path / "vi.jsonl", ROWS[4:])
    assert len(load_labelled(tmp_path, "all")) == 8
    assert len(load_labelled(tmp_path, "tune")) == 1
    assert len(load_labelled(tmp_path, "test")) == 7
    legacy = write_jsonl(tmp_path / "old.jsonl", [{"text": "x", "intent": None}])   # no kind, no split
    assert load_labelled(legacy, "tune")[0].kind == "out_of_scope"


def test_load_labelled_reports_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "intent": null}\n{not json}\n')
    with pytest.raises(ValueError, match=":2:"):
        load_labelled(path)
    path.write_text('{"text": "ok", "intent": null, "kind": "weird"}\n')
    with pytest.raises(ValueError, match="kind"):
        load_labelled(path)


def test_cli_eval_text_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KURASHI_MODEL_CACHE", str(tmp_path / "cache"))
    path = write_jsonl(tmp_path / "e.jsonl", ROWS)
    args = argparse.Namespace(file=path, json=True, knowledge=FIXTURE_KB, split="test")
    assert cli_eval(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["in_scope"] == 5 and data["split"] == "test" and "per_language" in data
    args.json = False
    assert cli_eval(args) == 0
    out = capsys.readouterr().out
    assert "answered right" in out and "out-of-scope decline" in out and "crisis answered" in out
    assert "everyday trap" in out and "insurance.health" in out


def test_cli_eval_missing_file_is_a_clear_error(tmp_path, capsys):
    args = argparse.Namespace(file=tmp_path / "nope.jsonl", json=False, knowledge=FIXTURE_KB, split="test")
    assert cli_eval(args) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_project_eval_set_is_the_default():
    from intents.evaluate import EVAL_DIR, default_eval_file

    assert default_eval_file() == EVAL_DIR
    rows = load_labelled(EVAL_DIR, "all")
    assert {r.split for r in rows} == {"tune", "test"}


def test_calibration_is_deterministic_and_uses_tune_rows_only(matcher, tmp_path):
    tune = [
        *(load_labelled(write_jsonl(tmp_path / "t.jsonl", [
            {"lang": "en", "intent": "garbage.sorting", "text": "trash sorting rules please", "kind": "in_scope"},
            {"lang": "vi", "intent": "garbage.collection_day", "text": "ngay nao do rac", "kind": "in_scope"},
            {"lang": "en", "intent": "insurance.health", "text": "i need health insurance", "kind": "in_scope"},
            {"lang": "en", "intent": "medical.emergency", "text": "my dad fell and cannot breathe", "kind": "urgent"},
            {"lang": "en", "intent": None, "text": "what is the capital of peru", "kind": "out_of_scope"},
            {"lang": "en", "intent": None, "text": "sing something", "kind": "out_of_scope"},
            {"lang": "ja", "intent": "procedure.move_in", "text": "ひっこしてきた てつづき", "kind": "in_scope"},
        ]))),
    ]
    first, second = cal.calibrate(matcher, tune), cal.calibrate(matcher, tune)
    assert first == second and first.source == second.source
    assert 0 < first.clarify <= first.answer <= 1
    assert first.sharpness > 0
    assert first.source["tune_in_scope"] == 5 and first.source["tune_out_of_scope"] == 2
    path = tmp_path / "thresholds.yaml"
    cal.write_thresholds(first, path)
    assert Thresholds.load(path) == first


def test_an_everyday_trap_answered_as_an_emergency_outweighs_right_answers():
    """The utility makes one 110/119 answer to an everyday message cost more than several
    right emergency answers at the same probability: the urgent threshold goes above it."""
    n = 6
    rows = cal._Rows(
        truth=np.r_[np.zeros(3, np.int32), -np.ones(3, np.int32)], kind=["urgent"] * 3 + ["everyday_trap"] * 3,
        usable=np.ones(n, bool), exact=-np.ones(n, np.int32), crisis_phrase=np.zeros(n, bool),
        p_crisis=np.zeros(n, np.float32), p_oos=np.zeros(n, np.float32),
        best=np.r_[np.full(3, 0.95), np.full(3, 0.6)].astype(np.float32), second=np.zeros(n, np.float32),
        best_intent=np.zeros(n, np.int32), best_urgent=np.ones(n, bool),
        truth_p=np.r_[np.full(3, 0.95), np.zeros(3)].astype(np.float32), truth_rank=np.r_[np.zeros(3), np.full(3, 99)]
        .astype(np.int32), crisis_truth=np.zeros(n, bool), known_ok=np.ones(n, bool),
        p_urgent=np.r_[np.full(3, 0.95), np.full(3, 0.6)].astype(np.float32), urgent_hit=np.r_[np.ones(3), np.zeros(3)]
        .astype(bool))
    th, _, rates = cal._search(rows, 0.2, 3)
    assert 0.6 < th["urgent"] <= 0.95
    assert rates["tune_trap_emergency"] == 0


def test_cli_calibrate_dry_run_does_not_write(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("KURASHI_MODEL_CACHE", str(tmp_path / "cache"))
    target = tmp_path / "thresholds.yaml"
    monkeypatch.setattr(cal, "THRESHOLDS_FILE", target)
    path = write_jsonl(tmp_path / "e.jsonl", [{**r, "split": "tune"} for r in ROWS])
    assert cal.cli_calibrate(argparse.Namespace(write=False, knowledge=FIXTURE_KB, eval=path)) == 0
    assert not target.exists()
    out = capsys.readouterr().out
    assert "dry run" in out and "answer" in out and "sharpness" in out


def test_cli_calibrate_refuses_to_write_another_knowledge_base(monkeypatch, tmp_path, capsys):
    target = tmp_path / "thresholds.yaml"
    monkeypatch.setattr(cal, "THRESHOLDS_FILE", target)
    assert cal.cli_calibrate(argparse.Namespace(write=True, knowledge=FIXTURE_KB, eval=None)) == 2
    assert "installed knowledge base" in capsys.readouterr().err
    assert not target.exists()


def test_cli_calibrate_without_tune_rows_says_so(tmp_path, capsys):
    path = write_jsonl(tmp_path / "e.jsonl", ROWS[:2])          # test split only
    assert cal.cli_calibrate(argparse.Namespace(write=False, knowledge=FIXTURE_KB, eval=path)) == 2
    assert "no tune rows" in capsys.readouterr().err


def test_matcher_with_repo_thresholds_on_the_fixture(fixture_kb, tmp_path):
    m = Matcher.from_knowledge(fixture_kb, cache_dir=tmp_path)
    assert m.match("how do i sort my trash").intent == "garbage.sorting"
