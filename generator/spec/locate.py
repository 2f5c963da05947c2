"""Map a document path back to the file, line and column it was written at.

A site is the deep merge of fleet defaults, group defaults and the site file. Rather than
copying positions while merging, a path is looked up in the layers from the most specific
down: the first layer that holds the path wrote the value there.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generator.errors import Location
from generator.yamlload import Positions, YamlPath


@dataclass(frozen=True)
class Layer:
    """One source of a merged document: its data, positions and where it is mounted."""

    data: Any
    positions: Positions
    prefix: YamlPath  # where this layer's data sits in its own file (e.g. ("defaults",))
    file: str


def holds(data: Any, path: YamlPath) -> bool:
    cur = data
    for part in path:
        if isinstance(cur, dict):
            ok = isinstance(part, str) and part in cur
        else:
            ok = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if not ok:
            return False
        cur = cur[part]
    return True


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def key_text(key: str) -> str:
    """A mapping key as shown in messages: odd keys are JSON-quoted and cut short, so a
    key holding a newline or a page of text cannot forge or flood diagnostic lines. A
    key holding ':' or '=' shows nothing after it, and one with a secret-like word
    nothing after that word: a missing space in a flow mapping (`password:s3cret`,
    `the pwd:s3cret`) makes a secret's name and value one unknown key."""
    from generator.snippet import secret_like

    if _PLAIN_KEY.fullmatch(key):
        return key
    text = unicodedata.normalize("NFKC", key)  # full-width letters read as ASCII
    cut = re.search(r"[:=]", text)
    if cut:
        return json.dumps(f"{text[: cut.start()].strip()[:40]}{cut.group()}<hidden>")
    words = text.split()
    for i, word in enumerate(words[:-1]):
        if secret_like(word):
            return json.dumps(f"{' '.join(words[: i + 1])[:40]} <hidden>")
    return json.dumps(key[:40] + ("..." if len(key) > 40 else ""))


def format_path(path: YamlPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            out += f"[{key_text(part)}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def locate(
    layers: Sequence[Layer], path: YamlPath, prefer_key: bool = False
) -> tuple[Location, str]:
    """Position and display path (as written in that file) of `path` in the merged doc."""
    p = tuple(path)
    first = True
    while True:
        for layer in layers:
            if holds(layer.data, p):
                full = (*layer.prefix, *p)
                loc = None
                if prefer_key or not first:
                    loc = layer.positions.key(full)
                loc = loc or layer.positions.value(full)
                if loc is None:
                    loc = layer.positions.nearest(full, prefer_key=True) or Location(layer.file)
                return loc, format_path((*layer.prefix, *path))
        if not p:
            top = layers[0]
            return Location(top.file, 1, 1), format_path(path)
        p = p[:-1]
        first = False


def merged_input(layers: Sequence[Layer]) -> Any:
    """What a site's model is validated from: its layers merged, the most specific
    (first) winning."""
    merged: Any = {}
    for layer in reversed(layers):
        merged = deep_merge(merged, layer.data)
    return merged


def deep_merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key; lists and scalars in `over` replace those in `base`."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return over
