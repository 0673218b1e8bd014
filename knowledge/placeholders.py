"""Contact placeholders (``{{contact_key.field}}``) in answers, messages and alert texts.

Owns ``check_placeholders``: each placeholder must be well-formed, name a contact of
contacts.yaml and a field that contact has. Used by the intents/messages checks
(knowledge/validate.py) and the alerts check (knowledge/alerts.py).
"""
from __future__ import annotations

import re

from knowledge.schema import PLACEHOLDER, Contact
from knowledge.yamlio import Collector, Path_, SourceDoc

#: Fields a ``{{contact.field}}`` placeholder may name.
PLACEHOLDER_FIELDS: frozenset[str] = frozenset({"name", "phone", "address", "hours", "url", "email", "note"})
#: Anything that looks like a placeholder, well-formed or not.
_PLACEHOLDER_LIKE = re.compile(r"\{\{[^{}]*\}\}")


def check_placeholders(text: str, contacts: dict[str, Contact] | None, doc: SourceDoc, path: Path_,
                       out: Collector, what: str) -> None:
    for raw in _PLACEHOLDER_LIKE.findall(text):
        match = PLACEHOLDER.fullmatch(raw)
        if not match:
            out.add(doc.name, doc.line(path), "bad_placeholder",
                    f"{what}: {raw} is not a placeholder of the form {{{{contact_key.field}}}}")
            continue
        key, fld = match.group(1), match.group(2)
        if contacts is None:
            continue                        # contacts.yaml itself is broken; reported there
        contact = contacts.get(key)
        if contact is None and key in getattr(contacts, "broken", ()):
            continue                        # the contact exists but is invalid; reported in contacts.yaml
        if contact is None:
            out.add(doc.name, doc.line(path), "dangling_contact",
                    f"{what}: {raw} names contact {key!r}, which is not in contacts.yaml")
        elif fld not in PLACEHOLDER_FIELDS:
            out.add(doc.name, doc.line(path), "dangling_contact_field",
                    f"{what}: {raw}: {fld!r} is not a contact field ({', '.join(sorted(PLACEHOLDER_FIELDS))})")
        elif getattr(contact, fld) in (None, "", {}):
            out.add(doc.name, doc.line(path), "dangling_contact_field",
                    f"{what}: {raw}: contact {key!r} has no {fld!r}")
