"""The conversation core: one ``IncomingMessage`` in, a list of ``Reply`` out.

Owns what the bot says and remembers: first contact (welcome, language, skippable area and
segment), matching and answering in the resident's language, clarify/decline, urgent
intents, commands and the menu, settings, feedback, forget-me, non-text events. The
resident's preferences live in the ``users`` row and the conversation state in
``users.state`` (JSON) — nothing per user is kept in memory, so any number of processes
can serve the same resident.

Channel-neutral: must not import platform SDKs (linebot, telegram), Starlette/FastAPI or
channel adapters. Every resident-facing text comes from ``knowledge/messages.yaml`` or
the knowledge answers (through ``bot.conversation.locale`` and ``knowledge.render``).

Button payloads (``Choice.data``, at most 64 bytes — Telegram's callback_data limit):
  i:<intent>            show the answer of an intent
  l:<lang> / lk         switch the language / keep the current one
  m / g:<category>      menu / topics of one menu category
  mo:<intent>:<n>       section n of a long answer (the "More" button)
  c / c:<topic>         consultation (``start_consultation``)
  cn                    "None of these" under a "Did you mean…": rephrase or talk to a person
  fb:+:<intent> / fb:-:<intent>   feedback 👍/👎
  s  s:lang  s:area[:p2|:<key>|:skip]  s:seg[:<segment>]  s:opt:<alerts|events|garbage>
  s:quiet[:off]  s:gt[:<HHMM>]  ob:skip                           settings and onboarding
  x / x:yes / x:no      forget me (ask, confirm, cancel)
  stop                  all notifications off
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import metrics
from bot.conversation.locale import Texts, normalize_language
from bot.db import repo
from bot.db.models import STATUS_ACTIVE, STATUS_UNFOLLOWED, User
from bot.db.rawsql import Driver, driver_of
from bot.db.session import TurnTransaction, turn_transaction
from bot.insights import is_crisis_text
from delivery.messages import Choice, IncomingMessage, Kind, Reply
from intents.crisis import CRISIS_INTENT
from intents.langdetect import detect_language
from intents.normalize import DIGIT, HAN, KANA, LATIN, OTHER, script_profile
from knowledge.garbage import city_calendar
from knowledge.loader import KnowledgeBase
from knowledge.render import render_answer, render_sections, render_terms

log = logging.getLogger("kurashi.conversation")

#: Confidence of language detection needed to pick the language of a first message.
FIRST_LANGUAGE_CONFIDENCE = 0.6
#: Confidence needed to answer in another language than the stored one and offer a switch.
SWITCH_LANGUAGE_CONFIDENCE = 0.8
#: Han-only text (kanji/hanzi and nothing else) below this detection confidence is ambiguous
#: between Japanese and Chinese (地震, 病院): it must not override the stored language.
HAN_DECISIVE_CONFIDENCE = 0.9
#: ``Match.reason`` of a decline the matcher considers an in-domain question it is unsure
#: of (intents.matcher.DECLINE_UNSURE): the only declines stored for the operators.
DECLINE_UNSURE = "unsure"
#: ``Match.reason`` of a message with nothing to read (digits, emoji, punctuation).
DECLINE_EMPTY = "empty"
#: A message with fewer letters says too little about its language to switch to it.
SHORT_MESSAGE_LETTERS = 6
#: Intents whose answer is a flow of the core rather than (only) a knowledge text.
FLOW_INTENTS = {"greeting.hello", "bot.help", "bot.language", "bot.settings", "bot.forget_me"}
#: Menu categories, in menu order, and which intent-id prefix goes where.
CATEGORY_ORDER = ("emergency", "medical", "disaster", "garbage", "procedure", "money", "work",
                  "life", "child", "consult", "events", "other")
CATEGORY_OF_PREFIX = {
    "emergency": "emergency", "medical": "medical", "disaster": "disaster", "garbage": "garbage",
    "procedure": "procedure", "insurance": "money", "tax": "money", "pension": "money",
    "work": "work", "life": "life", "child": "child", "consult": "consult", "city": "consult",
    "events": "events",
}
HIDDEN_PREFIXES = {"greeting", "bot", "smalltalk"}
#: "ok", "thanks", "hi" say little about the language a resident wants: no switch offer.
NO_SWITCH_PREFIXES = {"greeting", "smalltalk"}
SEGMENTS = ("trainee", "student", "other")
GARBAGE_TIMES = ("06:00", "07:00", "08:00", "18:00", "19:00", "20:00", "21:00")
OPTIONS = {"alerts": "opt_alerts", "events": "opt_events", "garbage": "opt_garbage"}
MAX_RELATED = 4
AREA_PAGE = 11
MAX_PAYLOAD_BYTES = 64
_QUIET = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*[-~–〜]\s*(\d{1,2})(?::(\d{2}))?\s*$")


class MatcherLike(Protocol):
    def match(self, text: str, lang: str | None = None) -> Any: ...


#: A consultation hand-off: (engine, turn, topic) -> replies. The consultations feature
#: (issue 4) plugs its own in through ``ConversationEngine(consultation=...)``; when that
#: object also has ``async intercept(engine, turn) -> bool`` it sees every event first and
#: takes the ones that belong to an open consultation.
ConsultationHandler = Callable[["ConversationEngine", "Turn", "str | None"], Awaitable[list[Reply]]]
#: Live text for an intent (next garbage days of the resident's area, upcoming events):
#: (session, user, lang) -> text shown before the static answer, or None for nothing.
DynamicAnswer = Callable[[AsyncSession, User, str], Awaitable["str | None"]]
#: Forget-me: (session, user) -> None, in the turn's transaction. The app passes
#: ``bot.privacy.forget_user`` (every feature's rows); alone, the engine forgets its own
#: (``bot.db.repo.delete_user_data``: webhook events, the users row and its cascades).
ForgetUser = Callable[[AsyncSession, User], Awaitable[None]]


#: ``ConversationEngine.handle(msg, ready=…)``: (the turn's driver connection, in its
#: transaction; the resident's turn lock, not held yet) -> whether the turn may go on now. It may take the
#: lock in its own statement (``repo.earlier_unfinished_events(…, lock=…)``); the engine takes
#: it right after otherwise, before anything of the resident is read.
TurnReady = Callable[[Driver, repo.TurnLock], Awaitable[bool]]


class TurnDeferred(Exception):
    """``handle``'s ``ready`` said not yet: the turn did nothing; ask again later."""


@dataclass
class Turn:
    """One message being handled: the database transaction, the resident and what happened."""

    tx: TurnTransaction
    user: User
    created: bool
    msg: IncomingMessage
    lang: str                       # language of this turn's replies
    decision: str = "none"          # for metrics: answer/clarify/decline/command/postback/event
    intent: str | None = None
    deleted: bool = False
    replies: list[Reply] = field(default_factory=list)
    #: The resident's question behind a button press (the "Did you mean…" they answered), so a
    #: live answer (garbage item look-up) still sees the words they typed.
    question: str | None = None
    #: (text, match) computed before the transaction began (``ConversationEngine.handle``).
    prematch: tuple[str, Any] | None = None

    @property
    def session(self) -> AsyncSession:
        """An ORM session in the turn's transaction (opened on first use)."""
        return self.tx.session

    @property
    def state(self) -> dict[str, Any]:
        return self.user.state if self.user.state is not None else {}

    def set_state(self, **changes: Any) -> None:
        """Update users.state (a fresh dict, so nested changes are persisted too)."""
        state = dict(self.state)
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        self.user.state = state


def user_lock_key(channel: str, user_id: str) -> int:
    """The PostgreSQL advisory lock key (signed 64-bit) of one resident's turns."""
    digest = hashlib.blake2b(f"kurashi:turn:{channel}:{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class ConversationEngine:
    """The channel-neutral core: ``await engine.handle(msg) -> list[Reply]``."""

    def __init__(
        self,
        kb: KnowledgeBase,
        matcher: MatcherLike,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Any = None,
        clock: Callable[[], datetime] | None = None,
        consultation: ConsultationHandler | None = None,
        forget: ForgetUser | None = None,
    ) -> None:
        self.kb = kb
        self.matcher = matcher
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.texts = Texts(kb)
        self._consultation = consultation
        self._forget = forget or repo.delete_user_data
        #: intent id -> DynamicAnswer; features register theirs here (``engine.dynamic_answers[id] = fn``).
        self.dynamic_answers: dict[str, DynamicAnswer] = {}
        #: Functions text -> intent id (or None) that recognise a thing the resident names
        #: (a garbage item: "where does a frying pan go"); consulted when the matcher's answer
        #: or suggestions are in the same topic family (``_named_item_intent``).
        self.item_detectors: list[Callable[[str], str | None]] = []

    # ------------------------------------------------------------------ entry point
    async def handle(self, msg: IncomingMessage, *, ready: TurnReady | None = None) -> list[Reply]:
        """Handle one resident event and return what to send back (maybe nothing).

        ``ready``: asked inside the turn's transaction, with the resident's turn lock (taken by
        its own statement, or by the engine right after) and before anything of the resident
        is read or written; False → ``TurnDeferred`` is raised, nothing is changed (the
        inbound path uses it to answer a resident's messages in order)."""
        started = time.perf_counter()
        decision, lang = "event", "none"
        try:
            if msg.kind == Kind.GROUP_JOIN:
                # A group is not a resident: store nothing, answer in every core language.
                hint = normalize_language(msg.language_hint)
                text = (self.texts.t("event.group", hint) if hint
                        else self.texts.all_languages("event.group", ("ja", "en")))
                return [Reply(text=text)]
            # Match a typed question before the transaction: on SQLite a transaction holds the
            # database's only write lock (BEGIN IMMEDIATE), which matching need not hold.
            prematch = None
            if msg.kind == Kind.TEXT and msg.text and self.texts.command_of(msg.text) is None:
                prematch = (msg.text, self.matcher.match(msg.text))
            # The turn's transaction on a Core connection; an ORM session joins it only when a
            # feature asks for ``turn.session`` (a plain question never does: bot/db/session.py).
            async with turn_transaction(self.sessionmaker) as tx:
                # The driver connection under the turn's transaction, resolved once for every
                # statement of the turn below.
                driver = await driver_of(tx.connection)
                # One turn per resident at a time across processes (several `kurashi serve`
                # workers on one database): the second waits for the first's commit.
                lock = repo.TurnLock(user_lock_key(msg.channel.value, msg.user_id) if driver.postgres else None)
                if ready is not None and not await ready(driver, lock):
                    raise TurnDeferred(msg.user_id)
                await repo.lock_turn(driver, lock)   # nothing when ``ready`` took it
                if msg.kind == Kind.UNFOLLOW:
                    await repo.mark_status(tx.session, msg.channel.value, [msg.user_id], STATUS_UNFOLLOWED)
                    return []
                # The resident through plain Core SQL, not the ORM's unit of work (bot/db/repo.py):
                # one SELECT (+ INSERT on first contact) now, one UPDATE of what changed below.
                user, created, snapshot = await repo.load_turn_user(
                    driver, msg.channel.value, msg.user_id, now=self.clock()
                )
                if user.status != STATUS_ACTIVE:
                    user.status = STATUS_ACTIVE   # they wrote again: they can be reached again
                turn = Turn(tx, user, created, msg, lang=user.language or "en", prematch=prematch)
                await self._dispatch(turn)
                if not turn.deleted:
                    await repo.save_turn_user(driver, user, snapshot)
                decision, lang = turn.decision, turn.lang
                # No message text and no user id at INFO: channel, kind, decision, intent only.
                log.info("handled", extra={"channel": msg.channel.value, "kind": msg.kind.value,
                                           "decision": decision, "intent": turn.intent, "lang": lang,
                                           "ms": round((time.perf_counter() - started) * 1000, 1)})
                for reply in turn.replies:
                    reply.language = turn.user.language
                return [self._checked(r) for r in turn.replies]
        except TurnDeferred:
            decision = "deferred"   # not a message handled (yet): not counted
            raise
        finally:
            if decision != "deferred":
                metrics.observe_message(msg.channel.value, lang, decision, time.perf_counter() - started)

    def _match(self, turn: Turn, text: str) -> Any:
        if turn.prematch is not None and turn.prematch[0] == text:
            return turn.prematch[1]
        return self.matcher.match(text)

    @staticmethod
    def _checked(reply: Reply) -> Reply:
        for choice in (*reply.quick_replies, *reply.buttons):
            if len(choice.data.encode()) > MAX_PAYLOAD_BYTES:  # pragma: no cover - a bug in the core
                raise ValueError(f"button payload over {MAX_PAYLOAD_BYTES} bytes: {choice.data!r}")
        return reply

    async def _dispatch(self, turn: Turn) -> None:
        msg = turn.msg
        # An open consultation takes the resident's messages (bot/consult/flow.py).
        intercept = getattr(self._consultation, "intercept", None)
        if intercept is not None and await intercept(self, turn):
            return
        if msg.kind == Kind.FOLLOW:
            await self.handle_follow(turn)
        elif msg.kind == Kind.TEXT:
            await self.handle_text(turn, msg.text or "")
        elif msg.kind == Kind.POSTBACK:
            await self.handle_postback(turn, msg.data or "")
        elif msg.kind == Kind.LOCATION:
            await self.handle_location(turn)
        elif msg.kind == Kind.EDITED:
            self._ensure_language(turn)
            turn.replies.append(Reply(self.texts.t("event.edited", turn.lang)))
        else:  # sticker, image, video, audio, file
            await self.handle_non_text(turn)

    # ------------------------------------------------------------------ helpers
    def t(self, turn: Turn, key: str, **fields: object) -> str:
        return self.texts.t(key, turn.lang, **fields)

    def _ensure_language(self, turn: Turn) -> bool:
        """Adopt the platform's language hint on first contact; True when a language is known."""
        if turn.user.language:
            turn.lang = turn.user.language
            return True
        hint = normalize_language(turn.msg.language_hint)
        if hint:
            turn.user.language = turn.lang = hint
            return True
        return False

    def _menu_buttons(self, turn: Turn) -> list[Choice]:
        return [Choice(self.t(turn, "menu.btn.menu"), "m")]

    def _language_picker(self, turn: Turn, *, text: str | None = None) -> Reply:
        choices = [Choice(self.texts.language_name(code), f"l:{code}") for code in self.texts.picker_languages]
        return Reply(text=text or self.texts.all_languages("lang.pick"), quick_replies=choices)

    def _categories(self) -> dict[str, list[str]]:
        cats: dict[str, list[str]] = {}
        for intent_id in self.kb.intents:
            prefix = intent_id.split(".", 1)[0]
            if prefix in HIDDEN_PREFIXES:
                continue
            cats.setdefault(CATEGORY_OF_PREFIX.get(prefix, "other"), []).append(intent_id)
        return {c: cats[c] for c in CATEGORY_ORDER if c in cats}

    def menu_reply(self, turn: Turn, text: str | None = None) -> Reply:
        """The main menu: topic categories, settings and language."""
        choices = [Choice(self.t(turn, f"cat.{cat}"), f"g:{cat}") for cat in self._categories()]
        choices += [Choice(self.t(turn, "menu.btn.settings"), "s"),
                    Choice(self.t(turn, "menu.btn.language"), "s:lang")]
        return Reply(text=text or self.t(turn, "menu.text"), quick_replies=choices)

    def _onboarding(self, turn: Turn) -> list[Reply]:
        """Offer area and segment once (skippable), right after the first useful reply."""
        if turn.state.get("onboarded") or turn.deleted:
            return []
        turn.set_state(onboarded=True)
        if turn.user.area and turn.user.segment:
            return []
        return [Reply(
            text=self.t(turn, "onboard.offer"),
            quick_replies=[Choice(self.t(turn, "settings.btn.area"), "s:area"),
                           Choice(self.t(turn, "settings.btn.segment"), "s:seg"),
                           Choice(self.t(turn, "area.skip"), "ob:skip")],
        )]

    # ------------------------------------------------------------------ follow
    async def handle_follow(self, turn: Turn) -> None:
        """A new friend (LINE follow, Telegram /start): greet in their language, or ask for it."""
        turn.decision = "follow"
        if not self._ensure_language(turn):
            turn.replies.append(self._language_picker(turn))
            return
        key = "greeting.follow" if turn.created or not turn.state.get("greeted") else "greeting.again"
        turn.set_state(greeted=True)
        turn.replies.append(self.menu_reply(turn, text=self.t(turn, key)))
        turn.replies += self._onboarding(turn)

    # ------------------------------------------------------------------ text
    async def handle_text(self, turn: Turn, text: str) -> None:
        """A typed message: pending input, a command, or a question for the matcher."""
        self._ensure_language(turn)
        command = self.texts.command_of(text)
        pending = turn.state.get("await")
        if pending and command is None and await self._handle_pending(turn, pending, text):
            return
        if pending:
            turn.set_state(**{"await": None})   # a command (or stale input) cancels the question
        if command is not None:
            # 메뉴 from an English resident: answer this command in Korean (nothing stored).
            turn.lang = self.texts.command_language(text, turn.lang)
            await self._abandon_clarify(turn, None)
            await self.run_command(turn, command)
            return
        await self.answer_question(turn, text)
        self._remember_question(turn, text)

    def _remember_question(self, turn: Turn, text: str) -> None:
        """Keep the resident's last question and the bot's reply (users.state["asked"]): a
        consultation started next shows staff the words that led to it (bot/consult/flow.py)."""
        if turn.deleted or not text.strip() or not turn.replies:
            return
        answer = "\n\n".join(r.text for r in turn.replies if r.text)
        turn.set_state(asked={"text": text.strip()[:2000], "intent": turn.intent, "decision": turn.decision,
                              "answer": answer[:2000], "at": self.clock().isoformat()})

    async def _handle_pending(self, turn: Turn, pending: str, text: str) -> bool:
        """Input the bot asked for (👎 question, quiet hours); False if this is not it."""
        if pending.startswith("fb:"):
            intent = pending[3:]
            turn.set_state(**{"await": None})
            if text.strip():
                await repo.record_feedback(turn.session, turn.user, intent, -1,
                                           language=turn.lang, question=text.strip()[:2000])
            turn.decision = "feedback"
            if text.strip() and await self._answer_rephrased(turn, text, disliked=intent):
                self._remember_question(turn, text)
                return True
            turn.replies.append(Reply(f"{self.t(turn, 'fb.stored')}\n\n{self.t(turn, 'rephrase.hint')}",
                                      quick_replies=self._rephrase_buttons(turn, intent)))
            self._remember_question(turn, text)
            return True
        if pending == "quiet":
            parsed = _parse_quiet(text)
            if parsed is None:
                turn.decision = "settings"
                turn.replies.append(Reply(self.t(turn, "quiet.bad"),
                                          quick_replies=[Choice(self.t(turn, "quiet.off"), "s:quiet:off"),
                                                         *self._menu_buttons(turn)]))
                return True
            turn.user.quiet_start, turn.user.quiet_end = parsed
            turn.set_state(**{"await": None})
            turn.decision = "settings"
            turn.replies.append(self.settings_reply(
                turn, prefix=self.t(turn, "quiet.set", start=parsed[0], end=parsed[1])))
            return True
        return False

    async def run_command(self, turn: Turn, command: str) -> None:
        """A command typed as a word or /slash, or pressed as a menu button."""
        turn.decision = "command"
        if command == "start":
            await self.handle_follow(turn)
            turn.decision = "command"
        elif command == "menu":
            turn.replies.append(self.menu_reply(turn))
        elif command == "language":
            turn.replies.append(self._language_picker(turn, text=self.t(turn, "lang.pick")))
        elif command == "settings":
            turn.replies.append(self.settings_reply(turn))
        elif command == "consult":
            turn.replies += await self.start_consultation(turn, None)
        elif command == "forget":
            turn.replies.append(self._forget_confirm(turn))
        elif command == "stop":
            await self.stop_notifications(turn)

    def _reply_language(self, turn: Turn, text: str, detected: str | None, confidence: float,
                        decision: str, intent: str | None) -> tuple[str | None, str | None]:
        """(language to answer this turn in, language to offer switching to).

        A resident's stored (or platform) language wins unless the message is clearly
        written in another one: romaji Japanese from an English session, a very short or
        mixed-script message, or Han-only text (地震 is as Japanese as it is Chinese) are
        answered in the stored language. A decline follows the message's own language when
        it is clear (the resident wrote in it), else the stored one.
        """
        known = normalize_language(detected)
        stored = turn.user.language
        if not known:
            return stored, None
        romaji = known == "ja" and _is_latin_only(text)
        short = _letter_count(text) < SHORT_MESSAGE_LETTERS or _is_mixed_script(text)
        if stored and stored != "zh" and confidence < HAN_DECISIVE_CONFIDENCE and _is_han_only(text):
            return stored, None
        if not stored:
            if confidence >= FIRST_LANGUAGE_CONFIDENCE and not romaji:
                return known, None
            return (known if decision != "decline" and not romaji else None), None
        if known == stored or romaji or short or confidence < SWITCH_LANGUAGE_CONFIDENCE:
            return stored, None
        if decision == "decline" or self._is_urgent(intent):
            # "I can't help" in the words they used; an emergency (or crisis) answer in the
            # language they are writing in, without a settings question on top.
            return known, None
        if (intent or "").split(".", 1)[0] in NO_SWITCH_PREFIXES:
            return stored, None
        return known, known

    async def answer_question(self, turn: Turn, text: str) -> None:
        """Match a question and answer, clarify or decline — in the resident's language."""
        match = self._match(turn, text)
        detected = match.language
        confidence = getattr(match, "language_confidence", None)
        if confidence is None:
            detected, confidence = detect_language(text) if text.strip() else ("en", 0.0)
        first_contact = turn.created or not turn.state.get("greeted")
        intent = match.intent
        decision = match.decision if intent or match.decision == "decline" else "decline"
        suggestions = list(match.suggestions or [])
        if decision == "clarify" and not self._is_urgent(intent) \
                and (named := self._named_item_intent(text, intent, suggestions)):
            # "where does a frying pan go": the item's category instead of "Did you mean…" (a sure
            # answer stays: "vứt ghế sofa thế nào" is about bulky garbage, not sorting).
            intent, decision = named, "answer"
        lang, offer_switch = self._reply_language(turn, text, detected, confidence, decision, intent)
        if lang:
            turn.lang = lang
            if not turn.user.language and lang == normalize_language(detected) \
                    and confidence >= FIRST_LANGUAGE_CONFIDENCE:
                turn.user.language = lang
        await self._abandon_clarify(turn, intent if decision == "answer" else None)

        if first_contact:
            turn.set_state(greeted=True)
            if decision in ("answer", "clarify") and intent != "greeting.hello" and turn.user.language \
                    and not self._is_urgent(intent):
                turn.replies.append(Reply(self.t(turn, "welcome.first")))

        if decision == "answer" and intent in self.kb.intents:
            turn.decision, turn.intent = "answer", intent
            await self.show_intent(turn, intent)
        elif decision == "clarify" and suggestions:
            turn.decision = "clarify"
            shown = [s for s in suggestions[:3] if s in self.kb.intents]
            turn.set_state(clarify={"text": text[:1000], "lang": turn.lang, "suggestions": shown})
            choices = [Choice(self.texts.intent_label(s, turn.lang), f"i:{s}") for s in shown]
            # Always a way to reach a person, and a way out ("none of these": rephrase or a person).
            choices.append(Choice(self.t(turn, "consult.button"), "c"))
            choices.append(Choice(self.t(turn, "clarify.none"), "cn"))
            turn.replies.append(Reply(self.t(turn, "clarify.text"), quick_replies=choices))
        else:
            turn.decision = "decline"
            reason = getattr(match, "reason", "") or DECLINE_UNSURE
            meaningful = any(unicodedata.category(ch)[0] in "LN" for ch in text)
            # Only an in-domain question the bot could not answer is a knowledge gap for the
            # operators; off-topic chat, insults and gibberish are not stored.
            stored = meaningful and reason == DECLINE_UNSURE and not is_crisis_text(text)
            if stored:
                await repo.record_unanswered(turn.session, turn.user, text[:2000],
                                             language=normalize_language(detected) or detected,
                                             decision="decline", suggestions=suggestions[:3])
            if not turn.user.language and not lang:
                turn.replies.append(self._language_picker(turn))
                return
            empty = not meaningful or reason == DECLINE_EMPTY
            key = "decline.text" if stored else ("decline.empty" if empty else "decline.out_of_scope")
            text_out = self.t(turn, key)
            if getattr(match, "urgent_hint", False):
                # The model is unsure, but an emergency is not impossible: the numbers, always.
                text_out = f"{text_out}\n\n{self.t(turn, 'urgent.numbers')}"
            turn.replies.append(Reply(text_out, quick_replies=[
                Choice(self.t(turn, "menu.btn.menu"), "m"),
                Choice(self.t(turn, "consult.button"), "c"),
            ]))
            if not turn.user.language:
                turn.replies.append(self._language_picker(turn))
            return

        if offer_switch:
            turn.replies.append(Reply(
                self.texts.t("lang.switch_offer", offer_switch, language=self.texts.language_name(offer_switch)),
                quick_replies=[Choice(self.texts.language_name(offer_switch), f"l:{offer_switch}"),
                               Choice(self.texts.t("lang.keep", turn.user.language), "lk")],
            ))
        if not turn.user.language:
            turn.replies.append(self._language_picker(turn))
        elif first_contact:
            turn.replies += self._onboarding(turn)

    def _is_urgent(self, intent_id: str | None) -> bool:
        intent = self.kb.intents.get(intent_id or "")
        return bool(intent and intent.urgent)

    def _named_item_intent(self, text: str, intent: str | None, suggestions: list[str]) -> str | None:
        """An intent for a thing the question names (a garbage item), when the matcher's answer
        or one of its suggestions is of the same family ("garbage.…"); else None."""
        families = {c.split(".", 1)[0] for c in [intent or "", *suggestions] if c}
        for detect in self.item_detectors:
            found = detect(text)
            if found and found in self.kb.intents and found.split(".", 1)[0] in families:
                return found
        return None

    def _rephrase_buttons(self, turn: Turn, intent_id: str | None = None) -> list[Choice]:
        """Talk to a person (about this topic when the intent has one) and the menu."""
        intent = self.kb.intents.get(intent_id or "")
        topic = intent.consult_topic if intent is not None else None
        return [Choice(self.t(turn, "consult.button"), f"c:{topic}" if topic else "c"), *self._menu_buttons(turn)]

    async def _answer_rephrased(self, turn: Turn, text: str, *, disliked: str | None = None) -> bool:
        """The resident said in other words what they wanted (after 👎): answer it when the
        matcher is now sure of an intent (another one than the answer they disliked, unless a
        live answer such as the garbage item look-up can use their words). True if answered."""
        match = self._match(turn, text)
        suggestions = list(match.suggestions or [])
        intent = self._named_item_intent(text, match.intent, [*suggestions, disliked or ""])
        if intent is None and match.decision == "answer":
            intent = match.intent
        if not intent or intent not in self.kb.intents or intent in FLOW_INTENTS:
            return False
        if intent == disliked and intent not in self.dynamic_answers:
            return False
        turn.decision, turn.intent = "answer", intent
        await self.show_intent(turn, intent)
        return True

    def _none_of_these(self, turn: Turn) -> None:
        """"None of these" under a "Did you mean…": ask for other words, offer a person and the menu."""
        turn.decision = "clarify"
        turn.replies.append(Reply(self.t(turn, "rephrase.none"), quick_replies=self._rephrase_buttons(turn)))

    async def _abandon_clarify(self, turn: Turn, chosen: str | None) -> None:
        """A "Did you mean…" the resident did not pick from is recorded for operators."""
        pending = turn.state.get("clarify")
        if not pending:
            return
        turn.set_state(clarify=None)
        if chosen and chosen in pending.get("suggestions", []):
            return
        if is_crisis_text(pending.get("text"), pending.get("suggestions")):
            return      # words about a personal crisis are never kept for the operators' list
        await repo.record_unanswered(turn.session, turn.user, pending.get("text", ""),
                                     language=pending.get("lang"), decision="clarify_abandoned",
                                     suggestions=pending.get("suggestions", []))

    async def show_intent(self, turn: Turn, intent_id: str) -> None:
        """The knowledge answer (or the core flow behind a bot.* intent) for one intent."""
        if intent_id in FLOW_INTENTS:
            await self._show_flow_intent(turn, intent_id)
            return
        reply = self.answer_reply(turn, intent_id)
        dynamic = self.dynamic_answers.get(intent_id)
        if dynamic is not None:
            try:
                # A function marked ``wants_text`` also gets the question (garbage item look-up).
                live = await (dynamic(turn.session, turn.user, turn.lang,  # type: ignore[call-arg]
                                      text=turn.msg.text or turn.question)
                              if getattr(dynamic, "wants_text", False)
                              else dynamic(turn.session, turn.user, turn.lang))
            except Exception:  # live data is a bonus: the static answer must still arrive
                log.exception("dynamic answer failed", extra={"intent": intent_id})
                live = None
            if live:
                reply.text = f"{live.strip()}\n\n{reply.text}"
        turn.replies.append(reply)

    async def _show_flow_intent(self, turn: Turn, intent_id: str) -> None:
        if intent_id == "greeting.hello":
            key = "greeting.follow" if not turn.state.get("welcomed") else "greeting.again"
            turn.set_state(welcomed=True)
            turn.replies.append(self.menu_reply(turn, text=self.t(turn, key)))
        elif intent_id == "bot.help":
            turn.replies.append(self.menu_reply(turn, text=render_answer(self.kb, intent_id, turn.lang)))
        elif intent_id == "bot.language":
            turn.replies.append(self._language_picker(turn, text=self.t(turn, "lang.pick")))
        elif intent_id == "bot.settings":
            turn.replies.append(self.settings_reply(turn))
        elif intent_id == "bot.forget_me":
            turn.replies.append(self._forget_confirm(turn))

    def answer_reply(self, turn: Turn, intent_id: str) -> Reply:
        """Answer text with the Japanese term; buttons: consult, related topics, 👍/👎, menu.
        A long answer (sections split by ``---`` lines) shows its first section and a
        "More" button first (``mo:<intent>:1``, see ``_more_reply``)."""
        intent = self.kb.intents[intent_id]
        sections = render_sections(self.kb, intent_id, turn.lang)
        text = sections[0]
        terms = render_terms(self.kb, intent_id)
        if terms:
            text = f"{text}\n\n{self.t(turn, 'answer.terms', terms=terms)}"
        if intent.urgent and intent_id != CRISIS_INTENT:
            # The crisis answer opens with "you are not alone" and carries 119/110 itself.
            text = f"{self.t(turn, 'urgent.numbers')}\n\n{text}"
        choices: list[Choice] = [Choice(self.t(turn, "answer.more"), f"mo:{intent_id}:1")] if len(sections) > 1 else []
        if intent.escalates:
            topic = intent.consult_topic
            choices.append(Choice(self.t(turn, "consult.button"), f"c:{topic}" if topic else "c"))
        for related in intent.related[:MAX_RELATED]:
            if related in self.kb.intents:
                choices.append(Choice(self.texts.intent_label(related, turn.lang), f"i:{related}"))
        # No 👍/👎 under small talk, nor under the crisis answer (its "what did you want to
        # know?" follow-up would store a resident's words about a crisis).
        if intent_id.split(".", 1)[0] not in HIDDEN_PREFIXES and intent_id != CRISIS_INTENT:
            choices += [Choice(self.t(turn, "fb.up"), f"fb:+:{intent_id}"),
                        Choice(self.t(turn, "fb.down"), f"fb:-:{intent_id}")]
        choices.append(Choice(self.t(turn, "menu.btn.menu"), "m"))
        return Reply(text=text, quick_replies=choices)

    def _more_reply(self, turn: Turn, rest: str) -> Reply:
        """Section ``n`` of a long answer (``mo:<intent>:<n>``): "More" again while sections
        remain; the last one ends with the answer's own buttons (consult, 👍/👎, menu)."""
        intent_id, _, number = rest.rpartition(":")
        if intent_id not in self.kb.intents or not number.isdigit():
            return self.menu_reply(turn)
        sections = render_sections(self.kb, intent_id, turn.lang)
        index = min(int(number), len(sections) - 1)
        turn.intent = intent_id
        if index + 1 < len(sections):
            return Reply(sections[index], quick_replies=[
                Choice(self.t(turn, "answer.more"), f"mo:{intent_id}:{index + 1}"), *self._menu_buttons(turn)])
        last = self.answer_reply(turn, intent_id)
        return Reply(sections[index], quick_replies=[c for c in last.quick_replies if not c.data.startswith("mo:")])

    # ------------------------------------------------------------------ postbacks
    async def handle_postback(self, turn: Turn, data: str) -> None:
        """A button press; unknown or stale payloads show the menu."""
        self._ensure_language(turn)
        turn.decision = "postback"
        head, _, rest = data.partition(":")
        if turn.state.get("await") and head not in ("fb",):
            turn.set_state(**{"await": None})
        turn.question = (turn.state.get("clarify") or {}).get("text") if head == "i" else None
        await self._abandon_clarify(turn, rest if head == "i" else None)
        if head == "i" and rest in self.kb.intents:
            turn.intent = rest
            await self.show_intent(turn, rest)
        elif head == "l":
            await self.set_language(turn, rest)
        elif head == "lk":
            turn.replies.append(Reply(self.t(turn, "lang.set"), quick_replies=self._menu_buttons(turn)))
        elif head == "mo":
            turn.replies.append(self._more_reply(turn, rest))
        elif head == "m":
            turn.replies.append(self.menu_reply(turn))
        elif head == "g":
            self._show_category(turn, rest)
        elif head == "c":
            turn.replies += await self.start_consultation(turn, rest or None)
        elif head == "cn":
            self._none_of_these(turn)
        elif head == "fb":
            await self._feedback(turn, rest)
        elif head == "s":
            await self._settings_postback(turn, rest)
        elif head == "ob":
            turn.set_state(onboarded=True)
            turn.replies.append(self.menu_reply(turn))
        elif head == "x":
            await self._forget_postback(turn, rest)
        elif head == "stop":
            await self.stop_notifications(turn)
        else:
            turn.replies.append(self.menu_reply(turn))

    async def set_language(self, turn: Turn, code: str) -> None:
        """The resident picked a language: remember it, confirm, then menu (and onboarding once)."""
        lang = normalize_language(code)
        if lang is None:
            turn.replies.append(self._language_picker(turn))
            return
        turn.user.language = turn.lang = lang
        first = not turn.state.get("greeted")
        turn.set_state(greeted=True)
        text = self.t(turn, "lang.set")
        if first:
            text = f"{self.t(turn, 'greeting.follow')}\n\n{text}"
        turn.replies.append(self.menu_reply(turn, text=text))
        turn.replies += self._onboarding(turn)

    def _show_category(self, turn: Turn, category: str) -> None:
        """One category, or several joined with "+" (the LINE rich menu's areas, e.g. g:work+consult)."""
        names = [c for c in category.split("+") if c]
        cats = self._categories()
        intents = [i for name in names for i in cats.get(name, [])]
        if len(names) > 1 and intents:
            category = names[0]
        if not intents:
            turn.replies.append(self.menu_reply(turn))
            return
        choices = [Choice(self.texts.intent_label(i, turn.lang), f"i:{i}") for i in intents[:12]]
        choices.append(Choice(self.t(turn, "menu.btn.menu"), "m"))
        turn.replies.append(Reply(self.t(turn, "menu.category", category=self.t(turn, f"cat.{category}")),
                                  quick_replies=choices))

    async def _feedback(self, turn: Turn, rest: str) -> None:
        """👍 is stored at once; 👎 asks what the resident wanted to know (stored with their answer)."""
        sign, _, intent = rest.partition(":")
        if intent not in self.kb.intents:
            turn.replies.append(self.menu_reply(turn))
            return
        turn.decision, turn.intent = "feedback", intent
        if sign == "+":
            await repo.record_feedback(turn.session, turn.user, intent, 1, language=turn.lang)
            turn.replies.append(Reply(self.t(turn, "fb.thanks"), quick_replies=self._menu_buttons(turn)))
        else:
            turn.set_state(**{"await": f"fb:{intent}"})
            turn.replies.append(Reply(self.t(turn, "fb.ask_question"), quick_replies=self._rephrase_buttons(turn, intent)))

    # ------------------------------------------------------------------ consultation
    async def start_consultation(self, turn: Turn, topic: str | None) -> list[Reply]:
        """Hand the resident to a person. Until the consultations feature plugs in its own
        handler, show the consultation centre's contact (from contacts.yaml)."""
        turn.decision = "consult"
        if self._consultation is not None:
            return await self._consultation(self, turn, topic)
        return [Reply(self.t(turn, "consult.contact"), quick_replies=self._menu_buttons(turn))]

    # ------------------------------------------------------------------ settings
    def settings_reply(self, turn: Turn, prefix: str | None = None) -> Reply:
        """The resident's settings and buttons to change each of them."""
        user = turn.user
        on, off, unset = self.t(turn, "settings.on"), self.t(turn, "settings.off"), self.t(turn, "settings.unset")
        quiet = (f"{user.quiet_start}–{user.quiet_end}" if user.quiet_start and user.quiet_end
                 else self.t(turn, "quiet.none"))
        text = self.t(
            turn, "settings.text",
            area=self.texts.district_name(user.area, turn.lang) or unset,
            segment=self.t(turn, f"segment.{user.segment}") if user.segment in SEGMENTS else unset,
            alerts=on if user.opt_alerts else off,
            events=on if user.opt_events else off,
            garbage=on if user.opt_garbage else off,
            garbage_time=user.garbage_time or "19:00",
            quiet=quiet,
        )
        if prefix:
            text = f"{prefix}\n\n{text}"
        if user.opt_garbage and not self._real_garbage_calendar():
            # Reminders are never sent from a sample calendar (scheduler/garbage_jobs.py): say so.
            text = f"{text}\n\n{self.t(turn, 'garbage.reminders_pending')}"
        choices = [
            Choice(self.t(turn, "settings.btn.area"), "s:area"),
            Choice(self.t(turn, "settings.btn.segment"), "s:seg"),
            Choice(self.t(turn, "settings.btn.alerts"), "s:opt:alerts"),
            Choice(self.t(turn, "settings.btn.events"), "s:opt:events"),
            Choice(self.t(turn, "settings.btn.garbage"), "s:opt:garbage"),
            Choice(self.t(turn, "settings.btn.garbage_time"), "s:gt"),
            Choice(self.t(turn, "settings.btn.quiet"), "s:quiet"),
            Choice(self.t(turn, "menu.btn.language"), "s:lang"),
            Choice(self.t(turn, "menu.btn.stop"), "stop"),
            Choice(self.t(turn, "menu.btn.forget"), "x"),
            Choice(self.t(turn, "menu.btn.menu"), "m"),
        ]
        return Reply(text=text, quick_replies=choices)

    def _real_garbage_calendar(self) -> bool:
        """Whether the city's real garbage calendar (not a sample) is loaded."""
        calendar = city_calendar(getattr(self.kb, "garbage", None) or {})
        return calendar is not None and not calendar.sample

    def area_picker(self, turn: Turn, page: int = 1, text: str | None = None) -> Reply:
        keys = self.texts.districts
        chunk = keys[:AREA_PAGE] if page == 1 else keys[AREA_PAGE:]
        choices = [Choice(self.texts.district_name(k, turn.lang) or k, f"s:area:{k}") for k in chunk]
        if page == 1 and len(keys) > AREA_PAGE:
            choices.append(Choice(self.t(turn, "area.more"), "s:area:p2"))
        choices.append(Choice(self.t(turn, "area.skip"), "s:area:skip"))
        return Reply(text=text or self.t(turn, "area.pick"), quick_replies=choices)

    async def _settings_postback(self, turn: Turn, rest: str) -> None:
        turn.decision = "settings"
        user = turn.user
        what, _, value = rest.partition(":")
        if not what:
            turn.replies.append(self.settings_reply(turn))
        elif what == "lang":
            turn.replies.append(self._language_picker(turn, text=self.t(turn, "lang.pick")))
        elif what == "area":
            if not value:
                turn.replies.append(self.area_picker(turn))
            elif value == "p2":
                turn.replies.append(self.area_picker(turn, page=2))
            elif value == "skip":
                turn.set_state(onboarded=True)
                turn.replies.append(self.menu_reply(turn))
            elif value in self.texts.districts:
                user.area = value
                turn.replies.append(self.settings_reply(
                    turn, prefix=self.t(turn, "area.set", area=self.texts.district_name(value, turn.lang))))
            else:
                turn.replies.append(self.area_picker(turn))
        elif what == "seg":
            if value in SEGMENTS:
                user.segment = value
                turn.replies.append(self.settings_reply(
                    turn, prefix=self.t(turn, "segment.set", segment=self.t(turn, f"segment.{value}"))))
            else:
                turn.replies.append(Reply(self.t(turn, "segment.pick"), quick_replies=[
                    *(Choice(self.t(turn, f"segment.{s}"), f"s:seg:{s}") for s in SEGMENTS),
                    Choice(self.t(turn, "area.skip"), "ob:skip"),
                ]))
        elif what == "opt" and value in OPTIONS:
            column = OPTIONS[value]
            setattr(user, column, not getattr(user, column))
            state = self.t(turn, "settings.on" if getattr(user, column) else "settings.off")
            prefix = self.t(turn, "settings.toggled", name=self.t(turn, f"settings.btn.{value}"), state=state)
            if value == "garbage" and user.opt_garbage and not user.area:
                # Reminders go by area: without one nothing would ever come, so ask right away.
                turn.replies.append(self.area_picker(turn, text=f"{prefix}\n\n{self.t(turn, 'garbage.need_area')}"))
            else:
                turn.replies.append(self.settings_reply(turn, prefix=prefix))
        elif what == "quiet":
            if value == "off":
                user.quiet_start = user.quiet_end = None
                turn.set_state(**{"await": None})
                turn.replies.append(self.settings_reply(turn, prefix=self.t(turn, "settings.saved")))
            else:
                turn.set_state(**{"await": "quiet"})
                turn.replies.append(Reply(self.t(turn, "quiet.ask"), quick_replies=[
                    Choice(self.t(turn, "quiet.off"), "s:quiet:off"), *self._menu_buttons(turn)]))
        elif what == "gt":
            chosen = f"{value[:2]}:{value[2:]}" if len(value) == 4 else None
            if chosen in GARBAGE_TIMES:
                user.garbage_time = chosen
                turn.replies.append(self.settings_reply(turn, prefix=self.t(turn, "gtime.set", time=chosen)))
            else:
                turn.replies.append(Reply(self.t(turn, "gtime.pick"), quick_replies=[
                    Choice(t, f"s:gt:{t.replace(':', '')}") for t in GARBAGE_TIMES]))
        else:
            turn.replies.append(self.settings_reply(turn))

    async def stop_notifications(self, turn: Turn) -> None:
        """Every opt-in off at once."""
        turn.decision = "settings"
        turn.user.opt_alerts = turn.user.opt_events = turn.user.opt_garbage = False
        turn.replies.append(Reply(self.t(turn, "stop.done"), quick_replies=[
            Choice(self.t(turn, "menu.btn.settings"), "s"), *self._menu_buttons(turn)]))

    # ------------------------------------------------------------------ forget me
    def _forget_confirm(self, turn: Turn) -> Reply:
        return Reply(self.t(turn, "forget.confirm"), quick_replies=[
            Choice(self.t(turn, "forget.yes"), "x:yes"), Choice(self.t(turn, "forget.no"), "x:no")])

    async def _forget_postback(self, turn: Turn, rest: str) -> None:
        turn.decision = "forget"
        if rest == "yes":
            lang = turn.lang
            await self._forget(turn.session, turn.user)
            turn.deleted = True
            turn.replies.append(Reply(self.texts.t("forget.done", lang)))
        elif rest == "no":
            turn.replies.append(Reply(self.t(turn, "forget.cancelled"), quick_replies=self._menu_buttons(turn)))
        else:
            turn.replies.append(self._forget_confirm(turn))

    # ------------------------------------------------------------------ other events
    async def handle_location(self, turn: Turn) -> None:
        """A shared location: offer its district as the resident's area when the address names one."""
        self._ensure_language(turn)
        turn.decision = "event"
        location = turn.msg.location
        key = self.texts.district_from_address(location.address if location else None)
        if key:
            name = self.texts.district_name(key, turn.lang)
            turn.replies.append(Reply(self.t(turn, "event.location_area", area=name), quick_replies=[
                Choice(self.t(turn, "event.yes"), f"s:area:{key}"),
                Choice(self.t(turn, "settings.btn.area"), "s:area"),
                *self._menu_buttons(turn)]))
        else:
            turn.replies.append(self.area_picker(turn, text=self.t(turn, "event.location_unknown")))

    async def handle_non_text(self, turn: Turn) -> None:
        """Stickers, images, audio…: say politely that the bot reads text, and show the menu."""
        turn.decision = "event"
        if not self._ensure_language(turn):
            turn.replies.append(Reply(self.texts.all_languages("event.nontext")))
            turn.replies.append(self._language_picker(turn))
            return
        turn.replies.append(self.menu_reply(turn, text=self.t(turn, "event.nontext")))


def _letter_count(text: str) -> int:
    """Letters, a Han/kana/Hangul/Myanmar/Devanagari character counting as two (they carry more)."""
    n = 0
    for ch in text:
        if unicodedata.category(ch)[0] == "L":
            n += 1 if ch.isascii() or script_profile(ch).get(LATIN) else 2
    return n


def _is_latin_only(text: str) -> bool:
    """Letters all Latin (romaji Japanese is detected as ja but read by a non-Japanese reader)."""
    profile = script_profile(text)
    return profile.get(LATIN, 0) > 0 and set(profile) <= {LATIN, DIGIT, OTHER}


def _is_mixed_script(text: str) -> bool:
    """Two writing systems in one message ("gomi 何曜日", "SIM カード"): no clear language."""
    profile = script_profile(text)
    scripts = [s for s, n in profile.items() if s not in (DIGIT, OTHER) and n >= 2]
    if set(scripts) <= {HAN, KANA}:   # Japanese writes kanji and kana together
        return False
    return len(scripts) > 1


def _is_han_only(text: str) -> bool:
    """True when the letters are all Han characters (digits and punctuation aside)."""
    profile = script_profile(text)
    return profile.get(HAN, 0) > 0 and set(profile) <= {HAN, DIGIT, OTHER}


def _parse_quiet(text: str) -> tuple[str, str] | None:
    """"22:00-07:00" (also full-width, "22-7", "22:00~7:00") → ("22:00", "07:00")."""
    m = _QUIET.match(unicodedata.normalize("NFKC", text))
    if not m:
        return None
    h1, m1, h2, m2 = int(m.group(1)), int(m.group(2) or 0), int(m.group(3)), int(m.group(4) or 0)
    if not (0 <= h1 <= 24 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60):
        return None
    return f"{h1 % 24:02d}:{m1:02d}", f"{h2 % 24:02d}:{m2:02d}"
