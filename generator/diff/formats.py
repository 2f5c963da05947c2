"""A FleetDiff for people (text), for programs (versioned JSON) and for a pull-request
comment (Markdown, kept under the size a comment holds, whole tables only)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

from generator.diff.compare import FieldChange, FleetDiff, ItemChange, StoreDiff
from generator.diff.items import KINDS, Value
from generator.errors import few, safe_text

JSON_FORMAT = "posnet-diff"
JSON_VERSION = 1
MARKDOWN_LIMIT = 60 * 1024  # bytes; GitHub refuses comments above 65,536 characters
ROWS_PER_STORE = 40  # a store's table longer than this is cut between rows, counted
SIGN = {"add": "+", "remove": "-", "change": "~"}
STORE_SIGN = {"added": "+", "removed": "-", "changed": "~"}


def _label(kind: str) -> str:
    return KINDS[kind][0]


def _one_line(text: str) -> str:
    """One line with no control character (a terminal escape or a bidi override in a
    value must not reach a terminal or a CI log)."""
    return safe_text(" ".join(text.split()))


def _show(value: Value | None) -> str:
    """A value on one line: a user's newline cannot start a line of its own."""
    if value is None:
        return "(none)"
    if isinstance(value, tuple):
        return ", ".join(_one_line(v) for v in value) if value else "(none)"
    return _one_line(value)


def _delta(f: FieldChange) -> str:
    """`old -> new`, or for sets only what was added and removed."""
    added, removed = f.added(), f.removed()
    if isinstance(f.old, tuple) and isinstance(f.new, tuple):
        parts = [f"+{_one_line(v)}" for v in added] + [f"-{_one_line(v)}" for v in removed]
        return " ".join(parts)
    return f"{_show(f.old)} -> {_show(f.new)}"


# ----------------------------------------------------------------------------- text


def _text_item(c: ItemChange, detail: bool) -> Iterator[str]:
    yield f"    {SIGN[c.action]} {_label(c.kind)} {_one_line(c.key)}"
    if not detail or c.action == "remove":
        return
    for f in c.fields:
        shown = _show(f.new) if c.action == "add" else _delta(f)
        yield f"        {f.name}: {shown}"


def format_text(diff: FleetDiff) -> str:
    lines = [f"posnet diff {diff.old_label} -> {diff.new_label}", ""]
    for s in diff.stores:
        lines.append(f"{STORE_SIGN[s.status]} store {s.site_id} ({s.status})")
        for c in s.changes:
            lines.extend(_text_item(c, detail=s.status != "removed"))
    if diff.stores:
        lines.append("")
    lines.append(diff.summary())
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- JSON


def _json_value(v: Value | None) -> object:
    return list(v) if isinstance(v, tuple) else v


def _json_field(f: FieldChange) -> dict[str, object]:
    out: dict[str, object] = {"old": _json_value(f.old), "new": _json_value(f.new)}
    if isinstance(f.old, tuple) or isinstance(f.new, tuple):
        out["added"] = list(f.added())
        out["removed"] = list(f.removed())
    return out


def as_dict(diff: FleetDiff) -> dict[str, object]:
    return {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "old": diff.old_label,
        "new": diff.new_label,
        "changed": diff.changed,
        "summary": {
            "text": diff.summary(),
            "stores": {
                "added": diff.stores_with("added"),
                "changed": diff.stores_with("changed"),
                "removed": diff.stores_with("removed"),
                "unchanged": diff.unchanged,
            },
            "exposures": {
                "opened": diff.count("exposure", "add"),
                "changed": diff.count("exposure", "change"),
                "closed": diff.count("exposure", "remove"),
            },
        },
        "stores": [
            {
                "id": s.site_id,
                "status": s.status,
                "changes": [
                    {
                        "kind": c.kind,
                        "key": c.key,
                        "action": c.action,
                        "fields": {f.name: _json_field(f) for f in c.fields},
                    }
                    for c in s.changes
                ],
            }
            for s in diff.stores
        ],
    }


def format_json(diff: FleetDiff) -> str:
    return json.dumps(as_dict(diff), indent=2, sort_keys=True) + "\n"


# ------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!~])")


def md(text: str) -> str:
    """Text from a spec as inert Markdown: no markup, links, HTML or table breaks, and no
    mention (`@team` notifies a whole team where the comment is posted): a zero-width
    space after every @, as Renovate writes them."""
    return _MD_SPECIAL.sub(r"\\\1", _one_line(text)).replace("@", "@&#8203;")


def _md_rows(s: StoreDiff) -> list[str]:
    rows = []
    for c in s.changes:
        item = f"{md(_label(c.kind))} {md(c.key)}"
        if c.action == "remove" or s.status == "removed":
            rows.append(f"| {SIGN[c.action]} | {item} | | | |")
            continue
        for f in c.fields:
            old = "" if c.action == "add" else md(_show(f.old))
            new = md(_show(f.new))
            if isinstance(f.old, tuple) and isinstance(f.new, tuple):
                old, new = (
                    md(" ".join(f"-{v}" for v in f.removed())),
                    md(" ".join(f"+{v}" for v in f.added())),
                )
            rows.append(f"| {SIGN[c.action]} | {item} | {md(f.name)} | {old} | {new} |")
    return rows


def _md_store(s: StoreDiff) -> str:
    rows = _md_rows(s)
    head = [
        f"#### {STORE_SIGN[s.status]} `{s.site_id}` {s.status}",
        "",
        "| | item | field | before | after |",
        "|---|---|---|---|---|",
    ]
    body = rows[:ROWS_PER_STORE]
    tail = []
    if len(rows) > len(body):
        tail = ["", f"_… and {len(rows) - len(body)} more row(s) for this store._"]
    return "\n".join(head + body + tail) + "\n"


def format_markdown(diff: FleetDiff, limit: int = MARKDOWN_LIMIT) -> str:
    """Whole store tables in order while they fit in `limit` bytes; a table that does
    not fit is left out, not the ones after it (a small change must not hide behind a
    huge one), and the stores left out are counted and the first few named."""
    title = f"### posnet diff {md(diff.old_label)} → {md(diff.new_label)}\n\n"
    summary = f"**{md(diff.summary())}**\n"
    parts = [title, summary]
    size = len((title + summary).encode())
    reserve = 1000  # room for the closing line (a few store ids)
    rest: list[StoreDiff] = []
    for s in diff.stores:
        block = "\n" + _md_store(s)
        n = len(block.encode())
        if size + n + reserve > limit:
            rest.append(s)
            continue
        parts.append(block)
        size += n
    if rest:
        changes = sum(len(s.changes) for s in rest)
        names = few((f"`{s.site_id}`" for s in rest), 5)
        parts.append(
            f"\n_… and {len(rest)} more store(s) with {changes} item change(s) not shown "
            f"({names}); run `posnet diff` locally or see the JSON output._\n"
        )
    return "".join(parts)


FORMATS: dict[str, Callable[[FleetDiff], str]] = {
    "text": format_text,
    "json": format_json,
    "markdown": format_markdown,
}
