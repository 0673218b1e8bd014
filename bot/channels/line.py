"""LineChannel: the LINE Messaging API adapter (line-bot-sdk v3, async client).

Owns everything LINE-specific: verifying ``X-Line-Signature``, splitting a webhook body
into events, turning an event into a neutral ``IncomingMessage``, rendering ``Reply``
objects into LINE messages (text split at 5,000 characters, quick-reply items, a Flex
bubble for cards and for buttons that do not fit the 13 quick replies, at most 5 messages
per call), replying with the free reply token, pushing/multicasting with
``X-Line-Retry-Key`` (the outbox's ``ChannelSender``), and fetching message content.
Reply tokens stay inside this module.

Messages are plain JSON-ready dicts in the Messaging API's own shape (camelCase keys), and
reply, push and multicast are plain JSON POSTs on one shared aiohttp session: no SDK
models on the webhook path. The SDK serves the rest (profile, content, loading animation,
rich menus).

Must not import the conversation core's engine, Starlette/FastAPI or the database; SDK
exceptions are translated into delivery.senders errors here.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    ShowLoadingAnimationRequest,
)
from linebot.v3.messaging.exceptions import ApiException

from bot.channels.line_richmenu import RichMenuApi, RichMenuLinker, data_base_url
from bot.channels.render import readings_once, shorten, split_text
from bot.cleaning import BadJSON, load_json
from delivery.messages import Channel, Choice, IncomingMessage, Kind, Location, Media, Reply
from delivery.senders import PermanentFailure, RetryLater, SendError

log = logging.getLogger(__name__)

# Limits from https://developers.line.biz/en/reference/messaging-api/
MAX_MESSAGES_PER_CALL = 5
MAX_TEXT = 5000
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_POSTBACK_DATA = 300
MAX_DISPLAY_TEXT = 300
MAX_ALT_TEXT = 400
MAX_MULTICAST = 500
#: A reply token is usable for a short time only (about a minute); an event older than
#: this (e.g. left pending by a crash) is answered with a push instead of a doomed reply.
REPLY_TOKEN_TTL_SECONDS = 50.0

#: A LINE message object as the Messaging API takes it (JSON-ready: str, bool, dict, list).
Message = dict[str, Any]

_MEDIA_KINDS = {"sticker": Kind.STICKER, "image": Kind.IMAGE, "video": Kind.VIDEO,
                "audio": Kind.AUDIO, "file": Kind.FILE}


class ReplyTokenUnusable(SendError):
    """The reply could not be sent with the reply token (expired, used, or LINE failed):
    the caller should deliver the same replies as a push through the outbox — unless
    ``refused`` (LINE answered 400: the token is expired or already used) and the caller
    knows the token is fresh, i.e. an earlier attempt of this event used it."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


#: inbound_events.event_id is String(128).
MAX_EVENT_ID = 128


class InvalidWebhookBody(ValueError):
    """A correctly signed body that is not a LINE webhook payload (malformed JSON or shape)."""


def _retry_key_for(retry_key: str, batch: int) -> str:
    """X-Line-Retry-Key of one batch of a push: a UUID derived from the outbox row's key, so
    every retry of the same row reuses the same keys and LINE never delivers a batch twice."""
    try:
        base = uuid.UUID(retry_key)
    except (ValueError, AttributeError, TypeError):
        base = uuid.uuid5(uuid.NAMESPACE_URL, f"kurashi:{retry_key}")
    return str(base) if batch == 0 else str(uuid.uuid5(base, f"batch-{batch}"))


class LineChannel:
    """LINE adapter; create it anywhere, call ``start()`` inside the running event loop."""

    channel = Channel.LINE.value
    max_recipients = MAX_MULTICAST

    def __init__(self, settings: Any = None, *, channel_secret: str | None = None,
                 access_token: str | None = None, api_base_url: str | None = None) -> None:
        """From ``Settings`` (LINE_CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN, LINE_API_BASE_URL)
        or explicit keyword arguments (which win)."""
        secret = channel_secret or getattr(settings, "line_channel_secret", None)
        token = access_token or getattr(settings, "line_channel_access_token", None)
        if not secret or not token:
            raise ValueError("LINE needs LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN")
        base = api_base_url or getattr(settings, "line_api_base_url", None) or "https://api.line.me"
        self._secret = secret.encode("utf-8")
        self._access_token = token
        self._base_url = base.rstrip("/")
        self._client: AsyncApiClient | None = None
        # Replies (the webhook path's one call per event) go as plain JSON on one shared
        # session: no SDK request models, no per-request proxy/.netrc lookup.
        self._http: aiohttp.ClientSession | None = None
        self._api: AsyncMessagingApi | None = None
        self._blob: AsyncMessagingApiBlob | None = None
        self._settings = settings
        #: Links each user's rich menu to their language (bot/channels/line_richmenu.py).
        self._link_menus = bool(getattr(settings, "line_rich_menu_links", True))
        self.menus: RichMenuLinker | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> LineChannel:
        return cls(settings)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the HTTP client (line-bot-sdk opens an aiohttp session: must run in the loop)."""
        if self._client is None:
            # Configuration(host=...) sends every API, the blob API included, to this host.
            config = Configuration(host=self._base_url, access_token=self._access_token)
            self._client = AsyncApiClient(config)
            self._api = AsyncMessagingApi(self._client)
            self._blob = AsyncMessagingApiBlob(self._client)
            if self._link_menus:
                self.menus = RichMenuLinker(RichMenuApi(
                    self._api, access_token=self._access_token,
                    data_base=data_base_url(self._settings) if self._settings is not None else self._base_url))

    def rich_menu_api(self) -> RichMenuApi:
        """The rich menu calls (``kurashi line richmenu sync``); call after ``start()``."""
        assert self._api is not None
        return RichMenuApi(self._api, access_token=self._access_token,
                           data_base=data_base_url(self._settings) if self._settings is not None else self._base_url)

    async def close(self) -> None:
        if self.menus is not None:
            await self.menus.drain()
            self.menus = None
        if self._client is not None:
            await self._client.close()
            self._client = self._api = self._blob = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # Proxies only when the environment names one (trust_env reads .netrc per request).
            proxied = any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"))
            self._http = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self._access_token}", "Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=30), trust_env=proxied)
        return self._http

    async def _messaging(self) -> AsyncMessagingApi:
        await self.start()
        assert self._api is not None
        return self._api

    # -- inbound ----------------------------------------------------------------------------------
    def verify(self, body: bytes, signature: str | None) -> bool:
        """Whether ``signature`` is LINE's HMAC-SHA256 of the raw ``body`` (constant-time compare)."""
        if not signature:
            return False
        expected = base64.b64encode(hmac.new(self._secret, body, hashlib.sha256).digest())
        return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))

    @staticmethod
    def split_body(body: bytes) -> list[tuple[str, str]]:
        """(event id, payload) per event of a verified webhook body.

        Each payload is a one-event webhook body (``{"destination", "events": [event]}``), so
        a stored event parses like a delivery. The id is ``webhookEventId`` (the same on a
        redelivery); an event without one gets a hash of its content.
        """
        try:
            data = load_json(body)
        except BadJSON as exc:
            raise InvalidWebhookBody(str(exc)) from exc
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            raise InvalidWebhookBody("body has no events list")
        out = []
        for event in data["events"]:
            if not isinstance(event, dict):
                raise InvalidWebhookBody("an event is not an object")
            event_id = event.get("webhookEventId")
            if not isinstance(event_id, str) or not event_id:
                canonical = json.dumps(event, sort_keys=True, ensure_ascii=False).encode("utf-8")
                event_id = "sha256:" + hashlib.sha256(canonical).hexdigest()[:40]
            elif len(event_id) > MAX_EVENT_ID:
                # Not LINE's (26 characters), but two long ids must not collide on a prefix.
                event_id = "sha256:" + hashlib.sha256(event_id.encode("utf-8")).hexdigest()[:40]
            payload = {"destination": data.get("destination"), "events": [event]}
            out.append((event_id, json.dumps(payload, ensure_ascii=False)))
        return out

    @staticmethod
    def events_of(payload: str) -> list[dict[str, Any]]:
        data = load_json(payload)   # also cleans rows stored before bodies were cleaned
        events = data.get("events") if isinstance(data, dict) else None
        return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []

    async def to_incoming(self, event: dict[str, Any]) -> IncomingMessage | None:
        """The neutral message of one LINE event, or None for events kurashi ignores."""
        kind = event.get("type")
        source = event.get("source") or {}
        event_id = event.get("webhookEventId")
        if event.get("mode") == "standby":
            return None  # another channel (e.g. a human chat module) owns this conversation
        if kind in ("join",):
            group = source.get("groupId") or source.get("roomId")
            if not group:
                return None
            return IncomingMessage(Channel.LINE, group, Kind.GROUP_JOIN, event_id=event_id)
        if source.get("type") != "user":
            # The bot is for one-to-one chats; it answered the join once and stays silent in groups.
            log.info("line: ignored %s event from a %s", kind, source.get("type"))
            return None
        user_id = source.get("userId")
        if not isinstance(user_id, str) or not user_id:
            return None
        if kind == "message":
            return self._message_to_incoming(user_id, event.get("message") or {}, event_id)
        if kind == "postback":
            data = (event.get("postback") or {}).get("data")
            return IncomingMessage(Channel.LINE, user_id, Kind.POSTBACK, data=data, event_id=event_id)
        if kind == "follow":
            language, name = await self._profile(user_id)
            return IncomingMessage(Channel.LINE, user_id, Kind.FOLLOW, language_hint=language,
                                   display_name=name, event_id=event_id)
        if kind == "unfollow":
            return IncomingMessage(Channel.LINE, user_id, Kind.UNFOLLOW, event_id=event_id)
        log.info("line: ignored event type %r", kind)
        return None

    def _message_to_incoming(self, user_id: str, message: dict[str, Any], event_id: str | None) -> IncomingMessage | None:
        mtype = message.get("type")
        if mtype == "text":
            return IncomingMessage(Channel.LINE, user_id, Kind.TEXT, text=str(message.get("text") or ""),
                                   event_id=event_id)
        if mtype in _MEDIA_KINDS:
            media = Media(platform_id=str(message.get("id") or ""), mime_type=None)
            return IncomingMessage(Channel.LINE, user_id, _MEDIA_KINDS[mtype], media=media, event_id=event_id)
        if mtype == "location":
            try:
                location = Location(float(message["latitude"]), float(message["longitude"]),
                                    message.get("address"), message.get("title"))
            except (KeyError, TypeError, ValueError):
                return None
            return IncomingMessage(Channel.LINE, user_id, Kind.LOCATION, location=location, event_id=event_id)
        log.info("line: ignored message type %r", mtype)
        return None

    async def _profile(self, user_id: str) -> tuple[str | None, str | None]:
        """(language, display name) from the profile; (None, None) when LINE will not say."""
        try:
            profile = await (await self._messaging()).get_profile(user_id)
        except (TimeoutError, ApiException, aiohttp.ClientError) as exc:
            log.warning("line: profile lookup failed (%s)", getattr(exc, "status", type(exc).__name__))
            return None, None
        return profile.language, profile.display_name

    @staticmethod
    def reply_token(event: dict[str, Any]) -> str | None:
        token = event.get("replyToken")
        return token if isinstance(token, str) and token else None

    async def get_content(self, message_id: str) -> bytes:
        """The bytes of an image/video/audio/file message (the api-data host in production)."""
        await self.start()
        assert self._blob is not None
        try:
            return bytes(await self._blob.get_message_content(message_id))
        except ApiException as exc:
            raise _translate(exc, []) from exc

    async def show_loading(self, user_id: str, seconds: int = 5) -> None:
        """Best effort "typing…" animation while the answer is prepared."""
        try:
            await (await self._messaging()).show_loading_animation(
                ShowLoadingAnimationRequest(chat_id=user_id, loading_seconds=seconds))
        except (TimeoutError, ApiException, aiohttp.ClientError):
            pass

    # -- rendering ---------------------------------------------------------------------------------
    @staticmethod
    def _postback(choice: Choice) -> Message:
        return {
            "type": "postback",
            "label": shorten(choice.label, MAX_LABEL),
            "data": choice.data[:MAX_POSTBACK_DATA],
            "displayText": shorten(choice.label, MAX_DISPLAY_TEXT),
        }

    @staticmethod
    def _card_bubble(reply: Reply) -> Message:
        card = reply.card
        assert card is not None
        body: list[Message] = [{"type": "text", "text": card.title or " ", "size": "md", "weight": "bold",
                                "wrap": True}]
        if card.text:
            body.append({"type": "text", "text": card.text, "size": "sm", "wrap": True, "margin": "md"})
        if card.url:
            body.append({"type": "text", "text": card.url, "size": "xs", "color": "#1a73e8", "wrap": True,
                         "margin": "md", "action": {"type": "uri", "uri": card.url}})
        bubble: Message = {"type": "bubble"}
        if card.image_url:
            bubble["hero"] = {"type": "image", "url": card.image_url, "size": "full", "aspectMode": "cover",
                              "animated": False}
        bubble["body"] = {"type": "box", "layout": "vertical", "contents": body}
        if card.url:
            bubble["action"] = {"type": "uri", "uri": card.url}
        alt = shorten(f"{card.title}\n{card.text}".strip() or card.title or "…", MAX_ALT_TEXT)
        return {"type": "flex", "altText": alt, "contents": bubble}

    @classmethod
    def _buttons_bubble(cls, choices: Sequence[Choice], alt_text: str) -> Message:
        buttons = [{"type": "button", "action": cls._postback(c), "style": "link", "height": "sm"} for c in choices]
        bubble = {"type": "bubble", "body": {"type": "box", "layout": "vertical", "spacing": "sm", "contents": buttons}}
        return {"type": "flex", "altText": shorten(alt_text or "…", MAX_ALT_TEXT), "contents": bubble}

    @classmethod
    def _each(cls, replies: Sequence[Reply]) -> Iterator[tuple[list[Message], list[Choice]]]:
        """Per reply, in order: its messages (without quick replies) and the choices it adds
        to the quick replies. Lazy, so a caller that stops early renders no further reply.
        Buttons become quick-reply items while they fit the 13 items (counting what the
        replies before added), the rest a Flex bubble of buttons."""
        quick_count = 0
        for reply in replies:
            chunks = split_text(readings_once(reply.text or ""), MAX_TEXT)
            messages: list[Message] = [{"type": "text", "text": chunk} for chunk in chunks]
            if reply.card is not None:
                messages.append(cls._card_bubble(reply))
            room = max(MAX_QUICK_REPLIES - quick_count - len(reply.quick_replies), 0)
            if len(reply.buttons) > room:
                messages.append(cls._buttons_bubble(reply.buttons[room:], chunks[0] if chunks else ""))
            added = [*reply.buttons[:room], *reply.quick_replies]
            quick_count += len(added)
            yield messages, added

    @classmethod
    def _with_quick_replies(cls, messages: list[Message], quick: list[Choice]) -> list[Message]:
        """Quick replies ride on the last message (LINE shows them only there)."""
        quick = quick[:MAX_QUICK_REPLIES]
        if quick and messages:
            messages[-1]["quickReply"] = {"items": [{"type": "action", "action": cls._postback(c)} for c in quick]}
        return messages

    def render(self, replies: Sequence[Reply]) -> list[Message]:
        """LINE message objects (JSON-ready dicts) for ``replies``, in order; quick replies
        ride on the last message. Buttons become quick-reply items while they fit the 13
        items, the rest a Flex bubble of buttons."""
        messages: list[Message] = []
        quick: list[Choice] = []
        for own, added in self._each(replies):
            messages.extend(own)
            quick.extend(added)
        return self._with_quick_replies(messages, quick)

    @staticmethod
    def batches(messages: Sequence[Message]) -> list[list[Message]]:
        return [list(messages[i:i + MAX_MESSAGES_PER_CALL]) for i in range(0, len(messages), MAX_MESSAGES_PER_CALL)]

    # -- outbound ---------------------------------------------------------------------------------
    def _split_rendered(self, replies: Sequence[Reply]) -> tuple[list[Reply], list[Reply], list[Message]]:
        """(replies that fit one reply call of 5 messages, the rest, the head's messages):
        each reply is rendered once and its messages counted once."""
        messages: list[Message] = []
        quick: list[Choice] = []
        for index, (own, added) in enumerate(self._each(replies)):
            if index and len(messages) + len(own) > MAX_MESSAGES_PER_CALL:
                return list(replies[:index]), list(replies[index:]), self._with_quick_replies(messages, quick)
            messages.extend(own)
            quick.extend(added)
        return list(replies), [], self._with_quick_replies(messages, quick)

    def split_for_reply(self, replies: Sequence[Reply]) -> tuple[list[Reply], list[Reply]]:
        """(replies that fit one reply call of 5 messages, the rest). At least the first reply
        is taken, even when it alone renders to more than 5 messages."""
        head, rest, _ = self._split_rendered(replies)
        return head, rest

    async def reply(self, reply_token: str, user_id: str, replies: Sequence[Reply], *,
                    retry_key: str | None = None) -> list[Reply]:
        """Answer with the free reply token: as many whole replies as fit 5 messages.

        Returns the replies that did not fit; the caller pushes them through the outbox
        (retry keys make that push safe to retry). A single reply longer than 5 messages is
        completed here by direct pushes. Raises ReplyTokenUnusable when the token is refused
        (expired/used, 400) or LINE fails; the caller then pushes all replies instead.
        """
        head, rest, messages = self._split_rendered(replies)
        batches = self.batches(messages)
        if not batches:
            return rest
        body = json.dumps({"replyToken": reply_token, "messages": batches[0]}, ensure_ascii=False).encode("utf-8")
        try:
            async with self._session().post(f"{self._base_url}/v2/bot/message/reply", data=body) as response:
                await response.read()
                if response.status != 200:
                    raise ReplyTokenUnusable(f"reply refused: {response.status}", refused=response.status == 400)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ReplyTokenUnusable(f"reply failed: {type(exc).__name__}") from exc
        if self.menus is not None and head:
            self.menus.language_seen(user_id, head[-1].language)
        if len(batches) > 1:  # one very long reply: the tail of it goes by push now
            key = retry_key or str(uuid.uuid4())
            try:
                for number, batch in enumerate(batches[1:], start=1):
                    await self._send_batch([user_id], batch, _retry_key_for(key, number))
            except SendError as exc:
                log.warning("line: tail of a long reply not delivered (%s)", exc)
        return rest

    async def push(self, recipients: Sequence[str], replies: Sequence[Reply], *, retry_key: str) -> None:
        """ChannelSender.push: push (1 recipient) or multicast (up to 500), with retry keys."""
        recipients = list(dict.fromkeys(recipients))
        if not recipients:
            return
        if len(recipients) > MAX_MULTICAST:
            raise PermanentFailure(f"{len(recipients)} recipients; LINE multicast takes at most {MAX_MULTICAST}")
        for number, batch in enumerate(self.batches(self.render(replies))):
            await self._send_batch(recipients, batch, _retry_key_for(retry_key, number))

    async def _send_batch(self, recipients: list[str], messages: list[Message], retry_key: str) -> None:
        """One push (1 recipient) or multicast call: plain JSON on the shared session."""
        if len(recipients) == 1:
            path, to = "push", recipients[0]
        else:
            path, to = "multicast", recipients
        body = json.dumps({"to": to, "messages": messages, "notificationDisabled": False},
                          ensure_ascii=False).encode("utf-8")
        try:
            async with self._session().post(f"{self._base_url}/v2/bot/message/{path}", data=body,
                                            headers={"X-Line-Retry-Key": retry_key}) as response:
                await response.read()
                status, headers = response.status, response.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RetryLater(f"LINE unreachable: {type(exc).__name__}") from exc
        if 200 <= status <= 299 or status == 409:
            return  # 409: this retry key was already accepted: delivered by an earlier attempt
        raise _status_error(status, headers)


def _translate(exc: ApiException, recipients: Sequence[str]) -> SendError:
    """The SendError of an SDK call that LINE answered with an error (see ``_status_error``)."""
    return _status_error(exc.status or 0, exc.headers)


def _status_error(status: int, headers: Any) -> SendError:
    """RetryLater for 429/5xx/transport failures (with ``Retry-After`` when LINE sent one),
    PermanentFailure for other 4xx."""
    if status == 429 or status >= 500 or status == 0:
        retry_after = None
        raw = headers.get("Retry-After") if headers is not None and hasattr(headers, "get") else None
        if raw is not None:
            try:
                retry_after = float(raw)
            except ValueError:
                retry_after = None
        return RetryLater(f"LINE answered {status}", retry_after=retry_after)
    # LINE does not say which recipient blocked the bot, so ``blocked`` stays empty.
    return PermanentFailure(f"LINE answered {status}")


def reply_token_fresh(age_seconds: float) -> bool:
    """Whether an event received ``age_seconds`` ago can still be answered with its reply token."""
    return age_seconds < REPLY_TOKEN_TTL_SECONDS
