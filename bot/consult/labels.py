"""Readable labels of consultation keys for staff (console pages, staff notifications).

Topic, segment and organisation keys ("work", "trainee", "city_intl") are shown to staff as
words in the staff member's language — their organisation's ``staff_language`` in
knowledge/partners.yaml: Japanese (with the English word beside it, as every console label
is), English, or English for any other staff language. Residents' own texts are never here.
Must not import the conversation engine or FastAPI.
"""
from __future__ import annotations

from typing import Any

#: key → (Japanese, English)
TOPICS: dict[str, tuple[str, str]] = {
    "work": ("仕事", "Work"), "health": ("健康・病院", "Health"), "residence": ("在留・手続", "Residence"),
    "money": ("お金・税・保険", "Money"), "housing": ("住まい", "Housing"),
    "children": ("子ども・学校", "Children"), "disaster": ("災害・緊急", "Disaster"), "other": ("その他", "Other"),
}
SEGMENTS: dict[str, tuple[str, str]] = {
    "trainee": ("技能実習生", "Technical intern trainee"),
    "student": ("留学生", "International student"),
    "other": ("その他", "Other resident"),
    "all": ("全員", "Everyone"),
}


def _pick(pair: tuple[str, str] | None, key: str | None, lang: str | None) -> str:
    if not key:
        return "–"
    if pair is None:
        return key
    ja, en = pair
    if lang == "ja":
        return f"{ja} {en}"
    return en


def topic_label(key: str | None, lang: str | None = "ja") -> str:
    """"仕事 Work" for Japanese staff, "Work" otherwise; an unknown key as it is."""
    return _pick(TOPICS.get(key or ""), key, lang)


def segment_label(key: str | None, lang: str | None = "ja") -> str:
    """"技能実習生 Technical intern trainee" for Japanese staff, the English words otherwise."""
    return _pick(SEGMENTS.get(key or ""), key, lang)


def org_label(kb: Any, key: str | None, lang: str | None = "ja") -> str:
    """The organisation's name in the staff language (knowledge/partners.yaml), never its key
    unless the organisation is unknown."""
    if not key:
        return "–"
    partners = getattr(kb, "partners", None)
    partner = partners.partners.get(key) if partners is not None else None
    if partner is None:
        return key
    names = partner.name
    for code in (lang, "ja", "en"):
        if code and names.get(code):
            return names[code]
    return key


def staff_language(kb: Any, org: str | None) -> str:
    """The staff language of an organisation (partners.yaml ``staff_language``, default ja)."""
    partners = getattr(kb, "partners", None)
    partner = partners.partners.get(org or "") if partners is not None else None
    return getattr(partner, "staff_language", None) or "ja"
