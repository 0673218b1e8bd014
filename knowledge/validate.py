"""Validate the knowledge base and say exactly what is wrong, with file and line.

Owns ``check_knowledge``: reading every file (through knowledge/yamlio.py, which keeps
lines and reports problems), the checks of the optional files (partners, alerts, texts,
garbage calendars — each in its own module, called from here), and every cross-file check (duplicate ids, dangling related
ids and contact placeholders, required intents from the spec, core-language coverage,
sample counts, message format fields, escalation flags). ``kurashi kb check`` prints the
``Report``; ``knowledge.loader.load_knowledge`` raises ``KnowledgeError`` from it.

Reads files only under the knowledge root (and the spec, when given or present beside the
repository). Imports nothing from bot/, intents/ or scheduler/.
"""
from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from knowledge.alerts import check_alerts
from knowledge.base import KnowledgeBase
from knowledge.garbage import GarbageFormatError, load_garbage_set
from knowledge.partners import check_partners
from knowledge.placeholders import check_placeholders
from knowledge.schema import (
    CORE_LANGUAGES,
    LANGUAGES,
    MIN_SAMPLES_PER_LANGUAGE,
    PENDING_LANGUAGES,
    Contact,
    ContactsFile,
    Intent,
    MessagesFile,
    TopicFile,
    TranslationFile,
)
from knowledge.textcheck import check_texts
from knowledge.yamlio import (
    Collector,
    Path_,
    Report,
    SourceDoc,
    display_path,
    read_yaml,
    validate_model,
)

#: Knowledge root of the installed package, and the spec beside the repository
#: (``<repo>/../shared/spec/intents.yaml``) when this is a checkout next to /shared.
DEFAULT_DIR = Path(__file__).resolve().parent
SHARED_SPEC = DEFAULT_DIR.parent / ".." / "shared" / "spec" / "intents.yaml"
#: The held-out evaluation set; samples must not copy it (it would measure memorisation).
SHARED_EVAL = DEFAULT_DIR.parent / ".." / "shared" / "eval" / "dev.jsonl"
#: The project's own copy of the required ids, so the check works without ../shared.
REQUIRED_FILE = "required_intents.yaml"
#: Message keys the project's code looks up itself (render.py); the rest belong to
#: whoever uses them and are checked only for language coverage and format fields.
REQUIRED_MESSAGES: tuple[str, ...] = ("fact.unverified",)


# --------------------------------------------------------------------------------------
# Required intents (spec)
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Required:
    id: str
    escalates: bool
    file: str
    line: int | None


def read_required(path: Path, out: Collector) -> list[Required] | None:
    doc = read_yaml(path, out)
    if doc is None:
        return None
    if not isinstance(doc.data, list):
        out.add(doc.name, 1, "invalid", "the required-intents file must be a list of {id: …} entries")
        return None
    result = []
    for index, entry in enumerate(doc.data):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            out.add(doc.name, doc.line((index,)), "invalid", "each entry needs an 'id'")
            continue
        result.append(Required(entry["id"], bool(entry.get("escalates", False)), doc.name, doc.line((index,))))
    return result


# --------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------

def _norm_sample(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _format_fields(template: str) -> set[str]:
    """Named fields of a ``str.format`` template (``{case_no}``, ``{user.name}`` → user)."""
    fields = set()
    for _, field_name, _, _ in string.Formatter().parse(template):
        if field_name is not None:
            fields.add(field_name.split(".")[0].split("[")[0])
    return fields


class _PartialContacts(dict):
    """The valid contacts of a contacts.yaml that failed validation, plus the keys of the
    invalid ones (so placeholders naming them are not reported a second time)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[str] = set()


def _merge_translations(folder: Path, intents: dict[str, Intent],
                        intent_where: dict[str, tuple[SourceDoc, Path_]],
                        answer_where: dict[tuple[str, str], tuple[SourceDoc, Path_]],
                        message_overlays: list[tuple[SourceDoc, str, dict[str, str]]],
                        out: Collector, contacts: dict[str, Contact] | None = None) -> dict[str, Intent]:
    """Merge ``translations/<lang>.yaml`` into the intents and (in place) the contacts;
    collect their messages.

    An answer or a contact field may live inline or in the language's file, not both;
    samples from both places are joined (duplicates dropped, inline ones first).
    """
    if not folder.is_dir():
        return intents
    merged = dict(intents)
    for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
        doc = read_yaml(path, out)
        if doc is None:
            continue
        parsed = validate_model(TranslationFile, doc, out)
        if parsed is None:
            continue
        lang = parsed.language
        if path.stem != lang:
            out.add(doc.name, doc.line(("language",)), "language_mismatch",
                    f"{path.name} declares language {lang!r}; name the file {lang}.yaml")
            continue
        for intent_id, text in parsed.intents.items():
            tpath: Path_ = ("intents", intent_id)
            intent = merged.get(intent_id)
            if intent is None:
                out.add(doc.name, doc.line(tpath), "unknown_intent",
                        f"intent {intent_id!r} does not exist in topics/*.yaml")
                continue
            answers = dict(intent.answers)
            if text.answer is not None:
                if (answers.get(lang) or "").strip():
                    tdoc, ipath = intent_where[intent_id]
                    out.add(doc.name, doc.line(tpath + ("answer",)), "defined_twice",
                            f"{intent_id}: the {lang!r} answer is also written inline at "
                            f"{tdoc.name}:{tdoc.line(ipath + ('answers', lang))}; keep one")
                else:
                    answers[lang] = text.answer
                    answer_where[(intent_id, lang)] = (doc, tpath + ("answer",))
            samples = {k: list(v) for k, v in intent.samples.items()}
            if text.samples:
                have = samples.setdefault(lang, [])
                seen = {_norm_sample(s) for s in have}
                for sample in text.samples:
                    if _norm_sample(sample) not in seen:
                        seen.add(_norm_sample(sample))
                        have.append(sample)
            merged[intent_id] = intent.model_copy(update={"answers": answers, "samples": samples})
        if parsed.messages:
            message_overlays.append((doc, lang, dict(parsed.messages)))
        if contacts is not None:
            _merge_contact_translations(doc, lang, parsed.contacts, contacts, out)
    return merged


#: Phone-number-like tokens (0120-290-922, #7119, 083-921-7119) inside a translated contact text.
_PHONE_LIKE = re.compile(r"#\d{3,5}\b|\b\d{2,5}(?:-\d{2,4}){1,2}\b")


def _merge_contact_translations(doc: SourceDoc, lang: str, translated: dict,
                                contacts: dict[str, Contact], out: Collector) -> None:
    """Add one language's contact names, hours and notes to ``contacts`` (in place)."""
    for key, fields in translated.items():
        cpath: Path_ = ("contacts", key)
        contact = contacts.get(key)
        if contact is None:
            if key not in getattr(contacts, "broken", ()):
                out.add(doc.name, doc.line(cpath), "unknown_contact",
                        f"contact {key!r} does not exist in contacts.yaml")
            continue
        update: dict[str, dict[str, str]] = {}
        for fld in ("name", "hours", "note"):
            text = getattr(fields, fld)
            if text is None:
                continue
            fpath = cpath + (fld,)
            current = getattr(contact, fld)
            if current is None:
                out.add(doc.name, doc.line(fpath), "unknown_contact_field",
                        f"contact {key!r} has no {fld!r} in contacts.yaml to translate")
            elif (current.get(lang) or "").strip():
                out.add(doc.name, doc.line(fpath), "defined_twice",
                        f"contact {key}.{fld} ({lang}) is also in contacts.yaml; keep one")
            else:
                if fld != "name":
                    check_placeholders(text, contacts, doc, fpath, out, f"contact {key}.{fld}.{lang}")
                source = " ".join([*current.values(), contact.phone or ""])
                stale = [n for n in _PHONE_LIKE.findall(text) if n not in source]
                if stale:
                    out.warn(doc.name, doc.line(fpath), "contact_translation_number",
                             f"contact {key}.{fld} ({lang}) has {', '.join(stale)}, which contacts.yaml no "
                             "longer says for this contact; copy the numbers from there again")
                update[fld] = {**current, lang: text}
        if update:
            contacts[key] = contact.model_copy(update=update)


def _pending_languages(root: Path, out: Collector) -> tuple[str, ...]:
    """Languages still being translated in the knowledge base under ``root``.

    The project's knowledge base uses ``schema.PENDING_LANGUAGES``. A knowledge root written
    in fewer languages (a test fixture, a small deployment) lists its own in
    ``<root>/pending_languages.yaml`` (a YAML list of extra-language codes), so finishing a
    language of the project does not make every such root invalid.
    """
    path = root / "pending_languages.yaml"
    if not path.exists():
        return PENDING_LANGUAGES
    doc = read_yaml(path, out)
    if doc is None:
        return PENDING_LANGUAGES
    data = doc.data
    if not isinstance(data, list) or not all(isinstance(x, str) and x in LANGUAGES for x in data):
        out.add(doc.name, 1, "pending_languages_invalid",
                f"pending_languages.yaml must be a list of language codes out of {', '.join(LANGUAGES)}")
        return PENDING_LANGUAGES
    core = [x for x in data if x in CORE_LANGUAGES]
    if core:
        out.add(doc.name, doc.line((data.index(core[0]),)) or 1, "pending_languages_invalid",
                f"core language(s) {', '.join(core)} must be complete and cannot be pending")
    return tuple(x for x in data if x not in CORE_LANGUAGES)


def check_knowledge(root: Path | str | None = None, *, spec: Path | str | None = None,
                    eval_file: Path | str | None = None) -> Report:
    """Validate the knowledge base under ``root`` (default: the package's own).

    Required intents come from ``<root>/required_intents.yaml`` and, for the package's own
    knowledge base, also from ``../shared/spec/intents.yaml`` when that exists; ``spec``
    names a spec file explicitly.
    """
    root = Path(root) if root else DEFAULT_DIR
    out = Collector()
    report = Report(root=root)

    # ---- contacts -------------------------------------------------------------------
    contacts: dict[str, Contact] | None = {}
    contacts_doc = None
    contacts_path = root / "contacts.yaml"
    if contacts_path.exists():
        contacts_doc = read_yaml(contacts_path, out)
        parsed = validate_model(ContactsFile, contacts_doc, out) if contacts_doc else None
        if parsed is None:
            contacts = None
            # Keep the valid contacts so one broken entry does not hide every placeholder.
            raw = contacts_doc.data.get("contacts") if contacts_doc and isinstance(contacts_doc.data, dict) else None
            if isinstance(raw, dict):
                contacts = _PartialContacts()
                for key, value in raw.items():
                    try:
                        contacts[key] = Contact.model_validate(value)
                    except ValidationError:
                        contacts.broken.add(str(key))   # reported above; not "dangling" too
        else:
            contacts = dict(parsed.contacts)
        for key, contact in (contacts or {}).items():
            if not contact.verified:
                facts = [f for f in ("phone", "address", "hours", "url", "email", "note") if getattr(contact, f)]
                out.warn(contacts_doc.name, contacts_doc.line(("contacts", key)), "unverified_contact",
                         f"contact {key!r} is not verified; unverified fields: {', '.join(facts) or '(none)'}")
            for fld in ("note", "hours"):
                value = getattr(contact, fld)
                for lang, text in (value or {}).items():
                    check_placeholders(text, contacts, contacts_doc, ("contacts", key, fld, lang), out,
                                        f"contact {key}.{fld}.{lang}")
    else:
        out.add(display_path(contacts_path), None, "missing_file", "contacts.yaml is missing")

    # ---- topics ---------------------------------------------------------------------
    intents: dict[str, Intent] = {}
    groups: dict[str, list[str]] = {}
    intent_where: dict[str, tuple[SourceDoc, Path_]] = {}
    topics_dir = root / "topics"
    topic_paths = sorted(topics_dir.glob("*.yaml")) + sorted(topics_dir.glob("*.yml"))
    if not topic_paths:
        out.add(display_path(topics_dir), None, "missing_file", "no topic files (topics/*.yaml)")
    for path in topic_paths:
        doc = read_yaml(path, out)
        if doc is None:
            continue
        if not isinstance(doc.data, dict):
            out.add(doc.name, 1, "invalid", "a topic file is a mapping with 'group' and 'intents'")
            continue
        whole = validate_model(TopicFile, doc, out)
        if whole is not None:
            valid = list(enumerate(whole.intents))
            group = whole.group
        else:
            # Report file-level errors once, then keep each intent that is valid by itself
            # so the cross-file checks still run on the rest of the file.
            group = doc.data.get("group") if isinstance(doc.data.get("group"), str) else path.stem
            valid = []
            raw_intents = doc.data.get("intents")
            if isinstance(raw_intents, list):
                for index, raw in enumerate(raw_intents):
                    try:
                        valid.append((index, Intent.model_validate(raw)))
                    except ValidationError:
                        pass
        ids = groups.setdefault(group, [])
        for index, intent in valid:
            ipath: Path_ = ("intents", index)
            if intent.id in intents:
                first_doc, first_path = intent_where[intent.id]
                out.add(doc.name, doc.line(ipath + ("id",)), "duplicate_id",
                        f"intent id {intent.id!r} is already defined at {first_doc.name}:"
                        f"{first_doc.line(first_path + ('id',))}")
                continue
            intents[intent.id] = intent
            intent_where[intent.id] = (doc, ipath)
            ids.append(intent.id)

    # ---- per-language translation files (translations/<lang>.yaml) ---------------------
    answer_where: dict[tuple[str, str], tuple[SourceDoc, Path_]] = {}
    message_overlays: list[tuple[SourceDoc, str, dict[str, str]]] = []
    intents = _merge_translations(root / "translations", intents, intent_where, answer_where,
                                  message_overlays, out, contacts)

    # ---- per-intent checks ------------------------------------------------------------
    pending = _pending_languages(root, out)
    full_languages = [lang for lang in LANGUAGES if lang not in pending]
    sample_owner: dict[str, str] = {}
    for intent_id, intent in intents.items():
        doc, ipath = intent_where[intent_id]
        for lang in full_languages:
            kind = "core language" if lang in CORE_LANGUAGES else "language"
            if not (intent.answers.get(lang) or "").strip():
                out.add(doc.name, doc.line(ipath + ("answers", lang)), "missing_answer",
                        f"{intent_id}: no answer in {kind} {lang!r}")
            count = len({_norm_sample(s) for s in intent.samples.get(lang, []) if s.strip()})
            if count < MIN_SAMPLES_PER_LANGUAGE:
                out.add(doc.name, doc.line(ipath + ("samples", lang)), "too_few_samples",
                        f"{intent_id}: {count} distinct sample question(s) in {lang!r}, "
                        f"need at least {MIN_SAMPLES_PER_LANGUAGE}")
        for lang, text in intent.answers.items():
            adoc, apath = answer_where.get((intent_id, lang), (doc, ipath + ("answers", lang)))
            check_placeholders(text, contacts, adoc, apath, out, f"{intent_id} answer {lang}")
        for pos, related in enumerate(intent.related):
            if related not in intents:
                out.add(doc.name, doc.line(ipath + ("related", pos)), "dangling_related",
                        f"{intent_id}: related intent {related!r} does not exist")
        for lang, samples in intent.samples.items():
            seen_here: set[str] = set()
            for pos, sample in enumerate(samples):
                key = _norm_sample(sample)
                spath = ipath + ("samples", lang, pos)
                if key in seen_here:
                    out.warn(doc.name, doc.line(spath), "duplicate_sample",
                             f"{intent_id}: sample {sample!r} appears twice in {lang!r}")
                    continue
                seen_here.add(key)
                owner = sample_owner.setdefault(f"{lang}\x00{key}", intent_id)
                if owner != intent_id:
                    odoc, _ = intent_where[owner]
                    out.warn(doc.name, doc.line(spath), "sample_in_two_intents",
                             f"sample {sample!r} ({lang}) is under both {owner!r} ({odoc.name}) "
                             f"and {intent_id!r}; the matcher cannot tell them apart")

    # ---- samples copied from the evaluation set -------------------------------------
    eval_path = Path(eval_file) if eval_file else (
        SHARED_EVAL if root.resolve() == DEFAULT_DIR and SHARED_EVAL.exists() else None)
    if eval_path is not None:
        _check_eval_overlap(eval_path, intents, intent_where, out)

    # ---- required intents -----------------------------------------------------------
    required_sources: list[Path] = []
    own_copy = root / REQUIRED_FILE
    if own_copy.exists():
        required_sources.append(own_copy)
    spec_path = Path(spec) if spec else (SHARED_SPEC if root.resolve() == DEFAULT_DIR and SHARED_SPEC.exists() else None)
    if spec_path is not None:
        required_sources.append(spec_path)
    if not required_sources:
        out.add(display_path(own_copy), None, "missing_file",
                f"{REQUIRED_FILE} is missing (the list of intent ids the knowledge base must answer)")
    required_lists = [(src, read_required(src, out)) for src in required_sources]
    required: dict[str, Required] = {}
    for _, items in required_lists:
        for item in items or []:
            if item.id not in required or (item.escalates and not required[item.id].escalates):
                required[item.id] = item
    if len(required_lists) == 2 and all(items is not None for _, items in required_lists):
        copy_ids = {(r.id, r.escalates) for r in required_lists[0][1]}
        spec_ids = {(r.id, r.escalates) for r in required_lists[1][1]}
        if copy_ids != spec_ids:
            out.warn(display_path(own_copy), 1, "required_list_outdated",
                     f"{REQUIRED_FILE} differs from {display_path(spec_path)}; update the copy "
                     f"(only in spec: {sorted(i for i, _ in spec_ids - copy_ids)}, "
                     f"only in copy: {sorted(i for i, _ in copy_ids - spec_ids)})")
    for item in required.values():
        intent = intents.get(item.id)
        if intent is None:
            out.add(item.file, item.line, "missing_required_intent",
                    f"required intent {item.id!r} is not in the knowledge base (topics/*.yaml)")
        elif item.escalates and not intent.escalates:
            doc, ipath = intent_where[item.id]
            out.add(doc.name, doc.line(ipath + ("id",)), "escalates_not_set",
                    f"{item.id}: the spec says this intent escalates (offers a consultation); "
                    "set 'escalates: true'")

    # ---- messages -------------------------------------------------------------------
    messages: dict[str, dict[str, str]] = {}
    messages_path = root / "messages.yaml"
    mdoc: SourceDoc | None = None
    message_where: dict[tuple[str, str], tuple[SourceDoc, Path_]] = {}
    if messages_path.exists():
        mdoc = read_yaml(messages_path, out)
        parsed_messages = validate_model(MessagesFile, mdoc, out) if mdoc else None
        if parsed_messages is not None:
            messages = {k: dict(v) for k, v in parsed_messages.messages.items()}
        elif mdoc and isinstance(mdoc.data, dict) and isinstance(mdoc.data.get("messages"), dict):
            messages = {k: {lang: t for lang, t in v.items() if isinstance(t, str) and lang in LANGUAGES}
                        for k, v in mdoc.data["messages"].items() if isinstance(v, dict)}
        for tdoc, lang, texts in message_overlays:
            for key, text in texts.items():
                tpath: Path_ = ("messages", key)
                if key not in messages:
                    out.add(tdoc.name, tdoc.line(tpath), "unknown_message",
                            f"message {key!r} does not exist in messages.yaml")
                elif (messages[key].get(lang) or "").strip():
                    out.add(tdoc.name, tdoc.line(tpath), "defined_twice",
                            f"message {key!r} ({lang}) is also in messages.yaml; keep one")
                else:
                    messages[key][lang] = text
                    message_where[(key, lang)] = (tdoc, tpath)
        if mdoc is not None:
            for key, texts in messages.items():
                mpath: Path_ = ("messages", key)
                missing = [lang for lang in full_languages if not (texts.get(lang) or "").strip()]
                if missing:
                    out.add(mdoc.name, mdoc.line(mpath), "message_missing_language",
                            f"message {key!r} has no text in language(s) {', '.join(missing)}")
                fields_by_lang: dict[str, set[str]] = {}
                for lang, text in texts.items():
                    wdoc, wpath = message_where.get((key, lang), (mdoc, mpath + (lang,)))
                    check_placeholders(text, contacts, wdoc, wpath, out, f"message {key} {lang}")
                    try:
                        fields_by_lang[lang] = _format_fields(text)
                    except ValueError as exc:
                        out.add(wdoc.name, wdoc.line(wpath), "message_format_invalid",
                                f"message {key!r} ({lang}) is not a valid format template: {exc} "
                                "(write a literal brace as {{ or }})")
                if len({frozenset(f) for f in fields_by_lang.values()}) > 1:
                    shown = "; ".join(f"{lang}: {{{', '.join(sorted(f))}}}" for lang, f in fields_by_lang.items())
                    out.add(mdoc.name, mdoc.line(mpath), "message_format_mismatch",
                            f"message {key!r} uses different format fields across languages ({shown})")
            for key in REQUIRED_MESSAGES:
                if key not in messages:
                    out.add(mdoc.name, mdoc.line(("messages",)), "missing_message",
                            f"message {key!r} is required (used by knowledge/render.py)")
    else:
        out.add(display_path(messages_path), None, "missing_file", "messages.yaml is missing")

    # ---- garbage calendars (5374 format) ---------------------------------------------
    garbage = _check_garbage(root / "garbage", out)

    # ---- consultation partners (knowledge/partners.py) ----------------------------------
    partners = check_partners(root, contacts, out)

    # ---- disaster alert templates (knowledge/alerts.py) ---------------------------------
    check_alerts(root, contacts, intents, out)

    # ---- language coverage ----------------------------------------------------------
    for lang in LANGUAGES:
        missing_ids = [i for i, intent in intents.items() if not (intent.answers.get(lang) or "").strip()]
        report.languages[lang] = {"answered": len(intents) - len(missing_ids), "missing": missing_ids}
    for lang in pending:
        missing_ids = report.languages[lang]["missing"]
        missing_msgs = [k for k, v in messages.items() if not (v.get(lang) or "").strip()]
        if intents and (missing_ids or missing_msgs):
            out.warn(display_path(topics_dir), None, "extra_language_incomplete",
                     f"{lang}: {len(intents) - len(missing_ids)}/{len(intents)} answers, "
                     f"{len(messages) - len(missing_msgs)}/{len(messages)} messages translated "
                     "(residents get English + Easy Japanese for the rest)")

    report.intents = len(intents)
    report.kb = KnowledgeBase(intents=intents, groups=groups, contacts=contacts or {}, messages=messages, root=root,
                              partners=partners, garbage=garbage)

    # ---- Easy Japanese, glossary, rendered length, dates (knowledge/textcheck.py) --------
    def _at(where: tuple[SourceDoc, Path_] | None) -> tuple[str, int | None]:
        return (where[0].name, where[0].line(where[1])) if where else (display_path(messages_path), None)

    check_texts(report.kb, out, contacts_doc=contacts_doc,
                locate_answer=lambda i, lang: _at(answer_where.get((i, lang)) or (
                    intent_where[i][0], intent_where[i][1] + ("answers", lang))),
                locate_message=lambda key, lang: _at(message_where.get((key, lang)) or (
                    (mdoc, ("messages", key, lang)) if mdoc else None)))

    report.errors = [p for p in out.problems if p.severity == "error"]
    report.warnings = [p for p in out.problems if p.severity == "warning"]
    return report



def _check_garbage(garbage_root: Path, out: Collector) -> dict[str, Any]:
    """Each calendar under knowledge/garbage must read; a SAMPLE calendar is a warning so
    the operator is reminded to replace it with the city's real data. Returns the valid
    calendars by directory name (they become ``KnowledgeBase.garbage``)."""
    loaded: dict[str, Any] = {}
    if not garbage_root.is_dir():
        return loaded
    for directory in sorted(p for p in garbage_root.iterdir() if p.is_dir()):
        try:
            garbage = load_garbage_set(directory)
        except GarbageFormatError as exc:
            for problem in exc.problems:
                out.add(display_path(Path(problem.file)), problem.line, "garbage_invalid", problem.message)
            continue
        loaded[directory.name] = garbage
        for calendar in garbage.calendars.values():
            for warning in calendar.warnings:
                out.warn(display_path(Path(warning.file)), warning.line, "garbage_warning", warning.message)
        if garbage.sample:
            out.warn(display_path(directory / "calendar.yaml"), None, "garbage_sample",
                     f"garbage calendar {garbage.name!r} is a SAMPLE (invented collection days); "
                     "replace it with the city's data (kurashi garbage import DIR)")
    return loaded


def _check_eval_overlap(eval_path: Path, intents: dict[str, Intent],
                        intent_where: dict[str, tuple[SourceDoc, Path_]], out: Collector) -> None:
    """Warn about sample questions that are (after normalisation) a text of the labelled
    evaluation set: the matcher would be tested on what it memorised."""
    import json

    texts: set[str] = set()
    try:
        for raw in eval_path.read_text(encoding="utf-8").splitlines():
            if raw.strip():
                text = json.loads(raw).get("text")
                if isinstance(text, str) and text.strip():
                    texts.add(_norm_sample(text))
    except (OSError, ValueError, AttributeError) as exc:
        out.warn(display_path(eval_path), None, "eval_unreadable", f"cannot read the evaluation set: {exc}")
        return
    for intent_id, intent in intents.items():
        doc, ipath = intent_where[intent_id]
        for lang, samples in intent.samples.items():
            for pos, sample in enumerate(samples):
                if _norm_sample(sample) in texts:
                    out.warn(doc.name, doc.line(ipath + ("samples", lang, pos)), "sample_in_eval_set",
                             f"{intent_id}: sample {sample!r} ({lang}) is a text of {display_path(eval_path.resolve())}; "
                             "write your own wording so the evaluation stays honest")
