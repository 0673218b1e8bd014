"""The alert pipeline end to end on real JMA telegrams served by a loopback fake JMA site.

poll → jma_entries → fetch once → assess → alert + alert_recipients + outbox rows, on
SQLite and PostgreSQL, with a fixed clock (no scheduler started).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.db.scheduler_models import Alert, AlertRecipient, JmaEntry, JmaFeed
from scheduler.alerts import delivery_report, poll_feeds
from tests.scheduler.conftest import add_users, outbox_rows, utc

YAMAGUCHI_WARNING = "15_11_01_150916_VPWW54.xml"      # 高潮警報 for 山口市, 2015-06-22 18:00 JST
TOKUSHIMA_WARNING = "15_15_01_220314_VPWW54.xml"      # 高潮警報 elsewhere
TSUNAMI_DRILL = "32-39_12_02_250206_VTSE41.xml"       # Status 訓練, 大津波警報 for 山口県瀬戸内海沿岸
TSUNAMI_DRILL_CANCEL = "32-39_12_13_250206_VTSE41.xml"
WARNING_AT = utc(2015, 6, 22, 9, 0)                   # the telegram's report time (UTC)

CITY_USERS = [
    {"platform_user_id": "U-ja", "language": "ja", "area": "oodono"},
    {"platform_user_id": "U-en", "language": "en", "area": None},
    {"platform_user_id": "U-vi1", "language": "vi", "area": "yuda"},
    {"platform_user_id": "U-vi2", "language": "vi", "area": "ogori"},
    {"platform_user_id": "100", "channel": "telegram", "language": "zh", "area": "ajisu"},
    {"platform_user_id": "101", "channel": "telegram", "language": "ko", "area": None},
    {"platform_user_id": "102", "channel": "telegram", "language": "id", "area": "aio"},   # Indonesian
    {"platform_user_id": "U-quiet", "language": "en", "area": "sayama", "quiet_start": "17:00", "quiet_end": "20:00"},
]
OTHER_USERS = [
    {"platform_user_id": "U-elsewhere", "language": "en", "area": "hofu-city"},   # not a district of 山口市
    {"platform_user_id": "U-optout", "language": "en", "area": "oodono", "opt_alerts": False},
    {"platform_user_id": "U-blocked", "language": "en", "area": "oodono", "status": "blocked"},
    {"platform_user_id": "U-cli", "channel": "cli", "language": "en"},
]


def _by_recipient(rows) -> dict[str, list]:
    out = defaultdict(list)
    for row in rows:
        for r in row.recipients:
            out[r].append(row)
    return out


async def test_yamaguchi_warning_alerts_city_users_in_their_language_and_nobody_else(
    sessionmaker, make_ctx, jma_server
):
    await add_users(sessionmaker, *CITY_USERS, *OTHER_USERS)
    jma_server.publish("気象警報・注意報（Ｈ２７）", TOKUSHIMA_WARNING, "2015-06-22T08:58:00Z")
    jma_server.publish("気象警報・注意報（Ｈ２７）", YAMAGUCHI_WARNING, "2015-06-22T09:00:00Z")
    now = WARNING_AT + timedelta(minutes=1)            # 18:01 JST
    ctx, _ = make_ctx(now)

    stats = await poll_feeds(ctx, [jma_server.feed_url])

    assert stats["alerts"] == 1
    rows = await outbox_rows(sessionmaker)
    got = _by_recipient(rows)
    assert set(got) == {u["platform_user_id"] for u in CITY_USERS}
    assert all(len(v) == 1 for v in got.values())                       # one message each
    text = {r: rows_[0].payload[0]["text"] for r, rows_ in got.items()}
    assert all("高潮警報" in t for t in text.values())
    assert "Storm surge warning (高潮警報)" in text["U-en"] and "Yamaguchi City" in text["U-en"]
    assert "たかしお けいほう（高潮警報）" in text["U-ja"]
    assert "Cảnh báo triều cường" in text["U-vi1"]
    assert "风暴潮警报" in text["100"] and "폭풍해일 경보" in text["101"]
    assert "Peringatan gelombang pasang badai (高潮警報)" in text["102"]    # Indonesian, not English
    assert "警戒レベル4相当" in text["102"] and "Kota Yamaguchi" in text["102"]
    # 高潮警報 is 警戒レベル4相当 with its Japanese term, and the JMA attribution
    assert "警戒レベル4相当" in text["U-en"] and "避難指示" in text["U-en"] and "出典：気象庁" in text["U-en"]
    assert rows[0].payload[0]["buttons"][0]["data"] == "i:disaster.shelter"
    # LINE: one multicast row per language group; Telegram: one row per chat
    vi_rows = got["U-vi1"]
    assert vi_rows == got["U-vi2"] and sorted(vi_rows[0].recipients) == ["U-vi1", "U-vi2"]
    assert [len(r.recipients) for r in rows if r.channel == "telegram"] == [1, 1, 1]
    # quiet hours (17:00–20:00 JST): a storm-surge warning is not urgent → sent at 20:00 JST
    assert got["U-quiet"][0].send_after == utc(2015, 6, 22, 11, 0)
    assert got["U-en"][0].send_after == now
    async with sessionmaker() as s:
        entries = {e.link.rsplit("/", 1)[-1]: e for e in (await s.execute(select(JmaEntry))).scalars()}
        alert = (await s.execute(select(Alert))).scalar_one()
        n_recipients = (await s.execute(select(func.count()).select_from(AlertRecipient))).scalar_one()
    assert entries[YAMAGUCHI_WARNING].status == "alerted" and entries[TOKUSHIMA_WARNING].status == "ignored"
    assert {e.status for k, e in entries.items() if k not in (YAMAGUCHI_WARNING, TOKUSHIMA_WARNING)} == {"skipped"}
    assert alert.kind == "weather" and alert.level == 4 and alert.recipient_count == n_recipients == len(CITY_USERS)
    # only the two relevant telegrams were fetched; the template's other entries never were
    assert [r.path.rsplit("/", 1)[-1] for r in jma_server.requests if "/data/" in r.path] == [
        TOKUSHIMA_WARNING, YAMAGUCHI_WARNING]

    report = await _report(sessionmaker, alert.id, now)
    assert (report["queued"], report["deferred"], report["sent"], report["failed"], report["blocked"]) == (
        len(CITY_USERS), 1, 0, 0, 0)


async def _report(sessionmaker, alert_id, now):
    async with sessionmaker() as s:
        return await delivery_report(s, alert_id, now=now)


async def test_a_drill_sends_nothing(sessionmaker, make_ctx, jma_server):
    await add_users(sessionmaker, *CITY_USERS)
    jma_server.publish("津波警報・注意報・予報a", TSUNAMI_DRILL, "2016-09-01T07:10:00Z")
    ctx, _ = make_ctx(utc(2016, 9, 1, 7, 11))

    stats = await poll_feeds(ctx, [jma_server.feed_url])

    assert stats.get("alerts", 0) == 0 and stats["ignored"] == 1
    assert await outbox_rows(sessionmaker) == []
    async with sessionmaker() as s:
        entry = (await s.execute(select(JmaEntry).where(JmaEntry.link.like(f"%{TSUNAMI_DRILL}")))).scalar_one()
        assert (await s.execute(select(func.count()).select_from(Alert))).scalar_one() == 0
    assert entry.status == "ignored" and "drill" in entry.note


async def test_a_repeated_feed_never_resends_and_is_fetched_conditionally(sessionmaker, make_ctx, jma_server):
    await add_users(sessionmaker, *CITY_USERS)
    jma_server.publish("気象警報・注意報（Ｈ２７）", YAMAGUCHI_WARNING, "2015-06-22T09:00:00Z")
    ctx, clock = make_ctx(WARNING_AT + timedelta(minutes=1))

    await poll_feeds(ctx, [jma_server.feed_url])
    first = len(await outbox_rows(sessionmaker))
    clock.advance(minutes=1)
    await poll_feeds(ctx, [jma_server.feed_url])          # unchanged: 304
    jma_server.bump()                                      # same entries, new ETag: read again
    clock.advance(minutes=1)
    stats = await poll_feeds(ctx, [jma_server.feed_url])

    assert first > 0 and len(await outbox_rows(sessionmaker)) == first
    assert jma_server.feed_statuses() == [200, 304, 200]
    feed_requests = [r for r in jma_server.requests if "/feed/" in r.path]
    assert "If-None-Match" not in feed_requests[0].headers and feed_requests[1].headers["If-None-Match"]
    assert jma_server.fetches_of(YAMAGUCHI_WARNING) == 1
    assert not any(k.startswith("new_") for k in stats)


async def test_the_same_warnings_in_a_second_telegram_of_the_report_are_not_resent(sessionmaker, make_ctx,
                                                                                     jma_server):
    await add_users(sessionmaker, *CITY_USERS)
    jma_server.publish("気象警報・注意報（Ｈ２７）", YAMAGUCHI_WARNING, "2015-06-22T09:00:00Z")
    # JMA publishes the same report under another entry (e.g. VPWW53 beside VPWW54)
    jma_server.publish("気象特別警報・警報・注意報", YAMAGUCHI_WARNING, "2015-06-22T09:00:01Z",
                       entry_id="urn:second-entry")
    ctx, _ = make_ctx(WARNING_AT + timedelta(minutes=1))

    stats = await poll_feeds(ctx, [jma_server.feed_url])

    assert stats["alerts"] == 1 and stats["ignored"] == 1
    assert all(len(v) == 1 for v in _by_recipient(await outbox_rows(sessionmaker)).values())


def _live(jma_dir, name: str) -> bytes:
    """A drill sample turned into a real (通常) telegram, in memory only (never committed)."""
    data = (jma_dir / "official_samples" / name).read_bytes()
    assert "<Status>訓練</Status>".encode() in data
    return data.replace("<Status>訓練</Status>".encode(), "<Status>通常</Status>".encode())


async def test_a_tsunami_cancellation_follows_to_the_same_recipients_only(sessionmaker, make_ctx, jma_server,
                                                                          jma_dir):
    ids = await add_users(sessionmaker, *CITY_USERS)
    jma_server.add_document("tsunami-issue.xml", _live(jma_dir, TSUNAMI_DRILL))
    jma_server.add_document("tsunami-cancel.xml", _live(jma_dir, TSUNAMI_DRILL_CANCEL))
    jma_server.publish("津波警報・注意報・予報a", "tsunami-issue.xml", "2016-09-01T07:10:00Z")
    ctx, clock = make_ctx(utc(2016, 9, 1, 8, 0))           # 17:00 JST, inside U-quiet's quiet hours

    await poll_feeds(ctx, [jma_server.feed_url])
    issued = await outbox_rows(sessionmaker)
    got = _by_recipient(issued)
    assert set(got) == set(ids)
    assert "Major tsunami warning (大津波警報：山口県瀬戸内海沿岸)" in got["U-en"][0].payload[0]["text"]
    # a tsunami is urgent: quiet hours do not hold it back
    assert got["U-quiet"][0].send_after == clock.now()

    # someone opts in after the warning; someone else opts out: neither gets the cancellation
    await add_users(sessionmaker, {"platform_user_id": "U-late", "language": "en", "area": "oodono"})
    async with sessionmaker() as s, s.begin():
        from bot.db.models import User
        user = await s.get(User, ids["U-ja"])
        user.opt_alerts = False
    jma_server.publish("津波警報・注意報・予報a", "tsunami-cancel.xml", "2016-09-01T09:00:00Z")
    clock.advance(hours=1, minutes=1)
    stats = await poll_feeds(ctx, [jma_server.feed_url])

    assert stats["alerts"] == 1
    cancel_rows = [r for r in await outbox_rows(sessionmaker) if r.id not in {x.id for x in issued}]
    cancelled_to = _by_recipient(cancel_rows)
    assert set(cancelled_to) == set(ids) - {"U-ja"}
    text = cancelled_to["U-en"][0].payload[0]["text"]
    assert "lifted (解除)" in text and cancelled_to["U-en"][0].payload[0]["buttons"] == []
    async with sessionmaker() as s:
        alerts = list((await s.execute(select(Alert).order_by(Alert.id))).scalars())
    assert [a.is_cancellation for a in alerts] == [False, True] and alerts[1].cancels_alert_id == alerts[0].id


async def test_a_cancellation_nobody_was_alerted_for_sends_nothing(sessionmaker, make_ctx, jma_server, jma_dir):
    await add_users(sessionmaker, *CITY_USERS)
    jma_server.add_document("tsunami-cancel.xml", _live(jma_dir, TSUNAMI_DRILL_CANCEL))
    jma_server.publish("津波警報・注意報・予報a", "tsunami-cancel.xml", "2016-09-01T09:00:00Z")
    ctx, _ = make_ctx(utc(2016, 9, 1, 9, 1))

    stats = await poll_feeds(ctx, [jma_server.feed_url])

    assert stats.get("alerts", 0) == 0 and await outbox_rows(sessionmaker) == []


async def test_a_weak_earthquake_elsewhere_and_old_entries_are_not_pushed(sessionmaker, make_ctx, jma_server):
    await add_users(sessionmaker, *CITY_USERS)
    # real Yamaguchi-prefecture quake, intensity 1 in 美祢市: below the city's threshold
    jma_server.publish("震源・震度に関する情報", "20210217204607_0_VXSE53_270000.xml", "2021-02-17T20:46:07Z")
    # a warning first seen hours after it was published is history, not news
    jma_server.publish("気象警報・注意報（Ｈ２７）", YAMAGUCHI_WARNING, "2015-06-22T09:00:00Z")
    ctx, _ = make_ctx(utc(2021, 2, 17, 20, 47))

    await poll_feeds(ctx, [jma_server.feed_url])

    assert await outbox_rows(sessionmaker) == []
    assert jma_server.fetches_of(YAMAGUCHI_WARNING) == 0
    async with sessionmaker() as s:
        notes = {e.link.rsplit("/", 1)[-1]: (e.status, e.note) for e in (await s.execute(select(JmaEntry))).scalars()}
    assert notes[YAMAGUCHI_WARNING][0] == "ignored"
    # 美祢市 and 山口県北部 only: the city (and its area 山口県中部) is not in the telegram (issue 12 wording).
    assert notes["20210217204607_0_VXSE53_270000.xml"] == ("ignored", "not for Yamaguchi City (hypocentre 山口県北部)")


async def test_a_telegram_that_cannot_be_fetched_is_retried_then_given_up(sessionmaker, make_ctx, jma_server):
    await add_users(sessionmaker, *CITY_USERS)
    jma_server.publish("気象警報・注意報（Ｈ２７）", YAMAGUCHI_WARNING, "2015-06-22T09:00:00Z")
    from tests.fakes._common import Failure

    jma_server._queue_failure("document", Failure(503, times=1))
    ctx, clock = make_ctx(WARNING_AT + timedelta(minutes=1))

    first = await poll_feeds(ctx, [jma_server.feed_url])
    clock.advance(minutes=1)
    second = await poll_feeds(ctx, [jma_server.feed_url])

    assert first["fetch_errors"] == 1 and second["alerts"] == 1
    assert jma_server.fetches_of(YAMAGUCHI_WARNING) == 2


@pytest.mark.parametrize("channel", ["line", "telegram"])
async def test_delivery_report_counts_sent_failed_and_blocked(sessionmaker, kb, channel):
    from bot.db.models import OUTBOX_FAILED, OUTBOX_SENT, OutboxMessage, User
    from scheduler.alerts import plan_manual_alert, queue_alert

    ids = await add_users(sessionmaker, *[{"platform_user_id": f"P{i}", "channel": channel, "language": "en"}
                                          for i in range(4)])
    now = utc(2026, 11, 25, 3, 0)
    async with sessionmaker() as s, s.begin():
        plan = await plan_manual_alert(s, kb, {"en": "Water outage in Ogori tonight."}, now=now)
        alert = await queue_alert(s, plan, now=now, created_by="op1")
    async with sessionmaker() as s, s.begin():
        rows = list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())
        rows[0].status = OUTBOX_SENT
        if channel == "telegram":   # the relay's outcome for a chat that blocked the bot
            rows[1].status = OUTBOX_FAILED
            (await s.get(User, ids["P1"])).status = "blocked"
            rows[2].status = OUTBOX_FAILED

    report = await _report(sessionmaker, alert.id, now)

    if channel == "line":      # one multicast row for the four
        assert (report["sent"], report["queued"]) == (4, 0)
    else:
        assert (report["sent"], report["blocked"], report["failed"], report["queued"]) == (1, 1, 1, 1)
    assert report["recipients"] == 4 and report["by_language"]["en"]


def _all_reference_telegrams():
    from tests.scheduler.fake_jma import JMA_DIR

    return sorted(p.name for p in JMA_DIR.glob("*/*.xml") if p.parent.name != "feeds") if JMA_DIR.is_dir() else []


@pytest.mark.parametrize("name", _all_reference_telegrams())
async def test_every_reference_telegram_can_be_ingested_as_a_dry_run(sessionmaker, kb, jma_dir, name):
    from scheduler.alerts import ingest_telegram

    await add_users(sessionmaker, *CITY_USERS)
    data = next(jma_dir.glob(f"*/{name}")).read_bytes()
    async with sessionmaker() as s, s.begin():
        result = await ingest_telegram(s, kb, data, dry_run=True, now=utc(2026, 11, 25, 3, 0))
    assert not result.queued
    if result.telegram.is_drill:
        assert result.decision is None and "drill" in result.reason
    if name == YAMAGUCHI_WARNING:
        assert result.plan is not None and len(result.plan.recipients) == len(CITY_USERS)
    assert await outbox_rows(sessionmaker) == []


@pytest.fixture
async def platforms(line_api, telegram_api):
    from bot.channels.line import LineChannel
    from bot.channels.telegram import TelegramChannel
    from tests.fakes.line_api import DEFAULT_CHANNEL_SECRET

    line = LineChannel(channel_secret=DEFAULT_CHANNEL_SECRET, access_token=line_api.access_token,
                       api_base_url=line_api.base_url)
    telegram = TelegramChannel(token=telegram_api.token, api_base_url=telegram_api.base_url)
    await line.start()
    await telegram.start()
    yield {"line": line, "telegram": telegram}
    await line.close()
    await telegram.close()


async def test_an_alert_reaches_the_platforms_and_the_report_counts_sent_and_blocked(
    sessionmaker, make_ctx, jma_server, line_api, telegram_api, platforms
):
    from delivery.outbox import OutboxRelay
    from delivery.ratelimit import ChannelLimit
    from tests.outbox.recording import FakeClock

    users = [u for u in CITY_USERS if not u["platform_user_id"].startswith("U-quiet")]
    await add_users(sessionmaker, *users)
    telegram_api.block("101")                                   # the Korean reader blocked the bot
    jma_server.publish("気象警報・注意報（Ｈ２７）", YAMAGUCHI_WARNING, "2015-06-22T09:00:00Z")
    ctx, clock = make_ctx(WARNING_AT + timedelta(minutes=1))
    await poll_feeds(ctx, [jma_server.feed_url])

    relay_clock = FakeClock(clock.now())
    relay = OutboxRelay(sessionmaker, platforms, {"line": ChannelLimit(rate=1000),
                                                  "telegram": ChannelLimit(rate=1000, per_recipient_rate=100)},
                        relay_clock)
    while await relay.relay_once() > 0:
        pass

    assert line_api.texts_for("U-vi1") == line_api.texts_for("U-vi2") and "Cảnh báo triều cường" in \
        line_api.texts_for("U-vi1")[0]
    assert len(line_api.texts_for("U-ja")) == 1 and "高潮警報" in telegram_api.texts_to("100")[0]
    assert telegram_api.texts_to("101") == []
    async with sessionmaker() as s:
        alert_id = (await s.execute(select(Alert.id))).scalar_one()
    report = await _report(sessionmaker, alert_id, clock.now())
    assert (report["sent"], report["blocked"], report["failed"], report["queued"]) == (len(users) - 1, 1, 0, 0)
    assert report["by_channel"]["telegram"] == {"sent": 2, "blocked": 1}


def _yamaguchi_warning_lifted(jma_dir) -> bytes:
    """The Yamaguchi VPWW54 an hour later with 山口市's 高潮警報 lifted (解除): derived in memory only."""
    import re

    text = (jma_dir / "official_samples" / YAMAGUCHI_WARNING).read_text(encoding="utf-8")

    def lift(match: re.Match) -> str:
        return re.sub(r"(<Code>08</Code>\s*)<Status>発表</Status>", r"\1<Status>解除</Status>", match.group(0))

    lifted = re.sub(r"<Item>(?:(?!</Item>).)*?<Code>3520300</Code>(?:(?!</Item>).)*?</Item>", lift, text, flags=re.DOTALL)
    assert lifted != text
    return lifted.replace("2015-06-22T18:00:00+09:00", "2015-06-22T19:00:00+09:00").encode("utf-8")


async def test_a_warning_lifted_during_quiet_hours_is_withdrawn_not_sent_twice(sessionmaker, make_ctx, jma_server,
                                                                               jma_dir):
    await add_users(sessionmaker, *CITY_USERS)
    jma_server.publish("気象警報・注意報（Ｈ２７）", YAMAGUCHI_WARNING, "2015-06-22T09:00:00Z")
    ctx, clock = make_ctx(WARNING_AT + timedelta(minutes=1))          # 18:01 JST: U-quiet sleeps till 20:00
    await poll_feeds(ctx, [jma_server.feed_url])
    jma_server.add_document("lifted.xml", _yamaguchi_warning_lifted(jma_dir))
    jma_server.publish("気象警報・注意報（Ｈ２７）", "lifted.xml", "2015-06-22T10:00:00Z")
    clock.advance(hours=1)                                            # 19:01 JST
    stats = await poll_feeds(ctx, [jma_server.feed_url])

    assert stats["alerts"] == 1
    got = _by_recipient(await outbox_rows(sessionmaker))
    assert "U-quiet" not in got                                      # neither the warning nor "lifted"
    assert all(len(rows) == 2 for rows in got.values()) and set(got) == {
        u["platform_user_id"] for u in CITY_USERS} - {"U-quiet"}
    lifted_text = got["U-en"][1].payload[0]["text"]
    assert "Storm surge warning (高潮警報) for Yamaguchi City has been lifted (解除)" in lifted_text
    async with sessionmaker() as s:
        first, second = list((await s.execute(select(Alert.id).order_by(Alert.id))).scalars())
    assert (await _report(sessionmaker, first, clock.now()))["withdrawn"] == 1
    assert (await _report(sessionmaker, second, clock.now()))["recipients"] == len(CITY_USERS) - 1


async def test_a_broken_feed_is_reported_and_the_next_feed_still_polled(sessionmaker, make_ctx, jma_server):
    jma_server.add_document("broken.xml", b"<feed><entry>")
    await add_users(sessionmaker, *CITY_USERS)
    jma_server.publish("気象警報・注意報（Ｈ２７）", YAMAGUCHI_WARNING, "2015-06-22T09:00:00Z")
    ctx, _ = make_ctx(WARNING_AT + timedelta(minutes=1))

    stats = await poll_feeds(ctx, [jma_server.document_url("broken.xml"), jma_server.document_url("missing.xml"),
                                   jma_server.feed_url])

    assert stats["feed_errors"] == 2 and stats["alerts"] == 1
    # Issue 12: each failed feed keeps its last error and time (the console shows it, also when
    # a feed never worked); a feed that works has none.
    async with sessionmaker() as s:
        feeds = {f.url: f for f in (await s.execute(select(JmaFeed))).scalars()}
    broken, missing = feeds[jma_server.document_url("broken.xml")], feeds[jma_server.document_url("missing.xml")]
    assert broken.checked_at is None and broken.error_at is not None and "ParseError" in broken.last_error
    assert "404" in missing.last_error
    assert feeds[jma_server.feed_url].last_error is None and feeds[jma_server.feed_url].checked_at is not None


def _quake_pair(jma_dir, event_id: str, intensity_53: str) -> tuple[bytes, bytes]:
    """A 震度速報 (VXSE51) and a 震源・震度 (VXSE53) of one Yamaguchi City quake, derived in memory from
    the real telegrams: 宮城県中部 → 山口県中部 (704) at 5弱; 美祢市 → 山口市 at ``intensity_53``."""
    vxse51 = (jma_dir / "real_feed_data" / "20210217140808_0_VXSE51_010000.xml").read_text(encoding="utf-8")
    vxse51 = vxse51.replace("<Name>宮城県中部</Name><Code>222</Code><MaxInt>3</MaxInt>",
                            "<Name>山口県中部</Name><Code>704</Code><MaxInt>5-</MaxInt>")
    vxse51 = vxse51.replace("<EventID>20210217230627</EventID>", f"<EventID>{event_id}</EventID>")
    vxse53 = (jma_dir / "real_feed_data" / "20210217204607_0_VXSE53_270000.xml").read_text(encoding="utf-8")
    vxse53 = vxse53.replace("<Name>美祢市</Name><Code>3521300</Code>", "<Name>山口市</Name><Code>3520300</Code>")
    vxse53 = vxse53.replace("<MaxInt>1</MaxInt>", f"<MaxInt>{intensity_53}</MaxInt>")
    vxse53 = vxse53.replace("<EventID>20210218054337</EventID>", f"<EventID>{event_id}</EventID>")
    assert "704" in vxse51 and "3520300" in vxse53
    return vxse51.encode(), vxse53.encode()


async def test_a_strong_quake_is_pushed_once_and_again_only_when_it_turns_out_stronger(
    sessionmaker, make_ctx, jma_server, jma_dir
):
    users = [*CITY_USERS, {"platform_user_id": "U-night", "language": "en", "quiet_start": "22:00",
                           "quiet_end": "07:00"}]
    await add_users(sessionmaker, *users)
    first, same = _quake_pair(jma_dir, "20261125230600", "5-")
    _, stronger = _quake_pair(jma_dir, "20261125230600", "6-")
    jma_server.add_document("vxse51.xml", first)
    jma_server.add_document("vxse53.xml", same)
    jma_server.publish("震度速報", "vxse51.xml", "2026-11-25T14:07:00Z")
    jma_server.publish("震源・震度に関する情報", "vxse53.xml", "2026-11-25T14:09:00Z")
    ctx, clock = make_ctx(utc(2026, 11, 25, 14, 10))                   # 23:10 JST: U-night is asleep

    stats = await poll_feeds(ctx, [jma_server.feed_url])

    assert stats["alerts"] == 1 and stats["ignored"] == 1              # the VXSE53 repeats 5弱: not resent
    got = _by_recipient(await outbox_rows(sessionmaker))
    assert set(got) == {u["platform_user_id"] for u in users}
    assert got["U-night"][0].send_after == clock.now()                 # 5弱 is urgent: quiet hours ignored
    assert "Seismic intensity 5 lower (震度5弱)" in got["U-en"][0].payload[0]["text"]
    assert "震度５弱" not in got["U-en"][0].payload[0]["text"]

    jma_server.add_document("vxse53-6.xml", stronger)
    jma_server.publish("震源・震度に関する情報", "vxse53-6.xml", "2026-11-25T14:12:00Z")
    clock.advance(minutes=3)
    stats = await poll_feeds(ctx, [jma_server.feed_url])

    assert stats["alerts"] == 1
    texts = [r.payload[0]["text"] for r in _by_recipient(await outbox_rows(sessionmaker))["U-en"]]
    assert len(texts) == 2 and "震度6弱" in texts[1]
    assert "Epicentre (震源): 山口県北部, magnitude 2.7" in texts[1] and "No tsunami is expected" in texts[1]
