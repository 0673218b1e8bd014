"""The web chat channel: the simulator page's adapter (a real channel, like LINE and Telegram).

Owns turning the page's JSON into ``IncomingMessage`` and ``Reply`` objects into JSON,
and the web push mailbox: pushes (consultation replies, alerts…) for a browser session are
stored in the database table ``web_mailbox`` (delivery.web_mailbox) until the page polls
``GET /api/chat/updates`` — durable like the outbox row they come from, so a restart
between the push and the poll loses nothing, and each push is handed out once.

Must not import the conversation engine; the route (bot/web/chat.py) calls the engine and
passes its replies here.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from delivery.messages import Card, Channel, Choice, IncomingMessage, Kind, Reply
from delivery.senders import PermanentFailure
from delivery.web_mailbox import store_web_pushes, take_web_pushes

MAX_TEXT = 10_000          # longer input is cut (the core only needs the question)


def reply_to_json(reply: Reply) -> dict[str, Any]:
    """A Reply as the page renders it (also the outbox payload shape)."""
    return {
        "text": reply.text,
        "quick_replies": [{"label": c.label, "data": c.data} for c in reply.quick_replies],
        "buttons": [{"label": c.label, "data": c.data} for c in reply.buttons],
        "card": None if reply.card is None else {
            "title": reply.card.title, "text": reply.card.text,
            "url": reply.card.url, "image_url": reply.card.image_url,
        },
    }


def reply_from_json(data: dict[str, Any]) -> Reply:
    card = data.get("card")
    return Reply(
        text=data.get("text", ""),
        quick_replies=[Choice(c["label"], c["data"]) for c in data.get("quick_replies", [])],
        buttons=[Choice(c["label"], c["data"]) for c in data.get("buttons", [])],
        card=Card(**card) if card else None,
    )


class WebChannel:
    """Adapter of the web chat page; also a ``ChannelSender`` for pushes to browser sessions."""

    channel = Channel.WEB.value
    max_recipients = 1

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @staticmethod
    def to_incoming(session_id: str, body: dict[str, Any]) -> IncomingMessage:
        """The page's POST body → IncomingMessage: {"event": "start"} | {"data": …} | {"text": …}."""
        hint = body.get("lang") if isinstance(body.get("lang"), str) else None
        if body.get("event") == "start":
            return IncomingMessage(Channel.WEB, session_id, Kind.FOLLOW, language_hint=hint)
        data = body.get("data")
        if isinstance(data, str) and data:
            return IncomingMessage(Channel.WEB, session_id, Kind.POSTBACK, data=data[:64], language_hint=hint)
        text = body.get("text")
        text = text if isinstance(text, str) else ""
        return IncomingMessage(Channel.WEB, session_id, Kind.TEXT, text=text[:MAX_TEXT], language_hint=hint)

    async def push(self, recipients: Sequence[str], replies: Sequence[Reply], *, retry_key: str) -> None:
        """Store the replies in each session's mailbox (committed before the relay stamps the row sent).

        Idempotent per ``retry_key``. A session that no longer exists (forgotten, or pruned
        after WEB_USER_RETENTION) cannot ever receive it: PermanentFailure.
        """
        payloads = [reply_to_json(r) for r in replies]
        async with self._sessionmaker() as session, session.begin():
            unknown = await store_web_pushes(session, recipients, payloads, retry_key=retry_key)
        if unknown:
            raise PermanentFailure(f"{len(unknown)} web chat session(s) no longer exist")

    async def take(self, session_id: str) -> list[dict[str, Any]]:
        """Pushed replies waiting for this session, oldest first; marked delivered (never handed out twice)."""
        async with self._sessionmaker() as session, session.begin():
            return await take_web_pushes(session, session_id)
