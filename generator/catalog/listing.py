"""`posnet catalog`: the partner catalog as a reader sees it, built-in and fleet together.

A new user has to know which partner ids exist, which patterns each supports, and which
environments, domains and ports that brings, before writing an integration; this shows
it without reading builtin.yaml and fleet.yaml side by side.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from generator.catalog import Catalog, Partner

BUILTIN = "built-in"
FLEET = "fleet.yaml"
CHANGED = "built-in, changed in fleet.yaml"


class UnknownPartner(LookupError):
    """A partner id that neither the built-in catalog nor fleet.yaml defines."""


def origin(pid: str, builtin_ids: Collection[str], fleet_ids: Collection[str]) -> str:
    if pid not in fleet_ids:
        return BUILTIN
    return CHANGED if pid in builtin_ids else FLEET


def domains(p: Partner) -> list[str]:
    """Every name a store may have to reach for this partner."""
    names = {d for e in p.egress for d in e.domains}
    if p.cloud_connector is not None:
        for env in p.cloud_connector.environments.values():
            names |= {env.api_host, env.auth_host, *(env.session_hosts or ())}
    if p.tunnel is not None and "tunnel" in p.patterns:
        names.add(f"*.{p.tunnel.domain_suffix}")
    return sorted(names)


def ports(p: Partner) -> list[str]:
    """Ports with what they are for: outbound flows, then ports on store hosts."""
    out = [f"{e.protocol}/{port} outbound" for e in p.egress for port in e.ports]
    if p.cloud_connector is not None and p.cloud_connector.environments:
        out.append("tcp/443 outbound (cloud connector)")
    if p.tunnel is not None and "tunnel" in p.patterns:
        out.append(f"tcp/{p.tunnel.ui_port} tunnel client UI on the tunnel host")
    if p.windows_https is not None and p.windows_https.default_port:
        out.append(f"tcp/{p.windows_https.default_port} HTTPS binding on the Windows host")
    return list(dict.fromkeys(out))


def inbound(p: Partner) -> bool:
    """Whether any of the partner's patterns lets it connect in (only then do its
    `sources`, the allow-list, mean anything)."""
    from generator.patterns import patterns

    known = patterns()
    return any(known[name].inbound for name in p.patterns if name in known)


def describe(catalog: Catalog, pid: str, where: str) -> dict[str, Any]:
    p = catalog.partners[pid]
    envs = p.cloud_connector.environments if p.cloud_connector else {}
    return {
        "id": pid,
        "title": p.title,
        "origin": where,
        "patterns": list(p.patterns),
        "environments": {
            k: envs[k].model_dump(mode="json", exclude_none=True) for k in sorted(envs)
        },
        "domains": domains(p),
        "ports": ports(p),
        "sources": list(p.sources),
        "inbound": inbound(p),
        "notes": list(p.notes),
        "pattern_notes": {k: list(v) for k, v in sorted(p.pattern_notes.items())},
        "catalog": p.model_dump(mode="json", exclude_none=True),
    }


def listing(
    catalog: Catalog, builtin_ids: Collection[str], fleet_ids: Collection[str], only: str | None
) -> list[dict[str, Any]]:
    """One entry per partner (or only `only`), sorted by id."""
    ids = sorted(catalog.partners)
    if only is not None:
        if only not in catalog.partners:
            raise UnknownPartner(
                f"no partner {only!r} in the catalog (known: {', '.join(ids)}); "
                f"a fleet adds one under partners.<id> in fleet.yaml"
            )
        ids = [only]
    return [describe(catalog, i, origin(i, builtin_ids, fleet_ids)) for i in ids]


def _envs(envs: Mapping[str, Mapping[str, str | list[str]]]) -> str:
    """`qa (api host, auth host, session hosts...)` per environment."""

    def hosts(v: Mapping[str, str | list[str]]) -> list[str]:
        return [h for x in v.values() for h in ([x] if isinstance(x, str) else x)]

    return "; ".join(f"{k} ({', '.join(hosts(v))})" for k, v in envs.items())


def text(items: list[dict[str, Any]]) -> str:
    """Readable blocks, one per partner; empty facts are left out, not shown as blanks."""
    blocks = []
    for it in items:
        lines = [f"{it['id']}  {it['title']}  [{it['origin']}]"]
        lines.append(f"  patterns:     {', '.join(it['patterns'])}")
        if it["environments"]:
            lines.append(f"  environments: {_envs(it['environments'])}")
        if it["domains"]:
            lines.append(f"  domains:      {', '.join(it['domains'])}")
        if it["ports"]:
            lines.append(f"  ports:        {'; '.join(it['ports'])}")
        if it["inbound"]:
            none = f"none set (partners.{it['id']}.sources in fleet.yaml)"
            lines.append(f"  sources:      {', '.join(it['sources']) or none}")
        lines += [f"  note:         {n}" for n in it["notes"]]
        for pattern, notes in it["pattern_notes"].items():
            lines += [f"  note ({pattern}): {n}" for n in notes]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
