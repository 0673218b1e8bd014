"""Console sessions end server-side: after logout a copied session cookie no longer reads or
writes (it used to stay valid for 12 hours); a password change, disabling the account or
`staff logout` end every session. Failed logins are limited per account from any address,
so rotated (or forged) client addresses do not buy more guesses."""
from __future__ import annotations

import pytest

from bot.consult.staff import end_sessions, set_active, set_password
from bot.web.console import auth
from bot.web.console.auth import MAX_FAILURES_PER_ACCOUNT_ANYWHERE, SESSION_COOKIE
from tests.console.conftest import PASSWORD, Console, csrf_of


async def _signed_in(console: Console, email: str) -> tuple[str, str]:
    """(session cookie, CSRF token) of a fresh login."""
    async with console.client() as client:
        assert (await console.login(client, email)).status_code == 303
        inbox = await client.get("/console/")
        return client.cookies[SESSION_COOKIE], csrf_of(inbox.text)


async def _works(console: Console, cookie: str) -> bool:
    async with console.client() as thief:
        thief.cookies.set(SESSION_COOKIE, cookie, path="/console")
        return (await thief.get("/console/")).status_code == 200


async def test_logout_ends_the_session_server_side(console: Console) -> None:
    await console.add_staff("kato@otit.example", "otit")
    cookie, csrf = await _signed_in(console, "kato@otit.example")
    other_device, _ = await _signed_in(console, "kato@otit.example")
    assert await _works(console, cookie)
    async with console.client() as client:
        client.cookies.set(SESSION_COOKIE, cookie, path="/console")
        out = await client.post("/console/logout", data={"csrf_token": csrf})
    assert out.status_code == 303
    assert not await _works(console, cookie)              # a copy of the cookie is dead…
    assert not await _works(console, other_device)        # …and so is every session of the account
    async with console.client() as client:                # writes too: the POST goes to the login page
        client.cookies.set(SESSION_COOKIE, cookie, path="/console")
        write = await client.post("/console/logout", data={"csrf_token": csrf})
    assert write.status_code == 303 and "/console/login" in write.headers["location"]
    fresh, _ = await _signed_in(console, "kato@otit.example")   # logging in again works
    assert await _works(console, fresh)


@pytest.mark.parametrize("action", ["password", "disable", "logout-everywhere"])
async def test_password_change_disabling_and_staff_logout_end_sessions(console: Console, action: str) -> None:
    await console.add_staff("mori@otit.example", "otit")
    cookie, _ = await _signed_in(console, "mori@otit.example")
    async with console.sessionmaker() as s, s.begin():
        if action == "password":
            await set_password(s, "mori@otit.example", "another long password 2")
        elif action == "disable":
            await set_active(s, "mori@otit.example", False)
        else:
            await end_sessions(s, "mori@otit.example")
    assert not await _works(console, cookie)


async def test_failed_logins_are_limited_per_account_from_any_address(console: Console) -> None:
    await console.add_staff("abe@otit.example", "otit")
    async with console.sessionmaker() as s, s.begin():
        for i in range(MAX_FAILURES_PER_ACCOUNT_ANYWHERE):
            assert await auth.login(s, "abe@otit.example", f"guess {i}", f"203.0.113.{i}") is None
    async with console.sessionmaker() as s, s.begin():
        with pytest.raises(auth.LoginRateLimited):          # a fresh address, even the right password
            await auth.login(s, "abe@otit.example", PASSWORD, "198.51.100.77")
    await console.add_staff("ueda@otit.example", "otit")
    async with console.sessionmaker() as s, s.begin():      # other accounts are not affected
        assert await auth.login(s, "ueda@otit.example", PASSWORD, "198.51.100.77") is not None
