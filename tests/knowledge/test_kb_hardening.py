"""Knowledge files are read defensively: a YAML alias bomb (a few lines standing for
millions of nodes — `kurashi kb check` grew to 23 GB on one) is refused with a clear error
naming file and line, and so is any anchor/alias: knowledge files are written out in full."""
from __future__ import annotations

import time
from pathlib import Path

from knowledge.validate import check_knowledge

BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True))


def test_alias_bomb_in_a_topic_file_is_refused_quickly(make_kb) -> None:
    root = make_kb()
    (root / "topics" / "bomb.yaml").write_text(BOMB, encoding="utf-8")
    started = time.perf_counter()
    report = check_knowledge(root)
    assert time.perf_counter() - started < 5
    [problem] = [p for p in report.errors if p.code == "yaml_alias"]
    assert Path(problem.file).name == "bomb.yaml" and problem.line == 1
    assert "anchors/aliases" in problem.message


def test_a_single_alias_is_refused_too(make_kb) -> None:
    root = make_kb()
    path = root / "contacts.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\nx_base: &base {a: 1}\nx_copy: *base\n", encoding="utf-8")
    report = check_knowledge(root)
    assert any(p.code == "yaml_alias" and p.file.endswith("contacts.yaml") for p in report.errors)


def test_kb_check_ask_and_classify_read_knowledge_dir_like_serve(make_kb, monkeypatch, capsys) -> None:
    """`serve` loads KNOWLEDGE_DIR; the operator tools used to check the installed knowledge/ instead."""
    import io

    from bot.cli import main

    root = make_kb()
    monkeypatch.setenv("KNOWLEDGE_DIR", str(root))
    monkeypatch.chdir(root)   # no .env of the repository
    assert main(["kb", "check"]) == 0
    assert "\n2 intents; answered" in capsys.readouterr().out
    assert main(["ask", "desk a question 3", "--lang", "en"]) == 0
    assert "Call " in capsys.readouterr().out                  # the fixture's demo.desk answer
    monkeypatch.setattr("sys.stdin", io.StringIO("desk a question 3\n"))
    assert main(["classify"]) == 0
    assert "demo.desk" in capsys.readouterr().out
