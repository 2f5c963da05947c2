"""Output targets: each module turns a Plan into {relative path: text}.

A target module defines `NAME` and `render(plan) -> dict[str, str]`; it returns an empty
dict when the store needs nothing from it. Adding a vendor = one module here, one folder
under templates/, and golden files.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from types import ModuleType

from generator.plan import Plan

TARGET_MODULES = (
    "nftables",
    "iptables",
    "dnsmasq",
    "inadyn",
    "ddclient",
    "nginx",
    "apache",
    "squid",
    "netsh",
    "devices",
    "handover",
)

Renderer = Callable[[Plan], dict[str, str]]


def secret_style(module_name: str) -> str:
    """How a target escapes a secret where its template puts the marker."""
    mod = importlib.import_module(f"generator.targets.{module_name}")
    return str(getattr(mod, "SECRET_STYLE", "raw"))


@cache
def modules() -> tuple[ModuleType, ...]:
    return tuple(importlib.import_module(f"generator.targets.{m}") for m in TARGET_MODULES)


def render_site(plan: Plan) -> dict[str, str]:
    """All files of one store, relative to its site folder."""
    from generator import expectations

    files: dict[str, str] = dict(expectations.render(plan))
    for mod in modules():
        for path, text in mod.render(plan).items():
            if path in files:
                raise RuntimeError(f"two targets render {path}")
            files[path] = text
    return dict(sorted(files.items()))
