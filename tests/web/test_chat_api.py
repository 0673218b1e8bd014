"""The web chat's HTTP API, health and metrics against a real uvicorn server."""
from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from delivery.messages import Reply
from tests.web.conftest import RunningApp, session_id


def client(app: RunningApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=app.url, trust_env=False, timeout=30)


async def test_page_and_its_static_files_are_served_locally(web_app: RunningApp):
    async with client(web_app) as http:
        page = await http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/static/chat.js" in page.text and "https://" not in page.text   # no CDN
        for name in ("chat.js", "chat.css"):
            static = await http.get(f"/static/{name}")
            assert static.status_code == 200 and "https://" not in static.text
        assert (await http.get("/static/../app.py")).status_code == 404


async def test_ui_labels_come_from_messages_in_the_requested_language(web_app: RunningApp):
    kb = web_app.services.kb
    async with client(web_app) as http:
        ui = (await http.get("/api/chat/ui", params={"lang": "vi-VN"})).json()
    assert ui["lang"] == "vi"
    assert ui["labels"]["web.placeholder"] == kb.messages["web.placeholder"]["vi"]
    assert [l["code"] for l in ui["languages"]][:5] == ["ja", "en", "vi", "zh", "ko"]


async def test_a_conversation_keeps_its_session_in_a_cookie(web_app: RunningApp):
    kb = web_app.services.kb
    async with client(web_app) as http:
        start = await http.post("/api/chat", json={"event": "start", "lang": "vi"})
        assert start.status_code == 200 and "kurashi_sid" in start.cookies
        assert start.json()["replies"][0]["text"] == kb.messages["greeting.follow"]["vi"]

        answer = (await http.post("/api/chat", json={"text": "vứt ghế sofa thế nào"})).json()["replies"]
        assert answer[0]["text"].startswith("Câu trả lời về rác cỡ lớn.")
        datas = [c["data"] for c in answer[0]["quick_replies"]]
        assert "fb:+:garbage.bulky" in datas

        pressed = (await http.post("/api/chat", json={"data": "fb:+:garbage.bulky"})).json()["replies"]
        assert pressed[0]["text"] == kb.messages["fb.thanks"]["vi"]   # same session: language remembered


async def test_bad_requests_get_a_clear_400(web_app: RunningApp):
    async with client(web_app) as http:
        bad = await http.post("/api/chat", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400
        wrong = await http.post("/api/chat", json=["a", "list"])
        assert wrong.status_code == 400
        huge = await http.post("/api/chat", json={"text": "x" * 10_000, "lang": "en"})
        assert huge.status_code == 200 and huge.json()["replies"]


async def test_pushes_wait_in_the_web_mailbox_until_polled(web_app: RunningApp):
    async with client(web_app) as http:
        await http.post("/api/chat", json={"event": "start", "lang": "en"})
        sid = session_id(http.cookies["kurashi_sid"])
        await web_app.services.channels["web"].push([sid], [Reply("a consultant answered")], retry_key="k1")
        updates = (await http.get("/api/chat/updates")).json()["replies"]
        assert [u["text"] for u in updates] == ["a consultant answered"]
        assert (await http.get("/api/chat/updates")).json()["replies"] == []


async def test_healthz_checks_the_database(web_app: RunningApp, tmp_path):
    async with client(web_app) as http:
        ok = await http.get("/healthz")
        assert ok.status_code == 200 and ok.json()["database"] == "ok"
        services = web_app.services
        healthy_engine = services.engine_db
        services.engine_db = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/missing-dir/x.db")
        try:
            down = await http.get("/healthz")
        finally:
            await services.engine_db.dispose()
            services.engine_db = healthy_engine
        assert down.status_code == 503 and down.json()["database"] == "down"


async def test_metrics_count_messages_by_channel_language_and_decision(web_app: RunningApp):
    async with client(web_app) as http:
        await http.post("/api/chat", json={"text": "bulky garbage pickup", "lang": "en"})
        metrics = (await http.get("/metrics")).text
    assert 'kurashi_messages_total{channel="web",language="en"}' in metrics
    assert 'kurashi_decisions_total{decision="answer"}' in metrics
    assert "kurashi_handle_seconds_bucket" in metrics
    assert "kurashi_send_failures_total" in metrics
