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
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_kb_check_json_prints_the_documented_shape_and_exits_0_on_a_valid_base(make_kb):
    result = run_kurashi("kb", "check", "--json", "--root", str(make_kb()))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"intents", "languages", "errors", "warnings"}
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
