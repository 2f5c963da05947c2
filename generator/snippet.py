"""The offending source line under a diagnostic, with a caret under its column.

Like rustc's and Terraform's diagnostics, the text format shows where a problem is. The
snippet never shows a secret: values of secret keys (and keys that look like one, such as
a misspelled `pasword:`) are masked on every line, and for codes whose located value
failed validation (diagnostics.Code.masks_values: a YAML syntax error, a wrong type) it
shows keys only, since the value may be a secret typed in the wrong place. Control
characters are escaped (errors.safe_text), so a hostile file cannot forge log lines.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from generator.diagnostics import CODES
from generator.errors import UNSAFE_CHARS, Diagnostic, PosnetError, safe_text
from generator.yamlload import SECRET_KEYS, read_file

WIDTH = 100  # characters of a long line shown around the caret
MASK = "***"
_KEY = re.compile(r"""([A-Za-z_][\w-]*)["']?[ \t]*:(?=[ \t]|$)""")
_FIRST_KEY = re.compile(
    r"""^[ \t]*(?:-[ \t]+)*[{\[]?[ \t]*["']?[^:#"'{}\[\],]*["']?[ \t]*:(?=[ \t]|$)"""
)
_LIST_ITEM = re.compile(r"^[ \t]*(?:-[ \t]+)+")


@functools.lru_cache(maxsize=4096)
def secret_like(key: str) -> bool:
    """A secret field's name, or close enough to be one misspelled (memoized: a fleet's
    warnings repeat the same few keys, and the fuzzy match is most of a snippet's cost)."""
    k = key.lower()
    return (
        k in SECRET_KEYS
        or any(w in k for w in ("secret", "passw", "token", "htpasswd"))
        or bool(difflib.get_close_matches(k, SECRET_KEYS, n=1, cutoff=0.8))
    )


def _value_end(line: str, start: int) -> int:
    """Where the value starting at `start` ends: its closing quote, or in flow style the
    next ',', '}' or ']', else the end of the line."""
    flow = line[:start].count("{") + line[:start].count("[") > (
        line[:start].count("}") + line[:start].count("]")
    )
    i = start
    while i < len(line) and line[i] in " \t":
        i += 1
    if i < len(line) and line[i] in "\"'":
        q = line[i]
        j = i + 1
        while j < len(line):
            if line[j] == q and not (q == '"' and line[j - 1] == "\\"):
                return j + 1
            j += 1
        return len(line)
    if not flow:
        return len(line)
    while i < len(line) and line[i] not in ",}]":
        i += 1
    return i


def _flow_values(line: str, start: int) -> list[tuple[int, int]]:
    """Every scalar of a flow collection from `start` on, keys and punctuation kept: a
    caret under one value of `{name: pos1, port: 70000}` stays under that value. A key is
    only read where a key can start; what follows it up to the next ',', '}' or ']' is
    its value, masked whole (`{token: a: b}` shows no part of `a: b`)."""
    spans: list[tuple[int, int]] = []
    i = start
    while i < len(line):
        c = line[i]
        if c in " \t,{}[]":
            i += 1
            continue
        if c == "#" and line[i - 1 : i] in (" ", "\t"):  # a comment: the rest of the line
            spans.append((i, len(line)))
            break
        key = _KEY.match(line, i)
        if key is not None:
            i = key.end()
            while i < len(line) and line[i] in " \t":
                i += 1
            if i == len(line) or line[i] in "{[,}]":
                continue  # a collection (walked into) or no value
        end = max(_value_end(line, i), i + 1)
        spans.append((i, end))
        i = end
    return spans


def _secret_spans(line: str, keys_only: bool) -> list[tuple[int, int]]:
    """The parts of `line` to mask, sorted and not overlapping."""
    if keys_only:
        m = _FIRST_KEY.match(line) or _LIST_ITEM.match(line)
        keep = m.end() if m else len(line) - len(line.lstrip())
        if not line[keep:].strip():
            return []
        start = keep + (1 if line[keep : keep + 1] in (" ", "\t") else 0)
        opened = line[:keep].count("{") + line[:keep].count("[")
        closed = line[:keep].count("}") + line[:keep].count("]")
        if opened > closed or line[start:].lstrip()[:1] in ("{", "["):
            return _flow_values(line, start)
        return [(start, len(line))]
    spans: list[tuple[int, int]] = []
    for m in _KEY.finditer(line):
        if secret_like(m.group(1)):
            start = m.end()
            while start < len(line) and line[start] in " \t":
                start += 1
            end = _value_end(line, start)
            if end > start and (not spans or start >= spans[-1][1]):
                spans.append((start, end))
    return spans


@dataclass(frozen=True)
class MaskedLine:
    """One source line as a snippet shows it, made once however many diagnostics point
    into it: a hostile one-line flow list with thousands of errors costs one pass over
    the line, not one per error."""

    text: str  # secrets masked
    shown: str  # and escaped for a terminal
    ends: list[int]  # each masked span's end in the line...
    starts: list[int]  # ...its start...
    shifts: list[int]  # ...and how far it moves what follows it (prefix sums)
    escapes: list[int]  # where `text` holds a character safe_text escapes...
    widths: list[int]  # ...and the characters added up to it (prefix sums)

    def column(self, col: int) -> int:
        """The 0-based column `col` of the line in `text` (into a mask: its start)."""
        k = bisect.bisect_right(self.ends, col)  # spans ending at or before col
        before = self.shifts[k - 1] if k else 0
        if k < len(self.starts) and self.starts[k] < col:
            return max(self.starts[k] - before, 0)
        return max(col - before, 0)

    def caret(self, col: int) -> int:
        """Column `col` of `text` in `shown`."""
        k = bisect.bisect_left(self.escapes, col)
        return col + (self.widths[k - 1] if k else 0)


@functools.lru_cache(maxsize=256)
def masked_line(line: str, keys_only: bool) -> MaskedLine:
    spans = _secret_spans(line, keys_only)
    out, pos = [], 0
    shifts, total = [], 0
    for a, b in spans:
        out += [line[pos:a], MASK]
        pos = b
        total += (b - a) - len(MASK)
        shifts.append(total)
    text = "".join([*out, line[pos:]])
    escapes, widths, added = [], [], 0
    for m in UNSAFE_CHARS.finditer(text):
        added += len(safe_text(m.group())) - 1
        escapes.append(m.start())
        widths.append(added)
    return MaskedLine(
        text, safe_text(text), [b for _, b in spans], [a for a, _ in spans], shifts, escapes, widths
    )


# The bytes the loader parsed, by file as diagnostics name it (set by load_fleet for
# site files): a snippet shows what was validated, even if the file changed since, and a
# fleet with warnings in 10,000 stores is not read from disk a second time.
_PARSED: dict[str, bytes] = {}


# Lines of files the loader found unchanged by their stat and did not read: what the
# site cache kept of the same bytes (SiteCache.keep_lines), by file and line number.
_KNOWN: dict[str, dict[int, str]] = {}


def remember_source(file: str, raw: bytes) -> None:
    _PARSED[file] = raw
    _KNOWN.pop(file, None)


def remember_lines(file: str, lines: dict[int, str]) -> None:
    """Some lines of a file as parsed, for one whose bytes were known, not read."""
    _PARSED.pop(file, None)  # an earlier load's bytes in this process may be older
    _KNOWN[file] = lines


def _read_lines(file: str) -> list[str] | None:
    """The file's lines as parsed, else read as the loader reads a spec file
    (non-blocking, judged by fstat on what was opened, size-limited): a file swapped
    for a FIFO or a device after it was loaded never hangs the report, it just has no
    snippet."""
    raw = _PARSED.get(file)
    if raw is None:
        try:
            raw = read_file(Path(file), file, follow=True)
        except (PosnetError, ValueError):
            return None
    return raw.decode("utf-8", errors="replace").removeprefix("\ufeff").split("\n")


def source_line(file: str, number: int, cache: dict[str, list[str] | None]) -> str | None:
    """Line `number` of the file as parsed (without its line break), else None."""
    known = _KNOWN.get(file)
    if known is not None and number in known:
        return known[number]
    if file not in cache:
        cache[file] = _read_lines(file)
    lines = cache[file]
    if lines is None or not 0 < number <= len(lines):
        return None
    return lines[number - 1].removesuffix("\r")


def snippet(d: Diagnostic, cache: dict[str, list[str] | None] | None = None) -> list[str]:
    """Two lines, `  21 | source` and the caret under the column; none for a whole file
    or a file posnet cannot read again (a built-in catalog, a changed file)."""
    loc = d.location
    if not loc.line:
        return []
    line = source_line(loc.file, loc.line, {} if cache is None else cache)
    if line is None:
        return []
    return list(_drawn(line, _keys_only(d.code, d.path), loc.line, loc.col))


@functools.lru_cache(maxsize=1024)
def _keys_only(code: str, path: str) -> bool:
    """Whether the snippet shows keys only (memoized: a fleet's findings repeat a few
    codes and paths thousands of times)."""
    known = CODES.get(code)
    last = path.rsplit(".", 1)[-1].split("[", 1)[0] if path else ""
    return bool(known and known.masks_values) or (bool(last) and secret_like(last))


@functools.lru_cache(maxsize=4096)
def _drawn(line: str, keys_only: bool, number: int, col: int) -> tuple[str, str]:
    """The two lines of a snippet (memoized: 10,000 stores written alike repeat the
    same source lines at the same places)."""
    line_shown = masked_line(line, keys_only)
    shown = line_shown.shown
    caret = line_shown.caret(line_shown.column(max(col - 1, 0)))
    if len(shown) > WIDTH:
        start = max(0, min(caret - WIDTH // 2, len(shown) - WIDTH))
        cut = shown[start : start + WIDTH]
        shown = ("..." if start else "") + cut + ("..." if start + WIDTH < len(shown) else "")
        caret = caret - start + (3 if start else 0)
    gutter = f"{number:>5} | "
    return gutter + shown, " " * (len(gutter) - 2) + "| " + " " * caret + "^"
