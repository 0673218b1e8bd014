"""FakeTelegramAPI: a loopback Telegram Bot API for tests and benchmarks.

Serves ``POST /bot{token}/{method}`` (getMe, setWebhook, deleteWebhook, getWebhookInfo,
getUpdates, sendMessage, answerCallbackQuery, editMessageReplyMarkup, editMessageText,
sendChatAction, getFile, setMyCommands, deleteMessage, … any other method of the spec
answers ``true``) and ``GET /file/bot{token}/{path}`` on 127.0.0.1. Bodies are decoded from
form, multipart or JSON; every call is checked against
../shared/reference/telegram-bot-api/api-bot-api-10.0.json (the Bot API python-telegram-bot
22.8 speaks) by a small walker: the method exists, parameters are known, required ones are
present, values fit the declared types, plus documented limits written in the field
descriptions (text 1-4096 characters, callback_data 1-64 bytes). Failures are programmable
per method: 429 with ``parameters.retry_after``, 500, 400, 403 "Forbidden: bot was blocked
by the user"; ``block(chat_id)`` makes every send to a chat answer that 403. ``latency``
simulates the network round trip to Telegram (benchmarks: half before a request is
recorded, half before its answer).

Point python-telegram-bot at it with ``ApplicationBuilder().base_url(f"{fake.base_url}/bot")``
(or ``Bot(token, base_url=...)``). Test-only; must not import ``bot``.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes._common import Failure, LoopbackServer, RecordedRequest, shared_path

TELEGRAM_SPEC = ("telegram-bot-api", "api-bot-api-10.0.json")
DEFAULT_TOKEN = "123456789:TEST-telegram-bot-token-for-kurashi"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "kurashi (test)", "username": "kurashi_test_bot",
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}

MAX_TEXT = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER = 200

_PRIMITIVES = {"Integer", "String", "Boolean", "True", "Float", "InputFile"}
#: methods whose ``chat_id`` is a message destination (a blocked chat answers 403 there)
_SEND_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "sendLocation", "sendChatAction",
                 "editMessageText", "editMessageReplyMarkup", "copyMessage", "forwardMessage"}


@functools.lru_cache(maxsize=1)
def _spec() -> dict[str, Any] | None:
    path = shared_path(*TELEGRAM_SPEC)
    if path is None:
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def telegram_spec_available() -> bool:
    return shared_path(*TELEGRAM_SPEC) is not None


class FileUpload:
    """Marks a multipart file part (an InputFile value)."""

    def __init__(self, filename: str | None, data: bytes) -> None:
        self.filename = filename
        self.data = data


# -- the walker -------------------------------------------------------------------------------
def _type_errors(value: Any, type_name: str, where: str, spec: dict[str, Any]) -> list[str]:
    """Why ``value`` is not a ``type_name`` (empty list: it is)."""
    if type_name.startswith("Array of "):
        if not isinstance(value, list):
            return [f"{where}: expected {type_name}, got {type(value).__name__}"]
        inner = type_name[len("Array of "):]
        errors: list[str] = []
        for i, item in enumerate(value):
            errors += _type_errors(item, inner, f"{where}[{i}]", spec)
        return errors
    ok = {
        "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "String": lambda v: isinstance(v, str),
        "Boolean": lambda v: isinstance(v, bool),
        "True": lambda v: v is True,
        "InputFile": lambda v: isinstance(v, (FileUpload, str)),
    }.get(type_name)
    if ok is not None:
        return [] if ok(value) else [f"{where}: expected {type_name}, got {value!r:.80}"]
    definition = spec["types"].get(type_name)
    if definition is None:
        return []  # a type the scraped spec does not describe: nothing to check against
    if definition.get("subtypes"):
        attempts = [_type_errors(value, sub, where, spec) for sub in definition["subtypes"]]
        if any(not a for a in attempts):
            return []
        return [f"{where}: matches no subtype of {type_name} ({min(attempts, key=len)[0]})"]
    return object_errors(value, type_name, where, spec)


def _fields_errors(value: Any, fields: list[dict[str, Any]], name: str, where: str,
                   spec: dict[str, Any]) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected a {name} object, got {value!r:.80}"]
    known = {f["name"]: f for f in fields}
    errors = [f"{where}: unknown field {key!r} for {name}" for key in value if key not in known]
    for f in fields:
        if f["name"] not in value:
            if f.get("required"):
                errors.append(f"{where}: missing required field {f['name']!r} of {name}")
            continue
        attempts = [_type_errors(value[f["name"]], t, f"{where}.{f['name']}", spec) for t in f["types"]]
        if attempts and all(attempts):
            errors += min(attempts, key=len)
    return errors


def object_errors(value: Any, type_name: str, where: str = "$", spec: dict[str, Any] | None = None) -> list[str]:
    """Check a decoded object (e.g. an ``Update`` fixture) against a type of the spec."""
    spec = spec or _spec()
    if spec is None:
        return []
    definition = spec["types"].get(type_name)
    if definition is None:
        return [f"{where}: unknown type {type_name}"]
    if definition.get("subtypes"):
        return _type_errors(value, type_name, where, spec)
    return _fields_errors(value, definition.get("fields", []), type_name, where, spec)


def _coerce(raw: Any, types: list[str]) -> Any:
    """Form values arrive as strings; non-string parameters are JSON (python-telegram-bot's
    RequestData.json_parameters). Interpret a string as JSON unless only a String fits."""
    if not isinstance(raw, str):
        return raw
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw
    spec = _spec()
    if spec is not None and any(not _type_errors(parsed, t, "$", spec) for t in types):
        return parsed
    return raw


def decode_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Typed parameters from form/JSON values, using the method's declared field types."""
    spec = _spec()
    fields = {f["name"]: f for f in spec["methods"].get(method, {}).get("fields", [])} if spec else {}
    decoded = {}
    for key, raw in params.items():
        types = fields.get(key, {}).get("types", ["String", "Integer", "Boolean"])
        decoded[key] = _coerce(raw, types)
    return decoded


def _limit_errors(method: str, params: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    text = params.get("text")
    if method in ("sendMessage", "editMessageText") and isinstance(text, str) and not 1 <= len(text) <= MAX_TEXT:
        errors.append(f"text must be 1-{MAX_TEXT} characters (got {len(text)})")
    if method == "answerCallbackQuery" and isinstance(text, str) and len(text) > MAX_CALLBACK_ANSWER:
        errors.append(f"callback answer text longer than {MAX_CALLBACK_ANSWER}")
    markup = params.get("reply_markup")
    if isinstance(markup, dict) and isinstance(markup.get("inline_keyboard"), list):
        for r, row in enumerate(markup["inline_keyboard"]):
            for c, button in enumerate(row if isinstance(row, list) else []):
                data = button.get("callback_data") if isinstance(button, dict) else None
                if isinstance(data, str) and not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                    errors.append(f"inline_keyboard[{r}][{c}].callback_data must be 1-{MAX_CALLBACK_DATA_BYTES} bytes")
    return errors


def call_errors(method: str, params: dict[str, Any]) -> list[str]:
    """Why a Bot API call breaks the spec (method, parameter names, required, types, limits)."""
    spec = _spec()
    if spec is None:
        return []
    definition = spec["methods"].get(method)
    if definition is None:
        return [f"unknown method {method!r}"]
    errors = _fields_errors(params, definition.get("fields", []), method, method, spec)
    return errors + _limit_errors(method, params)


@dataclass
class TelegramCall:
    """One decoded Bot API call."""

    method: str
    params: dict[str, Any]
    record: RecordedRequest


class FakeTelegramAPI(LoopbackServer):
    """A loopback Telegram Bot API (see the module docstring)."""

    def __init__(self, *, token: str = DEFAULT_TOKEN, validate: bool = True,
                 max_poll_wait: float = 0.5, latency: float = 0.0) -> None:
        super().__init__()
        self.token = token
        # Seconds of network round trip to simulate (benchmarks): half before the request is
        # handled (and recorded), half before the answer goes back.
        self.latency = latency
        self.validate = validate and telegram_spec_available()
        self.max_poll_wait = max_poll_wait
        self.calls: list[TelegramCall] = []
        self.sent: list[dict[str, Any]] = []          # every Message the fake "sent" (sendMessage)
        self.webhook: dict[str, Any] | None = None
        self.files: dict[str, tuple[str, bytes]] = {}
        self.blocked: set[str] = set()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(500000001)
        self._message_ids = itertools.count(1001)
        self._new_update = asyncio.Event()
        self.app.router.add_route("*", "/bot{token}/{method}", self._method)
        self.app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self.app.router.add_route("*", "/{tail:.*}", self._unknown)

    # -- programming the fake ------------------------------------------------------------
    def fail_next(self, method: str, status: int, *, times: int = 1, retry_after: int | None = None,
                  description: str | None = None, skip: int = 0) -> None:
        """The next ``times`` calls of ``method`` (after ``skip`` successful ones) answer
        ``status`` (429 carries ``retry_after``)."""
        self._queue_failure(method, Failure(status, times, retry_after, description, skip=skip))

    def block(self, chat_id: int | str) -> None:
        """The user blocked the bot: sends to this chat answer 403 from now on."""
        self.blocked.add(str(chat_id))

    def unblock(self, chat_id: int | str) -> None:
        self.blocked.discard(str(chat_id))

    def add_file(self, file_id: str, data: bytes, file_path: str | None = None) -> None:
        self.files[file_id] = (file_path or f"documents/{file_id}.bin", data)

    def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Offer an Update to getUpdates (polling mode); an update_id is assigned when missing."""
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self._new_update.set()
        return update

    # -- reading what happened -------------------------------------------------------------
    def calls_of(self, method: str) -> list[TelegramCall]:
        return [c for c in self.calls if c.method == method]

    def messages_to(self, chat_id: int | str) -> list[dict[str, Any]]:
        """sendMessage parameters (decoded) accepted for ``chat_id``, in order."""
        return [m for m in self.sent if str(m.get("chat_id")) == str(chat_id)]

    def texts_to(self, chat_id: int | str) -> list[str]:
        return [m.get("text", "") for m in self.messages_to(chat_id)]

    async def wait_for_messages(self, chat_id: int | str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        await self.wait_until(lambda: len(self.messages_to(chat_id)) >= count, timeout)
        return self.messages_to(chat_id)

    async def wait_for_calls(self, method: str, count: int = 1, timeout: float = 10.0) -> list[TelegramCall]:
        await self.wait_until(lambda: len(self.calls_of(method)) >= count, timeout)
        return self.calls_of(method)

    # -- server side -----------------------------------------------------------------------
    async def _decode(self, request: web.Request) -> tuple[bytes, dict[str, Any]]:
        content_type = request.content_type
        if content_type == "multipart/form-data":
            params: dict[str, Any] = {}
            reader = await request.multipart()
            async for part in reader:
                data = await part.read(decode=False)
                if part.filename:
                    params[part.name] = FileUpload(part.filename, bytes(data))
                else:
                    params[part.name] = bytes(data).decode("utf-8")
            return b"", params
        body = await request.read()
        if content_type == "application/json" and body:
            decoded = json.loads(body)
            return body, decoded if isinstance(decoded, dict) else {}
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        params.update(request.query)
        return body, params

    def _error(self, record: RecordedRequest, status: int, description: str,
               retry_after: int | None = None) -> web.Response:
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            payload["parameters"] = {"retry_after": retry_after}
        record.status = status
        return web.json_response(payload, status=status)

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            body, raw_params = await self._decode(request)
        except ValueError:
            body, raw_params = b"", {}
        params = decode_params(method, raw_params)
        if self.latency:
            await asyncio.sleep(self.latency / 2)
        record = RecordedRequest(method=request.method, path=request.path, query=dict(request.query),
                                 headers=CIMultiDict(request.headers), body=body, json=params)
        self.requests.append(record)
        call = TelegramCall(method, params, record)
        self.calls.append(call)
        try:
            response = await self._dispatch(request, call)
        finally:
            await self._notify()
        if self.latency:
            await asyncio.sleep(self.latency / 2)
        return response

    async def _dispatch(self, request: web.Request, call: TelegramCall) -> web.Response:
        record, method, params = call.record, call.method, call.params
        if request.match_info["token"] != self.token:
            return self._error(record, 401, "Unauthorized")
        spec = _spec()
        if spec is not None and method not in spec["methods"]:
            self.record_violation(record, f"unknown method {method!r}")
            return self._error(record, 404, "Not Found: method not found")
        if self.validate:
            for problem in call_errors(method, params):
                self.record_violation(record, problem)
        failure = self._take_failure(method)
        if failure is not None:
            return self._programmed(record, failure)
        if method in _SEND_METHODS and str(params.get("chat_id")) in self.blocked:
            return self._error(record, 403, "Forbidden: bot was blocked by the user")
        handler = getattr(self, f"_m_{method}", None)
        result = handler(params) if handler is not None else True
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, web.Response):
            return result
        record.status = 200
        return web.json_response({"ok": True, "result": result})

    def _programmed(self, record: RecordedRequest, failure: Failure) -> web.Response:
        defaults = {
            400: "Bad Request: message text is empty",
            403: "Forbidden: bot was blocked by the user",
            429: f"Too Many Requests: retry after {failure.retry_after or 1}",
            500: "Internal Server Error",
        }
        retry_after = failure.retry_after if failure.status == 429 else None
        if failure.status == 429 and retry_after is None:
            retry_after = 1
        return self._error(record, failure.status, failure.description or defaults.get(failure.status, "Error"),
                           retry_after)

    # -- methods -------------------------------------------------------------------------------
    def _chat(self, chat_id: Any) -> dict[str, Any]:
        try:
            numeric = int(chat_id)
        except (TypeError, ValueError):
            return {"id": -1001234567890, "type": "supergroup", "title": str(chat_id)}
        return {"id": numeric, "type": "private" if numeric > 0 else "group",
                **({"first_name": "Test"} if numeric > 0 else {"title": "Group"})}

    def _message(self, params: dict[str, Any], text: str | None = None, message_id: int | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id or next(self._message_ids),
            "from": {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": self._chat(params.get("chat_id")),
            "date": int(time.time()),
        }
        if text is not None:
            message["text"] = text
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

    def _m_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {k: v for k, v in params.items() if not isinstance(v, FileUpload)}
        return True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {"url": (self.webhook or {}).get("url", ""), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    async def _wait_for_update(self, timeout: float) -> None:
        self._new_update.clear()
        try:
            await asyncio.wait_for(self._new_update.wait(), timeout)
        except TimeoutError:
            pass

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook:
            return self._error(self.calls[-1].record, 409,
                               "Conflict: can't use getUpdates method while webhook is active; "
                               "use deleteWebhook to delete the webhook first")
        offset = params.get("offset")
        if isinstance(offset, int):
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        limit = params.get("limit") if isinstance(params.get("limit"), int) else 100
        timeout = params.get("timeout") if isinstance(params.get("timeout"), (int, float)) else 0
        if not self._updates and timeout > 0:
            # Long polling, shortened so that a test's shutdown is not held up.
            await self._wait_for_update(min(float(timeout), self.max_poll_wait))
        return self._updates[:limit]

    def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        message = self._message(params, str(params.get("text", "")))
        self.sent.append({**params, "message_id": message["message_id"]})
        return message

    def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        if "inline_message_id" in params:
            return True
        return self._message(params, str(params.get("text", "")), message_id=params.get("message_id"))

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        if "inline_message_id" in params:
            return True
        return self._message(params, "…", message_id=params.get("message_id"))

    def _m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id"))
        if file_id not in self.files:
            return self._error(self.calls[-1].record, 400, "Bad Request: invalid file_id")
        path, data = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}"[:32], "file_size": len(data), "file_path": path}

    def _m_getMyCommands(self, params: dict[str, Any]) -> Any:
        return []

    async def _download(self, request: web.Request) -> web.Response:
        record = RecordedRequest(method=request.method, path=request.path, query=dict(request.query),
                                 headers=CIMultiDict(request.headers), body=b"")
        self.requests.append(record)
        if request.match_info["token"] != self.token:
            record.status = 401
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        for path, data in self.files.values():
            if path == request.match_info["path"]:
                record.status = 200
                return web.Response(body=data, content_type="application/octet-stream")
        record.status = 404
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _unknown(self, request: web.Request) -> web.Response:
        record = RecordedRequest(method=request.method, path=request.path, query=dict(request.query),
                                 headers=CIMultiDict(request.headers), body=await request.read())
        self.requests.append(record)
        self.record_violation(record, "not a Bot API path (expected /bot<token>/<method>)")
        record.status = 404
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
