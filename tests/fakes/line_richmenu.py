"""The rich menu part of FakeLineAPI: menus, images, aliases, the default and per-user links.

Behaves like LINE's rich menu endpoints (https://developers.line.biz/en/reference/messaging-api/#rich-menu):
ids ``richmenu-<32 hex>``, an image required before a menu can be linked or made default
(400 otherwise), unknown ids 404, alias ids unique (400 on a second create). Requests are
recorded and validated against the OpenAPI file like every other FakeLineAPI call; the image
upload is checked for LINE's sizes, PNG/JPEG type and the 1 MB limit.

Test-only; must not import ``bot``.
"""
from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MAX_IMAGE_BYTES = 1024 * 1024
SIZES = {(2500, 1686), (2500, 843), (1200, 810), (1200, 405), (800, 540), (800, 270)}


@dataclass
class FakeRichMenu:
    rich_menu_id: str
    body: dict[str, Any]
    image: bytes | None = None
    image_type: str | None = None
    deleted: bool = False


@dataclass
class RichMenuState:
    menus: dict[str, FakeRichMenu] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    links: dict[str, str] = field(default_factory=dict)     # user id -> rich menu id

    def live(self) -> list[FakeRichMenu]:
        return [m for m in self.menus.values() if not m.deleted]

    def menu_of(self, user_id: str) -> FakeRichMenu | None:
        menu_id = self.links.get(user_id) or self.default
        return self.menus.get(menu_id) if menu_id else None


class RichMenuRoutes:
    """Mixed into FakeLineAPI; uses its _prelude/_answer/_record helpers."""

    richmenus: RichMenuState

    def _richmenu_routes(self, r: web.UrlDispatcher) -> None:
        self.richmenus = RichMenuState()
        r.add_post("/v2/bot/richmenu", self._rm_create)
        r.add_get("/v2/bot/richmenu/list", self._rm_list)
        r.add_post("/v2/bot/richmenu/alias", self._rm_alias_create)
        r.add_get("/v2/bot/richmenu/alias/{alias}", self._rm_alias_get)
        r.add_post("/v2/bot/richmenu/alias/{alias}", self._rm_alias_update)
        r.add_post("/v2/bot/richmenu/{menu}/content", self._rm_upload)
        r.add_get("/v2/bot/richmenu/{menu}", self._rm_get)
        r.add_delete("/v2/bot/richmenu/{menu}", self._rm_delete)
        r.add_post("/v2/bot/user/all/richmenu/{menu}", self._rm_set_default)
        r.add_get("/v2/bot/user/all/richmenu", self._rm_get_default)
        r.add_post("/v2/bot/user/{user}/richmenu/{menu}", self._rm_link)

    def _rm_lookup(self, menu_id: str) -> FakeRichMenu | None:
        menu = self.richmenus.menus.get(menu_id)
        return None if menu is None or menu.deleted else menu

    def _rm_ready(self, menu_id: str | None) -> FakeRichMenu | None:
        """A live menu with its image: only those can be aliased, made default or linked."""
        menu = self._rm_lookup(menu_id or "")
        return menu if menu is not None and menu.image is not None else None

    async def _rm_not_ready(self, record: Any) -> web.Response:
        return await self._answer(record, 400, {"message": "richmenu not found or image not uploaded"})

    async def _rm_create(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu")
        if early is not None:
            return early
        body = record.json or {}
        size = body.get("size") or {}
        if (size.get("width"), size.get("height")) not in SIZES:
            return await self._answer(record, 400, {"message": f"invalid size {size}"})
        menu = FakeRichMenu(f"richmenu-{uuid.uuid4().hex}", body)
        self.richmenus.menus[menu.rich_menu_id] = menu
        return await self._answer(record, 200, {"richMenuId": menu.rich_menu_id})

    async def _rm_list(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu")
        if early is not None:
            return early
        menus = [{"richMenuId": m.rich_menu_id, **m.body} for m in self.richmenus.live()]
        return await self._answer(record, 200, {"richmenus": menus})

    async def _rm_get(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu")
        if early is not None:
            return early
        menu = self._rm_lookup(request.match_info["menu"])
        if menu is None:
            return await self._answer(record, 404, {"message": "Not found"})
        return await self._answer(record, 200, {"richMenuId": menu.rich_menu_id, **menu.body})

    async def _rm_delete(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu")
        if early is not None:
            return early
        menu = self._rm_lookup(request.match_info["menu"])
        if menu is None:
            return await self._answer(record, 404, {"message": "Not found"})
        menu.deleted = True
        if self.richmenus.default == menu.rich_menu_id:
            self.richmenus.default = None
        self.richmenus.links = {u: m for u, m in self.richmenus.links.items() if m != menu.rich_menu_id}
        return await self._answer(record, 200, {})

    async def _rm_upload(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu_content")
        if early is not None:
            return early
        menu = self._rm_lookup(request.match_info["menu"])
        if menu is None:
            return await self._answer(record, 404, {"message": "Not found"})
        kind = request.headers.get("Content-Type", "")
        data = record.body or b""
        problem = None
        if kind not in ("image/png", "image/jpeg"):
            problem = f"content type {kind!r} (LINE takes image/png or image/jpeg)"
        elif len(data) > MAX_IMAGE_BYTES:
            problem = f"image of {len(data)} bytes (at most 1 MB)"
        elif menu.image is not None:
            problem = "an image was already uploaded to this rich menu"
        else:
            from PIL import Image

            try:
                with Image.open(io.BytesIO(data)) as img:
                    size = img.size
            except OSError:
                size = None
            want = (menu.body["size"]["width"], menu.body["size"]["height"])
            if size != want:
                problem = f"image size {size} differs from the menu's {want}"
        if problem:
            self.record_violation(record, problem)
            return await self._answer(record, 400, {"message": problem})
        menu.image, menu.image_type = data, kind
        return await self._answer(record, 200, {})

    async def _rm_alias_create(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu")
        if early is not None:
            return early
        body = record.json or {}
        alias, menu_id = body.get("richMenuAliasId"), body.get("richMenuId")
        if alias in self.richmenus.aliases:
            return await self._answer(record, 400, {"message": "conflict richmenu alias id"})
        if self._rm_ready(menu_id) is None:
            return await self._rm_not_ready(record)
        self.richmenus.aliases[alias] = menu_id
        return await self._answer(record, 200, {})

    async def _rm_alias_get(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu")
        if early is not None:
            return early
        alias = request.match_info["alias"]
        menu_id = self.richmenus.aliases.get(alias)
        if menu_id is None:
            return await self._answer(record, 404, {"message": "richmenu alias not found"})
        return await self._answer(record, 200, {"richMenuAliasId": alias, "richMenuId": menu_id})

    async def _rm_alias_update(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu")
        if early is not None:
            return early
        alias = request.match_info["alias"]
        menu = self._rm_ready((record.json or {}).get("richMenuId"))
        if alias not in self.richmenus.aliases:
            return await self._answer(record, 404, {"message": "richmenu alias not found"})
        if menu is None:
            return await self._rm_not_ready(record)
        self.richmenus.aliases[alias] = menu.rich_menu_id
        return await self._answer(record, 200, {})

    async def _rm_set_default(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu")
        if early is not None:
            return early
        menu = self._rm_ready(request.match_info["menu"])
        if menu is None:
            return await self._rm_not_ready(record)
        self.richmenus.default = menu.rich_menu_id
        return await self._answer(record, 200, {})

    async def _rm_get_default(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu")
        if early is not None:
            return early
        if self.richmenus.default is None:
            return await self._answer(record, 404, {"message": "no default richmenu"})
        return await self._answer(record, 200, {"richMenuId": self.richmenus.default})

    async def _rm_link(self, request: web.Request) -> web.Response:
        record, early, _ = await self._prelude(request, "richmenu_link")
        if early is not None:
            return early
        menu = self._rm_ready(request.match_info["menu"])
        if menu is None:
            return await self._rm_not_ready(record)
        self.richmenus.links[request.match_info["user"]] = menu.rich_menu_id
        return await self._answer(record, 200, {})
