"""`kurashi classify` as a subprocess: one JSON line per input line, same order, blank → decline."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURE_KB = Path(__file__).resolve().parent / "fixtures" / "knowledge"

KEYS = ["text", "intent", "decision", "confidence", "language", "suggestions"]


def run_classify(stdin: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())",
           "classify", "--knowledge", str(FIXTURE_KB), *extra]
    return subprocess.run(cmd, check=False, input=stdin, capture_output=True, text=True, encoding="utf-8", timeout=120)


def test_one_json_object_per_line_in_order_with_blank_lines_declined():
    lines = ["how do i sort my trash", "", "ごみの日 いつ", "   ", "😀", "phan loai rac", "12345"]
    proc = run_classify("\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(out) == len(lines)
    assert [o["text"] for o in out] == lines
    for o in out:
        assert list(o) == KEYS
        assert o["decision"] in ("answer", "clarify", "decline")
        assert isinstance(o["suggestions"], list)
        assert 0.0 <= o["confidence"] <= 1.0
        if o["decision"] == "decline":
            assert o["intent"] is None
    assert out[0]["intent"] == "garbage.sorting"
    assert out[2]["intent"] == "garbage.collection_day" and out[2]["language"] == "ja"
    assert out[5]["intent"] == "garbage.sorting" and out[5]["language"] == "vi"
    for i in (1, 3, 4, 6):
        assert out[i]["decision"] == "decline" and out[i]["intent"] is None


def test_last_line_without_newline_and_crlf_are_handled():
    proc = run_classify("hello\r\nphan loai rac")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [o["text"] for o in out] == ["hello", "phan loai rac"]


def test_lang_option_forces_the_language():
    proc = run_classify("phan loai rac\nごみの日\n", "--lang", "ko")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [o["language"] for o in out] == ["ko", "ko"]
    assert out[0]["intent"] == "garbage.sorting"


def test_empty_input_gives_empty_output():
    proc = run_classify("")
    assert proc.returncode == 0 and proc.stdout == ""


def test_unknown_language_is_a_usage_error():
    proc = run_classify("hello\n", "--lang", "xx")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_broken_knowledge_base_is_reported_not_crashed(tmp_path):
    (tmp_path / "topics").mkdir()
    (tmp_path / "topics" / "x.yaml").write_text("group: x\nintents: [{id: BAD}]\n")
    cmd = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())",
           "classify", "--knowledge", str(tmp_path)]
    proc = subprocess.run(cmd, check=False, input="hello\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "knowledge base" in proc.stderr and proc.stdout == ""


def test_each_answer_is_flushed_before_the_next_line_arrives():
    """A pipe partner gets each JSON line while stdin is still open (no buffering to EOF)."""
    import threading

    cmd = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())",
           "classify", "--knowledge", str(FIXTURE_KB)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")
    got: list[str] = []
    try:
        for text in ("hello", "phan loai rac"):
            proc.stdin.write(text + "\n")
            proc.stdin.flush()
            reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()), daemon=True)
            reader.start()
            reader.join(120)          # generous: only a missing flush makes this wait forever
            assert got and json.loads(got[-1])["text"] == text
    finally:
        proc.stdin.close()
        proc.wait(60)
    assert proc.returncode == 0
