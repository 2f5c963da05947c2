"""Property files for payment devices and integrator services (seeds 001 and 003).

Format: one `key: value` line per property, in the Plan's order, as seed 001 shows for
the Tetra UPP "PBT" file. Values holding JSON, spaces, quotes or a secret marker are
written double-quoted with `\\` and `"` escaped, exactly like the seed's
`custom_registration_data: "{\\"client_id\\":\\"...\\",\\"client_secret\\":\\"...\\"}"`;
plain tokens (URLs, numbers, paths) stay bare. The seed never shows a comment, so the
`#` header is an assumption: strip it on a device whose loader rejects comments.

The tree keeps the markers. `posnet apply` (playbooks/devices.yml) completes every file
on the machine that runs it, with the escaping `collected` names per marker, and writes
it 0600 to `DEVICES_OUT/<site>/` (0700), never into the tree and never onto a store host:
the operator collects it there and loads it onto the device.
"""

from __future__ import annotations

import re
from typing import Any

from generator.plan import DeviceConfig, Plan
from generator.targets.base import Declared

NAME = "devices"
# The client secret sits inside a JSON string ({"client_secret":"..."}) which is itself a
# double-quoted property value: JSON-escape the value, then escape it for the quotes.
# A marker that IS the whole double-quoted value (AuthSecret) needs only the quote
# escaping, which is "confuse"; `secret_style_at` tells the two apart per marker.
SECRET_STYLE = "json-in-dq"  # noqa: S105 - a style name, not a password

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
BARE_RE = re.compile(r"^[A-Za-z0-9._~+/=:,-]+$")
MARKER = "@@POSNET_SECRET_"
# Where `posnet apply` writes the completed files by default (`--devices-out DIR` or the
# playbook variable `posnet_devices_out` change it): the operator's home on the machine
# that runs apply, outside any build tree or fleet repository.
DEVICES_OUT = "~/posnet-devices"
# Keys the seed writes quoted even though their value is a plain token.
SEED_QUOTED = frozenset({"custom_registration_data", "ssl_profile_name"})


def quote(value: str) -> str:
    """A double-quoted property value with backslashes and quotes escaped."""
    if any(ch in value for ch in "\r\n\t\0"):
        raise ValueError(f"a property value cannot hold control characters: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_value(key: str, value: str) -> str:
    """Bare when the seed writes it bare and nothing could be misread; quoted otherwise."""
    if key in SEED_QUOTED or MARKER in value or not BARE_RE.match(value):
        return quote(value)
    return value


def secret_style_at(text: str, marker: str) -> str:
    r"""Escaping for one marker in a rendered file, from where it sits.

    Inside the JSON value the marker is wrapped in escaped quotes (\"@@...@@\"): that
    is "json-in-dq". As a whole property value it is wrapped in plain quotes: escaping
    `\` and `"` once is enough ("confuse", the same double-quoted string rules). Using
    "json-in-dq" there would double the escapes and turn non-ASCII into \uXXXX.
    """
    return "json-in-dq" if f'\\"{marker}\\"' in text else "confuse"


def lines(device: DeviceConfig) -> list[str]:
    out = []
    for key, value in device.properties:
        if not KEY_RE.match(key):
            raise ValueError(f"device {device.id}: invalid property name {key!r}")
        out.append(f"{key}: {format_value(key, value)}")
    return out


def path(d: DeviceConfig) -> str:
    return f"devices/{d.id}.properties"


def file_name(d: DeviceConfig) -> str:
    return f"{d.id}.properties"


def collected_path(plan: Plan, d: DeviceConfig) -> str:
    """Where `posnet apply` leaves the completed file by default (the handover names it)."""
    return f"{DEVICES_OUT}/{plan.site_id}/{file_name(d)}"


def render_one(plan: Plan, d: DeviceConfig) -> str:
    from generator.templating import render as render_template

    return render_template(
        "devices/device.properties.j2",
        site_id=plan.site_id,
        path=path(d),
        device=d,
        lines=lines(d),
    )


def render(plan: Plan) -> dict[str, str]:
    return {path(d): render_one(plan, d) for d in plan.devices}


def collected(plan: Plan) -> list[dict[str, Any]]:
    """What playbooks/devices.yml completes (inventory `posnet_device_files`): each file's
    place in the tree, the device it is for, and every secret with the escaping where its
    marker sits. Secrets are references; the values are resolved at apply time."""
    out = []
    for d in plan.devices:
        text = render_one(plan, d)
        out.append(
            {
                "src": f"sites/{plan.site_id}/{path(d)}",
                "name": file_name(d),
                "device": d.device,
                "partner": d.partner,
                "secrets": [
                    {"marker": s.marker, "ref": s.ref, "style": secret_style_at(text, s.marker)}
                    for s in plan.secrets
                    if s.marker in text
                ],
            }
        )
    return out


TARGET = Declared(
    NAME, "manual", lambda plan: bool(plan.devices), render, secret_style=SECRET_STYLE
)
