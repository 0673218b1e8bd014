"""LINE rich menus: generated per language, synced idempotently to the LINE fake (requests
validated against LINE's OpenAPI file), linked to each user's language, and every area's
postback understood by the conversation core."""
from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import pytest
from PIL import Image

from bot.channels.line import LineChannel
from bot.channels.line_richmenu import (
    AREAS,
    HEIGHT,
    WIDTH,
    FontMissing,
    build_menus,
    sync_rich_menus,
)
from knowledge.schema import LANGUAGES
from knowledge.validate import check_knowledge
from tests.channels.conftest import kurashi_settings
from tests.fakes.webhooks import line_body, line_postback_event, line_text_event

USER = "U" + "7" * 32
#: The checkout under test, first on the CLI subprocess's path.
REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def menus():
    kb = check_knowledge().kb
    try:
        return build_menus(kb.messages, LANGUAGES)
    except FontMissing as exc:
        pytest.skip(f"rich menu fonts are not installed ({exc})")


def test_one_menu_per_language_at_lines_size_with_six_areas(menus) -> None:
    assert [m.lang for m in menus] == list(LANGUAGES)
    for menu in menus:
        with Image.open(io.BytesIO(menu.image)) as image:
            assert image.size == (WIDTH, HEIGHT) == (2500, 1686)
            assert image.format == "PNG"
        assert len(menu.image) < 1024 * 1024
        areas = menu.request["areas"]
        assert [a["action"]["data"] for a in areas] == [data for _, data, _ in AREAS]
        assert all(len(a["action"]["label"]) <= 20 for a in areas)
        assert len(menu.request["chatBarText"]) <= 14
        # the tiles cover the image without overlapping
        assert sum(a["bounds"]["width"] * a["bounds"]["height"] for a in areas) == WIDTH * HEIGHT
    # each language's labels are its own (not English everywhere)
    labels = {m.lang: m.request["areas"][0]["action"]["label"] for m in menus}
    assert len(set(labels.values())) == len(LANGUAGES)
    assert len({m.image for m in menus}) == len(LANGUAGES)


async def test_sync_creates_every_menu_then_changes_nothing(line_api, line_api_spec, menus) -> None:
    settings = kurashi_settings("sqlite+aiosqlite://", line_api, _no_telegram())
    channel = LineChannel(settings)
    await channel.start()
    try:
        first = await sync_rich_menus(channel.rich_menu_api(), menus, default_lang="ja")
        assert set(first.status.values()) == {"created"} and len(first.menus) == len(LANGUAGES)
        state = line_api.richmenus
        assert len(state.live()) == len(LANGUAGES)
        assert all(m.image and m.image_type == "image/png" for m in state.live())
        assert {a: state.aliases[a] for a in state.aliases} == {f"kurashi-{k}": v for k, v in first.menus.items()}
        assert state.default == first.menus["ja"]
        creates = len(line_api.requests_to("/v2/bot/richmenu"))

        again = await sync_rich_menus(channel.rich_menu_api(), menus, default_lang="ja")
        assert set(again.status.values()) == {"unchanged"} and again.menus == first.menus
        assert len(line_api.requests_to("/v2/bot/richmenu")) == creates     # nothing new created
        assert again.deleted == []

        # one language's label changes: only that menu is replaced, the old one deleted
        kb = check_knowledge().kb
        messages = {k: dict(v) for k, v in kb.messages.items()}
        messages["richmenu.garbage"]["vi"] = "Rác thải"
        changed = build_menus(messages, LANGUAGES)
        third = await sync_rich_menus(channel.rich_menu_api(), changed, default_lang="vi")
        assert third.status["vi"] == "created"
        assert [lang for lang, s in third.status.items() if s == "created"] == ["vi"]
        assert third.deleted == [first.menus["vi"]]
        assert state.aliases["kurashi-vi"] == third.menus["vi"] != first.menus["vi"]
        assert state.default == third.menus["vi"]
        assert len(state.live()) == len(LANGUAGES)
    finally:
        await channel.close()
    assert line_api.violations == []


async def test_cli_sync_against_the_fake(line_api, line_api_spec, menus, tmp_path) -> None:
    env = {**os.environ, "LINE_CHANNEL_SECRET": line_api.channel_secret,
           "LINE_CHANNEL_ACCESS_TOKEN": line_api.access_token, "LINE_API_BASE_URL": line_api.base_url,
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", "NO_PROXY": "127.0.0.1,localhost",
           "PYTHONPATH": REPO}
    command = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())",
               "line", "richmenu", "sync", "--default", "en"]
    outputs = []
    for _ in range(2):
        proc = await asyncio.create_subprocess_exec(*command, env=env, cwd=tmp_path,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode == 0, out.decode()
        outputs.append(out.decode())
    assert outputs[0].count("created") == len(LANGUAGES)
    assert outputs[1].count("unchanged") == len(LANGUAGES)
    assert "default menu: en" in outputs[1]
    assert line_api.richmenus.default == line_api.richmenus.aliases["kurashi-en"]
    assert line_api.violations == []


async def test_cli_sync_without_line_settings_says_why(tmp_path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LINE_")}, "PYTHONPATH": REPO}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())", "line", "richmenu", "sync",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 1
    assert "LINE_CHANNEL_ACCESS_TOKEN" in out.decode()


async def test_menu_follows_the_users_language(kurashi, line_api_spec, menus) -> None:
    channel = kurashi.services.channels["line"]
    report = await sync_rich_menus(channel.rich_menu_api(), menus, default_lang="ja")
    state = kurashi.line_api.richmenus

    async def say(event) -> None:
        await kurashi.post_line(line_body(event))
        await kurashi.settle()
        await channel.menus.drain()

    token = kurashi.line_api.issue_reply_token(USER)
    await say(line_postback_event(USER, "l:vi", reply_token=token))
    assert state.links[USER] == report.menus["vi"]
    token = kurashi.line_api.issue_reply_token(USER)
    await say(line_postback_event(USER, "l:my", reply_token=token))
    assert state.links[USER] == report.menus["my"]
    links = len(kurashi.line_api.requests_to(f"/v2/bot/user/{USER}/richmenu/{report.menus['my']}"))
    token = kurashi.line_api.issue_reply_token(USER)
    await say(line_text_event(USER, "hello", reply_token=token))
    # same language: no new link call
    assert len(kurashi.line_api.requests_to(f"/v2/bot/user/{USER}/richmenu/{report.menus['my']}")) == links
    assert kurashi.line_api.violations == []


@pytest.mark.parametrize("area, data, _colour", AREAS)
async def test_every_area_postback_is_understood(kurashi, area, data, _colour) -> None:
    token = kurashi.line_api.issue_reply_token(USER)
    await kurashi.post_line(line_body(line_postback_event(USER, "l:en", reply_token=token)))
    await kurashi.settle()
    token = kurashi.line_api.issue_reply_token(USER)
    await kurashi.post_line(line_body(line_postback_event(USER, data, reply_token=token)))
    await kurashi.settle()
    messages = kurashi.line_api.replies_to_token(token)
    payloads = [item["action"].get("data", "") for m in messages
                for item in (m.get("quickReply") or {}).get("items", [])]
    menu_payloads = {f"g:{c}" for c in ("emergency", "garbage", "procedure", "work")}
    expected = {
        "emergency": {"i:emergency.police", "i:disaster.earthquake"},
        "garbage": {"i:garbage.sorting"},
        "money": {"i:procedure.move_in", "i:insurance.health"},
        "work": {"i:work.labor_trouble", "i:consult.general"},
    }
    if area in expected:
        assert expected[area] <= set(payloads), payloads
    elif area == "events":
        assert any("events" in p for p in payloads) or messages, messages
    else:  # settings
        assert "s:lang" in payloads, payloads
    assert not (set(payloads) >= menu_payloads and area != "settings"), "fell back to the main menu"


def _no_telegram():
    class _T:
        token = "0:none"
        base_url = "http://127.0.0.1:9"
    return _T()
