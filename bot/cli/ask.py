"""`kurashi ask "question" [--lang L] [--knowledge DIR]` — one question, the answer as the bot would send it.

Owns the command only. Matches with ``intents.matcher.Matcher`` and renders with
``knowledge.render``; the texts around an answer (urgent numbers, Japanese terms,
clarify/decline) are system messages from knowledge/messages.yaml, never strings here.
Imports no platform SDK; the matcher is imported inside the handler.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from intents.crisis import CRISIS_INTENT
from knowledge.schema import LANGUAGES


def register(subparsers: argparse._SubParsersAction) -> None:
    ask = subparsers.add_parser("ask", help="answer one question as the bot would")
    ask.add_argument("question", help="the question, in any supported language")
    ask.add_argument("--lang", choices=LANGUAGES, default=None,
                     help="answer in this language (default: the question's language)")
    ask.add_argument("--knowledge", type=Path, default=None,
                     help="knowledge base directory (default: $KNOWLEDGE_DIR, else the installed knowledge/)")
    ask.add_argument("--json", action="store_true",
                     help="also print the match (intent, decision, confidence, language) as JSON first")
    ask.set_defaults(func=answer_question)


def compose_answer(kb, match, lang: str) -> str:
    """The text the resident reads for one match: answer, clarify list or decline."""
    from knowledge.render import render_answer, render_message, render_terms

    def _label(intent_id: str) -> str:
        key = f"topic.{intent_id}"
        return render_message(kb, key, lang) if key in kb.messages else intent_id

    if match.decision == "answer" and match.intent:
        parts = []
        intent = kb.intents[match.intent]
        if intent.urgent and match.intent != CRISIS_INTENT and "urgent.numbers" in kb.messages:
            parts.append(render_message(kb, "urgent.numbers", lang))
        parts.append(render_answer(kb, match.intent, lang))
        terms = render_terms(kb, match.intent)
        if terms and "answer.terms" in kb.messages:
            parts.append(render_message(kb, "answer.terms", lang, terms=terms))
        return "\n\n".join(parts)
    if match.decision == "clarify" and match.suggestions:
        lines = [render_message(kb, "clarify.text", lang)]
        lines += [f"{n}. {_label(intent_id)}" for n, intent_id in enumerate(match.suggestions, 1)]
        return "\n".join(lines)
    # Not decline.text: that one tells the resident their question was saved, and this
    # command saves nothing.
    key = "decline.empty" if not (match.text or "").strip() and "decline.empty" in kb.messages else "decline.not_saved"
    if key not in kb.messages:
        key = "decline.text"
    return render_message(kb, key, lang)


def answer_question(args: argparse.Namespace) -> int:
    """Print the answer to one question in its language (or --lang); 0 even on decline."""
    import sys

    from bot.cli._knowledge import knowledge_dir
    from intents.matcher import Matcher
    from knowledge.loader import KnowledgeError, load_knowledge

    try:
        kb = load_knowledge(knowledge_dir(args.knowledge))
    except KnowledgeError as exc:
        print(exc, file=sys.stderr)
        return 1
    matcher = Matcher.from_knowledge(kb)
    match = matcher.match(args.question, lang=args.lang)
    lang = args.lang or match.language or "en"
    if args.json:
        print(json.dumps({
            "text": args.question, "intent": match.intent, "decision": match.decision,
            "confidence": match.confidence, "language": match.language,
            "suggestions": list(match.suggestions),
        }, ensure_ascii=False))
    item = _garbage_item_line(kb, args.question, match, lang)
    if item is not None:
        # As the bot does: a question naming an item of the city data ("where does a frying pan
        # go") gets that item's category with the sorting answer, instead of "Did you mean…".
        from dataclasses import replace

        print(f"{item}\n\n{compose_answer(kb, replace(match, intent='garbage.sorting', decision='answer'), lang)}")
        return 0
    print(compose_answer(kb, match, lang))
    return 0


def _garbage_item_line(kb, question: str, match, lang: str) -> str | None:
    """The bot's garbage item line ("frying pan" goes in: …) when the question names an item
    by a calendar.yaml alias and the match is about garbage; else None."""
    from knowledge.render import render_message
    from scheduler.garbage_jobs import calendar_of, lookup_item

    garbage = calendar_of(kb)
    families = {c.split(".", 1)[0] for c in [match.intent or "", *(match.suggestions or [])] if c}
    if garbage is None or "garbage" not in families or "garbage.sorting" not in kb.intents:
        return None
    if match.decision == "answer" and match.intent != "garbage.sorting":
        return None
    if not garbage.find_by_alias(question) and match.intent != "garbage.sorting":
        return None
    found = lookup_item(garbage, question, lang)
    if found is None:
        return None
    name, category, notice = found
    line = render_message(kb, "garbage.item_found", lang, item=name, category=category)
    if notice:
        line += "\n" + render_message(kb, "garbage.item_notice", lang, notice=notice)
    return line
