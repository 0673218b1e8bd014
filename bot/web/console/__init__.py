"""The staff console (issue 4): server-rendered pages under ``/console`` for partner
organisations' staff and the city's operators.

This module is the router aggregator: ``router`` (picked up by bot/app.py like every
``bot.web.*`` module with a ``router``) includes the ``router`` of every module in this
package, in ``ORDER`` first and then alphabetically — so a new page module (e.g. the
scheduler's ``scheduler_pages.py``) only has to define ``router = APIRouter()`` with paths
relative to ``/console`` and use the helpers:

    from bot.web.console.auth import require_staff, require_operator, verify_csrf
    from bot.web.console.templating import render, register_nav
    # templates extend "console/base.html"; every form contains {{ csrf_field(request) }}

Must not be imported by the conversation core.
"""
from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

from bot.web.console.auth import PREFIX

ORDER = ("pages_auth", "static", "inbox", "cases", "stats", "audit")
#: Modules without routes (helpers).
_HELPERS = {"auth", "templating", "queries"}


def _page_modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
             and m.name not in _HELPERS]
    return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


router = APIRouter(prefix=PREFIX, include_in_schema=False)
_included: set[int] = set()
for _name in _page_modules():
    _sub = getattr(importlib.import_module(f"{__name__}.{_name}"), "router", None)
    if _sub is not None and id(_sub) not in _included:
        _included.add(id(_sub))
        router.include_router(_sub)
