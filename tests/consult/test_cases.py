"""bot/consult/cases.py and the SLA job on SQLite and PostgreSQL: the case life cycle,
pushes and staff notifications written to the outbox in the same transaction,
organisation isolation, audit log, forget-me, ratings."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.consult import cases
from bot.consult.sla import remind_overdue_cases
from bot.consult.staff import add_staff, set_notify
from bot.db import repo
from bot.db.consult_models import AuditEntry, Case, CaseMedia, CaseMessage
from bot.db.models import OutboxMessage, User
from bot.privacy import forget_user
from knowledge.loader import load_knowledge

NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)       # Wednesday 14:00 in Yamaguchi
#: 24 opening hours of OTIT's Vietnamese line (Mon–Fri 11–19) later: Monday 14:00 JST.
OTIT_DUE = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


async def _setup(sessionmaker, kb):
    """A Vietnamese trainee on LINE with a sent case at OTIT; staff of OTIT and of YFRCC."""
    async with sessionmaker() as s, s.begin():
        user, _ = await repo.get_or_create_user(s, "line", "U" + "1" * 32, now=NOW)
        user.language, user.segment = "vi", "trainee"
        otit = await add_staff(s, kb, org="otit", email="mai@otit.example", password="correct horse 1")
        other = await add_staff(s, kb, org="yfrcc", email="ken@yfrcc.example", password="correct horse 2")
        await set_notify(s, kb, "otit", telegram_chat_id="-100777", emails=["desk@otit.example"])
        case = await cases.create_case(s, user, topic="work", org="otit", language="vi", segment="trainee",
                                       display_name="Lan", now=NOW)
        await cases.add_message(s, case, text="Công ty không trả lương 2 tháng", language="vi", now=NOW)
        await cases.add_message(s, case, kind="image", extra={"platform_id": "m1"},
                                media=cases.MediaContent(PNG, "image/png"), now=NOW)
        await cases.submit_case(s, kb, case, now=NOW)
        return user.id, case.id, otit.id, other.id


async def _outbox(sessionmaker, **where) -> list[OutboxMessage]:
    async with sessionmaker() as s:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for key, value in where.items():
            query = query.where(getattr(OutboxMessage, key) == value)
        return list((await s.execute(query)).scalars())


async def _staff(sessionmaker, staff_id):
    from bot.db.consult_models import Staff

    async with sessionmaker() as s:
        return await s.get(Staff, staff_id)


async def test_sent_case_notifies_staff_and_starts_the_sla(sessionmaker, kb) -> None:
    _, case_id, _, _ = await _setup(sessionmaker, kb)
    async with sessionmaker() as s:
        case = await s.get(Case, case_id)
        assert case.status == "open" and case.opened_at == NOW and case.waiting_since == NOW
        assert case.due_at == OTIT_DUE                    # OTIT open now, 24 opening hours
        actions = [a.action for a in (await s.execute(select(AuditEntry))).scalars()]
    assert actions == ["opened"]
    group = await _outbox(sessionmaker, kind="staff_telegram")
    assert [r.recipients for r in group] == [["-100777"]]
    post = group[0].payload[0]["text"]
    assert case.number in post and "không trả lương" in post and "[image]" in post
    mails = await _outbox(sessionmaker, kind="staff_email")
    assert sorted(r for row in mails for r in row.recipients) == ["desk@otit.example", "mai@otit.example"]
    assert case.number in mails[0].payload[0]["card"]["title"]


async def test_staff_reply_is_pushed_to_the_resident_in_their_language(sessionmaker, kb) -> None:
    _, case_id, otit_id, _ = await _setup(sessionmaker, kb)
    staff = await _staff(sessionmaker, otit_id)
    later = NOW + timedelta(hours=1)
    async with sessionmaker() as s, s.begin():
        await cases.staff_reply(s, kb, staff, case_id, "Xin hãy gửi ảnh bảng lương.", now=later)
    rows = await _outbox(sessionmaker, kind="consult_reply")
    assert len(rows) == 1 and rows[0].channel == "line" and rows[0].recipients == ["U" + "1" * 32]
    assert rows[0].retry_key and rows[0].ref == f"case:{case_id}"
    text = rows[0].payload[0]["text"]
    assert "Xin hãy gửi ảnh bảng lương." in text and "OTIT" in text and "K-" in text
    assert rows[0].payload[0]["quick_replies"][0]["data"] == f"k:w:{case_id}"
    async with sessionmaker() as s:
        case = await s.get(Case, case_id)
        assert case.status == "answered" and case.first_response_at == later and case.waiting_since is None
        entry = (await s.execute(select(AuditEntry).where(AuditEntry.action == "replied"))).scalar_one()
        assert entry.staff_id == otit_id and entry.actor == f"staff:{otit_id}" and entry.detail is None
        # the resident writes again: waiting for staff again, the group sees it
        await s.close()
    async with sessionmaker() as s, s.begin():
        case = await s.get(Case, case_id)
        await cases.resident_message(s, kb, case, text="Đây ạ", language="vi", now=later + timedelta(minutes=5))
    async with sessionmaker() as s:
        case = await s.get(Case, case_id)
        assert case.status == "open" and case.waiting_since == later + timedelta(minutes=5)
    assert "Đây ạ" in (await _outbox(sessionmaker, kind="staff_telegram"))[-1].payload[0]["text"]


async def test_another_organisation_sees_nothing(sessionmaker, kb) -> None:
    _, case_id, _, other_id = await _setup(sessionmaker, kb)
    other = await _staff(sessionmaker, other_id)
    async with sessionmaker() as s, s.begin():
        for call in (cases.get_case(s, other, case_id), cases.list_messages(s, other, case_id),
                     cases.audit_log(s, other, case_id),
                     cases.staff_reply(s, kb, other, case_id, "hello"),
                     cases.add_note(s, other, case_id, "note"),
                     cases.close(s, kb, other, case_id, "resolved"),
                     cases.transfer(s, kb, other, case_id, "yiea", "not ours")):
            with pytest.raises(cases.CaseNotFound):
                await call
        media_id = await s.scalar(select(CaseMedia.id))
        with pytest.raises(cases.CaseNotFound):
            await cases.get_media(s, other, media_id)
        assert await cases.list_cases(s, other) == []
    assert await _outbox(sessionmaker, kind="consult_reply") == []


async def test_staff_read_messages_media_and_filter_the_inbox(sessionmaker, kb) -> None:
    _, case_id, otit_id, _ = await _setup(sessionmaker, kb)
    staff = await _staff(sessionmaker, otit_id)
    async with sessionmaker() as s, s.begin():
        messages = await cases.list_messages(s, staff, case_id)
        assert [m.kind for m in messages] == ["text", "image"] and messages[0].language == "vi"
        media = await cases.get_media(s, staff, messages[1].media[0].id)
        assert media.data == PNG and media.mime_type == "image/png"
        await cases.add_note(s, staff, case_id, "call the company", now=NOW)
        assert [c.id for c in await cases.list_cases(s, staff)] == [case_id]
        assert [c.id for c in await cases.list_cases(s, staff, topic="work", language="vi")] == [case_id]
        assert await cases.list_cases(s, staff, language="zh") == []
        assert await cases.list_cases(s, staff, status="closed") == []
        waited = await cases.list_cases(s, staff, min_wait=timedelta(hours=2), now=NOW + timedelta(hours=3))
        assert [c.id for c in waited] == [case_id]
        assert await cases.list_cases(s, staff, min_wait=timedelta(hours=2), now=NOW + timedelta(hours=1)) == []
        assert len(await cases.list_messages(s, staff, case_id, include_notes=False)) == 2
        await cases.assign(s, staff, case_id, now=NOW)
        assert (await s.get(Case, case_id)).assigned_staff_id == otit_id
        with pytest.raises(cases.InvalidAction):
            await cases.staff_reply(s, kb, staff, case_id, "   ")
    assert "call the company" not in str([r.payload for r in await _outbox(sessionmaker)])


async def test_transfer_tells_the_resident_and_moves_the_case(sessionmaker, kb) -> None:
    _, case_id, otit_id, other_id = await _setup(sessionmaker, kb)
    otit, yfrcc = await _staff(sessionmaker, otit_id), await _staff(sessionmaker, other_id)
    async with sessionmaker() as s, s.begin():
        with pytest.raises(cases.InvalidAction):
            await cases.transfer(s, kb, otit, case_id, "otit", "same")
        await cases.transfer(s, kb, otit, case_id, "yfrcc", "Cần hỗ trợ về thủ tục", now=NOW)
    async with sessionmaker() as s, s.begin():
        with pytest.raises(cases.CaseNotFound):
            await cases.get_case(s, otit, case_id)
        case = await cases.get_case(s, yfrcc, case_id)
        assert case.org == "yfrcc" and case.transfers == 1 and case.status == "open"
        log = [(a.action, a.detail) for a in await cases.audit_log(s, yfrcc, case_id)]
    assert log[-1] == ("transferred", {"from": "otit", "to": "yfrcc"})
    push = (await _outbox(sessionmaker, kind="consult_transfer"))[0].payload[0]["text"]
    assert "Cần hỗ trợ về thủ tục" in push and "Yamaguchi" in push


async def test_close_asks_for_a_rating_and_the_rating_is_counted(sessionmaker, kb) -> None:
    user_id, case_id, otit_id, _ = await _setup(sessionmaker, kb)
    staff = await _staff(sessionmaker, otit_id)
    async with sessionmaker() as s, s.begin():
        user = await s.get(User, user_id)
        with pytest.raises(cases.InvalidAction):
            await cases.rate(s, user, case_id, 5)                    # not closed yet
        with pytest.raises(cases.InvalidAction):
            await cases.close(s, kb, staff, case_id, "whatever")
        await cases.close(s, kb, staff, case_id, "resolved", now=NOW)
        with pytest.raises(cases.CaseClosed):
            await cases.staff_reply(s, kb, staff, case_id, "one more thing")
    row = (await _outbox(sessionmaker, kind="consult_closed"))[0]
    assert [q["data"] for q in row.payload[0]["quick_replies"]] == [f"k:r:{case_id}:{n}" for n in range(1, 6)]
    async with sessionmaker() as s, s.begin():
        user = await s.get(User, user_id)
        with pytest.raises(cases.InvalidAction):
            await cases.rate(s, user, case_id, 6)
        await cases.rate(s, user, case_id, 4, now=NOW)
        assert await cases.rating_distribution(s) == {0: 0, 1: 0, 2: 0, 3: 0, 4: 1, 5: 0}
        assert await cases.rating_distribution(s, org="yfrcc") == {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0}
        actions = [a.action for a in await cases.audit_log(s, staff, case_id)]
    assert actions == ["opened", "closed", "rated"]


async def test_sla_reminds_staff_and_tells_the_resident_once(sessionmaker, kb) -> None:
    _, case_id, otit_id, _ = await _setup(sessionmaker, kb)
    assert await remind_overdue_cases(sessionmaker, NOW + timedelta(hours=23), kb=kb) == 0
    due = OTIT_DUE + timedelta(minutes=1)
    assert await remind_overdue_cases(sessionmaker, due, kb=kb) == 1
    assert await remind_overdue_cases(sessionmaker, due + timedelta(hours=1), kb=kb) == 0   # once per wait
    assert len(await _outbox(sessionmaker, kind="consult_reminder")) == 1
    reminder = (await _outbox(sessionmaker, kind="staff_telegram"))[-1].payload[0]["text"]
    assert "K-" in reminder
    assert "reminder" not in str(await _outbox(sessionmaker, kind="staff_email"))   # subject is localized
    # staff answer, the resident writes again and waits past the promise: staff are reminded
    # again, the resident is not told a second time
    staff = await _staff(sessionmaker, otit_id)
    async with sessionmaker() as s, s.begin():
        await cases.staff_reply(s, kb, staff, case_id, "Chúng tôi đang xem.", now=due)
        case = await s.get(Case, case_id)
        await cases.resident_message(s, kb, case, text="?", now=due + timedelta(hours=1))
    assert await remind_overdue_cases(sessionmaker, due + timedelta(days=5), kb=kb) == 1
    assert len(await _outbox(sessionmaker, kind="consult_reminder")) == 1
    async with sessionmaker() as s:
        reminded = await s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "reminded"))
    assert reminded == 2


async def test_forget_me_removes_messages_and_keeps_statistics(sessionmaker, kb) -> None:
    user_id, case_id, otit_id, _ = await _setup(sessionmaker, kb)
    staff = await _staff(sessionmaker, otit_id)
    async with sessionmaker() as s, s.begin():
        await cases.staff_reply(s, kb, staff, case_id, "Reply", now=NOW)
        user = await s.get(User, user_id)
        # a second, unsent draft is simply deleted
        draft = await cases.create_case(s, user, topic="other", org="yfrcc", language="vi", now=NOW)
        await cases.add_message(s, draft, text="draft text", now=NOW)
        draft_id = draft.id
    async with sessionmaker() as s, s.begin():
        await forget_user(s, await s.get(User, user_id))      # bot.privacy: asks consult too
    async with sessionmaker() as s:
        assert await s.get(User, user_id) is None
        assert await s.get(Case, draft_id) is None
        case = await s.get(Case, case_id)
        assert case is not None and case.user_id is None and case.display_name is None
        assert case.status == "closed" and case.outcome == "forgotten" and case.anonymised_at is not None
        assert (case.topic, case.org, case.language) == ("work", "otit", "vi")
        assert await s.scalar(select(func.count()).select_from(CaseMessage)) == 0
        assert await s.scalar(select(func.count()).select_from(CaseMedia)) == 0
        actions = [a.action for a in (await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()]
        assert actions[-1] == "anonymised"
        assert (await cases.rating_distribution(s))[0] == 1        # counted as closed without rating
    async with sessionmaker() as s, s.begin():
        with pytest.raises(cases.CaseClosed):
            await cases.staff_reply(s, kb, staff, case_id, "anyone there?")


async def test_sla_job_runs_from_the_scheduler_registry(sessionmaker, database_url, kb) -> None:
    from bot.consult.sla import remind_overdue_consultations
    from scheduler.jobs import RECURRING_JOBS
    from scheduler.runner import JobContext

    assert any(j.func == "bot.consult.sla:remind_overdue_consultations" for j in RECURRING_JOBS)
    await _setup(sessionmaker, kb)
    woken: list[int] = []
    ctx = JobContext(database_url=database_url, sessionmaker=sessionmaker, kb=kb,
                     now=lambda: OTIT_DUE + timedelta(hours=1), notify=lambda: woken.append(1))
    assert await remind_overdue_consultations(ctx=ctx) == 1 and woken == [1]
    assert await remind_overdue_consultations(ctx=ctx) == 0


async def test_sla_works_in_small_transactions_and_respects_its_limit(sessionmaker, kb) -> None:
    async with sessionmaker() as s, s.begin():
        for i in range(45):
            user, _ = await repo.get_or_create_user(s, "telegram", str(1000 + i), now=NOW)
            case = await cases.create_case(s, user, topic="other", org="yfrcc", language="en", now=NOW)
            await cases.add_message(s, case, text=f"question {i}", now=NOW)
            await cases.submit_case(s, kb, case, now=NOW)
    later = NOW + timedelta(days=3)
    assert await remind_overdue_cases(sessionmaker, later, kb=kb, batch=20, limit=30) == 30
    assert await remind_overdue_cases(sessionmaker, later, kb=kb, batch=20, limit=30) == 15
    assert await remind_overdue_cases(sessionmaker, later, kb=kb, batch=20, limit=30) == 0
    assert len(await _outbox(sessionmaker, kind="consult_reminder")) == 45
