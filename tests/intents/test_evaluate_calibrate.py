"""`intents.evaluate` metrics and CLI, and `intents.calibrate` (deterministic, writes a loadable file)."""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pytest

from intents import calibrate as cal
from intents.evaluate import cli_eval, evaluate, load_labelled
from intents.matcher import Matcher, Thresholds

FIXTURE_KB = Path(__file__).resolve().parent / "fixtures" / "knowledge"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


ROWS = [
    {"lang": "en", "intent": "garbage.sorting", "text": "how do i sort my trash"},
    {"lang": "vi", "intent": "garbage.sorting", "text": "phan loai rac the nao"},
    {"lang": "ja", "intent": "garbage.collection_day", "text": "ごみの日 いつ"},
    {"lang": "en", "intent": "insurance.health", "text": "ごみの日"},          # deliberately mislabelled
    {"lang": "en", "intent": None, "text": "😀"},
    {"lang": "en", "intent": None, "text": "qwxz kjhgf"},
]


def test_evaluate_counts_per_language_intent_and_out_of_scope(matcher, tmp_path):
    rows = load_labelled(write_jsonl(tmp_path / "e.jsonl", ROWS))
    r = evaluate(matcher, rows)
    assert r["in_scope"] == 4 and r["out_of_scope"] == 2
    assert r["accuracy"] == 0.75
    assert r["oos_decline_rate"] == 1.0
    assert r["per_language"]["vi"] == {"n": 1, "accuracy": 1.0}
    assert r["per_language"]["en"] == {"n": 2, "accuracy": 0.5}
    assert r["per_intent"]["insurance.health"] == {"n": 1, "accuracy": 0.0}
    assert r["confused_pairs"][0] == {"expected": "insurance.health", "got": "garbage.collection_day", "count": 1}


def test_load_labelled_reports_the_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "intent": null}\n{not json}\n')
    with pytest.raises(ValueError, match=":2:"):
        load_labelled(path)


def test_cli_eval_text_and_json(tmp_path, capsys):
    path = write_jsonl(tmp_path / "e.jsonl", ROWS)
    args = argparse.Namespace(file=path, json=True, knowledge=FIXTURE_KB)
    assert cli_eval(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["in_scope"] == 4 and "per_language" in data and "confused_pairs" in data
    args.json = False
    assert cli_eval(args) == 0
    out = capsys.readouterr().out
    assert "top-1 accuracy" in out and "out-of-scope decline" in out and "insurance.health" in out


def test_cli_eval_missing_file_is_a_clear_error(tmp_path, capsys):
    args = argparse.Namespace(file=tmp_path / "nope.jsonl", json=False, knowledge=FIXTURE_KB)
    assert cli_eval(args) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_eval_default_file_absent_says_so(monkeypatch, capsys):
    import intents.evaluate as ev

    monkeypatch.setattr(ev, "DEFAULT_EVAL_FILE", Path("/nonexistent/shared/eval/dev.jsonl"))
    assert cli_eval(argparse.Namespace(file=None, json=False, knowledge=FIXTURE_KB)) == 2
    assert "dev.jsonl" in capsys.readouterr().err


def test_gibberish_is_seeded_and_covers_every_script():
    a, b = cal.gibberish(), cal.gibberish()
    assert a == b
    assert any("\uac00" <= c <= "\ud7a3" for t in a for c in t)
    assert any("\u4e00" <= c <= "\u9fa5" for t in a for c in t)
    assert "" in a and "😀" in a


def test_fragment_keeps_the_rarest_words_in_order():
    idf = {"w:how": 1.0, "w:to": 1.0, "w:sort": 3.0, "w:garbage": 2.5, "w:in": 1.0}
    assert cal.fragment("how to sort garbage", idf) == "sort garbage"
    assert cal.fragment("sort garbage", idf) is None
    assert cal.fragment("垃圾怎么分类呢", {"1:分": 5.0, "1:类": 5.0, "1:么": 1.0}) == "么分类"


def test_calibration_is_deterministic_and_sane(fixture_kb, tmp_path):
    base = Matcher.from_knowledge(fixture_kb, Thresholds())
    first, second = cal.calibrate(base), cal.calibrate(base)
    assert first == second and first.source == second.source
    assert 0 < first.clarify <= first.answer < 1
    assert first.clarify <= first.urgent
    assert first.source["positives"] > 200 and first.source["negatives"] >= 150
    # Fewer wrong answers than right ones on its own leave-one-out data, most noise declined.
    assert first.source["loo_answered_wrong"] < first.source["loo_answered_right"]
    assert first.source["negatives_declined"] > 0.6
    path = tmp_path / "thresholds.yaml"
    cal.write_thresholds(first, path)
    assert Thresholds.load(path) == replace(first)


def test_cli_calibrate_dry_run_does_not_write(monkeypatch, tmp_path, capsys):
    target = tmp_path / "thresholds.yaml"
    monkeypatch.setattr(cal, "THRESHOLDS_FILE", target)
    assert cal.cli_calibrate(argparse.Namespace(write=False, knowledge=FIXTURE_KB)) == 0
    assert not target.exists()
    out = capsys.readouterr().out
    assert "dry run" in out and "answer" in out


def test_cli_calibrate_refuses_to_write_another_knowledge_base(monkeypatch, tmp_path, capsys):
    target = tmp_path / "thresholds.yaml"
    monkeypatch.setattr(cal, "THRESHOLDS_FILE", target)
    assert cal.cli_calibrate(argparse.Namespace(write=True, knowledge=FIXTURE_KB)) == 2
    assert "installed knowledge base" in capsys.readouterr().err
    assert not target.exists()
