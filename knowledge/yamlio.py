"""The bottom of knowledge/: line-aware YAML reading and problem reporting.

Owns: ``Problem`` (one error or warning with file and line), ``Report`` (what ``kurashi kb
check`` prints), ``Collector`` (where every check reports), ``SourceDoc`` and ``read_yaml``
(every mapping key and sequence item keeps the line it came from; duplicate keys and YAML
aliases are refused instead of silently accepted), ``validate_model`` (pydantic errors
mapped back to those lines) and ``read_optional_model`` (an optional file such as
partners.yaml or alerts.yaml).

Layers inside knowledge/ (see .importlinter): yamlio, schema and base at the bottom; the
checks of each file (placeholders, partners, alerts, textcheck, garbage, render) above
them; validate (the cross-file check) above those; the loader on top. Imports nothing from
bot/, intents/, scheduler/ or delivery/, and no other knowledge module but schema.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from knowledge.schema import LANGUAGES

#: The C loader composes several times faster; both keep node marks (line numbers).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: A location inside a YAML document: mapping keys and sequence indexes from the top.
Path_ = tuple[Any, ...]


# --------------------------------------------------------------------------------------
# Problems and the report
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One error or warning, pointing at a file and (when known) a 1-based line."""

    file: str
    line: int | None
    code: str
    message: str
    severity: str = "error"          # "error" | "warning"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity} [{self.code}] {self.message}"


@dataclass
class Report:
    """Everything ``kurashi kb check`` prints; ``kb`` is the loaded base (valid parts only)."""

    root: Path
    intents: int = 0
    languages: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    kb: Any = None                   # knowledge.loader.KnowledgeBase

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "intents": self.intents,
            "languages": self.languages,
            "errors": [p.as_dict() for p in self.errors],
            "warnings": [p.as_dict() for p in self.warnings],
        }


class Collector:
    """Collects problems once each (pydantic reports union failures once per member)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._seen: set[tuple] = set()

    def add(self, file: str, line: int | None, code: str, message: str, severity: str = "error") -> None:
        key = (file, line, code, message)
        if key not in self._seen:        # pydantic reports union failures once per member
            self._seen.add(key)
            self.problems.append(Problem(file, line, code, message, severity))

    def warn(self, file: str, line: int | None, code: str, message: str) -> None:
        self.add(file, line, code, message, "warning")


def display_path(path: Path) -> str:
    """A path operators can open: relative to the working directory when below it."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:                      # another drive (Windows)
        return str(path)


# --------------------------------------------------------------------------------------
# Line-aware YAML
# --------------------------------------------------------------------------------------

@dataclass
class SourceDoc:
    """A YAML document as plain Python data plus the line of every key / item path."""

    path: Path
    name: str                                # display name
    data: Any
    lines: dict[Path_, int]

    def line(self, path: Iterable[Any]) -> int | None:
        """Line of ``path`` or of its longest known prefix (pydantic locations can point
        below what exists, e.g. at a missing key or a union member)."""
        parts = tuple(p for p in path if p != "[key]")
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), 1)


def read_yaml(path: Path, out: Collector) -> SourceDoc | None:
    """Parse one YAML file keeping lines; reports syntax errors and duplicate keys."""
    name = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        out.add(name, None, "unreadable_file", f"cannot read file: {exc}")
        return None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        # The problem mark is where the parser noticed; the context mark (e.g. where an
        # unclosed bracket opened) is often where the fix goes, so both are shown.
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        detail = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        if exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
            detail += f" (the construct started at line {exc.context_mark.line + 1})"
        out.add(name, line, "yaml_syntax", f"YAML syntax error: {detail}")
        return None
    except yaml.YAMLError as exc:
        out.add(name, None, "yaml_syntax", f"YAML syntax error: {exc}")
        return None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}
    if node is None:
        return SourceDoc(path, name, None, {(): 1})
    alias_line = _first_alias(node)
    if alias_line is not None:
        # An alias repeats a whole subtree: a few lines can stand for billions of nodes (an
        # "alias bomb"). Knowledge files are written out in full.
        out.add(name, alias_line, "yaml_alias", "YAML anchors/aliases (&name, *name, <<) are not allowed "
                "in knowledge files: write the values out")
        return None
    try:
        data = _construct(node, (), lines, loader, name, out)
    except yaml.YAMLError as exc:           # e.g. an unknown !tag
        mark = getattr(exc, "problem_mark", None)
        out.add(name, mark.line + 1 if mark else None, "yaml_syntax", f"YAML error: {exc}")
        return None
    return SourceDoc(path, name, data, lines)


def _first_alias(root: yaml.Node) -> int | None:
    """Line of a node the composed document reaches twice (what an alias is), else None."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return node.start_mark.line + 1
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return None


def _construct(node: yaml.Node, path: Path_, lines: dict[Path_, int], loader, name: str, out: Collector) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)        # honour "<<" merge keys like safe_load does
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            key_line = key_node.start_mark.line + 1
            if isinstance(key, (list, dict)):
                out.add(name, key_line, "invalid", "a mapping key must be a plain value")
                continue
            child = path + (key,)
            if key in result:
                out.add(name, key_line, "duplicate_key",
                        f"duplicate key {key!r} (first at line {lines.get(child)}); "
                        "YAML would silently keep only the last one")
                # The later value wins (as in yaml.safe_load): forget the earlier lines.
                for stale in [p for p in lines if p[:len(child)] == child]:
                    del lines[stale]
            lines[child] = key_line
            result[key] = _construct(value_node, child, lines, loader, name, out)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            items.append(_construct(item, path + (index,), lines, loader, name, out))
        return items
    return loader.construct_object(node, deep=True)


# --------------------------------------------------------------------------------------
# Schema validation with lines
# --------------------------------------------------------------------------------------

_CODE_BY_PYDANTIC = {"extra_forbidden": "unknown_key", "missing": "missing_field"}


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def read_optional_model(path: Path, model: type[BaseModel], out: Collector) -> tuple[SourceDoc, BaseModel] | None:
    """Read and validate an optional knowledge file (partners.yaml, alerts.yaml).

    None when the file is absent, unreadable or invalid (problems are reported to ``out``).
    """
    if not path.exists():
        return None
    doc = read_yaml(path, out)
    if doc is None:
        return None
    parsed = validate_model(model, doc, out)
    if parsed is None:
        return None
    return doc, parsed


def validate_model(model: type[BaseModel], doc: SourceDoc, out: Collector, prefix: Path_ = (), data: Any = None,
              context: str = "") -> BaseModel | None:
    """Validate ``data`` (default the whole document) against ``model``; errors get lines."""
    try:
        return model.model_validate(doc.data if data is None else data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = prefix + tuple(err["loc"])
            code = _CODE_BY_PYDANTIC.get(err["type"], "invalid")
            if err["type"] == "literal_error" and loc and loc[-1] == "[key]":
                code = "unknown_language"
            where = _where(loc)
            if code == "unknown_key":
                message = f"unknown key {loc[-1]!r} at {where}"
            elif code == "missing_field":
                message = f"missing required field {where}"
            elif code == "unknown_language":
                message = f"unknown language {loc[-2]!r} at {where} (allowed: {', '.join(LANGUAGES)})"
            else:
                message = f"{where}: {err['msg']}"
            out.add(doc.name, doc.line(loc), code, message + context)
        return None
