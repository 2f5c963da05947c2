"""Output targets: self-describing units (generator.targets.base.Target) in a registry.

Each built-in module exports `TARGET` (name, host, applies_to, render, artifacts,
activation); packages add more through the entry-point group `posnet.targets` or
`register()`. Everything that deploys or checks files (inventory, expectations, verify
suite, playbook activation tables) reads the registry instead of a list of vendors.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points
from types import ModuleType

from generator.plan import Plan
from generator.targets.base import FirewallBackend, ProxyActivation, Target

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
ENTRY_POINT_GROUP = "posnet.targets"

Renderer = Callable[[Plan], dict[str, str]]

_registered: list[Target] = []


class TargetError(RuntimeError):
    """A target that cannot be registered (wrong type, name taken, unknown kind)."""


def secret_style(name: str) -> str:
    """How a target escapes a secret where its template puts the marker."""
    return by_name()[name].secret_style


@cache
def modules() -> tuple[ModuleType, ...]:
    return tuple(importlib.import_module(f"generator.targets.{m}") for m in TARGET_MODULES)


def _plugins() -> list[Target]:
    out = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        obj = ep.load()
        if not isinstance(obj, Target):
            raise TargetError(f"entry point {ENTRY_POINT_GROUP}:{ep.name} is not a posnet Target")
        out.append(obj)
    return out


@cache
def targets() -> tuple[Target, ...]:
    """Built-in targets, then entry-point targets, then those added by `register()`."""
    found: list[Target] = [m.TARGET for m in modules()]
    found += _plugins()
    found += _registered
    seen: set[str] = set()
    for t in found:
        if t.name in seen:
            raise TargetError(f"two targets are called {t.name!r}")
        seen.add(t.name)
    return tuple(found)


@cache
def by_name() -> dict[str, Target]:
    return {t.name: t for t in targets()}


def register(target: Target) -> None:
    """Add a target at run time (an embedding program, a test)."""
    if not isinstance(target, Target):
        raise TargetError(f"{target!r} is not a posnet Target")
    _registered.append(target)
    _forget()


def unregister(name: str) -> None:
    _registered[:] = [t for t in _registered if t.name != name]
    _forget()


def _forget() -> None:
    targets.cache_clear()
    by_name.cache_clear()


def firewall_backend(kind: str) -> tuple[Target, FirewallBackend]:
    """The firewall back-end a Plan names; an unknown kind is an error, not a default."""
    t = by_name().get(kind)
    if t is None or not isinstance(t.activation, FirewallBackend):
        known = sorted(k for k, x in by_name().items() if isinstance(x.activation, FirewallBackend))
        raise TargetError(f"no firewall back-end {kind!r} (known: {', '.join(known)})")
    return t, t.activation


def playbook_kinds(component: str) -> dict[str, dict[str, object]]:
    """The activation tables the playbooks read: firewall and proxy recipes by kind, and
    the daemons (by target name) that the DHCP and DDNS plays start and verify checks."""
    out: dict[str, dict[str, object]] = {}
    for t in targets():
        act = t.activation
        if component == "firewall" and isinstance(act, FirewallBackend):
            out[t.name] = act.activation.playbook()
        elif component == "proxy" and isinstance(act, ProxyActivation):
            out[t.name] = act.playbook()
        elif component == "daemons" and t.daemon is not None:
            out[t.name] = t.daemon.playbook()
    if component not in ("firewall", "proxy", "daemons"):
        raise TargetError(f"no activation tables for component {component!r}")
    return out


def _check_plugin_backend(plan: Plan, t: Target) -> None:
    """A firewall back-end from outside the package gets the support check the
    built-in ones run while rendering: an unsupported rule is an error, never dropped."""
    if isinstance(t.activation, FirewallBackend) and all(t is not m.TARGET for m in modules()):
        from generator.targets.firewall import build, check_supported

        check_supported(build(plan), t.name, t.activation.supports)


def _refuse_clashes(plan: Plan) -> None:
    """Targets name files after the ids of the Plan's proxies, Windows bindings and
    devices, and a target's files are a mapping: two items with one id would become one
    file, the last silently winning. The spec checks refuse that first (E213); this is
    the safety net should a pattern ever give two items one id anyway."""
    kinds = {
        "proxies": [p.id for p in plan.proxies],
        "Windows bindings": [b.id for b in plan.windows],
        "devices": [d.id for d in plan.devices],
        "exposures": [e.id for e in plan.exposures],  # firewall sets and rules by id
    }
    for kind, ids in kinds.items():
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise RuntimeError(
                f"{plan.site_id}: two {kind} named {', '.join(twice)} would write the same files"
            )
    for t in targets():
        if not t.applies_to(plan):
            continue
        sources = [a.source for a in t.artifacts(plan)]
        twice = sorted({s for s in sources if sources.count(s) > 1})
        if twice:
            raise RuntimeError(f"{plan.site_id}: target {t.name} writes {', '.join(twice)} twice")


def render_site(plan: Plan) -> dict[str, str]:
    """All files of one store, relative to its site folder."""
    from generator import expectations

    _refuse_clashes(plan)
    files: dict[str, str] = dict(expectations.render(plan))
    for t in targets():
        if not t.applies_to(plan):
            continue
        _check_plugin_backend(plan, t)
        for path, text in t.render(plan).items():
            if path in files:
                raise RuntimeError(f"two targets render {path}")
            files[path] = text
    return dict(sorted(files.items()))
