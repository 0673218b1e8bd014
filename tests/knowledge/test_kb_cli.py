"""The `kurashi kb check` command line contract (subprocess, real entry point)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from knowledge.schema import LANGUAGES

REPO = Path(__file__).resolve().parents[2]


def run_kurashi(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "kurashi"
    command = [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, timeout=120, check=False)


def test_kb_check_json_prints_the_documented_shape_and_exits_0_on_a_valid_base(make_kb):
    result = run_kurashi("kb", "check", "--json", "--root", str(make_kb()))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"intents", "languages", "errors", "warnings", "per_check"}
    assert report["intents"] == 2
    assert set(report["languages"]) == set(LANGUAGES)
    assert report["languages"]["id"] == {"answered": 1, "missing": ["demo.unsure"]}
    assert report["errors"] == []
    assert all(set(w) == {"file", "line", "code", "message"} for w in report["warnings"])


def test_kb_check_exits_1_and_prints_file_line_code_on_errors(make_kb):
    root = make_kb("refs")
    result = run_kurashi("kb", "check", "--root", str(root))
    assert result.returncode == 1
    assert f"{root / 'topics' / 'refs.yaml'}:5: error [dangling_related]" in result.stdout
    assert "warning [duplicate_sample]" in result.stdout


def test_kb_check_json_lists_errors_as_objects_and_exits_1(make_kb):
    result = run_kurashi("kb", "check", "--json", "--root", str(make_kb("syntax")))
    assert result.returncode == 1
    [error] = json.loads(result.stdout)["errors"]
    assert error["code"] == "yaml_syntax" and error["line"] == 7
    assert error["file"].endswith("syntax.yaml")


GOOD = Path(__file__).resolve().parent / "fixtures" / "good"


def test_ask_prints_the_rendered_answer_with_the_japanese_terms():
    result = run_kurashi("ask", "desk a question 3", "--knowledge", str(GOOD))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Call Test Desk at 000-000-0000 (Tue–Sat).\n\nIn Japanese: 窓口・相談\n"


def test_ask_answers_in_the_forced_language():
    result = run_kurashi("ask", "desk a question 3", "--lang", "ko", "--knowledge", str(GOOD))
    assert result.stdout.startswith("테스트 창구에 전화하세요: 000-000-0000.")
    assert "일본어 표기: 窓口・相談" in result.stdout


def test_ask_declines_emoji_only_with_the_decline_message():
    result = run_kurashi("ask", "🙂", "--lang", "en", "--knowledge", str(GOOD))
    assert result.returncode == 0
    assert result.stdout == "Sorry, I don't have an answer to that.\n"


def test_ask_refuses_a_broken_knowledge_base_with_exit_1(make_kb):
    result = run_kurashi("ask", "desk", "--knowledge", str(make_kb("refs")))
    assert result.returncode == 1
    assert "dangling_related" in result.stderr


def test_kb_eval_is_wired_to_the_matcher_evaluation():
    labelled = Path(__file__).resolve().parent / "fixtures" / "eval.jsonl"
    result = run_kurashi("kb", "eval", str(labelled), "--json", "--knowledge", str(GOOD))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["in_scope"] == 2
    assert report["per_intent"]["demo.desk"]["accuracy"] == 1.0


def test_kb_calibrate_without_write_changes_nothing():
    thresholds = REPO / "intents" / "thresholds.yaml"
    before = thresholds.read_bytes() if thresholds.exists() else None
    result = run_kurashi("kb", "calibrate", "--knowledge", str(GOOD))
    assert result.returncode == 0, result.stderr
    assert (thresholds.read_bytes() if thresholds.exists() else None) == before


def test_a_clean_kb_check_caches_the_intent_model_for_the_next_start(make_kb, tmp_path):
    """Operators edit samples → `kurashi kb check` → restart: the check trains and caches the
    model, so the restart only loads it."""
    import os

    cache = tmp_path / "model-cache"
    env = {**os.environ, "KURASHI_MODEL_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())",
               "kb", "check", "--root", str(make_kb())]
    first = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300, env=env, check=False)
    assert first.returncode == 0, first.stderr
    assert "intent model: trained in" in first.stdout
    assert len(list(cache.glob("intent-model-*.pickle"))) == 1
    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300, env=env, check=False)
    assert "intent model: up to date in the cache" in again.stdout
    skipped = subprocess.run([*command, "--no-train"], capture_output=True, text=True, cwd=REPO, timeout=300,
                             env={**env, "KURASHI_MODEL_CACHE": str(tmp_path / "other")}, check=False)
    assert skipped.returncode == 0 and "intent model" not in skipped.stdout
    assert not (tmp_path / "other").exists()
