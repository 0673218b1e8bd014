"""Checks of ``knowledge/partners.yaml`` (consultation partners and routing rules).

Owns the cross-checks ``kurashi kb check`` runs on the partners file: the default and every
rule name a known organisation, every consultation topic is reachable (some organisation
takes it), contact keys exist in contacts.yaml, the default is presentable (verified,
with a verified contact; other unpresentable partners are warnings: routing skips them), names and canned replies exist in every core language, rules that can
never apply. Called from ``knowledge.validate.check_knowledge``; the parsed file is put
on ``KnowledgeBase.partners``. Imports nothing from bot/, intents/ or scheduler/.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from knowledge.schema import (
    CONSULT_SEGMENTS,
    CONSULT_TOPICS,
    CORE_LANGUAGES,
    Contact,
    PartnersFile,
)
from knowledge.yamlio import read_optional_model

FILE = "partners.yaml"


def presentable(partner: Any, contacts: dict[str, Contact] | None) -> bool:
    """Whether residents may be offered this organisation: the partner entry is verified and
    names a verified contact (an organisation whose office, phone or role is unknown is not
    presented as a partner; routing skips it)."""
    if not partner.verified or partner.contact is None:
        return False
    contact = (contacts or {}).get(partner.contact)
    return contact is not None and contact.verified


def check_partners(root: Path, contacts: dict[str, Contact] | None, out: Any) -> PartnersFile | None:
    """Validate ``<root>/partners.yaml`` into ``out`` (validate's collector); the parsed file or None.

    A knowledge base without the file is valid (the consultation flow then offers only the
    consultation centre's contact); a file that exists must be complete.
    """
    loaded = read_optional_model(root / FILE, PartnersFile, out)
    if loaded is None:
        return None
    doc, parsed = loaded
    assert isinstance(parsed, PartnersFile)
    name = doc.name
    errors = 0

    def error(where: tuple[Any, ...], code: str, message: str) -> None:
        nonlocal errors
        errors += 1
        out.add(name, doc.line(where), code, message)

    partners = parsed.partners
    if parsed.default not in partners:
        error(("default",), "unknown_partner", f"default {parsed.default!r} is not a partner in this file")
    for topic in parsed.urgent_topics:
        if topic not in CONSULT_TOPICS:
            error(("urgent_topics",), "unknown_topic",
                  f"urgent topic {topic!r} is not a consultation topic ({', '.join(CONSULT_TOPICS)})")

    for key, partner in partners.items():
        where = ("partners", key)
        missing = [lang for lang in CORE_LANGUAGES if not (partner.name.get(lang) or "").strip()]  # type: ignore[call-overload]
        if missing:
            error(where + ("name",), "partner_missing_language",
                  f"partner {key!r} has no name in core language(s) {', '.join(missing)}")
        for topic in partner.topics:
            if topic not in CONSULT_TOPICS:
                error(where + ("topics",), "unknown_topic",
                      f"partner {key!r}: unknown topic {topic!r} (allowed: {', '.join(CONSULT_TOPICS)})")
        for segment in partner.segments:
            if segment not in CONSULT_SEGMENTS:
                error(where + ("segments",), "unknown_segment",
                      f"partner {key!r}: unknown segment {segment!r} (allowed: {', '.join(CONSULT_SEGMENTS)})")
        if not partner.languages:
            error(where + ("languages",), "partner_without_language", f"partner {key!r} serves no language")
        if partner.contact is not None and contacts is not None and partner.contact not in contacts:
            error(where + ("contact",), "unknown_contact",
                  f"partner {key!r}: contact {partner.contact!r} is not in contacts.yaml")
        if not presentable(partner, contacts):
            why = ("is not verified" if not partner.verified else
                   "has no contact in contacts.yaml" if partner.contact is None else
                   f"has an unverified contact {partner.contact!r}")
            if key == parsed.default:
                error(where, "default_not_presentable",
                      f"the default partner {key!r} {why}: residents must always be given a real, "
                      "sourced organisation")
            else:
                out.warn(name, doc.line(where), "unverified_partner",
                         f"partner {key!r} {why}, so it is never presented to residents (routing skips it)"
                         + (f": {partner.note}" if partner.note else ""))

    reachable: set[str] = set()
    default = partners.get(parsed.default)
    if default is not None:
        reachable |= set(default.topics)
        if set(default.segments) != {"all"}:
            error(("default",), "default_not_for_all",
                  f"the default partner {parsed.default!r} must serve every segment (segments: [all])")
    for index, rule in enumerate(parsed.rules):
        where = ("rules", index)
        partner = partners.get(rule.org)
        if partner is None:
            error(where + ("org",), "unknown_partner", f"rule {index + 1}: org {rule.org!r} is not a partner")
            continue
        for topic in rule.topics:
            if topic not in CONSULT_TOPICS:
                error(where + ("topics",), "unknown_topic", f"rule {index + 1}: unknown topic {topic!r}")
        for segment in rule.segments:
            if segment not in CONSULT_SEGMENTS:
                error(where + ("segments",), "unknown_segment", f"rule {index + 1}: unknown segment {segment!r}")
        topics = set(rule.topics or CONSULT_TOPICS) & set(partner.topics)
        if not topics:
            error(where, "rule_never_applies",
                  f"rule {index + 1}: {rule.org!r} takes none of the rule's topics")
        outside = set(rule.topics) - set(partner.topics)
        if outside:
            out.warn(name, doc.line(where), "rule_topic_not_served",
                     f"rule {index + 1}: {rule.org!r} does not take topic(s) {', '.join(sorted(outside))}")
        if rule.languages and not set(rule.languages) & set(partner.languages):
            error(where, "rule_never_applies",
                  f"rule {index + 1}: {rule.org!r} serves none of the rule's languages")
        reachable |= topics
    for topic in CONSULT_TOPICS:
        if topic not in reachable:
            error(("partners",), "topic_unreachable",
                  f"consultation topic {topic!r} reaches no organisation (add it to the default's topics)")

    for key, texts in parsed.canned_replies.items():
        missing = [lang for lang in CORE_LANGUAGES if not (texts.get(lang) or "").strip()]  # type: ignore[call-overload]
        if missing:
            error(("canned_replies", key), "canned_missing_language",
                  f"canned reply {key!r} has no text in core language(s) {', '.join(missing)}")
    return parsed if errors == 0 else None
