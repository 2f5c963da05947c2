"""A small deterministic YAML emitter for the files posnet writes (inventory, host_vars).

Strings are always double-quoted JSON strings, which YAML reads identically, so no value
can change type (`no`, `010`) or escape its line. Much faster than a general dumper,
which matters at 10,000 stores.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

_quote = json.encoder.encode_basestring  # = json.dumps(text, ensure_ascii=False), in C


def _scalar(value: Any) -> str:
    if type(value) is str:  # most values: skip the checks below
        return _quote(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)  # what json.dumps writes for an int
    if isinstance(value, float):
        return json.dumps(value)
    return _quote(str(value))


_plain = str.maketrans("", "", "_-")


@cache
def _key(key: Any) -> str:
    """A mapping key as written: bare when it is a plain word (keys repeat: remembered)."""
    return str(key) if str(key).translate(_plain).isalnum() else _scalar(key)


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            k = _key(key)
            if type(item) is str:
                out.append(f"{pad}{k}: {_quote(item)}")
            elif (isinstance(item, dict) and item) or (isinstance(item, list) and item):
                out.append(f"{pad}{k}:")
                _emit(item, indent + 1, out)
            elif isinstance(item, dict | list):
                out.append(f"{pad}{k}: {'{}' if isinstance(item, dict) else '[]'}")
            else:
                out.append(f"{pad}{k}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                sub: list[str] = []
                _emit(item, indent + 1, sub)
                first = sub[0].lstrip()
                out.append(f"{pad}- {first}")
                out.extend(sub[1:])
            elif isinstance(item, dict | list):
                out.append(f"{pad}- {'{}' if isinstance(item, dict) else '[]'}")
            else:
                out.append(f"{pad}- {_scalar(item)}")
    else:
        out.append(f"{pad}{_scalar(value)}")


def dumps(value: Any, header: str = "") -> str:
    out: list[str] = [f"# {line}" for line in header.splitlines()]
    out.append("---")
    _emit(value, 0, out)
    return "\n".join(out) + "\n"
