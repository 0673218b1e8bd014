"""FakeLineAPI: a loopback LINE Messaging API for tests and benchmarks.

Serves the paths kurashi uses (reply, push, multicast, profile, content, bot info,
loading animation, quota) on 127.0.0.1, records every request, validates each against
../shared/reference/line-openapi/messaging-api.yml with openapi-core (plus the documented
message limits the OpenAPI file does not encode) and honours ``X-Line-Retry-Key`` the way
LINE does: a key seen before answers 409 with ``x-line-accepted-request-id`` and delivers
nothing. Failures are programmable per endpoint (429 with Retry-After, 500, 400, 403).

Point line-bot-sdk at it with ``Configuration(host=fake.base_url)`` (no trailing slash;
line-bot-sdk then sends both api.line.me and api-data.line.me paths to this one host).

Test-only; must not import ``bot``.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes._common import Failure, LoopbackServer, RecordedRequest, shared_path
from tests.fakes.line_richmenu import RichMenuRoutes

LINE_SPEC = ("line-openapi", "messaging-api.yml")

DEFAULT_ACCESS_TOKEN = "test-line-channel-access-token"
DEFAULT_CHANNEL_SECRET = "test-line-channel-secret"

# Documented limits of https://developers.line.biz/en/reference/messaging-api/ that the
# OpenAPI file does not express as maxLength (checked by the fake as violations).
MAX_TEXT = 5000
MAX_ACTION_LABEL = 20
MAX_POSTBACK_DATA = 300
MAX_MESSAGE_ACTION_TEXT = 300
MAX_ALT_TEXT = 400
MAX_BUTTONS_ACTIONS = 4
MAX_BUTTONS_TITLE = 40
MAX_BUTTONS_TEXT = 160
MAX_BUTTONS_TEXT_WITH_TITLE_OR_IMAGE = 60
MAX_QUICK_REPLY_ITEMS = 13


def utf16_len(text: str) -> int:
    """LINE counts characters in UTF-16 code units (an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


@functools.lru_cache(maxsize=1)
def _openapi() -> Any:
    from openapi_core import OpenAPI

    path = shared_path(*LINE_SPEC)
    if path is None:
        return None
    return OpenAPI.from_file_path(str(path))


def line_spec_available() -> bool:
    return shared_path(*LINE_SPEC) is not None


class _SpecRequest:
    """The request protocol openapi-core validates (host rewritten to LINE's real servers)."""

    def __init__(self, host_url: str, record: RecordedRequest, content_type: str) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.host_url = host_url
        self.path = record.path
        self.method = record.method.lower()
        self.body = record.body or None
        self.content_type = content_type
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(record.query),
            header=Headers(record.headers),
            cookie=ImmutableMultiDict(),
        )


def spec_errors(record: RecordedRequest, content_type: str = "application/json") -> list[str]:
    """Every way ``record`` breaks messaging-api.yml (empty when it conforms)."""
    from openapi_core.templating.paths.exceptions import ServerNotFound

    api = _openapi()
    if api is None:
        return []
    errors: list[Any] = []
    # Content downloads are declared under https://api-data.line.me, the rest under api.line.me.
    for host in ("https://api.line.me", "https://api-data.line.me"):
        errors = list(api.iter_request_errors(_SpecRequest(host, record, content_type)))
        if not any(isinstance(e, ServerNotFound) for e in errors):
            break
    messages = []
    for error in errors:
        cause = error.__cause__
        details = [getattr(s, "message", str(s)) for s in getattr(cause, "schema_errors", ())]
        text = f"{type(error).__name__}: {error}"
        if details:
            text += " — " + "; ".join(d[:300] for d in details)
        elif cause is not None:
            text += f" — {str(cause)[:300]}"
        messages.append(text)
    return messages


def _check_text(problems: list[str], where: str, value: Any, limit: int, *, what: str,
                need: str | None = None) -> None:
    """One string field of a request: ``need`` is the problem when it is missing or empty
    (None: optional), and it may be at most ``limit`` UTF-16 code units (``what`` names it)."""
    if not isinstance(value, str) or not value:
        if need is not None:
            problems.append(f"{where}: {need}")
        return
    length = utf16_len(value)
    if length > limit:
        problems.append(f"{where}: {what} longer than {limit} ({length}): {value[:40]!r}")


def _check_action(action: Any, where: str, problems: list[str], label_required: bool) -> None:
    if not isinstance(action, dict):
        problems.append(f"{where}: action is not an object")
        return
    label = action.get("label")
    if label_required and action.get("type") not in ("camera", "cameraRoll", "location") and not label:
        problems.append(f"{where}: action label is required")
    _check_text(problems, where, label, MAX_ACTION_LABEL, what="action label")
    kind = action.get("type")
    if kind == "postback":
        _check_text(problems, where, action.get("data"), MAX_POSTBACK_DATA, what="postback data",
                    need="postback action needs data")
        _check_text(problems, where, action.get("displayText"), MAX_MESSAGE_ACTION_TEXT, what="displayText")
    elif kind == "message":
        _check_text(problems, where, action.get("text"), MAX_MESSAGE_ACTION_TEXT, what="message action text",
                    need="message action needs text")
    elif kind == "uri" and not action.get("uri"):
        problems.append(f"{where}: uri action needs uri")


def limit_errors(body: Any) -> list[str]:
    """Documented message limits that messaging-api.yml leaves out."""
    problems: list[str] = []
    if not isinstance(body, dict):
        return problems
    for i, message in enumerate(body.get("messages") or []):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            problems.append(f"{where}: not an object")
            continue
        kind = message.get("type")
        if kind == "text":
            _check_text(problems, where, message.get("text"), MAX_TEXT, what="text",
                        need="text message needs a non-empty text")
        elif kind in ("template", "flex"):
            _check_text(problems, where, message.get("altText"), MAX_ALT_TEXT, what="altText",
                        need=f"{kind} message needs altText")
            if kind == "template":
                template = message.get("template") or {}
                if template.get("type") == "buttons":
                    actions = template.get("actions") or []
                    if not 1 <= len(actions) <= MAX_BUTTONS_ACTIONS:
                        problems.append(f"{where}: buttons template needs 1-{MAX_BUTTONS_ACTIONS} actions")
                    for j, action in enumerate(actions):
                        _check_action(action, f"{where}.template.actions[{j}]", problems, True)
                    title = template.get("title")
                    _check_text(problems, where, title, MAX_BUTTONS_TITLE, what="buttons title")
                    text = template.get("text") or ""
                    limit = (MAX_BUTTONS_TEXT_WITH_TITLE_OR_IMAGE
                             if title or template.get("thumbnailImageUrl") else MAX_BUTTONS_TEXT)
                    if not text or utf16_len(text) > limit:
                        problems.append(f"{where}: buttons text must be 1-{limit} characters")
            elif not isinstance(message.get("contents"), dict):
                problems.append(f"{where}: flex message needs contents")
        quick = message.get("quickReply")
        if quick is not None:
            items = quick.get("items") if isinstance(quick, dict) else None
            if not isinstance(items, list) or not 1 <= len(items) <= MAX_QUICK_REPLY_ITEMS:
                problems.append(f"{where}: quickReply needs 1-{MAX_QUICK_REPLY_ITEMS} items")
            else:
                for j, item in enumerate(items):
                    action = item.get("action") if isinstance(item, dict) else None
                    _check_action(action, f"{where}.quickReply.items[{j}]", problems, True)
    return problems


@dataclass
class LineDelivery:
    """Messages LINE accepted for delivery (one reply, push or multicast call)."""

    kind: str                      # "reply" | "push" | "multicast"
    to: list[str]                  # user ids (a reply's token owner when known, else empty)
    messages: list[dict[str, Any]]
    request_id: str
    reply_token: str | None = None
    retry_key: str | None = None
    sent_ids: list[str] = field(default_factory=list)


class FakeLineAPI(RichMenuRoutes, LoopbackServer):
    """A loopback LINE Messaging API (see the module docstring)."""

    def __init__(
        self,
        *,
        access_token: str = DEFAULT_ACCESS_TOKEN,
        channel_secret: str = DEFAULT_CHANNEL_SECRET,
        validate: bool = True,
        default_language: str | None = "en",
        strict_reply_tokens: bool = False,
    ) -> None:
        super().__init__()
        self.access_token = access_token
        self.channel_secret = channel_secret
        self.validate = validate and line_spec_available()
        self.default_language = default_language
        self.strict_reply_tokens = strict_reply_tokens
        self.deliveries: list[LineDelivery] = []
        self.profiles: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, tuple[bytes, str]] = {}
        self.loading: list[dict[str, Any]] = []
        self._accepted_keys: dict[str, LineDelivery] = {}
        self._token_owner: dict[str, str] = {}
        self._used_tokens: set[str] = set()
        self._expired_tokens: set[str] = set()
        self._ids = itertools.count(100000000000001)
        self._holds: dict[str, asyncio.Event] = {}
        self._routes()

    # -- programming the fake ------------------------------------------------------------
    def fail_next(
        self,
        endpoint: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        message: str | None = None,
        deliver: bool = False,
        skip: int = 0,
    ) -> None:
        """The next ``times`` calls to ``endpoint`` (reply, push, multicast, profile, content,
        info, loading, quota) answer ``status``. ``deliver=True`` accepts the messages (and the
        retry key) before failing: the "delivered but the answer was lost" case. ``skip`` lets
        that many calls through first (e.g. fail only the second batch of a long push)."""
        self._queue_failure(endpoint, Failure(status, times, retry_after, message, deliver, skip))

    def hold(self, endpoint: str) -> asyncio.Event:
        """Calls to ``endpoint`` (as in ``fail_next``) are recorded and then wait until the
        returned event is set: a platform that is slow to answer, e.g. to catch the app
        with a request in flight."""
        gate = self._holds.setdefault(endpoint, asyncio.Event())
        gate.clear()
        return gate

    def release(self, endpoint: str) -> None:
        gate = self._holds.pop(endpoint, None)
        if gate is not None:
            gate.set()

    def set_profile(self, user_id: str, *, display_name: str = "Test User",
                    language: str | None = None, picture_url: str | None = None) -> None:
        profile: dict[str, Any] = {"userId": user_id, "displayName": display_name}
        if language is not None:
            profile["language"] = language
        if picture_url is not None:
            profile["pictureUrl"] = picture_url
        self.profiles[user_id] = profile

    def set_content(self, message_id: str, data: bytes, content_type: str = "image/jpeg") -> None:
        self.contents[message_id] = (data, content_type)

    def issue_reply_token(self, user_id: str) -> str:
        """A fresh reply token bound to ``user_id`` (so replies count as delivered to them)."""
        token = uuid.uuid4().hex
        self._token_owner[token] = user_id
        return token

    def bind_reply_token(self, token: str, user_id: str) -> None:
        self._token_owner[token] = user_id

    def expire_reply_token(self, token: str) -> None:
        self._expired_tokens.add(token)

    # -- reading what happened -------------------------------------------------------------
    def requests_to(self, endpoint_path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == endpoint_path]

    def messages_for(self, user_id: str) -> list[dict[str, Any]]:
        """Every message delivered to ``user_id`` (replies with a known token owner, pushes, multicasts)."""
        return [m for d in self.deliveries if user_id in d.to for m in d.messages]

    def texts_for(self, user_id: str) -> list[str]:
        return [m.get("text") or m.get("altText") or "" for m in self.messages_for(user_id)]

    def replies_to_token(self, token: str) -> list[dict[str, Any]]:
        return [m for d in self.deliveries if d.reply_token == token for m in d.messages]

    def delivered_count(self, user_id: str | None = None) -> int:
        if user_id is None:
            return sum(len(d.messages) * max(1, len(d.to)) for d in self.deliveries)
        return len(self.messages_for(user_id))

    async def wait_for_messages(self, user_id: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        await self.wait_until(lambda: len(self.messages_for(user_id)) >= count, timeout)
        return self.messages_for(user_id)

    async def wait_for_reply(self, token: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        await self.wait_until(lambda: bool(self.replies_to_token(token)), timeout)
        return self.replies_to_token(token)

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        await self.wait_until(lambda: len(self.requests) >= count, timeout)

    # -- server side -----------------------------------------------------------------------
    def _routes(self) -> None:
        r = self.app.router
        r.add_post("/v2/bot/message/reply", self._reply)
        r.add_post("/v2/bot/message/push", self._push)
        r.add_post("/v2/bot/message/multicast", self._multicast)
        r.add_get("/v2/bot/profile/{user_id}", self._profile)
        r.add_get("/v2/bot/message/{message_id}/content", self._content)
        r.add_get("/v2/bot/info", self._info)
        r.add_post("/v2/bot/chat/loading/start", self._loading)
        r.add_get("/v2/bot/message/quota", self._quota)
        r.add_get("/v2/bot/message/quota/consumption", self._quota_consumption)
        self._richmenu_routes(r)
        r.add_route("*", "/{tail:.*}", self._unknown)

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
        )
        if body:
            try:
                record.json = json.loads(body)
            except ValueError:
                record.json = None
        self.requests.append(record)
        if self.validate:
            for problem in spec_errors(record, request.headers.get("Content-Type", "application/json").lower()):
                self.record_violation(record, problem)
            for problem in limit_errors(record.json):
                self.record_violation(record, problem)
        return record

    def _next_request_id(self) -> str:
        return str(uuid.uuid4())

    async def _answer(self, record: RecordedRequest, status: int, payload: Any = None, *,
                      headers: dict[str, str] | None = None, raw: bytes | None = None,
                      content_type: str = "application/json") -> web.Response:
        record.status = status
        all_headers = {"x-line-request-id": self._next_request_id(), **(headers or {})}
        if raw is not None:
            response = web.Response(status=status, body=raw, content_type=content_type, headers=all_headers)
        else:
            response = web.json_response({} if payload is None else payload, status=status, headers=all_headers)
        await self._notify()
        return response

    async def _failure_response(self, record: RecordedRequest, failure: Failure, endpoint: str) -> web.Response:
        default_messages = {
            400: "Invalid reply token" if endpoint == "reply" else "The request body has 1 error(s)",
            401: "Authentication failed",
            403: "Not authorized to use this API",
            404: "Not found",
            409: "The retry key is already accepted",
            429: "The API rate limit has been exceeded. Try again later.",
            500: "Internal server error",
        }
        headers = {}
        if failure.retry_after is not None:
            headers["Retry-After"] = str(failure.retry_after)
        message = failure.description or default_messages.get(failure.status, "Error")
        return await self._answer(record, failure.status, {"message": message}, headers=headers)

    def _authorized(self, record: RecordedRequest) -> bool:
        return record.headers.get("Authorization") == f"Bearer {self.access_token}"

    async def _prelude(self, request: web.Request, endpoint: str) -> tuple[RecordedRequest, web.Response | None, Failure | None]:
        record = await self._record(request)
        gate = self._holds.get(endpoint)
        if gate is not None:
            await self._notify()   # a test waiting for this request may go on while it is held
            await gate.wait()
        if not self._authorized(record):
            return record, await self._answer(record, 401, {"message": "Authentication failed. Confirm that the access token in the authorization header is valid."}), None
        failure = self._take_failure(endpoint)
        if failure is not None and not failure.deliver:
            return record, await self._failure_response(record, failure, endpoint), None
        return record, None, failure

    def _deliver(self, kind: str, to: list[str], messages: list[dict[str, Any]], *,
                 reply_token: str | None = None, retry_key: str | None = None) -> LineDelivery:
        delivery = LineDelivery(
            kind=kind, to=to, messages=list(messages), request_id=self._next_request_id(),
            reply_token=reply_token, retry_key=retry_key,
            sent_ids=[str(next(self._ids)) for _ in messages],
        )
        self.deliveries.append(delivery)
        if retry_key:
            self._accepted_keys[retry_key] = delivery
        return delivery

    @staticmethod
    def _sent(delivery: LineDelivery) -> dict[str, Any]:
        return {"sentMessages": [{"id": i, "quoteToken": f"q{i}"} for i in delivery.sent_ids]}

    async def _reply(self, request: web.Request) -> web.Response:
        record, early, failure = await self._prelude(request, "reply")
        if early is not None:
            return early
        body = record.json if isinstance(record.json, dict) else {}
        token = body.get("replyToken")
        messages = body.get("messages") or []
        if not isinstance(token, str) or not isinstance(messages, list) or not messages:
            return await self._answer(record, 400, {"message": "The request body has 1 error(s)"})
        known = token in self._token_owner
        if token in self._used_tokens or token in self._expired_tokens or (self.strict_reply_tokens and not known):
            return await self._answer(record, 400, {"message": "Invalid reply token"})
        self._used_tokens.add(token)
        owner = self._token_owner.get(token)
        delivery = self._deliver("reply", [owner] if owner else [], messages, reply_token=token)
        if failure is not None:
            return await self._failure_response(record, failure, "reply")
        return await self._answer(record, 200, self._sent(delivery))

    async def _send_with_retry_key(self, request: web.Request, endpoint: str) -> web.Response:
        record, early, failure = await self._prelude(request, endpoint)
        if early is not None:
            return early
        body = record.json if isinstance(record.json, dict) else {}
        messages = body.get("messages") or []
        to = body.get("to")
        recipients = [to] if isinstance(to, str) else to
        if (not isinstance(recipients, list) or not recipients or not isinstance(messages, list) or not messages
                or len(messages) > 5 or len(recipients) > 500):
            return await self._answer(record, 400, {"message": "The request body has 1 error(s)"})
        retry_key = record.headers.get("X-Line-Retry-Key")
        if retry_key and retry_key in self._accepted_keys:
            earlier = self._accepted_keys[retry_key]
            payload: dict[str, Any] = {"message": "The retry key is already accepted"}
            if endpoint == "push":
                payload.update(self._sent(earlier))
            return await self._answer(record, 409, payload,
                                      headers={"x-line-accepted-request-id": earlier.request_id})
        delivery = self._deliver(endpoint, list(recipients), messages, retry_key=retry_key)
        if failure is not None:
            return await self._failure_response(record, failure, endpoint)
        return await self._answer(record, 200, self._sent(delivery) if endpoint == "push" else {},
                                  headers={"x-line-request-id": delivery.request_id})

    async def _push(self, request: web.Request) -> web.Response:
        return await self._send_with_retry_key(request, "push")

    async def _multicast(self, request: web.Request) -> web.Response:
        return await self._send_with_retry_key(request, "multicast")

    async def _profile(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "profile")
        if early is not None:
            return early
        user_id = request.match_info["user_id"]
        profile = self.profiles.get(user_id)
        if profile is None:
            profile = {"userId": user_id, "displayName": "Test User"}
            if self.default_language:
                profile["language"] = self.default_language
        return await self._answer(record, 200, profile)

    async def _content(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "content")
        if early is not None:
            return early
        item = self.contents.get(request.match_info["message_id"])
        if item is None:
            return await self._answer(record, 404, {"message": "Not found"})
        data, content_type = item
        return await self._answer(record, 200, raw=data, content_type=content_type)

    async def _info(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "info")
        if early is not None:
            return early
        return await self._answer(record, 200, {
            "userId": "U0123456789abcdef0123456789abcdef", "basicId": "@kurashi-test",
            "displayName": "kurashi (test)", "chatMode": "bot", "markAsReadMode": "auto",
        })

    async def _loading(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "loading")
        if early is not None:
            return early
        self.loading.append(record.json if isinstance(record.json, dict) else {})
        return await self._answer(record, 202, {})

    async def _quota(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "quota")
        if early is not None:
            return early
        return await self._answer(record, 200, {"type": "limited", "value": 200})

    async def _quota_consumption(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "quota")
        if early is not None:
            return early
        pushed = sum(len(d.to) for d in self.deliveries if d.kind != "reply")
        return await self._answer(record, 200, {"totalUsage": pushed})

    async def _unknown(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        self.record_violation(record, "path not served by FakeLineAPI (not used by kurashi, or a wrong path)")
        return await self._answer(record, 404, {"message": "Not found"})


@functools.lru_cache(maxsize=1)
def _webhook_openapi() -> Any:
    from openapi_core import OpenAPI

    path = shared_path("line-openapi", "webhook.yml")
    return None if path is None else OpenAPI.from_file_path(str(path))


def webhook_body_errors(body: bytes) -> list[str]:
    """Why ``body`` is not a valid LINE webhook delivery (``POST /callback`` of webhook.yml)."""
    from openapi_core.testing import MockRequest

    api = _webhook_openapi()
    if api is None:
        return []
    request = MockRequest("https://example.com", "POST", "/callback", data=body,
                          headers={"Content-Type": "application/json"})
    out = []
    for error in api.iter_request_errors(request):
        details = [getattr(s, "message", str(s))[:200] for s in getattr(error.__cause__, "schema_errors", ())]
        out.append(f"{type(error).__name__}: {'; '.join(details) or error}")
    return out
