"""Load YAML into plain Python values plus a map of where every key and value was written.

ruamel.yaml parses YAML 1.2 (so `no`, `on` and `22:22` stay strings). Anything that would
let a file do more than hold data is refused: tags, merge keys, duplicate keys, very deep
or very large alias expansions.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from generator.errors import Diagnostic, Location, PosnetError

YamlPath = tuple[str | int, ...]
NODE_BUDGET = 200_000
MAX_BYTES = 4 * 1024 * 1024


@dataclass
class Positions:
    """Where each value (and each mapping key) came from, by document path."""

    values: dict[YamlPath, Location] = field(default_factory=dict)
    keys: dict[YamlPath, Location] = field(default_factory=dict)

    def value(self, path: YamlPath) -> Location | None:
        return self.values.get(path)

    def nearest(self, path: YamlPath, prefer_key: bool = False) -> Location | None:
        """Closest known position: the key itself, or the deepest known ancestor."""
        p = tuple(path)
        while True:
            if prefer_key and p in self.keys:
                return self.keys[p]
            if p in self.values:
                return self.values[p]
            if not p:
                return None
            p = p[:-1]


@dataclass
class Document:
    data: Any
    positions: Positions
    file: str


def _fail(file: str, line: int, col: int, message: str, expected: str = "") -> PosnetError:
    return PosnetError(
        [Diagnostic(Location(file, line, col), "E001", message, path="", expected=expected)]
    )


def _decode(raw: bytes, file: str) -> str:
    if len(raw) > MAX_BYTES:
        raise _fail(file, 0, 0, f"file is larger than {MAX_BYTES // 1024 // 1024} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(file, line, col, "file is not valid UTF-8", "UTF-8 text") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        col = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise _fail(file, line, col, "file contains a NUL byte", "UTF-8 text")
    return text


class _Walker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.positions = Positions()
        self.budget = NODE_BUDGET
        self.active: set[int] = set()

    def loc(self, line: int, col: int) -> Location:
        return Location(self.file, line + 1, col + 1)

    def walk(self, node: Any, path: YamlPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _fail(self.file, 0, 0, "document expands to too many nodes (alias bomb?)")
        if len(path) > 64:
            loc = self.positions.nearest(path) or Location(self.file)
            raise _fail(self.file, loc.line, loc.col, "document is nested too deeply")
        if isinstance(node, TaggedScalar) or (
            getattr(node, "tag", None) is not None
            and getattr(getattr(node, "tag", None), "value", None)
            and not str(node.tag.value).startswith("tag:yaml.org,2002:")
        ):
            loc = self.positions.nearest(path) or Location(self.file)
            raise _fail(
                self.file, loc.line, loc.col, "YAML tags are not allowed", "plain YAML data"
            )
        if isinstance(node, CommentedMap):
            if id(node) in self.active:
                loc = self.positions.nearest(path) or Location(self.file)
                raise _fail(self.file, loc.line, loc.col, "recursive alias")
            if getattr(node, "merge", None):
                loc = self.positions.nearest(path) or Location(self.file)
                raise _fail(
                    self.file,
                    loc.line,
                    loc.col,
                    "merge keys (<<) are not supported",
                    "explicit keys (use fleet or group defaults to share values)",
                )
            self.active.add(id(node))
            out: dict[str, Any] = {}
            for key in node:
                kline, kcol, vline, vcol = node.lc.data[key]
                if not isinstance(key, str):
                    raise _fail(
                        self.file, kline + 1, kcol + 1, "mapping keys must be strings", "a name"
                    )
                sub = (*path, key)
                self.positions.keys[sub] = self.loc(kline, kcol)
                self.positions.values[sub] = self.loc(vline, vcol)
                out[key] = self.walk(node[key], sub)
            self.active.discard(id(node))
            return out
        if isinstance(node, CommentedSeq):
            if id(node) in self.active:
                loc = self.positions.nearest(path) or Location(self.file)
                raise _fail(self.file, loc.line, loc.col, "recursive alias")
            self.active.add(id(node))
            items = []
            for i, item in enumerate(node):
                line, col = node.lc.data[i]
                sub = (*path, i)
                self.positions.values[sub] = self.loc(line, col)
                items.append(self.walk(item, sub))
            self.active.discard(id(node))
            return items
        if isinstance(node, bool) or node is None:
            return bool(node) if node is not None else None
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, str):
            return str(node)
        if isinstance(node, datetime.date | datetime.datetime):
            # YAML 1.2 resolves dates; posnet has no date fields, so quote them as text.
            return node.isoformat()
        if isinstance(node, bytes):
            loc = self.positions.nearest(path) or Location(self.file)
            raise _fail(self.file, loc.line, loc.col, "binary values are not allowed")
        loc = self.positions.nearest(path) or Location(self.file)
        raise _fail(self.file, loc.line, loc.col, f"unsupported YAML value ({type(node).__name__})")


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.version = (1, 2)
    y.allow_duplicate_keys = False
    return y


def loads(text: str, file: str) -> Document:
    """Parse one YAML document; raise PosnetError with a located message on any problem."""
    try:
        docs = list(_yaml().load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        if "duplicate key" in problem or "found duplicate key" in str(exc):
            problem = "duplicate key"
            if exc.problem_mark:
                line, col = exc.problem_mark.line + 1, exc.problem_mark.column + 1
        extra = ""
        if exc.context and exc.problem and exc.context_mark and exc.context != exc.problem:
            cm = exc.context_mark
            extra = f" ({exc.context.strip()} at line {cm.line + 1}, column {cm.column + 1})"
        raise _fail(file, line, col, f"invalid YAML: {problem}{extra}") from None
    except YAMLError as exc:
        raise _fail(file, 0, 0, f"invalid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise _fail(file, 0, 0, "document is nested too deeply") from None
    if len(docs) > 1:
        raise _fail(file, 0, 0, "file holds more than one YAML document", "exactly one document")
    walker = _Walker(file)
    walker.positions.values[()] = Location(file, 1, 1)
    data = walker.walk(docs[0] if docs else None, ())
    return Document(data, walker.positions, file)


def load_file(path: Path, display: str | None = None) -> Document:
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(name, 0, 0, f"cannot read file: {exc.strerror}") from None
    return loads(_decode(raw, name), name)
