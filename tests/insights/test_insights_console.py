"""The operators' insights pages over real HTTP (uvicorn on loopback, httpx logging in like a
browser): who may see them, grouping and counting, filters, escaping, mark resolved with CSRF."""
from __future__ import annotations

import html
import re

from sqlalchemy import select

from bot.db.models import Unanswered
from tests.console.conftest import Console, csrf_of
from tests.insights.conftest import OPERATOR, PARTNER, add_unanswered, add_votes

GROUP_ROW = re.compile(r'<tr class="group" data-key="([^"]*)" data-count="(\d+)">')
QUESTION_ROW = re.compile(r'<tr class="question" data-id="(\d+)">')
VOTES_ROW = re.compile(r'<tr class="intent-votes" data-intent="([^"]+)" data-up="(\d+)" data-down="(\d+)">')

GAPS = [
    ("Where can I buy a bicycle?", "en", "decline"),
    ("where can i buy a bicycle", "en", "decline"),
    ("WHERE can I buy a bicycle!!", "en", "clarify_abandoned"),
    ("xe đạp mua ở đâu", "vi", "decline"),
    ("xe đạp mua ở đâu?", "vi", "clarify_abandoned"),
    ("<script>alert('x')</script> visa?", "en", "decline"),
]


async def resolved_ids(console: Console) -> set[int]:
    async with console.sessionmaker() as s:
        return set((await s.execute(select(Unanswered.id).where(Unanswered.resolved.is_(True)))).scalars())


async def test_only_city_operators_see_the_insights_pages(console: Console):
    async with console.client() as anonymous:
        redirect = await anonymous.get("/console/insights")
    async with console.client() as partner:
        await console.login(partner, PARTNER)
        inbox = await partner.get("/console/")
        partner_pages = [await partner.get(p) for p in ("/console/insights", "/console/insights/feedback")]
    async with console.client() as operator:
        await console.login(operator, OPERATOR)
        pages = [await operator.get(p) for p in ("/console/insights", "/console/insights/feedback")]

    assert redirect.status_code == 303 and redirect.headers["location"].startswith("/console/login")
    assert [r.status_code for r in partner_pages] == [403, 403]
    assert 'href="/console/insights"' not in inbox.text          # no nav entry for partner staff
    assert [r.status_code for r in pages] == [200, 200]
    assert 'href="/console/insights"' in pages[0].text and pages[0].headers["cache-control"] == "no-store"


async def test_unanswered_questions_are_grouped_by_normalised_text_most_frequent_first(console: Console):
    rows = await add_unanswered(console.sessionmaker, GAPS)
    async with console.client() as client:
        await console.login(client, OPERATOR)
        page = await client.get("/console/insights")
        vi_only = await client.get("/console/insights", params={"language": "vi"})
        declined = await client.get("/console/insights", params={"decision": "clarify_abandoned"})

    groups = [(html.unescape(k), int(n)) for k, n in GROUP_ROW.findall(page.text)]
    assert groups == [("where can i buy a bicycle", 3), ("xe đạp mua ở đâu", 2), ("script alert x script visa", 1)]
    # Newest first, one by one.
    assert [int(i) for i in QUESTION_ROW.findall(page.text)] == [r.id for r in reversed(rows)]
    # The latest wording stands for the group; the resident's markup is text, not HTML.
    assert "WHERE can I buy a bicycle!!" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(" in page.text
    assert [(html.unescape(k), int(n)) for k, n in GROUP_ROW.findall(vi_only.text)] == [("xe đạp mua ở đâu", 2)]
    assert [int(n) for _, n in GROUP_ROW.findall(declined.text)] == [1, 1]


async def test_mark_resolved_needs_the_csrf_token_and_resolves_a_row_or_a_group(console: Console):
    rows = await add_unanswered(console.sessionmaker, GAPS)
    bike = [r.id for r in rows[:3]]
    async with console.client() as client:
        await console.login(client, OPERATOR)
        page = await client.get("/console/insights")
        token = csrf_of(page.text)
        no_token = await client.post(f"/console/insights/unanswered/{rows[3].id}/resolve", data={})
        bad_token = await client.post("/console/insights/unanswered/resolve-group",
                                      data={"key": "where can i buy a bicycle", "csrf_token": "forged"})
        assert await resolved_ids(console) == set()

        one = await client.post(f"/console/insights/unanswered/{rows[3].id}/resolve",
                                data={"csrf_token": token, "status": "open"})
        # The group is resolved within the filters the operator looked at (English only here).
        group = await client.post("/console/insights/unanswered/resolve-group",
                                  data={"csrf_token": token, "key": "where can i buy a bicycle", "language": "en"})
        after = await client.get(group.headers["location"])
        again = await client.post(f"/console/insights/unanswered/{rows[3].id}/resolve", data={"csrf_token": token})
        resolved_page = await client.get("/console/insights", params={"status": "resolved"})

    assert no_token.status_code == 403 and bad_token.status_code == 403
    assert one.status_code == 303 and one.headers["location"].startswith("/console/insights?")
    assert group.status_code == 303 and "done=3" in group.headers["location"]
    assert await resolved_ids(console) == {rows[3].id, *bike}
    assert "Marked 3 resolved" in after.text
    # Back to the page the operator came from (English only), without the resolved group.
    assert "language=en" in group.headers["location"]
    assert [(html.unescape(k), int(n)) for k, n in GROUP_ROW.findall(after.text)] == [("script alert x script visa", 1)]
    assert "done=0" in again.headers["location"]
    assert sorted(int(i) for i in QUESTION_ROW.findall(resolved_page.text)) == sorted([rows[3].id, *bike])


async def test_the_list_is_paged_with_a_visible_note(console: Console):
    await add_unanswered(console.sessionmaker, [(f"question number {n}", "en", "decline") for n in range(57)])
    async with console.client() as client:
        await console.login(client, OPERATOR)
        first = await client.get("/console/insights")
        second = await client.get("/console/insights", params={"page": 2})

    assert len(QUESTION_ROW.findall(first.text)) == 50 and len(QUESTION_ROW.findall(second.text)) == 7
    assert "1 / 2" in first.text and 'id="next-page"' in first.text and 'id="prev-page"' in second.text
    assert len(GROUP_ROW.findall(first.text)) == 50 and "Showing the top 50 of 57 groups" in first.text


async def test_feedback_page_counts_votes_per_intent_and_shows_the_residents_question(console: Console):
    await add_votes(console.sessionmaker, [
        ("garbage.sorting", 1, "en", None),
        ("garbage.sorting", -1, "vi", "pin bỏ ở đâu <b>gấp</b>"),
        ("garbage.sorting", -1, "en", "batteries?"),
        ("medical.night", 1, "en", None),
        ("medical.night", 1, "ja", None),
        ("tax.resident", -1, "en", None),
    ])
    async with console.client() as client:
        await console.login(client, OPERATOR)
        page = await client.get("/console/insights/feedback")
        vi = await client.get("/console/insights/feedback", params={"language": "vi"})
        medical = await client.get("/console/insights/feedback", params={"intent": "medical.night"})

    assert VOTES_ROW.findall(page.text) == [("garbage.sorting", "1", "2"), ("tax.resident", "0", "1"),
                                            ("medical.night", "2", "0")]
    assert "67%" in page.text and "100%" in page.text
    assert "pin bỏ ở đâu &lt;b&gt;gấp&lt;/b&gt;" in page.text and "<b>gấp" not in page.text
    assert page.text.index("batteries?") < page.text.index("pin bỏ ở đâu")   # newest first
    assert VOTES_ROW.findall(vi.text) == [("garbage.sorting", "0", "1")] and "batteries?" not in vi.text
    assert VOTES_ROW.findall(medical.text) == [("medical.night", "2", "0")] and 'id="no-negative"' in medical.text
