"""Fill secret markers in a rendered file, escaping each value for where it sits.

Styles (set by the target that rendered the file):
raw         value must be a plain token (no quotes, spaces or line breaks)
confuse     inside a libconfuse double-quoted string (inadyn)
ddclient    inside single quotes in ddclient.conf
json        inside a JSON string
json-in-dq  a JSON string inside a double-quoted properties value
Every style refuses line breaks: one secret can never become two config lines.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ansible.errors import AnsibleFilterError

RAW = re.compile(r"^[A-Za-z0-9._~+/=@:-]+$")


def _escape(value: str, style: str, ref: str) -> str:
    value = value.rstrip("\n")
    if any(c in value for c in "\r\n\0"):
        raise AnsibleFilterError(f"posnet secret {ref}: holds a line break, refused")
    if style == "raw":
        if not RAW.match(value):
            raise AnsibleFilterError(f"posnet secret {ref}: characters not allowed in a raw value")
        return value
    if style == "confuse":
        return value.replace("\\", "\\\\").replace('"', '\\"')
    if style == "ddclient":
        # `password='...'` alone on its line: ddclient takes everything between the
        # first and the last quote, unescaped (an escape would become part of it)
        return value
    if style == "json":
        return json.dumps(value)[1:-1]
    if style == "json-in-dq":
        inner = json.dumps(value)[1:-1]
        return inner.replace("\\", "\\\\").replace('"', '\\"')
    raise AnsibleFilterError(f"posnet secret {ref}: unknown style {style}")


def posnet_fill(text: str, secrets: list[dict[str, Any]], values: list[str]) -> str:
    if len(secrets) != len(values):
        raise AnsibleFilterError("posnet_fill: one value per secret expected")
    for spec, value in zip(secrets, values, strict=True):
        marker = str(spec["marker"])
        if marker not in text:
            raise AnsibleFilterError(f"posnet secret {spec['ref']}: marker missing from file")
        text = text.replace(
            marker, _escape(str(value), str(spec.get("style", "raw")), str(spec["ref"]))
        )
    if "@@POSNET_SECRET_" in text:
        raise AnsibleFilterError("posnet_fill: a secret marker was left unfilled")
    return text


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"posnet_fill": posnet_fill}
