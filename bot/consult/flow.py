"""The resident's side of a consultation: a small state machine plugged into the
conversation engine (``ConversationEngine(consultation=ConsultationFlow(...))``).

Steps (kept in ``users.state["consult"]``, the messages themselves in the database):
  topic → (urgent topics: 110/119 first) → who will read it, when they are open, when to
  expect an answer, consent → compose (any number of texts, photos, stickers, locations;
  stored in a draft case at once) → Send → case number, organisation, expected answer →
  case mode: what the resident writes goes to the case, with a "Back to the bot" button on
  every acknowledgement; typed commands (menu, language…) also return to the bot.
  Staff replies arrive as outbox pushes carrying a "Write to K-…" button that re-enters
  case mode. When staff close the case, the resident gets 1–5 rating buttons.

Button payloads (all under "k:", at most 64 bytes):
  k:t:<topic>   pick a topic          k:y / k:n       consent yes / no
  k:s           send the draft        k:x             cancel the draft
  k:b           back to the bot       k:w:<case id>   write to an open case
  k:r:<case id>:<1-5>                 rate a closed case
  k:g:<segment> / k:g:-               the resident's segment (asked once when routing needs it) / skip

Must not import platform SDKs, FastAPI or channel adapters; images are fetched through
``fetch_media`` (set by bot.services to the adapters' get_content / get_file).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.consult import cases
from bot.consult.routing import (
    TOKYO,
    Route,
    depends_on_segment,
    due_at,
    hours_known,
    is_open,
    next_open,
    response_hours,
    route,
)
from bot.db.consult_models import CASE_CLOSED, DIR_IN, DIR_SYSTEM, Case, CaseMessage
from delivery.messages import Choice, IncomingMessage, Kind, Reply
from knowledge.dates import format_datetime
from knowledge.partners import presentable
from knowledge.render import contact_field, fill_placeholders
from knowledge.schema import CONSULT_TOPICS

log = logging.getLogger("kurashi.consult.flow")

#: Fetch the bytes of a platform media id: (channel, platform id) -> bytes.
MediaFetcher = Callable[[str, str], Awaitable[bytes]]
MEDIA_TIMEOUT = 15.0
MAX_MEDIA_BYTES = 10 * 1024 * 1024
#: Kinds whose content is fetched and stored (others are kept as a reference).
FETCHED_KINDS = {Kind.IMAGE}
MAX_DRAFT_MESSAGES = 50
#: consult_messages.kind of the hand-off context line (the question before "Talk to a consultant").
HANDOFF_KIND = "handoff"
#: A question asked longer ago than this does not count as the reason for a consultation.
HANDOFF_CONTEXT_WINDOW = timedelta(hours=2)
#: Segments a resident can pick (the engine's settings offer the same ones).
SEGMENTS = ("trainee", "student", "other")


def _sniff(data: bytes, fallback: str | None) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return fallback or "application/octet-stream"


def _local(at: datetime, lang: str, *, zone: bool = False) -> str:
    """A date and time for the resident: weekday, day and month in words, 24-hour Japan time
    (the messages around it say "Japan time" themselves unless ``zone``)."""
    return format_datetime(at.astimezone(TOKYO), lang, zone=zone)


class ConsultationFlow:
    """``await flow(engine, turn, topic)`` starts a consultation; ``await flow.intercept(engine,
    turn)`` takes the turn when it belongs to the consultation (returns True)."""

    def __init__(self, kb: Any, fetch_media: MediaFetcher | None = None) -> None:
        self.kb = kb
        self.fetch_media = fetch_media

    @property
    def partners(self) -> Any:
        return getattr(self.kb, "partners", None)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _state(turn: Any) -> dict[str, Any]:
        return dict(turn.state.get("consult") or {})

    @staticmethod
    def _set(turn: Any, value: dict[str, Any] | None) -> None:
        turn.set_state(consult=value or None)

    def _name(self, org: str, lang: str) -> str:
        return cases.partner_name(self.kb, org, lang)

    def _back(self, engine: Any, turn: Any) -> Choice:
        return Choice(engine.t(turn, "consult.btn.back"), "k:b")

    def _compose_buttons(self, engine: Any, turn: Any) -> list[Choice]:
        return [Choice(engine.t(turn, "consult.btn.send"), "k:s"),
                Choice(engine.t(turn, "consult.btn.cancel"), "k:x")]

    # ------------------------------------------------------------------ start
    async def __call__(self, engine: Any, turn: Any, topic: str | None) -> list[Reply]:
        """The entry point (consult button, command, intent, menu): topic picker or offer."""
        engine._ensure_language(turn)
        turn.decision = "consult"
        if self.partners is None:   # no partners.yaml: the consultation centre's contact
            return [Reply(engine.t(turn, "consult.contact"), quick_replies=engine._menu_buttons(turn))]
        open_case = await cases.open_case_of(turn.session, turn.user)
        if open_case is not None:
            self._set(turn, {"mode": "bot", "case": open_case.id})
            return [Reply(engine.t(turn, "consult.open_case", case_no=open_case.number,
                                   org=self._name(open_case.org, turn.lang)),
                          quick_replies=[cases._write_button(self.kb, open_case), *engine._menu_buttons(turn)])]
        draft = await cases.draft_of(turn.session, turn.user)
        if draft is not None:
            await cases.discard_draft(turn.session, draft)
        if topic in CONSULT_TOPICS:
            return await self._offer(engine, turn, topic)
        self._set(turn, {"step": "topic"})
        choices = [Choice(engine.t(turn, f"consult.topic.{t}"), f"k:t:{t}") for t in CONSULT_TOPICS]
        choices.append(Choice(engine.t(turn, "consult.btn.cancel"), "k:n"))
        return [Reply(engine.t(turn, "consult.pick_topic"), quick_replies=choices)]

    async def _route(self, engine: Any, turn: Any, topic: str, now: datetime) -> tuple[Route, bool]:
        """(organisation, whether it can take the case here).

        Residents are offered only organisations that are presentable (verified, with a
        verified contact: ``knowledge.partners.presentable``). Among those, ``route`` picks
        one somebody would hear about (an active staff account or a notification target).
        When there is none — a fresh installation, or every organisation for this topic
        without staff — the second value is False and the route names the organisation the
        resident should call instead: no case is created and no answer time is promised."""
        from bot.consult.notify import unreachable_orgs

        hidden = frozenset(key for key, partner in self.partners.partners.items()
                           if not presentable(partner, self.kb.contacts))
        unreachable = await unreachable_orgs(turn.session, self.kb)
        picked = route(self.partners, topic, turn.user.segment, turn.lang, now, exclude=hidden | unreachable)
        if picked.org not in unreachable and picked.org not in hidden:
            return picked, True
        direct = route(self.partners, topic, turn.user.segment, turn.lang, now, exclude=hidden)
        log.info("consultation not offered: no staff account or notification target; the resident "
                 "gets the organisation's phone and hours (kurashi staff add / kurashi staff notify)",
                 extra={"org": direct.org, "topic": topic})
        return direct, False

    def _contact_directly(self, engine: Any, turn: Any, org: str) -> Reply:
        """Nobody can take a case for ``org`` here: its phone, hours and web page at once,
        from contacts.yaml (unverified facts marked ※), and no case."""
        partner = self.partners.partners.get(org)
        contact = self.kb.contacts.get(partner.contact) if partner is not None and partner.contact else None
        if contact is None:
            return Reply(engine.t(turn, "consult.contact"), quick_replies=engine._menu_buttons(turn))
        lines = [engine.t(turn, "consult.contact_directly", org=self._name(org, turn.lang))]
        for icon, fld in (("☎", "phone"), ("🕘", "hours"), ("🔗", "url")):
            if getattr(contact, fld):
                lines.append(f"{icon} {{{{{partner.contact}.{fld}}}}}")
        text, unverified = fill_placeholders(self.kb, "\n".join(lines), turn.lang)
        if unverified:
            text = f"{text}\n\n{engine.t(turn, 'fact.unverified')}"
        return Reply(text, quick_replies=engine._menu_buttons(turn))

    def _ask_segment(self, engine: Any, turn: Any, topic: str) -> list[Reply] | None:
        """Routing for this topic depends on the segment and it is unknown: ask once
        (trainee / student / other, skippable); the answer is stored on the user."""
        if turn.user.segment or turn.state.get("seg_asked") or not depends_on_segment(self.partners, topic):
            return None
        turn.set_state(seg_asked=True)
        self._set(turn, {"step": "segment", "topic": topic})
        choices = [Choice(engine.t(turn, f"segment.{s}"), f"k:g:{s}") for s in SEGMENTS]
        choices.append(Choice(engine.t(turn, "area.skip"), "k:g:-"))
        return [Reply(engine.t(turn, "consult.segment_pick"), quick_replies=choices)]

    async def _offer(self, engine: Any, turn: Any, topic: str) -> list[Reply]:
        """Who will read it, when they are open, when to expect an answer; ask for consent."""
        asked = self._ask_segment(engine, turn, topic)
        if asked is not None:
            return asked
        now = engine.clock()
        picked, takes_cases = await self._route(engine, turn, topic, now)
        partner = picked.partner
        replies: list[Reply] = []
        if topic in self.partners.urgent_topics:
            replies.append(Reply(f"{engine.t(turn, 'urgent.numbers')}\n{engine.t(turn, 'consult.urgent_first')}"))
        if not takes_cases:
            self._set(turn, None)
            replies.append(self._contact_directly(engine, turn, picked.org))
            return replies
        contact = self.kb.contacts.get(partner.contact) if partner.contact else None
        hours_text = contact_field(contact, "hours", turn.lang) if contact is not None else None
        if hours_known(partner, turn.lang) and hours_text:
            hours = engine.t(turn, "consult.hours", hours=hours_text)
            if not is_open(partner, now, turn.lang):
                opens = next_open(partner, now, turn.lang)
                if opens is not None:
                    hours = f"{hours}\n{engine.t(turn, 'consult.closed_now', next_open=_local(opens, turn.lang, zone=True))}"
        else:
            hours = engine.t(turn, "consult.hours_unknown")
        text = engine.t(turn, "consult.who", org=self._name(picked.org, turn.lang), hours=hours,
                        due=_local(due_at(partner, now, turn.lang, hours_to_answer=response_hours(picked.org)),
                                   turn.lang))
        self._set(turn, {"step": "consent", "topic": topic, "org": picked.org})
        replies.append(Reply(text, quick_replies=[Choice(engine.t(turn, "consult.btn.yes"), "k:y"),
                                                  Choice(engine.t(turn, "consult.btn.no"), "k:n")]))
        return replies

    # ------------------------------------------------------------------ routing of turns
    async def intercept(self, engine: Any, turn: Any) -> bool:
        """Take the turn if it belongs to the consultation; False lets the engine handle it."""
        msg: IncomingMessage = turn.msg
        if msg.kind == Kind.POSTBACK and (msg.data or "").startswith("k:"):
            engine._ensure_language(turn)
            turn.decision = "consult"
            turn.replies += await self._postback(engine, turn, (msg.data or "")[2:])
            return True
        state = self._state(turn)
        if not state or msg.kind in (Kind.FOLLOW, Kind.UNFOLLOW, Kind.GROUP_JOIN):
            return False
        engine._ensure_language(turn)
        is_command = msg.kind == Kind.TEXT and engine.texts.command_of(msg.text or "") is not None
        if msg.kind == Kind.POSTBACK or is_command:
            # Any other button or a typed command: back to the bot (a draft stays until the next start).
            if state.get("mode") == "case":
                self._set(turn, {"mode": "bot", "case": state.get("case")})
            elif state.get("step"):
                self._set(turn, None)
            return False
        if state.get("step") == "compose":
            draft = await cases.draft_of(turn.session, turn.user)
            if draft is None:
                self._set(turn, None)
                return False
            turn.decision = "consult"
            urgent = await self._store(engine, turn, draft, resident=False)
            count = await turn.session.scalar(
                select(func.count()).select_from(CaseMessage).where(CaseMessage.case_id == draft.id,
                                                                  CaseMessage.direction == DIR_IN))
            turn.replies += urgent
            turn.replies.append(Reply(engine.t(turn, "consult.draft_ack", count=count),
                                      quick_replies=self._compose_buttons(engine, turn)))
            return True
        if state.get("step") in ("topic", "segment", "consent"):
            self._set(turn, None)    # typed instead of choosing: an ordinary question again
            return False
        if state.get("mode") == "case":
            case = await cases.open_case_of(turn.session, turn.user)
            if case is None or case.id != state.get("case"):
                self._set(turn, None)
                return False
            turn.decision = "consult"
            turn.replies += await self._store(engine, turn, case, resident=True)
            turn.replies.append(Reply(engine.t(turn, "consult.case_ack", case_no=case.number,
                                               org=self._name(case.org, turn.lang)),
                                      quick_replies=[self._back(engine, turn)]))
            return True
        return False

    @staticmethod
    def _urgent_intent(engine: Any, match: Any) -> str | None:
        """The urgent intent (kb ``urgent: true``) the matcher answered with, if any. The
        matcher answers an emergency at once only when it is sure (its own calibrated
        threshold); an everyday message that merely shares words with one is asked back, and
        must not put 110/119 into a consultation either."""
        if getattr(match, "decision", "") != "answer":
            return None
        intent_id = getattr(match, "intent", None)
        intent = engine.kb.intents.get(intent_id or "")
        return str(intent_id) if intent is not None and intent.urgent else None

    def _urgent_replies(self, engine: Any, turn: Any, intent_id: str | None) -> list[Reply]:
        """An emergency written into a consultation is still answered at once: 110/119 and
        the urgent answer (the engine's own rendering), before the case acknowledgement."""
        if intent_id is None:
            return []
        try:
            reply = engine.answer_reply(turn, intent_id)
        except Exception:  # the numbers must arrive even if the answer cannot render
            log.exception("urgent answer failed during a consultation")
            return [Reply(engine.t(turn, "urgent.numbers"))]
        turn.intent = intent_id
        # The case acknowledgement that follows carries the buttons (back to the bot / send).
        return [Reply(reply.text, card=reply.card)]

    async def _store(self, engine: Any, turn: Any, case: Case, *, resident: bool) -> list[Reply]:
        """Keep one resident message with the case: text (with detected language and matched
        intent), image bytes, sticker, location, other media as a reference. Returns the
        urgent replies (110/119 and the urgent answer) to send first when the text is an
        emergency, else an empty list."""
        msg: IncomingMessage = turn.msg
        kind = msg.kind.value
        text = language = intent = None
        urgent: str | None = None
        extra: dict[str, Any] | None = None
        media = None
        if msg.kind in (Kind.TEXT, Kind.EDITED):
            text = (msg.text or "")[:cases.MAX_TEXT]
            try:
                match = engine.matcher.match(text)
                language = getattr(match, "language", None) or turn.lang
                # The matcher's best guess even when it would only ask "did you mean" (staff see
                # it as a hint next to the text, never as a decision).
                decision = getattr(match, "decision", "")
                intent = getattr(match, "intent", None) if decision in ("answer", "clarify") else None
                urgent = self._urgent_intent(engine, match)
                if urgent is not None:
                    intent = urgent
            except Exception:  # the matcher must never lose a resident's message
                log.exception("matcher failed on a case message")
                language = turn.lang
        elif msg.kind == Kind.LOCATION and msg.location is not None:
            loc = msg.location
            extra = {"latitude": loc.latitude, "longitude": loc.longitude, "address": loc.address,
                     "title": loc.title}
        elif msg.media is not None:
            extra = {"platform_id": msg.media.platform_id, "mime_type": msg.media.mime_type}
            if msg.kind in FETCHED_KINDS:
                media = await self._fetch(msg)
        if resident:
            await cases.resident_message(turn.session, self.kb, case, kind=kind, text=text, language=language,
                                         intent=intent, extra=extra, media=media, now=engine.clock())
        else:
            await cases.add_message(turn.session, case, kind=kind, text=text, language=language,
                                    intent=intent, extra=extra, media=media, now=engine.clock())
        return self._urgent_replies(engine, turn, urgent)

    async def _keep_handoff_context(self, engine: Any, turn: Any, case: Case) -> None:
        """The resident's own question that led here and the bot's answer at the time
        (users.state["asked"], kept by the engine), as the case's first line for staff: the
        resident never has to type the problem twice. Only a question of the last
        HANDOFF_CONTEXT_WINDOW counts; shown to staff, never sent to the resident."""
        asked = turn.state.get("asked") or {}
        text = (asked.get("text") or "").strip()
        try:
            at = datetime.fromisoformat(asked.get("at") or "")
        except ValueError:
            return
        now = engine.clock()
        if not text or at.tzinfo is None or not (now - HANDOFF_CONTEXT_WINDOW <= at <= now):
            return
        await cases.add_message(turn.session, case, direction=DIR_SYSTEM, kind=HANDOFF_KIND, text=text,
                                language=turn.lang, intent=asked.get("intent"),
                                extra={"answer": (asked.get("answer") or "")[:2000],
                                       "decision": asked.get("decision"), "asked_at": asked.get("at")},
                                now=now)
        turn.set_state(asked=None)

    async def _fetch(self, msg: IncomingMessage) -> cases.MediaContent:
        assert msg.media is not None
        if self.fetch_media is None:
            return cases.MediaContent(None, msg.media.mime_type or "application/octet-stream", "no fetcher")
        try:
            data = await asyncio.wait_for(self.fetch_media(msg.channel.value, msg.media.platform_id), MEDIA_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - keep the message; the platform id stays in ``extra``
            log.warning("media fetch failed", extra={"channel": msg.channel.value, "error": type(exc).__name__})
            return cases.MediaContent(None, msg.media.mime_type or "application/octet-stream",
                                      f"fetch failed: {type(exc).__name__}")
        if len(data) > MAX_MEDIA_BYTES:
            return cases.MediaContent(None, _sniff(data, msg.media.mime_type), "too large")
        return cases.MediaContent(data, _sniff(data, msg.media.mime_type))

    # ------------------------------------------------------------------ buttons
    async def _postback(self, engine: Any, turn: Any, rest: str) -> list[Reply]:
        head, _, arg = rest.partition(":")
        state = self._state(turn)
        menu = engine._menu_buttons(turn)
        if head == "t":
            if self.partners is None or arg not in CONSULT_TOPICS:
                return await self(engine, turn, None)
            draft = await cases.draft_of(turn.session, turn.user)
            if draft is not None:
                await cases.discard_draft(turn.session, draft)
            return await self._offer(engine, turn, arg)
        if head == "g":
            if state.get("step") != "segment" or self.partners is None or state.get("topic") not in CONSULT_TOPICS:
                return await self(engine, turn, None)
            if arg in SEGMENTS:
                turn.user.segment = arg
            return await self._offer(engine, turn, state["topic"])
        if head == "y":
            if state.get("step") != "consent" or self.partners is None:
                return await self(engine, turn, None)
            open_case = await cases.open_case_of(turn.session, turn.user)
            if open_case is not None:
                return await self(engine, turn, None)
            from bot.consult.notify import unreachable_orgs

            if state.get("org") in await unreachable_orgs(turn.session, self.kb):
                # The staff went away since the offer: never a case nobody reads.
                self._set(turn, None)
                return [self._contact_directly(engine, turn, state["org"])]
            draft = await cases.draft_of(turn.session, turn.user)
            if draft is not None:
                await cases.discard_draft(turn.session, draft)
            case = await cases.create_case(turn.session, turn.user, topic=state["topic"], org=state["org"],
                                           language=turn.lang, segment=turn.user.segment,
                                           display_name=turn.msg.display_name, now=engine.clock())
            await self._keep_handoff_context(engine, turn, case)
            self._set(turn, {"step": "compose"})
            return [Reply(engine.t(turn, "consult.compose"), quick_replies=self._compose_buttons(engine, turn))]
        if head == "n":
            self._set(turn, None)
            return [Reply(engine.t(turn, "consult.declined"), quick_replies=menu)]
        if head == "x":
            draft = await cases.draft_of(turn.session, turn.user)
            if draft is not None:
                await cases.discard_draft(turn.session, draft)
            self._set(turn, None)
            return [Reply(engine.t(turn, "consult.cancelled"), quick_replies=menu)]
        if head == "s":
            draft = await cases.draft_of(turn.session, turn.user)
            if draft is None:
                open_case = await cases.open_case_of(turn.session, turn.user)
                if open_case is not None:   # a second tap on Send
                    return [Reply(engine.t(turn, "consult.open_case", case_no=open_case.number,
                                           org=self._name(open_case.org, turn.lang)),
                                  quick_replies=[self._back(engine, turn)])]
                return await self(engine, turn, None)
            count = await turn.session.scalar(
                select(func.count()).select_from(CaseMessage).where(CaseMessage.case_id == draft.id,
                                                                  CaseMessage.direction == DIR_IN))
            if not count:
                self._set(turn, {"step": "compose"})
                return [Reply(engine.t(turn, "consult.empty"), quick_replies=self._compose_buttons(engine, turn))]
            await cases.submit_case(turn.session, self.kb, draft, now=engine.clock())
            self._set(turn, {"mode": "case", "case": draft.id})
            return [Reply(engine.t(turn, "consult.sent", case_no=draft.number, org=self._name(draft.org, turn.lang),
                                   due=_local(draft.due_at, turn.lang) if draft.due_at else "-"),
                          quick_replies=[self._back(engine, turn)])]
        if head == "b":
            case = await cases.open_case_of(turn.session, turn.user)
            if case is None:
                self._set(turn, None)
                return [engine.menu_reply(turn)]
            self._set(turn, {"mode": "bot", "case": case.id})
            return [Reply(engine.t(turn, "consult.back", case_no=case.number),
                          quick_replies=[cases._write_button(self.kb, case), *menu])]
        if head == "w":
            case = await cases.open_case_of(turn.session, turn.user)
            if case is None or str(case.id) != arg:
                self._set(turn, None)
                return [Reply(engine.t(turn, "consult.gone"), quick_replies=menu)]
            self._set(turn, {"mode": "case", "case": case.id})
            return [Reply(engine.t(turn, "consult.write", case_no=case.number, org=self._name(case.org, turn.lang)),
                          quick_replies=[self._back(engine, turn)])]
        if head == "r":
            case_id, _, score = arg.partition(":")
            try:
                await cases.rate(turn.session, turn.user, int(case_id), int(score), now=engine.clock())
            except cases.AlreadyRated:
                return [Reply(engine.t(turn, "consult.already_rated"), quick_replies=menu)]
            except (ValueError, cases.CaseNotFound, cases.InvalidAction):
                # Not this resident's case, not closed yet, or a forged payload: refused.
                return [Reply(engine.t(turn, "consult.rating_refused"), quick_replies=menu)]
            case = await turn.session.get(Case, int(case_id))
            if case is not None and case.status == CASE_CLOSED and state.get("case") == case.id:
                self._set(turn, None)
            return [Reply(engine.t(turn, "consult.rated"), quick_replies=menu)]
        return [engine.menu_reply(turn)]


def media_fetcher(services: Any) -> MediaFetcher | None:
    """Wire the engine's consultation flow to the channel adapters' content download
    (LINE ``get_content``, Telegram ``get_file``); returns the fetcher set, if any."""
    flow = getattr(services.engine, "_consultation", None)
    if not isinstance(flow, ConsultationFlow):
        return None

    async def fetch(channel: str, platform_id: str) -> bytes:
        adapter = services.channels.get(channel)
        download = getattr(adapter, "get_content", None) or getattr(adapter, "get_file", None)
        if download is None:
            raise LookupError(f"channel {channel!r} cannot download media")
        return bytes(await download(platform_id))

    flow.fetch_media = fetch
    return fetch
