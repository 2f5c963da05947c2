"""nftables target: one `table inet posnet` that is safe to load again and again.

The file declares the table, deletes it and defines it anew, all inside the one
transaction of `nft -f`: a reload never doubles rules, a failed load changes nothing,
and tables of other tools (docker, fail2ban, `table ip other`) are never touched.
Interfaces are matched by name (`iifname`), so the file loads even before the WAN
or LAN interface exists (boot order, a test namespace).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import assert_never

from generator.plan import Plan
from generator.targets.base import (
    ALL_FEATURES,
    Artifact,
    Declared,
    Feature,
    FirewallActivation,
    FirewallBackend,
)
from generator.targets.firewall import (
    Accept,
    AddrSet,
    Chain,
    Dnat,
    DnsSet,
    Drop,
    Firewall,
    Log,
    Masquerade,
    Match,
    Rule,
    build,
    check_supported,
)

NAME = "nftables"
# Firewall rules hold no secret; no marker is ever placed, "raw" is the strictest style.
SECRET_STYLE = "raw"  # noqa: S105 - a style name, not a secret
PATH = "firewall/nftables.nft"
# Every part of the neutral model has an nft spelling.
SUPPORTS: frozenset[Feature] = ALL_FEATURES

_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_HOOK_PRIORITY = {
    "input": "filter",
    "forward": "filter",
    "output": "filter",
    "prerouting": "dstnat",
    "postrouting": "srcnat",
}


@dataclass(frozen=True)
class SetView:
    name: str
    type: str
    comment: str
    elements: str  # empty: a DNS set, filled by the edge's resolver (dnsmasq nftset)


@dataclass(frozen=True)
class ChainView:
    name: str
    header: str
    rules: tuple[str, ...]


def render(plan: Plan) -> dict[str, str]:
    if plan.firewall != "nftables":
        return {}
    return {PATH: render_nftables(plan)}


def render_nftables(plan: Plan, *, log_drops: bool = True) -> str:
    """The nft file whatever `plan.firewall` says (tests check every store)."""
    return render_firewall(build(plan, log_drops=log_drops))


def render_firewall(fw: Firewall) -> str:
    from generator.templating import render as render_template

    check_supported(fw, NAME, SUPPORTS)
    return render_template("nftables/nftables.nft.j2", **template_context(fw))


def template_context(fw: Firewall) -> dict[str, object]:
    """What nftables.nft.j2 reads (the benchmark feeds the same to Ansible's template)."""
    sets = tuple(_set_view(s) for s in fw.sets) + tuple(_dns_set_view(s) for s in fw.dns_sets)
    chains = tuple(_chain_view(c) for c in fw.chains)
    return {"site_id": fw.site_id, "sets": sets, "chains": chains}


def _set_view(s: AddrSet) -> SetView:
    assert s.name is not None
    kind = "ipv4_addr" if s.family == "ipv4" else "ipv6_addr"
    return SetView(s.name, kind, s.comment, ", ".join(s.elements))


def _dns_set_view(s: DnsSet) -> SetView:
    kind = "ipv4_addr" if s.family == "ipv4" else "ipv6_addr"
    return SetView(s.name, kind, s.comment, "")


def _chain_view(c: Chain) -> ChainView:
    header = f"type {c.kind} hook {c.name} priority {_HOOK_PRIORITY[c.name]}; policy {c.policy};"
    return ChainView(c.name, header, tuple(rule_text(r) for r in c.rules))


def rule_text(r: Rule) -> str:
    """One nft rule: matches, counter, statement, comment (in nft's own order)."""
    parts = [*_match_parts(r.match)]
    if r.counter:
        parts.append("counter")
    parts.append(_action(r))
    if r.comment:
        parts.append(f'comment "{r.comment}"')
    return " ".join(parts)


def _match_parts(m: Match) -> list[str]:
    parts: list[str] = []
    ip = "ip6" if m.family == "ipv6" else "ip"
    implied = (
        m.saddr is not None
        or m.daddr is not None
        or m.daddr_set is not None
        or bool(m.daddr_any)
        or m.proto in ("icmp", "icmpv6")
    )
    if m.family != "any" and not implied:
        parts.append(f"meta nfproto {m.family}")
    if m.iif is not None:
        parts.append(f"iifname {_ifname(m.iif)}")
    if m.oif is not None:
        parts.append(f"oifname {_ifname(m.oif)}")
    if m.saddr is not None:
        parts.append(f"{ip} saddr {_addrs(m.saddr)}")
    if m.daddr is not None:
        parts.append(f"{ip} daddr {m.daddr}")
    if m.daddr_any:
        parts.append(f"{ip} daddr {_one_or_set(list(m.daddr_any))}")
    if m.daddr_set is not None:
        parts.append(f"{ip} daddr @{m.daddr_set.name}")
    parts += _proto_parts(m)
    if m.ct_state:
        parts.append("ct state " + ",".join(m.ct_state))
    if m.ct_dnat:
        parts.append("ct status dnat")
    if m.limit is not None:
        lim = m.limit
        parts.append(f"limit rate {lim.rate}/{lim.per} burst {lim.burst} packets")
    return parts


def _proto_parts(m: Match) -> list[str]:
    if m.proto is None:
        return []
    if m.proto in ("tcp", "udp"):
        if m.dports:
            return [f"{m.proto} dport {_one_or_set([str(p) for p in m.dports])}"]
        return [f"meta l4proto {m.proto}"]
    if m.icmp_types:
        return [f"{m.proto} type {_one_or_set(list(m.icmp_types))}"]
    return [f"meta l4proto {'icmp' if m.proto == 'icmp' else 'ipv6-icmp'}"]


def _action(r: Rule) -> str:
    a = r.action
    match a:
        case Accept():
            return "accept"
        case Drop():
            return "drop"
        case Log(prefix=prefix):
            return f'log prefix "{prefix}"'
        case Dnat(ip=ip, port=port):
            return f"dnat ip to {ip}:{port}"
        case Masquerade():
            return "masquerade"
        case _:
            assert_never(a)


def _addrs(s: AddrSet) -> str:
    if s.name is not None:
        return f"@{s.name}"
    return _one_or_set(list(s.elements))


def _one_or_set(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _ifname(name: str) -> str:
    if not _IFNAME.match(name):
        raise ValueError(f"interface name {name!r} is not valid")
    return f'"{name}"'


def _artifacts(plan: Plan) -> tuple[Artifact, ...]:
    return (Artifact(PATH, "/etc/nftables.conf", "firewall", validate="nft -c -f %s"),)


TARGET = Declared(
    name=NAME,
    host="edge",
    applies=lambda plan: plan.firewall == NAME,
    renderer=render,
    files=_artifacts,
    secret_style=SECRET_STYLE,
    activation=FirewallBackend(
        FirewallActivation(
            table="inet posnet",
            snapshot=(
                "{ printf 'table inet posnet {}\\ndelete table inet posnet\\n'; "
                "nft list table inet posnet 2>/dev/null || true; } > /var/lib/posnet/fw-previous"
            ),
            live=("nft", "list", "table", "inet", "posnet"),
            activate=(("nft", "-f", "/etc/nftables.conf"),),
            restore=(("nft", "-f", "/var/lib/posnet/fw-previous"),),
            restore_sh="nft -f /var/lib/posnet/fw-previous",
            expect="policy drop",
            live_all="nft list table inet posnet",
            drop_policies=(
                r"chain input \{[^}]*?policy drop",
                r"chain forward \{[^}]*?policy drop",
            ),
            unit="nftables",
        ),
        supports=SUPPORTS,
    ),
)
