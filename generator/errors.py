"""Diagnostics: every user-facing problem carries file, line, column and document path.

Diagnostics never echo a user's value unless the code that made them chose to, so a
secret typed in the wrong place cannot reach a terminal, a CI log or a SARIF file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Literal
from urllib.parse import quote

from generator import __version__
from generator.diagnostics import require_registered

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, order=True)
class Location:
    file: str
    line: int = 0  # 1-based; 0 = whole file
    col: int = 0  # 1-based; 0 = whole line

    def __str__(self) -> str:
        if self.line and self.col:
            return f"{self.file}:{self.line}:{self.col}"
        if self.line:
            return f"{self.file}:{self.line}"
        return self.file


@dataclass(frozen=True, order=True)
class Diagnostic:
    location: Location
    code: str
    message: str
    severity: Severity = "error"
    path: str = ""
    expected: str = ""
    site: str = ""
    why: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        require_registered(self.code)  # an E-code comes with its docs (diagnostics.py)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["location"] = asdict(self.location)
        return data


class PosnetError(Exception):
    """Carries diagnostics up to the CLI, which prints them and exits 1."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = list(diagnostics)


class UserError(Exception):
    """A problem of the user's environment or tree, not of posnet: one line, exit 1.

    The message names the path and says what to do; it is printed through safe_text."""

    exit_code = 1


# C0 and C1 controls, DEL, and Unicode line/paragraph separators and bidi overrides:
# anything that moves the cursor, ends a line or reorders text on a terminal or in a log.
# Plus lone surrogates: a file name that is not UTF-8 reaches Python with each bad byte
# as U+DC80..U+DCFF (PEP 383); printed, they are raw bytes or an encoding error.
UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable byte of a file name: that byte
        return f"\\x{ord(ch) - 0xDC00:02x}"
    return named.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def safe_text(text: str) -> str:
    """Text for one terminal line: control characters, line breaks and bytes that are
    not UTF-8 (in file names) as backslash escapes. Every UNSAFE_CHARS character is
    unprintable to str.isprintable(), which tells most text apart 2.5x faster."""
    return text if text.isprintable() else UNSAFE_CHARS.sub(_escape_char, text)


SHOWN = 5  # names in one message; the rest are counted


def few(items: Iterable[str], limit: int = SHOWN) -> str:
    """`a, b, c` or `a, b, c, d, e and 329 more`, sorted: a message about hundreds of
    stores or files names a few and counts the rest (334 stores repeated in every
    finding made 2.6 MB of output)."""
    names = sorted(items)
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def valid_text(text: str) -> str:
    """Text any UTF-8 output can hold (JSON, SARIF, GitLab): only bytes of a file name
    that are not UTF-8 escaped, as safe_text escapes them; JSON escapes the rest."""
    return _SURROGATE.sub(_escape_char, text)


def printable(d: Diagnostic) -> Diagnostic:
    """The diagnostic with every text field valid UTF-8: what each formatter prints."""
    loc = replace(d.location, file=valid_text(d.location.file))
    return replace(
        d,
        location=loc,
        message=valid_text(d.message),
        path=valid_text(d.path),
        expected=valid_text(d.expected),
        site=valid_text(d.site),
        why=valid_text(d.why),
    )


def raw_name(text: str) -> bytes:
    """A file name's own bytes (its undecodable bytes back as they were on disk)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        return valid_text(text).encode()


def unique_sorted(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats (a fleet default error would otherwise appear once per store), in
    order of file, line, column, code, path and message. Keys are plain tuples: a
    Location compared by its dataclass methods made sorting 18,000 warnings 5x slower."""
    seen: dict[tuple[str, int, int, str, str, str, str], Diagnostic] = {}
    for d in diags:
        loc = d.location
        key = (loc.file, loc.line, loc.col, d.code, d.path, d.message, d.severity)
        if key not in seen:
            seen[key] = d
        elif seen[key].site != d.site:
            # Shared by several stores (a fleet or group default): naming one would mislead.
            seen[key] = replace(seen[key], site="")
    return [seen[key] for key in sorted(seen, key=lambda k: k[:6])]


def has_errors(diags: Iterable[Diagnostic], strict: bool = False) -> bool:
    fail = {"error", "warning"} if strict else {"error"}
    return any(d.severity in fail for d in diags)


# --------------------------------------------------------------------------- formats


def format_text(diags: Sequence[Diagnostic]) -> str:
    """One line per problem, the source line with a caret under the column (secrets
    masked, see snippet.py), then expected/why lines: every field goes through
    safe_text, so a file name holding a newline cannot forge a line in a CI log."""
    from generator.snippet import snippet

    lines = []
    sources: dict[str, list[str] | None] = {}
    notes: dict[tuple[str, str], str] = {}  # the few expected/why texts, escaped once
    for d in diags:
        where = f" {d.path}:" if d.path else ""
        site = f" [{d.site}]" if d.site and d.site not in d.location.file else ""
        head = f"{d.location}: {d.severity}[{d.code}]{site}{where} {d.message}"
        lines.append(safe_text(head))
        lines.extend(snippet(d, sources))
        for label, text in (("expected", d.expected), ("why", d.why)):
            if text:
                note = notes.get((label, text))
                if note is None:
                    note = notes[label, text] = safe_text(f"    {label}: {text}")
                lines.append(note)
    return "\n".join(lines)


def format_json(diags: Sequence[Diagnostic]) -> str:
    return json.dumps([printable(d).as_dict() for d in diags], indent=2, sort_keys=True)


def _gh_escape(text: str, prop: bool = False) -> str:
    """GitHub's workflow-command escaping; other controls are escaped as for a terminal
    (they are not line breaks to GitHub, but they are to a person reading the raw log)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return safe_text(text)


def sarif_uri(file: str) -> str:
    """A file as a SARIF artifact URI: relative to the repository root (the working
    folder), '/'-separated and percent-encoded; names posnet made up (`<builtin
    catalog>`) and absolute paths outside the repository keep only their encoding."""
    import os

    path = file
    if os.path.isabs(path):
        rel = os.path.relpath(path)
        if not rel.startswith(".."):
            path = rel
    path = path.replace(os.sep, "/")
    if path.startswith("./"):
        path = path[2:]
    return quote(raw_name(path), safe="/")  # a byte that is not UTF-8 as itself: %FF


# GitHub shows at most 10 annotations of each type per step; the rest would be lost.
GITHUB_CAP = 10


def format_github(diags: Sequence[Diagnostic]) -> str:
    """Workflow commands, at most GITHUB_CAP per level; every finding also goes to the
    job summary (`$GITHUB_STEP_SUMMARY`, when set) and a notice counts what was left out."""
    level = {"error": "error", "warning": "warning", "info": "notice"}
    out = []
    shown: dict[str, int] = {}
    left_out = 0
    for d in diags:
        kind = level[d.severity]
        if shown.get(kind, 0) >= GITHUB_CAP:
            left_out += 1
            continue
        shown[kind] = shown.get(kind, 0) + 1
        props = [f"file={_gh_escape(d.location.file, True)}"]
        if d.location.line:
            props.append(f"line={d.location.line}")
        if d.location.col:
            props.append(f"col={d.location.col}")
        props.append(f"title={_gh_escape(d.code, True)}")
        out.append(f"::{kind} {','.join(props)}::{_gh_escape(_one_line(d))}")
    listed = _write_step_summary(diags)
    if left_out:
        if listed == len(diags):
            where = f"all {len(diags)} are listed in the job summary"
        elif listed:
            where = (
                f"{listed} of {len(diags)} are listed in the job summary, all with --format json"
            )
        else:
            where = f"all {len(diags)} are listed with --format text or json"
        out.append(
            f"::notice title=posnet::{left_out} more finding(s) not annotated "
            f"(GitHub shows {GITHUB_CAP} per type); {where}"
        )
    return "\n".join(out)


def _one_line(d: Diagnostic) -> str:
    msg = f"{d.path}: {d.message}" if d.path else d.message
    if d.expected:
        msg += f" (expected: {d.expected})"
    return msg


def _md_cell(text: str) -> str:
    return safe_text(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


# GitHub refuses a step summary over 1 MiB (and then shows none of it): room is left.
SUMMARY_LIMIT = 1_000_000


def step_summary_markdown(diags: Sequence[Diagnostic], limit: int = SUMMARY_LIMIT) -> str:
    """The findings as one Markdown table (GitHub renders it on the run's page), as many
    as fit in `limit` bytes; a last line counts the rest."""
    lines = [
        f"### posnet: {len(diags)} finding(s)",
        "",
        "| severity | code | where | problem |",
        "|---|---|---|---|",
    ]
    size = sum(len(line.encode()) + 1 for line in lines) + 300  # the closing line
    for k, d in enumerate(diags):
        row = (
            f"| {d.severity} | {_md_cell(d.code)} | {_md_cell(str(d.location))} | "
            f"{_md_cell(_one_line(d))} |"
        )
        size += len(row.encode()) + 1
        if size > limit:
            rest = len(diags) - k
            lines += [
                "",
                f"_… and {rest} more finding(s) not listed: GitHub takes 1 MiB per step "
                "summary; run `posnet validate --format json` for all._",
            ]
            break
        lines.append(row)
    return "\n".join(lines) + "\n"


def _write_step_summary(diags: Sequence[Diagnostic]) -> int:
    """How many findings the job summary lists (0: none written)."""
    import os

    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target or not diags:
        return 0
    try:
        used = os.path.getsize(target) if os.path.exists(target) else 0
        text = step_summary_markdown(diags, max(SUMMARY_LIMIT - used, 0))
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        return 0
    return text.count("\n| ") - 1  # the rows, without the header row


@dataclass(frozen=True)
class RuleDoc:
    """What SARIF viewers show for a code: title, why, and the longer help."""

    title: str
    why: str = ""
    help_markdown: str = ""


def _sarif_rule(code: str, doc: RuleDoc | None) -> dict[str, object]:
    if doc is None:
        return {"id": code, "shortDescription": {"text": code}}
    rule: dict[str, object] = {
        "id": code,
        "name": doc.title,
        "shortDescription": {"text": doc.title},
        "fullDescription": {"text": doc.why or doc.title},
    }
    text = doc.help_markdown or doc.why or doc.title
    rule["help"] = {"text": text, "markdown": text}
    return rule


def format_sarif(diags: Sequence[Diagnostic], rules: dict[str, RuleDoc] | None = None) -> str:
    rules = rules or {}
    level = {"error": "error", "warning": "warning", "info": "note"}
    codes = sorted({d.code for d in diags})
    results = []
    for d in diags:
        region: dict[str, int] = {}
        if d.location.line:
            region["startLine"] = d.location.line
        if d.location.col:
            region["startColumn"] = d.location.col
        phys: dict[str, object] = {"artifactLocation": {"uri": sarif_uri(d.location.file)}}
        if region:
            phys["region"] = region
        msg = _one_line(printable(d))
        results.append(
            {
                "ruleId": d.code,
                "level": level[d.severity],
                "message": {"text": msg},
                "locations": [{"physicalLocation": phys}],
            }
        )
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "posnet",
                        "version": __version__,
                        "rules": [_sarif_rule(c, rules.get(c)) for c in codes],
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True)


def format_gitlab(diags: Sequence[Diagnostic]) -> str:
    """GitLab Code Quality report (artifacts:reports:codequality): a JSON list whose
    fingerprints stay the same while a problem stays, so merge requests show new and
    fixed findings."""
    import hashlib

    level = {"error": "critical", "warning": "major", "info": "info"}
    out = []
    for d in diags:
        msg = _one_line(printable(d))
        key = "\0".join((d.code, d.location.file, d.path, d.message, d.site))
        out.append(
            {
                "description": msg,
                "check_name": d.code,
                "fingerprint": hashlib.sha256(raw_name(key)).hexdigest(),
                "severity": level[d.severity],
                "location": {
                    "path": sarif_uri(d.location.file),
                    "lines": {"begin": max(d.location.line, 1)},
                },
            }
        )
    return json.dumps(out, indent=2, sort_keys=True)


FORMATTERS = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
    "sarif": format_sarif,
    "gitlab": format_gitlab,
}
