"""A Plan as reviewable items: kind -> key -> fields, the unit `posnet diff` compares.

Each item is what a reviewer recognises (an exposure, an egress flow, a proxy route,
a DHCP reservation...) with flat fields: a scalar as text, a set as a sorted tuple.
Secrets appear as their references (`vault:name`), never a value: the Plan holds no
value to begin with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from generator.plan import Plan

Value = str | tuple[str, ...]
Fields = dict[str, Value]
Items = dict[str, dict[str, Fields]]  # kind -> key -> fields

# Kind -> (singular label, plural label), in the order a reviewer reads a store.
KINDS: dict[str, tuple[str, str]] = {
    "store": ("store setting", "store settings"),
    "host": ("host", "hosts"),
    "exposure": ("exposure", "exposures"),
    "egress": ("egress flow", "egress flows"),
    "lan_flow": ("LAN flow", "LAN flows"),
    "proxy": ("proxy", "proxies"),
    "proxy_route": ("proxy route", "proxy routes"),
    "ddns": ("DDNS client", "DDNS clients"),
    "dhcp": ("DHCP reservation", "DHCP reservations"),
    "windows": ("Windows binding", "Windows bindings"),
    "device": ("device setting", "device settings"),
    "tunnel": ("tunnel", "tunnels"),
    "secret": ("secret reference", "secret references"),
}


def _s(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _set(values: Iterable[object]) -> tuple[str, ...]:
    return tuple(sorted({_s(v) for v in values}))


def _store(plan: Plan) -> Iterator[tuple[str, Fields]]:
    w, lan, m = plan.wan, plan.lan, plan.management
    yield (
        "edge",
        {
            "name": plan.site_name,
            "group": _s(plan.group),
            "firewall": plan.firewall,
            "egress_policy": plan.egress_policy,
            "management_port": _s(m.port),
            "management_from": _set(m.allow_from),
            "wan_mode": w.mode,
            "isp": w.isp,
            "public_ip": _s(w.public_ip),
            "fqdn": _s(w.fqdn),
            "lan_subnet": lan.subnet,
            "gateway": lan.gateway,
            "dhcp_pool": f"{_s(lan.pool_start)}-{_s(lan.pool_end)}",
            "lint_disable": _set(plan.lint_disable),
        },
    )


def _hosts(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for h in plan.hosts:
        services = _set(
            f"{s.name} {s.port}/{s.protocol}{' tls' if s.tls else ''}" for s in h.services
        )
        yield (
            h.name,
            {"role": h.role, "os": h.os, "ip": h.ip, "mac": _s(h.mac), "services": services},
        )


def _exposures(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for e in plan.exposures:
        yield (
            e.id,
            {
                "partner": e.partner,
                "pattern": e.pattern,
                "port": f"{e.public_port}/{e.protocol}",
                "target": f"{e.target_host} {e.target_ip}:{e.target_port}",
                "sources": _set(e.sources) or ("any",),
                "tls": _s(e.tls),
            },
        )


def _egress(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for f in plan.egress:
        yield (
            f.id,
            {
                "partner": f.partner,
                "purpose": f.purpose,
                "sources": _set(f.sources),
                "domains": _set(f.domains),
                "ports": _set(f"{p}/{f.protocol}" for p in f.ports),
                "ssl_inspection_exempt": _s(f.ssl_inspection_exempt),
            },
        )


def _lan_flows(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for f in plan.lan_flows:
        yield (
            f.id,
            {
                "partner": f.partner,
                "purpose": f.purpose,
                "sources": _set(f.sources),
                "destination": f"{f.dest_ip}:{f.port}/{f.protocol}",
            },
        )


def _proxies(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for p in plan.proxies:
        yield (
            p.id,
            {
                "partner": p.partner,
                "software": p.software,
                "host": f"{p.host} {p.host_ip}:{p.listen_port}",
                "server_names": _set(p.server_names),
                "auth": p.auth,
                "certificate": p.tls.cert_ref,
                "trusted": _s(p.tls.trusted),
                "never_logged": _set(p.redact_query_params),
            },
        )


def _routes(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for p in plan.proxies:
        for r in p.routes:
            yield (
                f"{p.id} {r.match}:{r.value}",
                {
                    "upstream": f"{r.upstream_scheme}://{r.upstream_host}:{r.upstream_port}",
                    "websocket": _s(r.websocket),
                    "service": r.label,
                },
            )


def _ddns(plan: Plan) -> Iterator[tuple[str, Fields]]:
    d = plan.ddns
    if d is not None:
        yield (
            d.hostname,
            {
                "client": d.client,
                "provider": d.provider,
                "username": d.username,
                "password": d.password.ref,
                "zone": _s(d.zone),
            },
        )


def _dhcp(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for r in plan.dhcp:
        yield r.name, {"mac": r.mac, "ip": r.ip}


def _windows(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for b in plan.windows:
        yield (
            b.id,
            {
                "host": f"{b.host} {b.host_ip}:{b.port}",
                "appid": b.appid,
                "thumbprint": b.thumbprint,
                "sddl": b.sddl,
                "clients": _set(b.client_sources),
                "maintenance_window": b.maintenance_window,
            },
        )


def _devices(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for d in plan.devices:
        yield f"{d.id} {d.device}", {k: v for k, v in d.properties}


def _tunnels(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for t in plan.tunnels:
        yield (
            t.id,
            {
                "target": f"{t.host} {t.host_ip}:{t.local_port}",
                "token": t.token.ref,
                "domain_suffix": t.domain_suffix,
            },
        )


def _secrets(plan: Plan) -> Iterator[tuple[str, Fields]]:
    for s in plan.secrets:
        yield s.ref, {"purpose": s.purpose}


EXTRACT: dict[str, Callable[[Plan], Iterator[tuple[str, Fields]]]] = {
    "store": _store,
    "host": _hosts,
    "exposure": _exposures,
    "egress": _egress,
    "lan_flow": _lan_flows,
    "proxy": _proxies,
    "proxy_route": _routes,
    "ddns": _ddns,
    "dhcp": _dhcp,
    "windows": _windows,
    "device": _devices,
    "tunnel": _tunnels,
    "secret": _secrets,
}
assert list(EXTRACT) == list(KINDS)


def items(plan: Plan | None) -> Items:
    """Every reviewable item of a Plan (an absent store has none)."""
    if plan is None:
        return {}
    return {kind: dict(extract(plan)) for kind, extract in EXTRACT.items()}
