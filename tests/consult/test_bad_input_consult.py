"""A NUL in a consultation message (the resident's, or a staff reply from a console form)
used to fail on PostgreSQL — the resident got nothing and the message was lost. Stripped."""
from __future__ import annotations

from sqlalchemy import select

from bot.consult import cases
from bot.db.consult_models import CaseMessage
from tests.consult.test_e2e_line import _staff, open_case_as_trainee, say


async def test_nul_in_case_messages_is_stripped_not_fatal(consult_app) -> None:
    app = consult_app
    case = await open_case_as_trainee(app)
    ack = await say(app, "Tôi cần\x00 giúp đỡ")
    assert case.number in "\n".join(m.get("text") or "" for m in ack)
    staff = await _staff(app)
    async with app.services.sessionmaker() as s, s.begin():
        await cases.staff_reply(s, app.services.kb, staff, case.id, "Xin\x00 chào")
    async with app.services.sessionmaker() as s:
        texts = [m.text for m in (await s.execute(
            select(CaseMessage).where(CaseMessage.case_id == case.id).order_by(CaseMessage.id))).scalars()]
    assert texts[-2:] == ["Tôi cần giúp đỡ", "Xin chào"]
    assert [e.status for e in await app.stored_events()].count("failed") == 0
