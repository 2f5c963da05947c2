"""Map a document path back to the file, line and column it was written at.

A site is the deep merge of fleet defaults, group defaults and the site file. Rather than
copying positions while merging, a path is looked up in the layers from the most specific
down: the first layer that holds the path wrote the value there.
"""

from __future__ import annotations

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
        if isinstance(cur, dict) and isinstance(part, str) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        else:
            return False
    return True


def format_path(path: YamlPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
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
                    loc = layer.positions.keys.get(full)
                loc = loc or layer.positions.values.get(full)
                if loc is None:
                    loc = layer.positions.nearest(full, prefer_key=True) or Location(layer.file)
                return loc, format_path((*layer.prefix, *path))
        if not p:
            top = layers[0]
            return Location(top.file, 1, 1), format_path(path)
        p = p[:-1]
        first = False


def deep_merge(base: Any, over: Any) -> Any:
    """Mappings merge key by key; lists and scalars in `over` replace those in `base`."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return over
