"""Canned replies page (operators): ``GET /console/canned`` lists every canned staff reply
with its topic and languages; ``POST /console/canned`` saves one (key, topic, a text per
language — Japanese required, so staff can read what they insert); ``POST
/console/canned/delete`` removes one; ``POST /console/canned/import`` copies the defaults of
knowledge/partners.yaml. The case page inserts them in the resident's language
(bot.consult.canned). CSRF-checked; redirects with fixed confirmations.
Must not import the conversation engine.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from bot.consult import canned as service
from bot.web.console.auth import PREFIX, CurrentOperator, verify_csrf
from bot.web.console.templating import register_nav, render
from knowledge.schema import CONSULT_TOPICS, LANGUAGES

router = APIRouter()
register_nav("定型文 Canned replies", f"{PREFIX}/canned", operator_only=True)

DONE = {
    "saved": "定型文を保存しました。 Canned reply saved.",
    "deleted": "定型文を削除しました。 Canned reply deleted.",
    "imported": "partners.yaml の定型文を取り込みました。 Imported the canned replies of partners.yaml.",
}


async def _page(request: Request, *, form: dict | None = None, error: str | None = None,
                status_code: int = 200) -> Response:
    services = request.app.state.services
    async with services.sessionmaker() as db:
        items = await service.list_canned(db)
    defaults = [] if items else service.kb_canned(services.kb)
    edit_key = request.query_params.get("edit")
    editing = next((i for i in items if i.key == edit_key), None)
    if form is None:
        form = {"key": editing.key, "topic": editing.topic, "texts": dict(editing.texts)} if editing else \
            {"key": "", "topic": "", "texts": {}}
    return render(request, "console/canned.html", {
        "items": items, "defaults": defaults, "form": form, "topics": CONSULT_TOPICS, "languages": LANGUAGES,
        "flash": DONE.get(request.query_params.get("done") or ""), "error": error,
    }, status_code=status_code)


@router.get("/canned")
async def list_canned(request: Request, operator: CurrentOperator) -> Response:
    """Every canned reply and the form to add or change one."""
    return await _page(request)


@router.post("/canned", dependencies=[Depends(verify_csrf)])
async def save_canned(request: Request, operator: CurrentOperator) -> Response:
    form = await request.form()
    key, topic = str(form.get("key") or ""), str(form.get("topic") or "")
    texts = {lang: str(form.get(f"text_{lang}") or "") for lang in LANGUAGES}
    try:
        async with request.app.state.services.sessionmaker() as db, db.begin():
            await service.save_canned(db, operator, key, topic, texts)
    except service.CannedError as exc:
        return await _page(request, form={"key": key, "topic": topic, "texts": texts}, error=str(exc),
                           status_code=400)
    return RedirectResponse(f"{PREFIX}/canned?done=saved", status_code=303)


@router.post("/canned/delete", dependencies=[Depends(verify_csrf)])
async def delete_canned(request: Request, operator: CurrentOperator) -> Response:
    form = await request.form()
    async with request.app.state.services.sessionmaker() as db, db.begin():
        await service.delete_canned(db, str(form.get("key") or ""))
    return RedirectResponse(f"{PREFIX}/canned?done=deleted", status_code=303)


@router.post("/canned/import", dependencies=[Depends(verify_csrf)])
async def import_canned(request: Request, operator: CurrentOperator) -> Response:
    services = request.app.state.services
    async with services.sessionmaker() as db, db.begin():
        await service.import_kb_canned(db, services.kb, operator)
    return RedirectResponse(f"{PREFIX}/canned?done=imported", status_code=303)
