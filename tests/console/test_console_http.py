"""The staff console over real HTTP (uvicorn on loopback, httpx as the browser): login,
sessions, CSRF, the login rate limit, organisation isolation, inbox filters, case actions."""
from __future__ import annotations

import struct
import zlib
from datetime import timedelta

import pytest
from fastapi import Request
from sqlalchemy import select, update

from bot.consult.cases import MediaContent
from bot.db.consult_models import AuditEntry, Case, CaseMedia, CaseMessage, LoginAttempt
from bot.db.models import OutboxMessage, utcnow
from bot.web.console.auth import (
    MAX_FAILURES_PER_ACCOUNT,
    SESSION_COOKIE,
    WINDOW,
    CurrentOperator,
)
from tests.console.conftest import Console, csrf_of


def make_png(width: int, height: int, rgb: tuple[int, int, int] = (11, 92, 173)) -> bytes:
    """A plain-colour PNG (a stand-in for the photo of a pay slip)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")


async def outbox_rows(console: Console) -> list[OutboxMessage]:
    async with console.sessionmaker() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def resident_pushes(console: Console) -> list[OutboxMessage]:
    return [r for r in await outbox_rows(console) if r.channel == "line"]


async def test_console_pages_require_a_login(console: Console):
    async with console.client() as client:
        inbox = await client.get("/console/")
        case = await client.get("/console/cases/1?x=1")

    assert inbox.status_code == 303 and inbox.headers["location"] == "/console/login?next=%2Fconsole%2F"
    assert case.status_code == 303 and case.headers["location"] == "/console/login?next=%2Fconsole%2Fcases%2F1%3Fx%3D1"


async def test_wrong_password_is_refused_and_the_right_one_opens_a_secure_session(console: Console):
    await console.add_staff("Tanaka@otit.example", "otit", name="Tanaka")
    async with console.client() as client:
        wrong = await console.login(client, "tanaka@otit.example", "not the password")
        unknown = await console.login(client, "nobody@otit.example")
        assert SESSION_COOKIE not in client.cookies
        right = await console.login(client, "TANAKA@otit.example ")
        inbox = await client.get("/console/")

    assert wrong.status_code == 401 and "Wrong e-mail or password" in wrong.text
    assert unknown.status_code == 401
    assert right.status_code == 303 and right.headers["location"] == "/console/"
    cookie = right.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie          # http:// public_base_url here (see the https test)
    assert inbox.status_code == 200 and "Tanaka" in inbox.text
    async with console.sessionmaker() as s:
        attempts = [(a.email, a.ok) for a in (await s.execute(select(LoginAttempt).order_by(LoginAttempt.id))).scalars()]
    assert attempts == [("tanaka@otit.example", False), ("nobody@otit.example", False), ("tanaka@otit.example", True)]


async def test_logins_are_rate_limited_per_account_and_address_until_the_window_passes(console: Console):
    await console.add_staff("sato@otit.example", "otit")
    await console.add_staff("ito@otit.example", "otit")
    async with console.client() as client:
        for _ in range(MAX_FAILURES_PER_ACCOUNT):
            assert (await console.login(client, "sato@otit.example", "guess")).status_code == 401
        blocked = await console.login(client, "sato@otit.example")            # even the right password
        other_account = await console.login(client, "ito@otit.example")

    assert blocked.status_code == 429 and "Too many failed attempts" in blocked.text
    assert other_account.status_code == 303

    # The failures age out of the window: the account works again.
    async with console.sessionmaker() as s, s.begin():
        await s.execute(update(LoginAttempt).values(at=utcnow() - WINDOW - timedelta(minutes=1)))
    async with console.client() as client:
        assert (await console.login(client, "sato@otit.example")).status_code == 303


async def test_every_post_needs_the_session_csrf_token(console: Console):
    await console.add_staff("aoki@otit.example", "otit")
    await console.add_staff("mori@otit.example", "otit")
    case = await console.add_case(user_id="U" + "1" * 32)
    async with console.client() as other:
        await console.login(other, "mori@otit.example")
        foreign_token = csrf_of((await other.get(f"/console/cases/{case.id}")).text)
    async with console.client() as client:
        no_login_token = await client.post("/console/login", data={"email": "aoki@otit.example",
                                                                  "password": "x"})
        await console.login(client, "aoki@otit.example")
        page = await client.get(f"/console/cases/{case.id}")
        token = csrf_of(page.text)
        missing = await client.post(f"/console/cases/{case.id}/reply", data={"text": "Xin chào"})
        wrong = await client.post(f"/console/cases/{case.id}/reply", data={"text": "Xin chào", "csrf_token": "x"})
        stolen = await client.post(f"/console/cases/{case.id}/close",
                                   data={"outcome": "resolved", "csrf_token": foreign_token})
        logout = await client.post("/console/logout", data={})
        ok = await client.post(f"/console/cases/{case.id}/reply", data={"text": "Xin chào", "csrf_token": token})
    async with console.client() as anonymous:
        # Without a session a form post is sent to the login page (and does nothing).
        expired = await anonymous.post(f"/console/cases/{case.id}/close",
                                       data={"outcome": "resolved", "csrf_token": token})

    assert [r.status_code for r in (no_login_token, missing, wrong, stolen, logout)] == [403] * 5
    assert ok.status_code == 303 and ok.headers["location"] == f"/console/cases/{case.id}?done=reply"
    assert expired.status_code == 303 and expired.headers["location"].startswith("/console/login?next=")
    async with console.sessionmaker() as s:
        replies = (await s.execute(select(CaseMessage.text).where(CaseMessage.direction == "out"))).scalars().all()
        status = await s.scalar(select(Case.status).where(Case.id == case.id))
    assert replies == ["Xin chào"] and status == "answered"
    assert len(await resident_pushes(console)) == 1


async def test_staff_see_only_their_organisations_cases(console: Console):
    await console.add_staff("ueda@yfrcc.example", "yfrcc")
    mine = await console.add_case(user_id="U" + "2" * 32, org="yfrcc", texts=("Help with my visa",),
                                  topic="residence", language="en", intent=None)
    theirs = await console.add_case(user_id="U" + "3" * 32, org="otit",
                                    media=MediaContent(PNG, "image/png"))
    async with console.sessionmaker() as s:
        media_id = await s.scalar(select(CaseMedia.id).where(CaseMedia.case_id == theirs.id))
    async with console.client() as client:
        await console.login(client, "ueda@yfrcc.example")
        inbox = await client.get("/console/?status=all")
        token = csrf_of(inbox.text)
        pages = [await client.get(path) for path in (
            f"/console/cases/{theirs.id}", f"/console/cases/{theirs.id}/audit", f"/console/media/{media_id}",
            "/console/cases/99999")]
        actions = [await client.post(f"/console/cases/{theirs.id}/{action}", data={**data, "csrf_token": token})
                   for action, data in (("reply", {"text": "hi"}), ("note", {"text": "n"}), ("assign", {}),
                                        ("transfer", {"to_org": "yfrcc", "reason": "r"}),
                                        ("close", {"outcome": "resolved"}))]
        own = await client.get(f"/console/cases/{mine.id}")

    assert mine.number in inbox.text and theirs.number not in inbox.text
    assert [p.status_code for p in pages] == [404, 404, 404, 404]
    assert [a.status_code for a in actions] == [404] * 5
    assert own.status_code == 200 and "Help with my visa" in own.text
    assert await resident_pushes(console) == []
    async with console.sessionmaker() as s:
        case = await s.get(Case, theirs.id)
        actions_logged = (await s.execute(select(AuditEntry.action).where(AuditEntry.case_id == theirs.id))).scalars().all()
    assert (case.status, case.org, case.assigned_staff_id) == ("open", "otit", None)
    assert actions_logged == ["opened"]


async def test_inbox_filters_by_status_topic_language_and_waiting_time(console: Console):
    staff = await console.add_staff("kato@yfrcc.example", "yfrcc")
    old = await console.add_case(user_id="U" + "4" * 32, org="yfrcc", topic="housing", language="zh",
                                 texts=("房东不退押金",), intent=None)
    new = await console.add_case(user_id="U" + "5" * 32, org="yfrcc", topic="work", language="vi")
    closed = await console.add_case(user_id="U" + "6" * 32, org="yfrcc", topic="work", language="en",
                                    texts=("Thanks",), intent=None)
    async with console.sessionmaker() as s, s.begin():
        await s.execute(update(Case).where(Case.id == old.id).values(waiting_since=utcnow() - timedelta(hours=5),
                                                                     due_at=utcnow() - timedelta(hours=1)))
        await s.execute(update(Case).where(Case.id == closed.id).values(status="closed", waiting_since=None))
        await s.execute(update(Case).where(Case.id == new.id).values(assigned_staff_id=staff.id))

    async def numbers(client, query: str) -> list[str]:
        page = await client.get("/console/" + query)
        assert page.status_code == 200
        return [c.number for c in (old, new, closed) if f'data-case="{c.number}"' in page.text]

    async with console.client() as client:
        await console.login(client, "kato@yfrcc.example")
        assert await numbers(client, "") == [old.number, new.number]
        assert await numbers(client, "?status=closed") == [closed.number]
        assert await numbers(client, "?status=all&topic=work") == [new.number, closed.number]
        assert await numbers(client, "?language=zh") == [old.number]
        assert await numbers(client, "?wait=4h") == [old.number]
        assert await numbers(client, "?wait=overdue") == [old.number]
        assert await numbers(client, "?mine=1") == [new.number]
        # Longest-waiting first.
        page = (await client.get("/console/")).text
        assert page.index(old.number) < page.index(new.number)
        assert "房东不退押金" in page


async def test_case_actions_note_assign_transfer_close_are_stored_audited_and_told(console: Console):
    await console.add_staff("abe@otit.example", "otit", name="Abe")
    await console.add_staff("ono@yfrcc.example", "yfrcc", name="Ono")
    case = await console.add_case(user_id="U" + "7" * 32, media=MediaContent(PNG, "image/png"))
    async with console.client() as client:
        await console.login(client, "abe@otit.example")
        page = await client.get(f"/console/cases/{case.id}")
        token = csrf_of(page.text)
        note = await client.post(f"/console/cases/{case.id}/note", data={"text": "Call OTIT", "csrf_token": token})
        assign = await client.post(f"/console/cases/{case.id}/assign", data={"csrf_token": token})
        empty = await client.post(f"/console/cases/{case.id}/reply", data={"text": "  ", "csrf_token": token})
        bad_org = await client.post(f"/console/cases/{case.id}/transfer",
                                    data={"to_org": "nowhere", "reason": "x", "csrf_token": token})
        after = await client.get(f"/console/cases/{case.id}?done=assign")
        transfer = await client.post(f"/console/cases/{case.id}/transfer",
                                     data={"to_org": "yfrcc", "reason": "The centre helps with this.",
                                           "csrf_token": token})
        gone = await client.get(f"/console/cases/{case.id}")
        audit = await client.get("/console/audit")
    async with console.client() as client:
        await console.login(client, "ono@yfrcc.example")
        theirs = await client.get(f"/console/cases/{case.id}")
        image = await client.get(f"/console/media/{case_media_id(theirs.text)}")
        token = csrf_of(theirs.text)
        close = await client.post(f"/console/cases/{case.id}/close", data={"outcome": "resolved", "csrf_token": token})
        again = await client.post(f"/console/cases/{case.id}/close", data={"outcome": "resolved", "csrf_token": token})
        case_audit = await client.get(f"/console/cases/{case.id}/audit")

    assert [note.status_code, assign.status_code] == [303, 303]
    assert empty.status_code == 400 and bad_org.status_code == 400
    assert "Call OTIT" in after.text and "You are now assigned" in after.text
    assert 'id="case-assignee">Abe<' in after.text
    assert transfer.status_code == 303 and transfer.headers["location"] == f"/console/?transferred={case.id}"
    assert gone.status_code == 404
    assert "転送 Transferred" in audit.text
    assert theirs.status_code == 200 and "The centre helps with this." in theirs.text
    assert "Công ty không trả lương" in theirs.text and 'class="lang"' in theirs.text
    assert image.status_code == 200 and image.content == PNG and image.headers["content-type"] == "image/png"
    assert close.status_code == 303 and again.status_code == 409
    actions = [line for line in ("opened", "noted", "assigned", "transferred", "closed")
               if f'data-action="{line}"' in case_audit.text]
    assert actions == ["opened", "noted", "assigned", "transferred", "closed"]
    pushes = await resident_pushes(console)
    assert [p.kind for p in pushes] == ["consult_transfer", "consult_closed"]
    assert all(p.retry_key for p in pushes)


def case_media_id(html: str) -> int:
    import re

    match = re.search(r'src="/console/media/(\d+)"', html)
    assert match, "the case page shows no image"
    return int(match.group(1))


async def test_require_operator_admits_only_city_operators(console: Console):
    async def show_operator_page(request: Request, operator: CurrentOperator) -> dict[str, str]:
        return {"operator": operator.email}

    console.app.add_api_route("/console/_operator_probe", show_operator_page)
    await console.add_staff("op@city.example", "city_intl", role="operator")
    await console.add_staff("staff@city.example", "city_intl")
    await console.add_staff("op@otit.example", "otit", role="operator")
    results = {}
    for email in ("op@city.example", "staff@city.example", "op@otit.example"):
        async with console.client() as client:
            await console.login(client, email)
            results[email] = (await client.get("/console/_operator_probe")).status_code
    assert results == {"op@city.example": 200, "staff@city.example": 403, "op@otit.example": 403}


@pytest.mark.parametrize("public", ["https://kurashi.example.jp"])
async def test_session_cookie_is_secure_behind_https(database_url: str, public: str):
    from tests.console.conftest import console_settings, start_console

    async for console in start_console(console_settings(database_url, public_base_url=public)):
        await console.add_staff("nishi@otit.example", "otit")
        async with console.client() as client:
            page = await client.get("/console/login")
            token = csrf_of(page.text)
            # httpx keeps Secure cookies away from http://, as a browser would: send it by hand.
            login_cookie = page.headers["set-cookie"].split(";")[0]
            response = await client.post("/console/login", headers={"cookie": login_cookie},
                                         data={"email": "nishi@otit.example", "password": "correct horse battery staple",
                                               "csrf_token": token})
        assert "Secure" in page.headers["set-cookie"]
        assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]


async def test_case_page_shows_locations_stickers_and_images_that_could_not_be_fetched(console: Console):
    from bot.consult import cases as case_service

    await console.add_staff("iwata@otit.example", "otit")
    case = await console.add_case(user_id="U" + "8" * 32)
    async with console.sessionmaker() as s, s.begin():
        stored = await s.get(Case, case.id)
        kb = console.services.kb
        await case_service.resident_message(s, kb, stored, kind="location", extra={
            "latitude": 34.1785, "longitude": 131.4737, "address": "山口市亀山町2-1", "title": "会社"})
        await case_service.resident_message(s, kb, stored, kind="sticker", text="(sad)")
        await case_service.resident_message(s, kb, stored, kind="image",
                                            media=MediaContent(None, error="content expired (410)"))
        await case_service.resident_message(s, kb, stored, text="<script>alert(1)</script>", language="vi")
    async with console.client() as client:
        await console.login(client, "iwata@otit.example")
        page = (await client.get(f"/console/cases/{case.id}")).text

    assert "山口市亀山町2-1" in page and "34.1785" in page and "131.4737" in page
    assert "[スタンプ Sticker] (sad)" in page
    assert "Image not available: content expired (410)" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_statistics_show_the_rating_distribution_of_the_organisation_or_of_all_for_operators(
        console: Console):
    from bot.consult import cases as case_service
    from bot.db.models import User

    staff = await console.add_staff("goto@otit.example", "otit")
    await console.add_staff("op@city.example", "city_intl", role="operator")
    kb = console.services.kb
    for n, (org, score) in enumerate((("otit", 5), ("otit", 4), ("otit", None), ("yfrcc", 1))):
        case = await console.add_case(user_id=f"U{n:032d}", org=org)
        async with console.sessionmaker() as s, s.begin():
            await case_service.staff_reply(s, kb, case_service.SYSTEM, case.id, "OK")
            await case_service.close(s, kb, case_service.SYSTEM, case.id, "resolved")
            if score:
                user = await s.get(User, (await s.get(Case, case.id)).user_id)
                await case_service.rate(s, user, case.id, score)
    assert staff.org == "otit"

    async def ratings_of(email: str) -> tuple[dict[int, str], str, str]:
        async with console.client() as client:
            await console.login(client, email)
            page = (await client.get("/console/stats")).text
        import re

        counts = {int(k): v for k, v in re.findall(r'data-rating="(\d)"><td>[^<]*</td><td>(\d+)</td>', page)}
        average = re.search(r'id="rating-average">([^<]*)<', page).group(1)
        return counts, average, page

    otit, otit_average, otit_page = await ratings_of("goto@otit.example")
    city, city_average, city_page = await ratings_of("op@city.example")

    assert otit == {5: "1", 4: "1", 3: "0", 2: "0", 1: "0", 0: "1"} and otit_average == "4.5"
    assert city == {5: "1", 4: "1", 3: "0", 2: "0", 1: "1", 0: "1"} and city_average == "3.33"
    assert 'id="by-org"' not in otit_page and 'id="by-org"' in city_page
    assert 'href="/console/stats"' in otit_page
