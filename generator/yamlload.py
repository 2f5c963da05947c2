"""Load YAML into plain Python values plus a map of where every key and value was written.

ruamel.yaml parses YAML 1.2 (so `no`, `on` and `22:22` stay strings). Anything that would
let a file do more than hold data is refused: tags, merge keys (`<<` as a plain key,
whatever its value), duplicate keys, very deep or very large alias expansions. So is a
number not written in plain decimal (`8_443`, `0b11`, `0o17`, `017`, `0x1F`, `+80`):
YAML 1.1 tools, YAML 1.2 tools and ruamel read most of them differently.

ruamel is pure Python (about 8 ms for a store file); a fleet of 10,000 stores would spend
over a minute parsing. So plain documents take a fast path: libyaml's C parser (through
PyYAML, when installed) emits the events, and a small composer here builds the same data
and positions, resolving scalars with ruamel's own YAML 1.2 rules. Anything the fast
path is not certain to treat exactly like ruamel (tags, anchors, directives, several
documents, duplicate or non-text keys, empty values, block scalars, escapes, tabs,
control characters, numbers other than plain decimals, syntax errors) goes down the
ruamel path, which reports problems with its own messages. A document past the value
budget is refused as soon as a parser has counted that far, before anything is built.
"""

from __future__ import annotations

import datetime
import errno
import importlib
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import implicit_resolvers
from ruamel.yaml.tokens import ScalarToken

from generator.errors import Diagnostic, Location, PosnetError

YamlPath = tuple[str | int, ...]
NODE_BUDGET = 200_000
MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64


Mark = tuple[int, int]  # 1-based line and column


@dataclass
class Positions:
    """Where each value (and each mapping key) of one file came from, by document path.

    Marks are kept as (line, col) pairs and become Locations only when asked for: a
    fleet holds about 80 per store, and the cache restores them with one unpickle.
    """

    file: str = ""
    values: dict[YamlPath, Mark] = field(default_factory=dict)
    keys: dict[YamlPath, Mark] = field(default_factory=dict)

    def _at(self, mark: Mark | None) -> Location | None:
        return None if mark is None else Location(self.file, mark[0], mark[1])

    def value(self, path: YamlPath) -> Location | None:
        return self._at(self.values.get(path))

    def key(self, path: YamlPath) -> Location | None:
        return self._at(self.keys.get(path))

    def nearest(self, path: YamlPath, prefer_key: bool = False) -> Location | None:
        """Closest known position: the key itself, or the deepest known ancestor."""
        p = tuple(path)
        while True:
            if prefer_key and p in self.keys:
                return self._at(self.keys[p])
            if p in self.values:
                return self._at(self.values[p])
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


def _fail_at(file: str, text: str, at: int, message: str, expected: str = "") -> PosnetError:
    """_fail() at the character offset `at` of `text` (1-based line and column)."""
    line = text.count("\n", 0, at) + 1
    return _fail(file, line, at - (text.rfind("\n", 0, at) + 1) + 1, message, expected)


def _decode(raw: bytes, file: str) -> str:
    if len(raw) > MAX_BYTES:
        raise _fail(file, 0, 0, f"file is larger than {MAX_BYTES // 1024 // 1024} MiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = f"byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        raise _fail(file, line, col, f"file is not valid UTF-8: {bad}", "UTF-8 text") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    nul = text.find("\0")
    if nul >= 0:
        raise _fail_at(file, text, nul, "file contains a NUL byte", "UTF-8 text")
    odd = None if text.isascii() else _ODD_BREAK.search(text)
    if odd:
        raise _fail_at(
            file,
            text,
            odd.start(),
            f"file contains U+{ord(odd.group()):04X}, which YAML 1.1 parsers (and ruamel) read "
            "as a line break and YAML 1.2 as a character: the file would mean different things",
            "a plain line break, or no such character (also not in a comment)",
        )
    return text


# NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR: line breaks in YAML 1.1, not in 1.2
_ODD_BREAK = re.compile("[\x85\u2028\u2029]")


# YAML 1.1 types ruamel gives a plain `=` and `<<` (as a value) under YAML 1.2 too.
_YAML11_TEXT = frozenset({"tag:yaml.org,2002:value", "tag:yaml.org,2002:merge"})


class _Walker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.positions = Positions(file)
        self.budget = NODE_BUDGET
        self.active: set[int] = set()

    def walk(self, node: Any, path: YamlPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            loc = self.positions.nearest(path) or Location(self.file)
            raise _fail(
                self.file,
                loc.line,
                loc.col,
                "document expands to too many nodes (alias bomb?)",
                f"at most {NODE_BUDGET} values after expanding aliases",
            )
        if len(path) > MAX_DEPTH:
            loc = self.positions.nearest(path) or Location(self.file)
            raise _fail(self.file, loc.line, loc.col, "document is nested too deeply")
        if isinstance(node, TaggedScalar) and str(node.tag.value) in _YAML11_TEXT:
            # A plain `=` or `<<` (an explicit tag is refused before this, in
            # _check_events): text under YAML 1.2's core schema, but ruamel resolves
            # them to YAML 1.1's value and merge types, even in 1.2 mode.
            return str(node.value)
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
            self.active.add(id(node))
            out: dict[str, Any] = {}
            for key in node:
                kline, kcol, vline, vcol = node.lc.data[key]
                if not isinstance(key, str):
                    raise _fail(
                        self.file, kline + 1, kcol + 1, "mapping keys must be strings", "a name"
                    )
                sub = (*path, key)
                self.positions.keys[sub] = (kline + 1, kcol + 1)
                self.positions.values[sub] = (vline + 1, vcol + 1)
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
                self.positions.values[sub] = (line + 1, col + 1)
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


_SAFE_NAME = re.compile(r"[\w.-]{1,64}")
_SAFE_TAG = re.compile(r"[\w!:/.,<>-]{1,80}")
# Keys whose values are secret references: an unquoted `password: !hunter2` is read as a
# tag, so a tag there is never echoed (tests/test_hostile_input.py keeps this in step with
# the SecretRef fields of the model).
SECRET_KEYS = frozenset(
    {"password", "certificate", "key", "htpasswd", "client_ca", "token", "client_secret"}
    | {"auth_secret", "upstream_ca", "upstream_certificate"}
)
# What a user most likely meant, by the parser's complaint.
_SYNTAX_HINTS = (
    ("'\\t'", "indentation with spaces (YAML does not allow tabs)"),
    ("mapping values are not allowed", "consistent indentation; quote a value containing ': '"),
    ("expected ',' or ']'", "a closing ']'"),
    ("expected ',' or '}'", "a closing '}'"),
    ("unexpected end of stream", "a closing quote"),
    ("expected <block end>", "consistent indentation"),
)


class _ValueBudget:
    """Counts a document's values (keys aside, as _Walker counts them) while a parser
    emits them, and refuses the first one past NODE_BUDGET where it starts: a huge plain
    document is refused after being read that far, never built whole first (ruamel took
    110 s on 4 MiB of `[1, 1, ...]` before the walker refused it)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.left = NODE_BUDGET

    def spend(self, mark: Any) -> None:
        self.left -= 1
        if self.left < 0:
            self.refuse(mark)

    def refuse(self, mark: Any) -> NoReturn:
        """The value at `mark` is one too many (the caller counted it in `left`)."""
        raise _fail(
            self.file,
            mark.line + 1,
            mark.column + 1,
            "document holds too many values",
            f"at most {NODE_BUDGET} values in one file",
        )


def _check_events(text: str, file: str) -> None:
    """Refuse explicit tags and extra documents before anything is constructed."""
    docs = depth = 0
    budget = _ValueBudget(file)
    # Per open collection: is it a mapping, is a key due next, the last key seen.
    frames: list[list[Any]] = []
    for ev in _yaml().parse(text):
        mark = ev.start_mark
        owner = None  # the key this node is the value of
        is_key = False
        if isinstance(ev, ScalarEvent | MappingStartEvent | SequenceStartEvent | AliasEvent):
            frame = frames[-1] if frames else [False, False, None]
            if frame[0]:
                is_key = bool(frame[1])
                if frame[1] and isinstance(ev, ScalarEvent):
                    frame[2] = ev.value
                elif not frame[1]:
                    owner = frame[2]
                frame[1] = not frame[1]
            if not frame[0] or frame[1]:  # a value (frame[1] now: a key is due next)
                budget.spend(mark)
        tag = getattr(ev, "tag", None)
        if isinstance(ev, ScalarEvent) and ev.style is None and tag is None:
            if is_key and ev.value == "<<":
                raise _fail(
                    file,
                    mark.line + 1,
                    mark.column + 1,
                    "merge keys (<<) are not supported: YAML 1.1 tools merge its value in, "
                    "YAML 1.2 reads a key named '<<'",
                    "explicit keys (use fleet or group defaults to share values)",
                )
            if ev.value[:1] in _NUMBER_START:
                secret = owner in SECRET_KEYS or bool(frames and frames[-1][2] in SECRET_KEYS)
                _plain_decimal(ev.value, secret, file, mark)
        if tag is not None:
            secret = owner in SECRET_KEYS or bool(frames and frames[-1][2] in SECRET_KEYS)
            shown = "" if secret or not _SAFE_TAG.fullmatch(str(tag)) else f" (found {tag})"
            raise _fail(
                file,
                mark.line + 1,
                mark.column + 1,
                f"YAML tags are not allowed{shown}",
                "plain YAML data; quote a value that starts with '!'",
            )
        if isinstance(ev, MappingStartEvent | SequenceStartEvent):
            frames.append([isinstance(ev, MappingStartEvent), True, None])
            depth += 1
            if depth > MAX_DEPTH:
                raise _fail(
                    file,
                    mark.line + 1,
                    mark.column + 1,
                    "document is nested too deeply",
                    f"at most {MAX_DEPTH} levels of nesting",
                )
        elif isinstance(ev, MappingEndEvent | SequenceEndEvent):
            depth -= 1
            frames.pop()
        if isinstance(ev, DocumentStartEvent):
            docs += 1
            if docs > 1:
                raise _fail(
                    file,
                    mark.line + 1,
                    mark.column + 1,
                    "file holds more than one YAML document",
                    "exactly one document (remove this '---' and what follows)",
                )


_NUMBER_START = frozenset("+-.0123456789")
# YAML 1.2's core schema (the integers it reads; 1.2 reads `8_443` and `0b11` as text)
_CORE_INT = ((re.compile(r"[-+]?[0-9]+"), 10), (re.compile(r"0o[0-7]+"), 8))
_CORE_HEX = re.compile(r"0x[0-9a-fA-F]+")
# YAML 1.1's integers (underscores allowed; a leading 0 is octal; base 60 with ':')
_V11_INT = (
    (re.compile(r"[-+]?0b[0-1_]+"), 2),
    (re.compile(r"[-+]?0x[0-9a-fA-F_]+"), 16),
    (re.compile(r"[-+]?0[0-7_]+"), 8),
    (re.compile(r"[-+]?(?:0|[1-9][0-9_]*)"), 10),
)
_V11_BASE60 = re.compile(r"[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+")
# YAML 1.1's booleans besides true/false (text in YAML 1.2)
V11_BOOLS = frozenset(
    w for b in ("yes", "no", "on", "off", "y", "n") for w in (b, b.capitalize(), b.upper())
)
_V11_FLOAT = re.compile(r"[-+]?(?:[0-9][0-9_]*)?\.[0-9.]*(?:[eE][-+][0-9]+)?")


def _int_in(value: str, forms: tuple[tuple[re.Pattern[str], int], ...]) -> int | None:
    for rx, base in forms:
        if rx.fullmatch(value):
            sign = -1 if value[:1] == "-" else 1
            digits = value.lstrip("+-").replace("_", "")
            if base != 10:
                digits = digits[2:] if digits[1:2] in ("b", "o", "x") else digits
            return sign * int(digits, base)
    return None


def yaml12_reading(value: str) -> int | str:
    """What YAML 1.2's core schema reads a plain integer-like scalar as (text if none)."""
    if _CORE_HEX.fullmatch(value):
        return int(value[2:], 16)
    n = _int_in(value, _CORE_INT)
    return value if n is None else n


def yaml11_reading(value: str) -> int | float | str:
    """What a YAML 1.1 parser (PyYAML, Ansible) reads the same plain scalar as."""
    n = _int_in(value, _V11_INT)
    if n is not None:
        return n
    if _V11_BASE60.fullmatch(value):
        sign = -1 if value[:1] == "-" else 1
        total = 0
        for part in value.lstrip("+-").replace("_", "").split(":"):
            total = total * 60 + int(part)
        return sign * total
    if _V11_FLOAT.fullmatch(value) and any(c.isdigit() for c in value):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return value
    return value


def _reading(v: int | float | str) -> str:
    return "text" if isinstance(v, str) else f"the number {v}"


def _plain_decimal(value: str, secret: bool, file: str, mark: Any) -> None:
    """Refuse a plain scalar that ruamel reads as a number not written in plain decimal
    (`8_443`, `0b11`, `0o17`, `017`, `0x1F`, `+80`, `1_000.5`): YAML 1.1 and 1.2 tools
    (and editors checking the schemas) read most of these as other numbers or as text.
    Plain decimals (`8443`, `-1`) and text (`1:20`, `yes`) pass: 1.2 reads those alike."""
    tag = next((t for t, rx in _plain_candidates(value) if rx.match(value)), _STR)
    if tag.endswith(":int"):
        if _DECIMAL.fullmatch(value):
            return
    elif not (tag.endswith(":float") and "_" in value):
        return
    v12, v11 = yaml12_reading(value), yaml11_reading(value)
    shown = "this value" if secret else f"'{value}'"
    if v12 == v11 and type(v12) is type(v11):
        why = "posnet reads integers written in plain decimal only"
    else:
        why = f"YAML 1.2 reads it as {_reading(v12)}, YAML 1.1 as {_reading(v11)}"
    number = v12 if isinstance(v12, int) else v11
    example = "" if secret or isinstance(number, str) else f" ({number})"
    raise _fail(
        file,
        mark.line + 1,
        mark.column + 1,
        f"{shown} is not a plain decimal number: {why}",
        f"a plain decimal{example}, or the value in quotes if it is text",
    )


def _open_quote(text: str) -> tuple[int, int] | None:
    """Start of the last quoted value spanning lines: posnet specs have none, so it is
    almost always a missing closing quote that swallowed the lines after it."""
    found = None
    try:
        for tok in _yaml().scan(text):
            if (
                isinstance(tok, ScalarToken)
                and tok.style in ('"', "'")
                and tok.end_mark.line > tok.start_mark.line
            ):
                found = (tok.start_mark.line + 1, tok.start_mark.column + 1)
    except YAMLError:
        pass
    return found


# The parser quotes what it found: an alias or anchor name, a run of characters. Any of
# it may be a secret typed unquoted (`password: *hunter2`), so only one character of it
# is ever kept; the location says where to look.
_QUOTED = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")


def _unquote(text: str) -> str:
    def keep(m: re.Match[str]) -> str:
        inner = m.group(1) if m.group(1) is not None else m.group(2)
        return m.group() if len(inner) <= 1 or inner == "\\t" else "(...)"

    return _QUOTED.sub(keep, text)


def _syntax_error(exc: MarkedYAMLError, text: str, file: str) -> PosnetError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 0
    col = mark.column + 1 if mark else 0
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    if "undefined alias" in problem:
        return _fail(
            file,
            line,
            col,
            "invalid YAML: a value starting with '*' is read as an alias, and no anchor defines it",
            "quote a value that starts with '*'",
        )
    expected = next((h for k, h in _SYNTAX_HINTS if k in problem), "")
    if "duplicate key" in problem:
        # ruamel's text holds both values, which may be secrets: keep only the key.
        m = re.search(r'duplicate key "(.*?)" with value', problem)
        key = m.group(1) if m and _SAFE_NAME.fullmatch(m.group(1)) else ""
        return _fail(
            file,
            line,
            col,
            f"invalid YAML: duplicate key '{key}'" if key else "invalid YAML: duplicate key",
            "each key at most once per mapping",
        )
    problem = _unquote(problem)
    cm = exc.context_mark
    context = _unquote((exc.context or "").strip())
    unclosed = "quoted scalar" in context and "end of stream" in problem
    unclosed = unclosed or ("flow" in context and problem.startswith("expected ','"))
    if unclosed and cm is not None:
        # The user's mistake is where the quote or bracket opens, not where parsing gave up.
        what = "quoted value" if "quoted" in context else context.split()[-1]
        return _fail(
            file,
            cm.line + 1,
            cm.column + 1,
            f"invalid YAML: this {what} is never closed ({problem} at line {line}, column {col})",
            expected,
        )
    extra = ""
    if context and exc.problem and cm is not None and context != problem:
        extra = f" ({context} at line {cm.line + 1}, column {cm.column + 1})"
    quote = _open_quote(text)
    if quote is not None and quote[0] <= line:
        extra += f"; parsing failed at line {line}, column {col}"
        line, col = quote
        problem = f"the quoted value here runs over several lines ({problem})"
        expected = "a closing quote on the same line"
    return _fail(file, line, col, f"invalid YAML: {problem}{extra}", expected)


_DIRECTIVE = re.compile(r"^%", re.MULTILINE)


def _no_directives(text: str, file: str) -> None:
    """`%YAML 1.1` would switch the parser to YAML 1.1 scalars (octal 010, 22:22 as a
    number, yes/no as booleans) behind the README's promise of 1.2; `%TAG` aliases tags.
    A line can only start with '%' as a directive, so any such line is refused."""
    m = _DIRECTIVE.search(text) if "%" in text else None
    if m is not None:
        raise _fail_at(
            file,
            text,
            m.start(),  # a line's first character: column 1
            "YAML directives (%YAML, %TAG) are not allowed: posnet reads YAML 1.2 only",
            "no line starting with '%' (remove the directive; quote a value starting with '%')",
        )


def loads(text: str, file: str) -> Document:
    """Parse one YAML document; raise PosnetError with a located message on any problem."""
    _no_directives(text, file)
    fast = _fast_loads(text, file)
    if fast is not None:
        return fast
    _refuse_too_many_values(text, file)
    return ruamel_loads(text, file)


def ruamel_loads(text: str, file: str) -> Document:
    """The reference path: ruamel parses, _Walker checks and records positions."""
    try:
        _check_events(text, file)
        docs = list(_yaml().load_all(text))
    except MarkedYAMLError as exc:
        raise _syntax_error(exc, text, file) from None
    except ReaderError as exc:
        i = int(exc.position)
        ch = exc.character
        code = ch[0] if isinstance(ch, bytes) else int(ch)
        raise _fail_at(
            file,
            text,
            i,
            f"invalid YAML: character U+{code:04X} is not allowed in YAML",
            'printable text (write control characters as escapes, e.g. "\\t")',
        ) from None
    except YAMLError as exc:
        raise _fail(file, 0, 0, f"invalid YAML: {_unquote(str(exc).splitlines()[0])}") from None
    except RecursionError:
        raise _fail(file, 0, 0, "document is nested too deeply") from None
    if len(docs) > 1:  # _check_events reports it with a line; never ignore a document
        raise _fail(file, 0, 0, "file holds more than one YAML document", "exactly one document")
    walker = _Walker(file)
    walker.positions.values[()] = (1, 1)
    data = walker.walk(docs[0] if docs else None, ())
    return Document(data, walker.positions, file)


# ----------------------------------------------------------------- libyaml fast path

_ev: Any = None
_CParser: Any = None
_CYAMLError: Any = None
try:  # PyYAML is typed Any here: its stubs are optional, and so is PyYAML itself
    _ev = importlib.import_module("yaml.events")
    _CParser = importlib.import_module("yaml._yaml").CParser
    _CYAMLError = importlib.import_module("yaml").YAMLError
except ImportError:  # PyYAML without libyaml, or no PyYAML: ruamel does it all
    _CParser = None
# the event classes _Composer compares with `is` (None without PyYAML: never reached)
_SCALAR, _MAP_START, _MAP_END, _SEQ_START, _SEQ_END = (
    getattr(_ev, name, None)
    for name in (
        "ScalarEvent",
        "MappingStartEvent",
        "MappingEndEvent",
        "SequenceStartEvent",
        "SequenceEndEvent",
    )
)

# Only printable text and newlines, no tag, escape or directive characters; the rest
# (tabs, CR, controls, Unicode line breaks, BOMs...) is where YAML 1.1 and 1.2 parsers
# may differ. Printable non-ASCII (a store named Liège) is plain text to both: a fleet
# with accented names would otherwise parse 25 times slower.
_NOT_FAST = re.compile(
    "[^\x20-\x7e\n\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]|[!\\\\]|^%",
    re.MULTILINE,
)
# The same test for ASCII text, by bytes.translate: 1 us a store file instead of 17 (a
# twentieth of a cold load's parsing).
_FAST_ASCII = bytes([0x0A, *range(0x20, 0x7F)]).translate(None, b"!\\")


def _fast_text(text: str) -> bool:
    """_NOT_FAST finds nothing in `text`."""
    if text.isascii():
        odd = text.encode("ascii").translate(None, _FAST_ASCII)
        return not odd and not text.startswith("%") and "\n%" not in text
    return _NOT_FAST.search(text) is None


_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)")
_STR = "tag:yaml.org,2002:str"
_TRUE = frozenset(("true", "True", "TRUE"))
_BLOCK = ("|", ">")


def _resolvers_12() -> dict[str | None, list[tuple[str, Any]]]:
    """ruamel's implicit YAML 1.2 resolvers, by first character (as it applies them)."""
    table: dict[str | None, list[tuple[str, Any]]] = {}
    for versions, tag, regexp, first in implicit_resolvers:
        if (1, 2) in versions:
            for ch in first if first is not None else [None]:
                table.setdefault(ch, []).append((tag, regexp))
    return table


_RESOLVERS = _resolvers_12()


class _Slow(Exception):
    """The fast path cannot vouch for this document: let ruamel load it."""


_SLOW = object()


def _plain_candidates(value: str) -> list[tuple[str, Any]]:
    """ruamel's YAML 1.2 resolvers that may apply to a plain scalar, in its order."""
    return [*_RESOLVERS.get(value[:1] if value else "", []), *_RESOLVERS.get(None, [])]


@lru_cache(maxsize=4096)
def _plain_value(value: str) -> Any:
    """A plain scalar's value, or _SLOW; store files repeat most of theirs (ports, true)."""
    tag = next((t for t, rx in _plain_candidates(value) if rx.match(value)), _STR)
    if tag in (_STR, "tag:yaml.org,2002:value"):  # `=` is text in YAML 1.2
        return value
    if tag.endswith(":bool"):
        return value in _TRUE
    if tag.endswith(":int") and _DECIMAL.fullmatch(value):
        return int(value)
    if tag.endswith(":null") and value:  # an empty value: ruamel places it differently
        return None
    return _SLOW


def _plain(value: str) -> Any:
    out = _plain_value(value)
    if out is _SLOW:
        raise _Slow
    return out


class _Composer:
    """Builds data and positions from libyaml events, exactly as ruamel + _Walker would."""

    def __init__(self, parser: Any, file: str) -> None:
        self.next = parser.get_event
        self.file = file
        self.positions = Positions(file)
        self.positions.values[()] = (1, 1)
        self.budget = _ValueBudget(file)

    def scalar(self, ev: Any) -> Any:
        if type(ev) is not _SCALAR or ev.anchor is not None or ev.tag is not None:
            raise _Slow
        if ev.style in _BLOCK:  # libyaml takes `>#c`, which YAML 1.2 (and ruamel) refuse
            raise _Slow
        return _plain(ev.value) if ev.implicit[0] else ev.value

    def node(self, ev: Any, path: YamlPath) -> Any:
        """One value and what it holds. The hot loop of a cold load (a third of a store's
        parsing): a scalar value is read in line, and marks and budget without calls."""
        budget = self.budget
        budget.left -= 1  # counted in line (budget.spend): past it, refused here
        if budget.left < 0:
            budget.refuse(ev.start_mark)
        kind = type(ev)
        if kind is _SCALAR:
            return self.scalar(ev)
        if ev.anchor is not None or ev.tag is not None or len(path) >= MAX_DEPTH - 1:
            raise _Slow
        values, keys, nxt = self.positions.values, self.positions.keys, self.next
        if kind is _MAP_START:
            out: dict[str, Any] = {}
            while (kind := type(kev := nxt())) is not _MAP_END:
                if kind is not _SCALAR or kev.anchor is not None or kev.tag is not None:
                    raise _Slow
                # a quoted key (a block scalar: _Slow), else a plain one
                key = _plain_value(kev.value) if kev.implicit[0] else self.scalar(kev)
                if type(key) is not str or key in out:
                    raise _Slow
                sub = (*path, key)
                mark = kev.start_mark
                keys[sub] = (mark.line + 1, mark.column + 1)
                vev = nxt()
                mark = vev.start_mark
                values[sub] = (mark.line + 1, mark.column + 1)
                if type(vev) is _SCALAR:
                    budget.left -= 1
                    if budget.left < 0:
                        budget.refuse(mark)
                    out[key] = self.scalar(vev)
                else:
                    out[key] = self.node(vev, sub)
            return out
        if kind is _SEQ_START:
            items: list[Any] = []
            while type(iev := nxt()) is not _SEQ_END:
                sub = (*path, len(items))
                mark = iev.start_mark
                values[sub] = (mark.line + 1, mark.column + 1)
                items.append(self.node(iev, sub))
            return items
        raise _Slow  # an alias

    def document(self) -> Document:
        self.next()  # stream start
        ev = self.next()
        data = None
        if type(ev) is _ev.DocumentStartEvent:
            if ev.version is not None or ev.tags:
                raise _Slow
            data = self.node(self.next(), ())
            self.next()  # document end
            if type(self.next()) is not _ev.StreamEndEvent:
                raise _Slow  # another document
        return Document(data, self.positions, self.file)


def fast_parser() -> str:
    """Which parser reads plain documents (part of the cache key: they must agree)."""
    if _CParser is None:
        return "ruamel"
    return f"libyaml {importlib.import_module('yaml').__version__}"


def _fast_loads(text: str, file: str) -> Document | None:
    """The document as ruamel would load it, or None when ruamel must decide."""
    if _CParser is None or not _fast_text(text):
        return None
    parser = _CParser(text)
    try:
        return _Composer(parser, file).document()
    except (_Slow, _CYAMLError):
        return None
    finally:
        parser.dispose()


def _refuse_too_many_values(text: str, file: str) -> None:
    """Count the values with libyaml before ruamel reads a document the fast path left
    (20 times faster than ruamel's own pass); a syntax error is ruamel's to report."""
    if _CParser is None:
        return  # _check_events counts them in ruamel's own pass
    nodes = (_ev.ScalarEvent, _ev.MappingStartEvent, _ev.SequenceStartEvent, _ev.AliasEvent)
    ends = (_ev.MappingEndEvent, _ev.SequenceEndEvent)
    budget = _ValueBudget(file)
    keys_due: list[bool | None] = []  # per open collection: None in a sequence
    parser = _CParser(text)
    try:
        while (ev := parser.get_event()) is not None:
            kind = type(ev)
            if kind in ends:
                keys_due.pop()
            elif kind in nodes:
                key_due = keys_due[-1] if keys_due else None
                if key_due is not None:
                    keys_due[-1] = not key_due
                if not key_due:
                    budget.spend(ev.start_mark)
                if kind is _ev.MappingStartEvent:
                    keys_due.append(True)
                elif kind is _ev.SequenceStartEvent:
                    keys_due.append(None)
    except _CYAMLError:
        return
    finally:
        parser.dispose()


def link_error(name: str) -> PosnetError:
    """A symbolic link where a spec file should be (also what `diff` says of a link
    committed to Git, whose target it never reads either)."""
    return _fail(
        name,
        0,
        0,
        "is a symbolic link; posnet reads no links inside a fleet folder "
        "(a link's target is not reviewed with the repository)",
        "the file itself in its place",
    )


def read_file(path: Path, name: str, follow: bool = True) -> bytes:
    """A spec file's bytes: a regular file, size-checked before it is read (never a
    FIFO or /dev/zero that would hang or fill memory); `follow=False` refuses a link."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise link_error(name) from None
        raise _fail(name, 0, 0, f"cannot read file: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _fail(name, 0, 0, "cannot read file: Is a directory", "a YAML file")
        if not stat.S_ISREG(st.st_mode):
            raise _fail(name, 0, 0, "is not a regular file (a FIFO or a device)", "a YAML file")
        if st.st_size > MAX_BYTES:
            raise _fail(name, 0, 0, f"file is larger than {MAX_BYTES // 1024 // 1024} MiB")
        chunks = []
        left = MAX_BYTES + 1  # a file growing while read is still cut at the limit
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise _fail(name, 0, 0, f"cannot read file: {exc.strerror}") from None
    finally:
        os.close(fd)


def load_file(path: Path, display: str | None = None, follow: bool = True) -> Document:
    name = display or str(path)
    return load_bytes(read_file(path, name, follow), name)


def load_bytes(raw: bytes, name: str) -> Document:
    """A file's bytes, already read (the loader hashes them first to find cached results)."""
    return loads(_decode(raw, name), name)
