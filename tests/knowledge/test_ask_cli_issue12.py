"""Issue 12, operators: `kurashi ask` saves nothing, so it must not say "I saved your
question"; it stops quietly when its reader goes away (`kurashi ask … | head -1`). And the
one Japan-time format of the console and the CLI (bot.timefmt)."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.timefmt import jst, jst_date, jst_iso
from knowledge.loader import load_knowledge

REPO = Path(__file__).resolve().parents[2]


def kurashi() -> list[str]:
    script = Path(sys.executable).parent / "kurashi"
    return [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


def test_ask_declines_without_claiming_to_save_anything():
    kb = load_knowledge()
    done = subprocess.run([*kurashi(), "ask", "zzqx blorf wuggle", "--lang", "en"], capture_output=True,
                          text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == kb.messages["decline.not_saved"]["en"]
    assert "saved" not in done.stdout.lower()
    for lang, text in kb.messages["decline.not_saved"].items():
        assert text != kb.messages["decline.text"].get(lang), lang


def test_ask_exits_quietly_when_the_pipe_closes():
    proc = subprocess.Popen([*kurashi(), "ask", "how do I sort garbage", "--lang", "en"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                        # the reader is gone before anything is written
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert b"BrokenPipeError" not in err and b"Traceback" not in err and b"Exception ignored" not in err


def test_one_japan_time_format():
    at = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)
    assert jst(at) == "2026-12-06 08:30 JST"
    assert jst(at.replace(tzinfo=None)) == "2026-12-06 08:30 JST"      # naive = UTC (as stored)
    assert jst(None) == "–" and jst_date(at) == "2026-12-06"
    assert jst_iso("2026-12-05T23:30:00+00:00") == "2026-12-06 08:30 JST" and jst_iso("soon") == "soon"


def test_ask_answers_a_garbage_item_question_like_the_bot():
    kb = load_knowledge()
    done = subprocess.run([*kurashi(), "ask", "where does a frying pan go", "--lang", "en"], capture_output=True,
                          text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first == kb.messages["garbage.item_found"]["en"].format(
        item="frying pan", category="Metal & small appliances (金属・小型家電)")
