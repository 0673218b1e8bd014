"""LINE rich menus: the tappable panel under the chat, one per language.

Owns everything about rich menus: the six areas and the postbacks they send (payloads the
conversation core already understands), the menu image (drawn here with Pillow in the
resident's script, at LINE's 2500x1686 size), and keeping LINE's copy in step with the
knowledge base (``kurashi line richmenu sync``):

- each language's menu is named ``kurashi-<lang>-<digest>``, the digest covering the menu
  object and the image, so the same content never creates a second menu (idempotent);
- the alias ``kurashi-<lang>`` points at the current menu of that language; the default
  menu (for residents who have not chosen a language) is the ``--default`` language's;
- older ``kurashi-<lang>-*`` menus are deleted once nothing points at them.

At run time ``RichMenuLinker`` links a resident's menu to the language they use, looked up
through the alias (cached), so a language change also changes the menu.

Labels come from knowledge/messages.yaml (``richmenu.*``). Must not import the conversation
engine, the database or Starlette; talks to LINE through line-bot-sdk, and uploads the
image with a plain HTTP request to the content host (LINE_API_DATA_BASE_URL).
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

#: LINE's large rich menu size (https://developers.line.biz/en/reference/messaging-api/#rich-menu-object).
WIDTH, HEIGHT = 2500, 1686
COLUMNS, ROWS = 3, 2
#: The image must be at most 1 MB (JPEG or PNG).
MAX_IMAGE_BYTES = 1024 * 1024
MAX_CHAT_BAR = 14
NAME_PREFIX = "kurashi-"
#: Alias ids: at most 32 characters of [A-Za-z0-9_-].
ALIAS_PREFIX = "kurashi-"

#: (area key, postback payload the core understands, tile colour). Order = reading order.
AREAS: tuple[tuple[str, str, str], ...] = (
    ("emergency", "g:emergency+disaster", "#C62828"),
    ("garbage", "g:garbage", "#2E7D32"),
    ("money", "g:procedure+money", "#1565C0"),
    ("work", "g:work+consult", "#6A1B9A"),
    ("events", "i:events.upcoming", "#EF6C00"),
    ("settings", "s", "#455A64"),
)

#: Font files (Debian: fonts-noto-core, fonts-noto-cjk) per script; first found wins.
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
_CJK = ("NotoSansCJK-Bold.ttc", "NotoSansCJK-Regular.ttc")
#: Face index inside NotoSansCJK-*.ttc: JP, KR, SC, TC, HK.
_CJK_INDEX = {"ja": 0, "ko": 1, "zh": 2}
FONTS: dict[str, tuple[str, ...]] = {
    "ja": _CJK, "zh": _CJK, "ko": _CJK,
    "my": ("NotoSansMyanmar-Bold.ttf", "NotoSansMyanmar-Regular.ttf"),
    "ne": ("NotoSansDevanagari-Bold.ttf", "NotoSansDevanagari-Regular.ttf"),
}
_LATIN = ("NotoSans-Bold.ttf", "NotoSans-Regular.ttf", "DejaVuSans-Bold.ttf")


class FontMissing(RuntimeError):
    """No font that can draw a language's script is installed."""


@dataclass(frozen=True)
class MenuContent:
    """One language's rich menu: the LINE rich menu object and its PNG image."""

    lang: str
    request: dict[str, Any]
    image: bytes

    @property
    def name(self) -> str:
        return self.request["name"]


@dataclass
class SyncReport:
    """What ``sync`` did, per language: created / unchanged, plus deletions and the default."""

    menus: dict[str, str] = field(default_factory=dict)        # lang -> rich menu id
    status: dict[str, str] = field(default_factory=dict)       # lang -> "created" | "unchanged"
    deleted: list[str] = field(default_factory=list)
    default: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"menus": self.menus, "status": self.status, "deleted": self.deleted, "default": self.default}


# -- content ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def _font_path(lang: str) -> tuple[Path, int]:
    names = FONTS.get(lang, ()) + _LATIN if lang not in _CJK_INDEX else FONTS[lang]
    for name in names:
        for folder in FONT_DIRS:
            if not folder.is_dir():
                continue
            found = next(iter(sorted(folder.rglob(name))), None)
            if found is not None:
                return found, _CJK_INDEX.get(lang, 0) if name.endswith(".ttc") else 0
    raise FontMissing(
        f"no font for {lang!r} (looked for {', '.join(names)} under {', '.join(map(str, FONT_DIRS))}); "
        "on Debian: apt-get install fonts-noto-core fonts-noto-cjk")


def _fit_font(draw: Any, text: str, path: Path, index: int, box_width: int, start: int) -> Any:
    from PIL import ImageFont

    size = start
    while size > 24:
        font = ImageFont.truetype(str(path), size, index=index)
        widest = max(draw.textlength(line, font=font) for line in text.split("\n"))
        if widest <= box_width:
            return font
        size -= 6
    return ImageFont.truetype(str(path), size, index=index)


def _two_lines(text: str) -> list[str]:
    """The label as it is, and split in two at the separator nearest its middle (・, & or space)."""
    options = [text]
    for sep in ("・", " & ", " и ", " "):
        parts = text.split(sep)
        if len(parts) < 2:
            continue
        best = min(range(1, len(parts)),
                   key=lambda i: abs(len(sep.join(parts[:i])) - len(sep.join(parts[i:]))))
        head, tail = sep.join(parts[:best]), sep.join(parts[best:])
        joiner = sep.strip() if sep.strip() not in ("", "・") else ""
        options.append(f"{head} {joiner}".rstrip() + "\n" + tail if joiner else f"{head}\n{tail}")
        break
    return options


def _best_layout(draw: Any, text: str, path: Path, index: int, box_width: int) -> tuple[str, Any]:
    """The one- or two-line form of ``text`` that can be drawn largest within the tile."""
    best: tuple[str, Any] | None = None
    for option in _two_lines(text):
        font = _fit_font(draw, option, path, index, box_width, 150)
        if best is None or font.size > best[1].size + 10:
            best = (option, font)
    assert best is not None
    return best


def _bounds(position: int) -> dict[str, int]:
    col, row = position % COLUMNS, position // COLUMNS
    x0, x1 = round(col * WIDTH / COLUMNS), round((col + 1) * WIDTH / COLUMNS)
    y0, y1 = round(row * HEIGHT / ROWS), round((row + 1) * HEIGHT / ROWS)
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


def render_image(lang: str, labels: Mapping[str, str]) -> bytes:
    """The menu image: six coloured tiles with the label of each area in ``lang``'s script."""
    from PIL import Image, ImageDraw

    path, index = _font_path(lang)
    image = Image.new("RGB", (WIDTH, HEIGHT), "#FFFFFF")
    draw = ImageDraw.Draw(image)
    for position, (key, _, colour) in enumerate(AREAS):
        b = _bounds(position)
        draw.rectangle((b["x"] + 8, b["y"] + 8, b["x"] + b["width"] - 8, b["y"] + b["height"] - 8), fill=colour)
        text, font = _best_layout(draw, labels[key], path, index, b["width"] - 120)
        centre = (b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
        draw.multiline_text(centre, text, font=font, fill="#FFFFFF", anchor="mm", align="center", spacing=24)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if len(data) > MAX_IMAGE_BYTES:  # pragma: no cover - flat tiles compress to ~100 KB
        raise ValueError(f"rich menu image for {lang} is {len(data)} bytes (LINE allows 1 MB)")
    return data


def build_menu(lang: str, labels: Mapping[str, str], chat_bar: str) -> MenuContent:
    """The rich menu object and image of one language, named after a digest of both."""
    areas = []
    for position, (key, data, _) in enumerate(AREAS):
        label = labels[key].replace("\n", " ")
        areas.append({"bounds": _bounds(position),
                      "action": {"type": "postback", "label": label[:20], "data": data,
                                 "displayText": label[:300]}})
    body = {"size": {"width": WIDTH, "height": HEIGHT}, "selected": False,
            "chatBarText": chat_bar[:MAX_CHAT_BAR], "areas": areas}
    image = render_image(lang, labels)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode() + image).hexdigest()[:12]
    body = {**body, "name": f"{NAME_PREFIX}{lang}-{digest}"}
    return MenuContent(lang, body, image)


def build_menus(messages: Mapping[str, Mapping[str, str]], languages: Iterable[str]) -> list[MenuContent]:
    """Every language's menu from ``richmenu.*`` messages (English where a label is missing)."""
    menus = []
    for lang in languages:
        def text(key: str, lang: str = lang) -> str:
            texts = messages.get(key) or {}
            return texts.get(lang) or texts.get("en") or key
        labels = {key: text(f"richmenu.{key}") for key, _, _ in AREAS}
        menus.append(build_menu(lang, labels, text("richmenu.chat_bar")))
    return menus


# -- LINE API ------------------------------------------------------------------------------------

def data_base_url(settings: Any) -> str:
    """LINE's content host: LINE_API_DATA_BASE_URL, else LINE_API_BASE_URL when that was changed."""
    explicit = getattr(settings, "line_api_data_base_url", None)
    if explicit:
        return explicit.rstrip("/")
    base = (getattr(settings, "line_api_base_url", None) or "https://api.line.me").rstrip("/")
    return "https://api-data.line.me" if base == "https://api.line.me" else base


class RichMenuApi:
    """The few rich menu calls kurashi makes, on line-bot-sdk's async client (plus the upload)."""

    def __init__(self, messaging: Any, *, access_token: str, data_base: str) -> None:
        self._api = messaging
        self._token = access_token
        self._data_base = data_base

    async def list_menus(self) -> list[tuple[str, str]]:
        result = await self._api.get_rich_menu_list()
        return [(m.rich_menu_id, m.name) for m in result.richmenus]

    async def create(self, menu: MenuContent) -> str:
        from linebot.v3.messaging import RichMenuRequest

        created = await self._api.create_rich_menu(RichMenuRequest.from_dict(menu.request))
        rich_menu_id = created.rich_menu_id
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
            response = await client.post(
                f"{self._data_base}/v2/bot/richmenu/{rich_menu_id}/content", content=menu.image,
                headers={"Authorization": f"Bearer {self._token}", "Content-Type": "image/png"})
        if response.status_code != 200:
            await self._api.delete_rich_menu(rich_menu_id)   # a menu without an image cannot be used
            raise RuntimeError(f"image upload for {menu.lang} failed: HTTP {response.status_code} {response.text[:200]}")
        return rich_menu_id

    async def delete(self, rich_menu_id: str) -> None:
        await self._api.delete_rich_menu(rich_menu_id)

    async def alias_target(self, alias: str) -> str | None:
        from linebot.v3.messaging.exceptions import ApiException

        try:
            return (await self._api.get_rich_menu_alias(alias)).rich_menu_id
        except ApiException as exc:
            if exc.status in (400, 404):
                return None
            raise

    async def point_alias(self, alias: str, rich_menu_id: str) -> None:
        from linebot.v3.messaging import CreateRichMenuAliasRequest, UpdateRichMenuAliasRequest

        current = await self.alias_target(alias)
        if current == rich_menu_id:
            return
        if current is None:
            await self._api.create_rich_menu_alias(
                CreateRichMenuAliasRequest(rich_menu_alias_id=alias, rich_menu_id=rich_menu_id))
        else:
            await self._api.update_rich_menu_alias(alias, UpdateRichMenuAliasRequest(rich_menu_id=rich_menu_id))

    async def default_menu(self) -> str | None:
        from linebot.v3.messaging.exceptions import ApiException

        try:
            return (await self._api.get_default_rich_menu_id()).rich_menu_id
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def set_default(self, rich_menu_id: str) -> None:
        await self._api.set_default_rich_menu(rich_menu_id)

    async def link(self, user_id: str, rich_menu_id: str) -> None:
        await self._api.link_rich_menu_id_to_user(user_id, rich_menu_id)


async def sync_rich_menus(api: RichMenuApi, menus: Sequence[MenuContent], *, default_lang: str) -> SyncReport:
    """Make LINE hold exactly ``menus`` (same content → nothing new), aliases and the default."""
    if default_lang not in {m.lang for m in menus}:
        raise ValueError(f"default language {default_lang!r} has no menu")
    report = SyncReport()
    existing = await api.list_menus()
    by_name = {name: menu_id for menu_id, name in existing}
    for menu in menus:
        menu_id = by_name.get(menu.name)
        if menu_id is None:
            menu_id = await api.create(menu)
            report.status[menu.lang] = "created"
        else:
            report.status[menu.lang] = "unchanged"
        report.menus[menu.lang] = menu_id
        await api.point_alias(f"{ALIAS_PREFIX}{menu.lang}", menu_id)
    default_id = report.menus[default_lang]
    if await api.default_menu() != default_id:
        await api.set_default(default_id)
    report.default = default_lang
    current = set(report.menus.values())
    synced = {m.lang for m in menus}
    for menu_id, name in existing:
        lang = name[len(NAME_PREFIX):].rsplit("-", 1)[0] if name.startswith(NAME_PREFIX) else None
        if lang in synced and menu_id not in current:
            await api.delete(menu_id)
            report.deleted.append(menu_id)
    return report


class RichMenuLinker:
    """Links each LINE user's rich menu to their language (alias lookup cached for 10 minutes).

    Best effort and off the reply path: a failure is logged and tried again on the user's
    next message. Remembers the last language linked per user (bounded, in memory), so a
    restart costs at most one extra link call per active user.
    """

    ALIAS_TTL = 600.0
    MAX_USERS = 100_000

    def __init__(self, api: RichMenuApi, *, default_lang: str | None = None) -> None:
        self._api = api
        self._default = default_lang
        self._aliases: dict[str, tuple[float, str | None]] = {}
        self._linked: OrderedDict[str, str] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def language_seen(self, user_id: str, lang: str | None) -> None:
        """Called after a reply: link the menu in the background when the language changed."""
        if not lang or self._linked.get(user_id) == lang:
            return
        task = asyncio.get_running_loop().create_task(self.link(user_id, lang))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _menu_for(self, lang: str) -> str | None:
        cached = self._aliases.get(lang)
        if cached is not None and time.monotonic() - cached[0] < self.ALIAS_TTL:
            return cached[1]
        menu_id = await self._api.alias_target(f"{ALIAS_PREFIX}{lang}")
        self._aliases[lang] = (time.monotonic(), menu_id)
        return menu_id

    async def link(self, user_id: str, lang: str) -> None:
        try:
            menu_id = await self._menu_for(lang)
            if menu_id is not None:
                await self._api.link(user_id, menu_id)
            self._linked[user_id] = lang
            self._linked.move_to_end(user_id)
            while len(self._linked) > self.MAX_USERS:
                self._linked.popitem(last=False)
        except Exception as exc:  # noqa: BLE001 - best effort; retried on the next message
            log.info("rich menu link failed", extra={"error": repr(exc)[:200]})

    async def drain(self) -> None:
        """Wait for links in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
