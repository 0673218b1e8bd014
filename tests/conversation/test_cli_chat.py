"""`kurashi chat`: the same core in a terminal, buttons as numbered choices."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from bot.cli.chat import chat_loop

REPO = Path(__file__).resolve().parents[2]


async def test_numbers_press_the_numbered_buttons(engine, kb):
    out = io.StringIO()
    await chat_loop(engine, ["vứt ghế sofa thế nào", "1", "/quit", "never read"], out, user="t1", lang="vi")
    text = out.getvalue()
    assert kb.messages["greeting.follow"]["vi"].splitlines()[0] in text
    assert "Câu trả lời về rác cỡ lớn." in text
    # after the answer, [1] is its first related topic; pressing it shows that answer
    after_answer = text.split("Câu trả lời về rác cỡ lớn.", 1)[1]
    assert f"[1] {kb.messages['topic.garbage.collection_day']['vi']}" in after_answer
    assert "Câu trả lời về ngày thu gom rác." in after_answer


def test_kurashi_chat_command_runs_on_the_real_knowledge_base(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/chat.db", "RUN_SENDER": "false"}
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())", "chat", "--lang", "en"], input="menu\n/quit\n",
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("kurashi>") >= 2
    assert "[1]" in result.stdout
