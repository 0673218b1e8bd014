"""knowledge/messages.yaml as the core uses it: every key the code names exists in the core
languages, and button labels fit LINE's 20-character quick-reply limit."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from knowledge.schema import CORE_LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = yaml.safe_load((ROOT / "knowledge" / "messages.yaml").read_text(encoding="utf-8"))["messages"]
CORE_SOURCES = [ROOT / "bot" / "conversation" / "engine.py", ROOT / "bot" / "conversation" / "locale.py",
                ROOT / "bot" / "web" / "chat.py"]
LABEL_PREFIXES = ("menu.btn.", "cat.", "topic.", "settings.btn.", "district.", "fb.up", "fb.down", "forget.yes",
                  "forget.no", "lang.keep", "quiet.off", "area.more", "area.skip", "clarify.none",
                  "consult.button", "event.yes", "segment.trainee", "segment.student", "segment.other")
LINE_LABEL_LIMIT = 20


def test_every_message_key_named_in_the_core_exists_in_every_core_language():
    named: set[str] = set()
    for source in CORE_SOURCES:
        text = source.read_text(encoding="utf-8")
        named |= set(re.findall(r'"((?:welcome|greeting|lang|menu|cat|answer|fb|urgent|clarify|decline|consult|'
                                r'settings|area|segment|quiet|gtime|onboard|forget|stop|event|web|fact)\.[a-z_.]+)"',
                                text))
    intent_ids = {i["id"] for f in (ROOT / "knowledge" / "topics").glob("*.yaml")
                  for i in yaml.safe_load(f.read_text(encoding="utf-8"))["intents"]}
    named -= intent_ids
    assert len(named) > 40
    for key in sorted(named):
        assert key in MESSAGES, key
        assert set(CORE_LANGUAGES) <= set(MESSAGES[key]), key


def test_button_labels_fit_line_quick_replies():
    long = [(key, lang, text) for key, values in MESSAGES.items() if key.startswith(LABEL_PREFIXES)
            for lang, text in values.items() if len(text) > LINE_LABEL_LIMIT]
    assert long == []


def test_twenty_one_districts_in_every_core_language():
    districts = [k for k in MESSAGES if k.startswith("district.")]
    assert len(districts) == 21
    for key in districts:
        assert set(CORE_LANGUAGES) <= set(MESSAGES[key])


COMMANDS = ("menu", "language", "settings", "consult", "forget", "stop")


def test_command_words_exist_in_every_core_language_and_no_word_runs_two_commands():
    from bot.conversation.locale import _plain

    seen: dict[str, str] = {}
    for command in COMMANDS:
        words = MESSAGES[f"cmd.{command}"]
        assert set(CORE_LANGUAGES) <= set(words), command
        for lang, text in words.items():
            for word in text.split("|"):
                assert word.strip() == word and word, (command, lang, word)
                assert seen.setdefault(_plain(word), command) == command, (word, command, seen[_plain(word)])
