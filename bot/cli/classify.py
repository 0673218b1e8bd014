"""`kurashi classify [--lang L] [--knowledge DIR]`: stdin one message per line → one JSON object per line.

Owns only the command line around ``intents.matcher.Matcher``: same order, one output
line per input line (blank lines → decline with intent null), flushed per line so it can
sit in a pipe. Imports intents/ and knowledge/ only.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from knowledge.schema import LANGUAGES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="classify messages from stdin (one per line) into intents, JSON lines on stdout",
        description="Reads one message per line on stdin and writes one JSON object per line: "
                    '{"text", "intent", "decision", "confidence", "language", "suggestions"}.',
    )
    parser.add_argument("--lang", choices=LANGUAGES, help="force the message language instead of detecting it")
    parser.add_argument("--knowledge", type=Path, default=None,
                        help="knowledge base directory (default: $KNOWLEDGE_DIR, else the installed knowledge/)")
    parser.set_defaults(func=classify_lines)


def classify_lines(args: argparse.Namespace) -> int:
    """Handler: build the matcher once, then answer every stdin line in order."""
    from bot.cli._knowledge import knowledge_dir
    from intents.matcher import Matcher
    from knowledge.loader import KnowledgeError, load_knowledge

    try:
        kb = load_knowledge(knowledge_dir(args.knowledge))
    except KnowledgeError as exc:
        print(f"kurashi classify: {exc}", file=sys.stderr)
        return 1
    matcher = Matcher.from_knowledge(kb)
    out = sys.stdout
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        text = line.rstrip("\r\n")
        match = matcher.match(text, lang=args.lang)
        out.write(json.dumps(match.as_json(), ensure_ascii=False) + "\n")
        out.flush()
    return 0
