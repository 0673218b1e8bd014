"""`kurashi line richmenu sync|preview`: the LINE rich menu of every language.

``sync`` builds one menu per language of the knowledge base (labels from messages.yaml
``richmenu.*``, image drawn by bot/channels/line_richmenu.py), creates on LINE only what is
new (running it twice changes nothing), points the alias ``kurashi-<lang>`` at each, sets the
default menu and deletes kurashi's older menus. Needs LINE_CHANNEL_SECRET and
LINE_CHANNEL_ACCESS_TOKEN (LINE_API_BASE_URL / LINE_API_DATA_BASE_URL for another host).
``preview`` writes the images as PNG files, without calling LINE.
"""
from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("line", help="LINE rich menus")
    commands = parser.add_subparsers(dest="line_command", metavar="COMMAND", required=True)
    richmenu = commands.add_parser("richmenu", help="the tappable menu under the chat, per language")
    actions = richmenu.add_subparsers(dest="richmenu_action", metavar="ACTION", required=True)
    sync = actions.add_parser("sync", help="create/update the menus on LINE (idempotent), aliases and default")
    sync.add_argument("--default", dest="default_lang", default=None,
                      help="language of the default menu (default: LINE_RICH_MENU_DEFAULT_LANGUAGE, ja)")
    sync.add_argument("--json", action="store_true", help="print the result as JSON")
    sync.set_defaults(func=run_sync)
    preview = actions.add_parser("preview", help="write each language's menu image as a PNG file")
    preview.add_argument("--out", type=Path, default=Path("var/richmenu"), help="folder (default var/richmenu)")
    preview.set_defaults(func=run_preview)


def _menus(settings: object, *, strict: bool = True) -> list:
    """Every language's menu; ``strict``: refuse a knowledge base with errors (sync does)."""
    from bot.channels.line_richmenu import build_menus
    from knowledge.loader import load_knowledge
    from knowledge.schema import LANGUAGES
    from knowledge.validate import check_knowledge

    root = getattr(settings, "knowledge_dir", None)
    kb = load_knowledge(root) if strict else check_knowledge(root).kb
    return build_menus(kb.messages, LANGUAGES)


def run_preview(args: argparse.Namespace) -> int:
    """Write <out>/richmenu-<lang>.png for every language; exit 1 when a font is missing."""
    from bot.channels.line_richmenu import FontMissing
    from bot.settings import Settings

    try:
        menus = _menus(Settings(), strict=False)
    except FontMissing as exc:
        print(exc)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for menu in menus:
        path = args.out / f"richmenu-{menu.lang}.png"
        path.write_bytes(menu.image)
        print(f"{path}  {menu.name}  {len(menu.image) // 1024} KB")
    return 0


async def sync(settings: object, default_lang: str) -> dict:
    """Build every language's menu and sync it to LINE; returns SyncReport.as_dict()."""
    from bot.channels.line import LineChannel
    from bot.channels.line_richmenu import sync_rich_menus

    menus = _menus(settings)
    channel = LineChannel(settings)
    try:
        await channel.start()
        report = await sync_rich_menus(channel.rich_menu_api(), menus, default_lang=default_lang)
    finally:
        await channel.close()
    return report.as_dict()


def run_sync(args: argparse.Namespace) -> int:
    """Exit 0 with what changed; 1 with one line saying why when LINE or a font is missing."""
    from linebot.v3.messaging.exceptions import ApiException

    from bot.channels.line_richmenu import FontMissing
    from bot.settings import Settings
    from knowledge.loader import KnowledgeError

    settings = Settings()
    default_lang = args.default_lang or settings.line_rich_menu_default_language
    try:
        result = asyncio.run(sync(settings, default_lang))
    except (ValueError, FontMissing, RuntimeError, KnowledgeError) as exc:
        print(f"richmenu sync: {exc}")
        return 1
    except ApiException as exc:
        print(f"richmenu sync: LINE answered {exc.status}: {(exc.body or '')[:300]}")
        return 1
    except OSError as exc:
        print(f"richmenu sync: cannot reach LINE: {exc}")
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for lang, menu_id in result["menus"].items():
        print(f"{lang}: {result['status'][lang]:9} {menu_id}  (alias kurashi-{lang})")
    print(f"default menu: {result['default']}")
    if result["deleted"]:
        print(f"deleted old menus: {', '.join(result['deleted'])}")
    return 0
