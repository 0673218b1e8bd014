"""TelegramChannel: the Telegram Bot API adapter.

Owns everything Telegram-specific: checking ``X-Telegram-Bot-Api-Secret-Token``, splitting
a webhook body into its update id and payload, turning an ``Update`` into a neutral
``IncomingMessage`` (messages, /start with ``language_code``, other commands, callback
queries, edited messages, ``my_chat_member`` blocks), rendering ``Reply`` objects into
``sendMessage`` calls with inline keyboards (4,096-character split, callback_data ≤ 64
bytes), the outbox's ``ChannelSender.push``, file downloads, and polling for development.

The calls of a conversation and of the outbox (sendMessage with inline keyboards as plain
``reply_markup`` dicts, answerCallbackQuery) are plain Bot API JSON POSTs to
``{TELEGRAM_API_BASE_URL}/bot{token}/{method}`` on one shared aiohttp session: no
python-telegram-bot models, request building or HTTPX layer on the webhook path (~5 ms of
CPU per reply). Telegram's error answers are classified as python-telegram-bot did
(a ``retry_after`` or ``migrate_to_chat_id`` parameter first, then the status) and translated
into delivery.senders errors here.

python-telegram-bot (v22) stays for the rare calls: parsing an ``Update`` into the neutral
message, getMe at start-up, setWebhook/deleteWebhook/getWebhookInfo, setMyCommands, getFile
and polling. Its ``Application`` is built without an Updater (custom-webhook pattern): the
webhook route stores updates and kurashi feeds them in itself; the Application owns the
Bot's lifecycle (initialize → getMe, shutdown). Chat ids and the token stay here.

Must not import the conversation engine, Starlette/FastAPI or the database; telegram.error
exceptions are translated into delivery.senders errors here.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import aiohttp
from telegram import Bot, BotCommand, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder

from bot.channels.render import readings_once, shorten, split_text, utf8_len
from bot.cleaning import BadJSON, load_json
from delivery.messages import Channel, Choice, IncomingMessage, Kind, Location, Media, Reply
from delivery.senders import PermanentFailure, RetryLater, SendError

log = logging.getLogger(__name__)

MAX_TEXT = 4096                  # sendMessage: 1-4096 characters after entities parsing
MAX_CALLBACK_DATA = 64           # InlineKeyboardButton.callback_data: 1-64 bytes
MAX_BUTTON_LABEL = 64            # keep buttons readable on a phone
SHORT_LABEL = 14                 # two quick replies this short share a keyboard row
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]

#: A Bot API JSON object as Telegram takes it (str, int, bool, dict, list).
JSONObject = dict[str, Any]

_MEDIA_FIELDS = (("sticker", Kind.STICKER), ("photo", Kind.IMAGE), ("video", Kind.VIDEO),
                 ("video_note", Kind.VIDEO), ("animation", Kind.VIDEO), ("voice", Kind.AUDIO),
                 ("audio", Kind.AUDIO), ("document", Kind.FILE))


class InvalidUpdateBody(ValueError):
    """A body with a correct secret that is not a Telegram Update (malformed JSON or shape)."""


def _retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def translate_error(exc: TelegramError, chat_id: str) -> SendError:
    """RetryLater for flood control and network trouble, PermanentFailure otherwise
    (``blocked=[chat]`` when the user blocked the bot or deactivated their account)."""
    if isinstance(exc, RetryAfter):
        return RetryLater("Telegram flood control", retry_after=_retry_seconds(exc))
    if isinstance(exc, Forbidden):
        return PermanentFailure("Telegram: forbidden", blocked=[chat_id])
    if isinstance(exc, (BadRequest, InvalidToken, ChatMigrated)):
        return PermanentFailure(f"Telegram: {type(exc).__name__}")
    if isinstance(exc, NetworkError):  # also 5xx and timeouts
        return RetryLater(f"Telegram: {type(exc).__name__}")
    return PermanentFailure(f"Telegram: {type(exc).__name__}")


def answer_error(status: int, body: bytes, chat_id: str) -> SendError:
    """The SendError of a non-2xx Bot API answer, classified as python-telegram-bot did
    (request/_baserequest.py) and translated as ``translate_error`` did: the answer's
    ``parameters`` first (``migrate_to_chat_id`` → ChatMigrated, ``retry_after`` → flood
    control, whatever the status), then the status: 403 → the chat blocked the bot,
    400 (bad request, chat not found) / 401, 404 (token) / 409 (conflict) → permanent,
    anything else (5xx, 429 without retry_after…) → retry later."""
    try:
        payload = json.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        payload = None
    payload = payload if isinstance(payload, dict) else {}
    description = payload.get("description")
    detail = f" ({shorten(description, 200)})" if isinstance(description, str) and description else ""
    parameters = payload.get("parameters")
    if isinstance(parameters, dict) and parameters:
        if parameters.get("migrate_to_chat_id"):
            return PermanentFailure(f"Telegram: ChatMigrated{detail}")
        retry_after = parameters.get("retry_after")
        if retry_after:
            try:
                return RetryLater("Telegram flood control", retry_after=float(retry_after))
            except (TypeError, ValueError):
                return RetryLater("Telegram flood control")
    if status == 403:
        return PermanentFailure(f"Telegram: forbidden{detail}", blocked=[chat_id])
    kind = {400: "BadRequest", 401: "InvalidToken", 404: "InvalidToken", 409: "Conflict"}.get(status)
    if kind is not None:
        return PermanentFailure(f"Telegram: {kind}{detail}")
    return RetryLater(f"Telegram: NetworkError {status}{detail}")


class TelegramChannel:
    """Telegram adapter; build anywhere, ``await start()`` inside the running loop."""

    channel = Channel.TELEGRAM.value
    max_recipients = 1

    def __init__(self, settings: Any = None, *, token: str | None = None, webhook_secret: str | None = None,
                 api_base_url: str | None = None) -> None:
        """From ``Settings`` (TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET, TELEGRAM_API_BASE_URL)
        or explicit keyword arguments (which win)."""
        token = token or getattr(settings, "telegram_bot_token", None)
        if not token:
            raise ValueError("Telegram needs TELEGRAM_BOT_TOKEN")
        webhook_secret = webhook_secret or getattr(settings, "telegram_webhook_secret", None)
        base = (api_base_url or getattr(settings, "telegram_api_base_url", None) or "https://api.telegram.org")
        base = base.rstrip("/")
        self._token = token
        self._api_url = f"{base}/bot{token}/"       # + method; never logged (the token is in it)
        # The calls of the webhook path and the outbox go as plain JSON on one shared session.
        self._http: aiohttp.ClientSession | None = None
        self._secret = webhook_secret.encode("utf-8") if webhook_secret else None
        self.application: Application = (
            ApplicationBuilder()
            .token(token)
            .base_url(f"{base}/bot")
            .base_file_url(f"{base}/file/bot")
            .updater(None)
            .build()
        )
        self._started = False
        self._start_lock = asyncio.Lock()
        # callback_data longer than 64 bytes is sent as a digest and resolved here
        # (the core's payloads are short ids; this is a safety net, lost on restart).
        self._long_data: OrderedDict[str, str] = OrderedDict()
        # messages of a push already delivered per retry key, so a retry of a partly sent
        # multi-message push does not repeat what was sent (Telegram has no idempotency key).
        self._progress: OrderedDict[str, int] = OrderedDict()

    @property
    def bot(self) -> Bot:
        return self.application.bot

    @classmethod
    def from_settings(cls, settings: Any) -> TelegramChannel:
        return cls(settings)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Initialise the Bot (getMe) at app start-up; when Telegram is unreachable, log it and
        try again on the first send instead of failing the whole app."""
        try:
            await self.ensure_started()
        except SendError as exc:
            log.warning("telegram: not initialised yet (%s); will retry on first use", exc)

    async def ensure_started(self) -> None:
        """Initialise the Bot (getMe) once; failures surface as RetryLater/PermanentFailure."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            try:
                await self.application.initialize()
            except TelegramError as exc:
                raise translate_error(exc, "") from exc
            self._started = True

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._started:
            await self.application.shutdown()
            self._started = False

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # Proxies only when the environment names one (trust_env reads .netrc per request).
            proxied = any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"))
            # python-telegram-bot's defaults: 5 s to connect, 5 s per read, a pool of 256.
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256),
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=30, sock_connect=5, sock_read=5), trust_env=proxied)
        return self._http

    async def call(self, method: str, params: JSONObject, *, chat_id: str = "") -> None:
        """One Bot API call as a JSON POST on the shared session. A 2xx answer is success (its
        result is not read); anything else raises the SendError of ``answer_error``; no answer
        (connection refused or lost, a timeout) is RetryLater. ``chat_id``: the chat a 403
        names as blocked."""
        body = json.dumps(params, ensure_ascii=False).encode("utf-8")
        try:
            async with self._session().post(self._api_url + method, data=body) as response:
                answer = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise RetryLater("Telegram: TimedOut") from exc
        except aiohttp.ClientError as exc:    # not str(exc): the URL holds the token
            raise RetryLater(f"Telegram: NetworkError ({type(exc).__name__})") from exc
        if not 200 <= status <= 299:
            raise answer_error(status, answer, chat_id)

    # -- inbound ----------------------------------------------------------------------------------
    def verify(self, secret_header: str | None) -> bool:
        """Whether the webhook secret header matches TELEGRAM_WEBHOOK_SECRET (constant time).
        Without a configured secret no webhook is trusted (use polling in development)."""
        if self._secret is None or not secret_header:
            return False
        return hmac.compare_digest(self._secret, secret_header.encode("utf-8", "replace"))

    @staticmethod
    def split_body(body: bytes) -> list[tuple[str, str]]:
        """[(update_id, payload)] of a verified webhook body."""
        try:
            data = load_json(body)
        except BadJSON as exc:
            raise InvalidUpdateBody(str(exc)) from exc
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int) or isinstance(
                data.get("update_id"), bool):
            raise InvalidUpdateBody("body is not an Update")
        if not 0 <= data["update_id"] < 2**63:   # Telegram's are positive 32-bit; the column holds 128 characters
            raise InvalidUpdateBody("update_id out of range")
        return [(str(data["update_id"]), json.dumps(data, ensure_ascii=False))]

    @staticmethod
    def events_of(payload: str) -> list[dict[str, Any]]:
        data = load_json(payload)   # also cleans rows stored before bodies were cleaned
        return [data] if isinstance(data, dict) else []

    def parse(self, update: dict[str, Any]) -> Update | None:
        try:
            return Update.de_json(update, self.bot)
        except (TypeError, ValueError, KeyError) as exc:
            log.warning("telegram: unparsable update (%s)", type(exc).__name__)
            return None

    async def to_incoming(self, event: dict[str, Any]) -> IncomingMessage | None:
        """The neutral message of one Update, or None for updates kurashi ignores."""
        update = self.parse(event)
        if update is None:
            return None
        event_id = str(update.update_id)
        if update.callback_query is not None:
            query = update.callback_query
            chat = query.message.chat.id if query.message is not None else query.from_user.id
            return IncomingMessage(Channel.TELEGRAM, str(chat), Kind.POSTBACK, data=self.resolve_data(query.data),
                                   language_hint=query.from_user.language_code,
                                   display_name=query.from_user.first_name, event_id=event_id)
        if update.my_chat_member is not None:
            change = update.my_chat_member
            status = change.new_chat_member.status
            if change.chat.type == "private":
                if status == "kicked":
                    return IncomingMessage(Channel.TELEGRAM, str(change.chat.id), Kind.UNFOLLOW, event_id=event_id)
                return None  # unblocking: the user presses Start, which arrives as /start
            if status in ("member", "administrator"):
                return IncomingMessage(Channel.TELEGRAM, str(change.chat.id), Kind.GROUP_JOIN, event_id=event_id)
            return None
        if update.edited_message is not None:
            message = update.edited_message
            if message.chat.type != "private":
                return None
            return IncomingMessage(Channel.TELEGRAM, str(message.chat.id), Kind.EDITED, text=message.text,
                                   event_id=event_id)
        message = update.message
        if message is None:
            log.info("telegram: ignored update without a handled field")
            return None
        chat_id = str(message.chat.id)
        user = message.from_user
        hint = user.language_code if user else None
        name = user.first_name if user else None
        if message.chat.type != "private":
            if message.group_chat_created or any(m.id == self.bot_id for m in (message.new_chat_members or ())):
                return IncomingMessage(Channel.TELEGRAM, chat_id, Kind.GROUP_JOIN, event_id=event_id)
            return None
        base = {"language_hint": hint, "display_name": name, "event_id": event_id}
        if message.text is not None:
            text = message.text
            if text.startswith("/"):
                command, _, rest = text.partition(" ")
                command = command.split("@", 1)[0]
                if command == "/start":
                    return IncomingMessage(Channel.TELEGRAM, chat_id, Kind.FOLLOW, text=rest.strip() or None, **base)
                text = f"{command} {rest}".strip()
            return IncomingMessage(Channel.TELEGRAM, chat_id, Kind.TEXT, text=text, **base)
        if message.location is not None:
            venue = message.venue
            location = Location(message.location.latitude, message.location.longitude,
                                venue.address if venue else None, venue.title if venue else None)
            return IncomingMessage(Channel.TELEGRAM, chat_id, Kind.LOCATION, location=location, **base)
        for field, kind in _MEDIA_FIELDS:
            value = getattr(message, field, None)
            if value:
                item = value[-1] if isinstance(value, (tuple, list)) else value  # largest photo size last
                media = Media(platform_id=item.file_id, mime_type=getattr(item, "mime_type", None))
                return IncomingMessage(Channel.TELEGRAM, chat_id, kind, media=media, **base)
        # contacts, polls, dice…: answered like a file ("I read text")
        return IncomingMessage(Channel.TELEGRAM, chat_id, Kind.FILE, **base)

    @property
    def bot_id(self) -> int | None:
        try:
            return int(self._token.split(":", 1)[0])
        except ValueError:
            return None

    async def acknowledge(self, event: dict[str, Any]) -> None:
        """Answer a callback query at once (stops the button's spinner); best effort."""
        query = event.get("callback_query")
        if not isinstance(query, dict) or not query.get("id"):
            return
        try:
            await self.call("answerCallbackQuery", {"callback_query_id": str(query["id"])})
        except SendError as exc:
            log.info("telegram: answerCallbackQuery failed (%s)", type(exc).__name__)

    async def get_file(self, file_id: str) -> bytes:
        await self.ensure_started()
        try:
            file = await self.bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            raise translate_error(exc, "") from exc

    # -- rendering ---------------------------------------------------------------------------------
    def callback_data(self, data: str) -> str:
        """``data`` itself when it fits 64 bytes, else a digest remembered for resolve_data."""
        if 0 < utf8_len(data) <= MAX_CALLBACK_DATA:
            return data
        digest = "#" + hashlib.sha256(data.encode("utf-8")).hexdigest()[:40]
        self._long_data[digest] = data
        while len(self._long_data) > 10_000:
            self._long_data.popitem(last=False)
        log.warning("telegram: callback data longer than %d bytes sent as a digest", MAX_CALLBACK_DATA)
        return digest

    def resolve_data(self, data: str | None) -> str | None:
        if data and data.startswith("#"):
            return self._long_data.get(data, data)
        return data

    def _button(self, choice: Choice) -> JSONObject:
        return {"text": shorten(choice.label, MAX_BUTTON_LABEL, len), "callback_data": self.callback_data(choice.data)}

    def keyboard(self, reply: Reply) -> JSONObject | None:
        """An ``InlineKeyboardMarkup`` (a plain dict): buttons one per row; quick replies two
        per row when both labels are short."""
        rows: list[list[JSONObject]] = [[self._button(c)] for c in reply.buttons]
        pending: list[JSONObject] = []
        for choice in reply.quick_replies:
            if len(choice.label) <= SHORT_LABEL:
                pending.append(self._button(choice))
                if len(pending) == 2:
                    rows.append(pending)
                    pending = []
            else:
                rows.append([self._button(choice)])
        if pending:
            rows.append(pending)
        return {"inline_keyboard": rows} if rows else None

    @staticmethod
    def groups(replies: Sequence[Reply]) -> list[list[Reply]]:
        """Replies that go out as one message: consecutive texts without a card, while the
        joined text fits one message (a first contact's welcome, answer and onboarding offer
        arrive as one message, their buttons under it)."""
        out: list[list[Reply]] = []
        size = 0
        for reply in replies:
            length = len(reply.text or "")
            if (out and reply.card is None and all(r.card is None for r in out[-1])
                    and size + 2 + length <= MAX_TEXT):
                out[-1].append(reply)
                size += 2 + length
            else:
                out.append([reply])
                size = length
        return out

    @staticmethod
    def _joined(group: Sequence[Reply]) -> Reply:
        if len(group) == 1:
            return group[0]
        seen: set[str] = set()

        def fresh(choices: Sequence[Any]) -> list[Any]:
            kept = []
            for choice in choices:
                if choice.data not in seen:
                    seen.add(choice.data)
                    kept.append(choice)
            return kept

        buttons = fresh([b for r in group for b in r.buttons])
        quick = fresh([q for r in group for q in r.quick_replies])
        joined = Reply(text="\n\n".join(r.text for r in group if r.text), buttons=buttons,
                       language=group[-1].language)
        joined.quick_replies = quick          # no 13-item cap: Telegram keyboards hold many rows
        return joined

    def render(self, replies: Sequence[Reply]) -> list[tuple[str, JSONObject | None]]:
        """(text, keyboard) per sendMessage, in order; a reply's keyboard rides on its last part.
        Consecutive replies are joined into one message where they fit (``groups``)."""
        out: list[tuple[str, JSONObject | None]] = []
        for reply in (self._joined(group) for group in self.groups(replies)):
            parts = split_text(readings_once(reply.text or ""), MAX_TEXT)
            if reply.card is not None:
                card = "\n".join(p for p in (reply.card.title, reply.card.text, reply.card.url) if p)
                parts += split_text(card, MAX_TEXT)
            markup = self.keyboard(reply)
            if not parts:
                if markup is None:
                    continue
                parts = ["…"]  # a keyboard needs a message to ride on
            out.extend((part, None) for part in parts[:-1])
            out.append((parts[-1], markup))
        return out

    # -- outbound ---------------------------------------------------------------------------------
    @staticmethod
    def message_params(chat_id: str, text: str, markup: JSONObject | None) -> JSONObject:
        """The sendMessage parameters of one rendered part (plain text: no parse_mode, as
        python-telegram-bot sent them)."""
        params: JSONObject = {"chat_id": chat_id, "text": text}
        if markup is not None:
            params["reply_markup"] = markup
        return params

    async def send(self, chat_id: str, replies: Sequence[Reply], *, skip: int = 0,
                   progress: Callable[[int], None] | None = None) -> None:
        """sendMessage for every rendered part after the first ``skip``; errors translated."""
        for index, (text, markup) in enumerate(self.render(replies)):
            if index < skip:
                continue
            await self.call("sendMessage", self.message_params(chat_id, text, markup), chat_id=chat_id)
            if progress is not None:
                progress(index + 1)

    async def reply(self, chat_id: str, replies: Sequence[Reply],
                    progress: Callable[[int], None] | None = None) -> None:
        """Answer the user's own update (a direct sendMessage; Telegram has no reply token).
        ``progress(n)`` is told after each of the n rendered parts went out."""
        await self.send(chat_id, replies, progress=progress)

    def unsent(self, replies: Sequence[Reply], parts_sent: int) -> list[Reply]:
        """The replies not completely delivered once ``parts_sent`` rendered parts went out."""
        out: list[Reply] = []
        end = 0
        for group in self.groups(replies):
            end += len(self.render(group))
            if end > parts_sent:
                out.extend(group)
        return out

    async def push(self, recipients: Sequence[str], replies: Sequence[Reply], *, retry_key: str) -> None:
        """ChannelSender.push: one chat per call (``max_recipients`` = 1)."""
        for chat_id in dict.fromkeys(recipients):
            key = f"{retry_key}:{chat_id}"

            def remember(count: int, key: str = key) -> None:
                self._progress[key] = count
                while len(self._progress) > 10_000:
                    self._progress.popitem(last=False)

            await self.send(chat_id, replies, skip=self._progress.get(key, 0), progress=remember)
            self._progress.pop(key, None)

    # -- webhook registration and polling ----------------------------------------------------------
    async def set_webhook(self, url: str) -> None:
        await self.ensure_started()
        await self.bot.set_webhook(url=url, secret_token=self._secret.decode() if self._secret else None,
                                   allowed_updates=ALLOWED_UPDATES)

    async def set_commands(self, menus: dict[str | None, Sequence[tuple[str, str]]]) -> None:
        """Register the "/" command menu per language (setMyCommands; ``None`` = the default
        menu for every other language). ``menus`` comes from the core (Texts.command_menus)."""
        await self.ensure_started()
        for lang, commands in menus.items():
            try:
                await self.bot.set_my_commands(
                    [BotCommand(name, shorten(description, 256)) for name, description in commands],
                    language_code=lang)
            except TelegramError as exc:
                raise translate_error(exc, "") from exc

    async def register_commands(self, menus: dict[str | None, Sequence[tuple[str, str]]]) -> bool:
        """``set_commands`` at app start-up: a failure is logged, never fatal (the menu is a
        convenience; ``kurashi telegram commands set`` can register it later)."""
        try:
            await self.set_commands(menus)
        except SendError as exc:
            log.warning("telegram: command menu not registered (%s)", exc)
            return False
        return True

    async def poll(self, ingest: Callable[[dict[str, Any]], Awaitable[None]], stop: asyncio.Event,
                   *, timeout: int = 25) -> None:
        """Development without a public URL: long-poll getUpdates and hand each update (as the
        JSON a webhook would carry) to ``ingest`` until ``stop`` is set."""
        await self.ensure_started()
        await self.bot.delete_webhook()
        offset: int | None = None
        while not stop.is_set():
            try:
                updates = await self.bot.get_updates(offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES)
            except RetryAfter as exc:
                await asyncio.sleep(_retry_seconds(exc))
                continue
            except NetworkError:
                await asyncio.sleep(1.0)
                continue
            for update in updates:
                await ingest(update.to_dict())
                offset = update.update_id + 1
