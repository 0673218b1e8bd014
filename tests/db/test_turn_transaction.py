"""``turn_transaction``: a conversation turn's transaction on a Core connection, with an ORM
session that joins it only when asked for — statements at the driver and the session's
objects commit together, or roll back together (SQLite and PostgreSQL)."""
import pytest
from sqlalchemy import select

from bot.db import rawsql
from bot.db.models import User
from bot.db.session import turn_transaction

_SET_LANGUAGE = "UPDATE users SET language = ? WHERE platform_user_id = ?"


async def _resident(sessionmaker, language: str | None = None) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(User(channel="line", platform_user_id="U-raw", state={}, language=language))


async def _languages(sessionmaker) -> dict[str, str | None]:
    async with sessionmaker() as session:
        rows = await session.execute(select(User.platform_user_id, User.language))
        return dict(rows.all())


async def test_the_driver_and_the_joined_session_commit_together(sessionmaker) -> None:
    await _resident(sessionmaker)
    async with turn_transaction(sessionmaker) as tx:
        driver = await rawsql.driver_of(tx.connection)
        await driver.execute(_SET_LANGUAGE, ("vi", "U-raw"))
        tx.session.add(User(channel="line", platform_user_id="U-orm", state={}, language="zh"))
        # The session sees the driver's write (same transaction), and its own commit() neither
        # commits nor ends the turn's transaction.
        assert await tx.session.scalar(select(User.language).where(User.platform_user_id == "U-raw")) == "vi"
        await tx.session.commit()
        await driver.execute(_SET_LANGUAGE, ("ko", "U-orm"))
    assert await _languages(sessionmaker) == {"U-raw": "vi", "U-orm": "ko"}


async def test_an_error_rolls_back_the_driver_and_the_session(sessionmaker) -> None:
    await _resident(sessionmaker, "en")
    with pytest.raises(RuntimeError):
        async with turn_transaction(sessionmaker) as tx:
            driver = await rawsql.driver_of(tx.connection)
            await driver.execute(_SET_LANGUAGE, ("vi", "U-raw"))
            tx.session.add(User(channel="line", platform_user_id="U-orm", state={}))
            await tx.session.flush()
            raise RuntimeError("the turn failed")
    assert await _languages(sessionmaker) == {"U-raw": "en"}


async def test_a_turn_without_the_orm_opens_no_session(sessionmaker) -> None:
    await _resident(sessionmaker)
    async with turn_transaction(sessionmaker) as tx:
        driver = await rawsql.driver_of(tx.connection)
        await driver.execute(_SET_LANGUAGE, ("ne", "U-raw"))
        assert tx._session is None
    assert await _languages(sessionmaker) == {"U-raw": "ne"}
