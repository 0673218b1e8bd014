"""A loopback fake of JMA's XML publishing site (Atom feed + telegrams), on a real socket.

The feed is built from the real capture ``../shared/reference/jma/feeds/eqvol.xml`` as a
template (DATA.md "How tests can use jma/"): its header and its non-relevant entries
(降灰予報, 噴火に関する火山観測報 — the poller must skip them without fetching) are kept,
with every link rewritten to this server, and the test's entries are put first, each one
pointing at a real telegram served under ``/data/<file>`` from ``official_samples/`` or
``real_feed_data/``. Derived telegrams (e.g. a drill sample with Status 通常) are made at
test time with ``add_document`` and never written to disk.

Conditional requests: the feed carries an ETag and Last-Modified; a matching
If-None-Match answers 304. Test-only code: of kurashi it imports only the title filter of
scheduler.jma (to drop the template's relevant entries, whose telegrams are not stored).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from scheduler.jma import is_relevant_title
from tests.fakes._common import REFERENCE_DIR, LoopbackServer

JMA_DIR = REFERENCE_DIR / "jma"
_ENTRY = re.compile(r"<entry>.*?</entry>\s*", re.DOTALL)


@dataclass
class FeedItem:
    title: str
    document: str           # file name served under /data/
    updated: str            # ISO time, UTC "Z"
    entry_id: str | None = None
    author: str = "気象庁"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class FakeJMA(LoopbackServer):
    def __init__(self, template: Path | None = None) -> None:
        super().__init__()
        self.template = (template or JMA_DIR / "feeds" / "eqvol.xml").read_text(encoding="utf-8")
        self.items: list[FeedItem] = []
        self.documents: dict[str, bytes] = {}
        self.version = 0                   # bump() changes the ETag without changing the entries
        self.honour_conditional = True
        self.app.router.add_get("/developer/xml/feed/{name}", self._feed)
        self.app.router.add_get("/developer/xml/data/{name}", self._document)

    # -- test API -----------------------------------------------------------------------
    @property
    def feed_url(self) -> str:
        return f"{self.base_url}/developer/xml/feed/eqvol.xml"

    def document_url(self, name: str) -> str:
        return f"{self.base_url}/developer/xml/data/{name}"

    def publish(self, title: str, document: str, updated: str, entry_id: str | None = None) -> FeedItem:
        """Put an entry at the top of the feed (as JMA does with a new telegram)."""
        item = FeedItem(title, document, updated, entry_id or f"{self.base_url}/feed#{document}")
        self.items.insert(0, item)
        return item

    def add_document(self, name: str, data: bytes) -> None:
        self.documents[name] = data

    def bump(self) -> None:
        self.version += 1

    def fetches_of(self, document: str) -> int:
        return sum(1 for r in self.requests if r.path.endswith(f"/data/{document}"))

    def feed_statuses(self) -> list[int]:
        return [r.status for r in self.requests if "/feed/" in r.path]

    # -- rendering ----------------------------------------------------------------------
    def feed_body(self) -> bytes:
        first = _ENTRY.search(self.template)
        assert first is not None
        head = self.template[: first.start()]
        tail = self.template[self.template.rindex("</entry>") + len("</entry>"):]
        kept = []
        for block in _ENTRY.findall(self.template):
            title = re.search(r"<title>(.*?)</title>", block).group(1)  # type: ignore[union-attr]
            if is_relevant_title(title):
                continue  # its telegram is not in the reference data
            kept.append(re.sub(r'href="http://www\.data\.jma\.go\.jp/developer/xml/data/',
                               f'href="{self.base_url}/developer/xml/data/', block))
        ours = [
            "<entry>\n"
            f"<title>{_xml_escape(i.title)}</title>\n<id>{_xml_escape(i.entry_id or '')}</id>\n"
            f"<updated>{i.updated}</updated>\n<author><name>{_xml_escape(i.author)}</name></author>\n"
            f'<link type="application/xml" href="{self.document_url(i.document)}" />\n'
            f'<content type="text">【{_xml_escape(i.title)}】</content>\n</entry>\n'
            for i in self.items
        ]
        return (head + "".join(ours) + "".join(kept) + tail).encode("utf-8")

    def _etag(self, body: bytes) -> str:
        return '"' + hashlib.sha1(body + str(self.version).encode()).hexdigest()[:16] + '"'

    async def _feed(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        body = self.feed_body()
        etag = self._etag(body)
        headers = {"ETag": etag, "Last-Modified": "Wed, 25 Nov 2026 00:00:00 GMT",
                   "Content-Type": "application/atom+xml; charset=utf-8"}
        if self.honour_conditional and request.headers.get("If-None-Match") == etag:
            record.status = 304
            return web.Response(status=304, headers={"ETag": etag})
        record.status = 200
        return web.Response(body=body, headers=headers)

    async def _document(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        name = request.match_info["name"]
        data = self.documents.get(name)
        if data is None:
            for folder in ("official_samples", "real_feed_data"):
                path = JMA_DIR / folder / name
                if path.is_file():
                    data = path.read_bytes()
                    break
        if data is None:
            record.status = 404
            return web.Response(status=404)
        failure = self._take_failure("document")
        if failure is not None:
            record.status = failure.status
            return web.Response(status=failure.status)
        record.status = 200
        return web.Response(body=data, content_type="application/xml")

    async def _record(self, request: web.Request):
        from tests.fakes._common import RecordedRequest

        record = RecordedRequest(method=request.method, path=request.path, query=dict(request.query),
                                 headers=request.headers, body=b"")
        self.requests.append(record)
        return record
