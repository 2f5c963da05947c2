"""iptables target: iptables-restore files for IPv4 (rules.v4) and IPv6 (rules.v6).

Both files come from the same model as the nftables file. IPv4 gets everything;
IPv6 gets only the family-neutral and IPv6 rules (loopback, replies, ping, neighbour
discovery), so the edge never forwards IPv6; management is reached over IPv4 only,
since the spec takes IPv4 `allow_from` sources only. rules.v6 has no *nat section:
the ip6 nat table is left alone.
An nft named set becomes one line per source: iptables has no sets without ipset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, assert_never

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
    AddrFamily,
    Dnat,
    Drop,
    Firewall,
    Log,
    Masquerade,
    Match,
    Rule,
    build,
    check_supported,
    dns_sets_of,
)

NAME = "iptables"
# Firewall rules hold no secret; no marker is ever placed, "raw" is the strictest style.
SECRET_STYLE = "raw"  # noqa: S105 - a style name, not a secret
PATH_V4 = "firewall/rules.v4"
PATH_V6 = "firewall/rules.v6"
# The DNS sets (hash:ip) that dnsmasq fills; created before rules.v4 refers to them.
PATH_IPSETS = "firewall/ipsets"
IPSETS_DEST = "/etc/iptables/ipsets"
# Every part of the neutral model has an iptables spelling (named sets become inline
# source lists, split to the multiport limit).
SUPPORTS: frozenset[Feature] = ALL_FEATURES

# Built-in chains of each table, in iptables-save order.
_TABLE_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
}
_ICMPV6_NAMES = {
    "echo-request": "echo-request",
    "nd-router-solicit": "router-solicitation",
    "nd-router-advert": "router-advertisement",
    "nd-neighbor-solicit": "neighbour-solicitation",
    "nd-neighbor-advert": "neighbour-advertisement",
}
_ICMP_NAMES = {"echo-request": "echo-request"}
_MULTIPORT_MAX = 15  # the multiport match takes at most 15 ports
_IFNAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$")


@dataclass(frozen=True)
class ChainDecl:
    name: str
    policy: str


@dataclass(frozen=True)
class TableView:
    name: str
    chains: tuple[ChainDecl, ...]
    lines: tuple[str, ...]


def render(plan: Plan) -> dict[str, str]:
    if plan.firewall != "iptables":
        return {}
    return render_rules(plan)


def render_rules(plan: Plan, *, log_drops: bool = True) -> dict[str, str]:
    """Both files whatever `plan.firewall` says (tests check every store)."""
    fw = build(plan, log_drops=log_drops)
    check_supported(fw, NAME, SUPPORTS)
    files = {PATH_V4: render_family(fw, "ipv4"), PATH_V6: render_family(fw, "ipv6")}
    if fw.dns_sets:
        files[PATH_IPSETS] = render_ipsets(fw)
    return files


def render_ipsets(fw: Firewall) -> str:
    """`ipset restore -exist` input: one hash:ip per DNS set, created if absent and
    emptied on every load, as nft's table replacement empties the nft sets: an address
    dnsmasq once answered stays allowed only until the next apply."""
    lines = [f"# posnet: store {fw.site_id} DNS sets (ipset) - generated, do not edit."]
    lines.append("# Filled by the edge's dnsmasq (ipset=); load with `ipset restore -exist`,")
    lines.append("# which creates each set if absent and empties it (flush).")
    for s in fw.dns_sets:
        family = "inet" if s.family == "ipv4" else "inet6"
        lines.append(f"create {s.name} hash:ip family {family}")
        lines.append(f"flush {s.name}")
    return "\n".join(lines) + "\n"


def render_family(fw: Firewall, family: AddrFamily) -> str:
    from generator.templating import render as render_template

    tables = tuple(t for t in (_table(fw, "filter", family), _table(fw, "nat", family)) if t)
    return render_template(
        "iptables/rules.j2",
        site_id=fw.site_id,
        family=family,
        tool="iptables-restore" if family == "ipv4" else "ip6tables-restore",
        tables=tables,
    )


def _table(fw: Firewall, kind: Literal["filter", "nat"], family: AddrFamily) -> TableView | None:
    chains = [c for c in fw.chains if c.kind == kind]
    lines = tuple(
        line
        for c in chains
        for r in c.rules
        if r.match.family in ("any", family)
        for line in rule_lines(c.name.upper(), r, family)
    )
    if kind == "nat" and not lines:
        return None  # nothing to NAT for this family: leave its nat table untouched
    policies = {c.name.upper(): c.policy.upper() for c in chains}
    decls = tuple(ChainDecl(n, policies.get(n, "ACCEPT")) for n in _TABLE_CHAINS[kind])
    return TableView(kind, decls, lines)


def rule_lines(chain: str, r: Rule, family: AddrFamily) -> list[str]:
    """One model rule as iptables lines: sets, port lists and ICMP types expand."""
    m = r.match
    sources: tuple[str | None, ...] = m.saddr.elements if m.saddr else (None,)
    dests: tuple[str | None, ...] = m.daddr_any or (m.daddr,)
    ports = [m.dports[i : i + _MULTIPORT_MAX] for i in range(0, len(m.dports), _MULTIPORT_MAX)]
    port_groups: list[tuple[int, ...] | None] = [*ports] or [None]
    types: tuple[str | None, ...] = m.icmp_types or (None,)
    # r.counter needs no flag: iptables counts every rule.
    return [
        " ".join(["-A", chain, *_match_args(m, s, d, pg, t, family), *_comment(r), *_target(r)])
        for s in sources
        for d in dests
        for pg in port_groups
        for t in types
    ]


def _match_args(
    m: Match,
    src: str | None,
    dst: str | None,
    ports: tuple[int, ...] | None,
    icmp: str | None,
    family: AddrFamily,
) -> list[str]:
    args: list[str] = []
    if m.iif is not None:
        args += ["-i", _ifname(m.iif)]
    if m.oif is not None:
        args += ["-o", _ifname(m.oif)]
    if src is not None:
        args += ["-s", src]
    if dst is not None:
        args += ["-d", dst]
    if m.daddr_set is not None:
        args += ["-m", "set", "--match-set", m.daddr_set.name, "dst"]
    args += _proto_args(m, ports, icmp, family)
    if m.ct_state:
        args += ["-m", "conntrack", "--ctstate", ",".join(s.upper() for s in m.ct_state)]
    if m.ct_dnat:
        args += ["-m", "conntrack", "--ctstate", "DNAT"]
    if m.limit is not None:
        lim = m.limit
        args += ["-m", "limit", "--limit", f"{lim.rate}/{lim.per}", "--limit-burst", str(lim.burst)]
    return args


def _proto_args(
    m: Match, ports: tuple[int, ...] | None, icmp: str | None, family: AddrFamily
) -> list[str]:
    if m.proto is None:
        return []
    if m.proto in ("tcp", "udp"):
        args = ["-p", m.proto]
        if ports is not None and len(ports) == 1:
            args += ["-m", m.proto, "--dport", str(ports[0])]
        elif ports is not None:
            args += ["-m", "multiport", "--dports", ",".join(str(p) for p in ports)]
        return args
    if m.proto == "icmp":
        if family != "ipv4":
            raise ValueError("icmp rule rendered for ipv6")
        args = ["-p", "icmp"]
        return args + (["-m", "icmp", "--icmp-type", _ICMP_NAMES[icmp]] if icmp else [])
    if family != "ipv6":
        raise ValueError("icmpv6 rule rendered for ipv4")
    args = ["-p", "ipv6-icmp"]
    return args + (["-m", "icmp6", "--icmpv6-type", _ICMPV6_NAMES[icmp]] if icmp else [])


def _comment(r: Rule) -> list[str]:
    return ["-m", "comment", "--comment", f'"{r.comment}"'] if r.comment else []


def _target(r: Rule) -> list[str]:
    a = r.action
    match a:
        case Accept():
            return ["-j", "ACCEPT"]
        case Drop():
            return ["-j", "DROP"]
        case Log(prefix=prefix):
            return ["-j", "LOG", "--log-prefix", f'"{prefix}"']
        case Dnat(ip=ip, port=port):
            return ["-j", "DNAT", "--to-destination", f"{ip}:{port}"]
        case Masquerade():
            return ["-j", "MASQUERADE"]
        case _:
            assert_never(a)


def _ifname(name: str) -> str:
    # No leading '-': iptables would read it as an option.
    if not _IFNAME.match(name):
        raise ValueError(f"interface name {name!r} is not valid for iptables")
    return name


def _artifacts(plan: Plan) -> tuple[Artifact, ...]:
    # The sets go first: `iptables-restore --test` refuses a rule naming a missing set.
    ipsets = (
        (Artifact(PATH_IPSETS, IPSETS_DEST, "firewall", validate="ipset restore -exist -file %s"),)
        if dns_sets_of(plan)
        else ()
    )
    return (
        *ipsets,
        Artifact(
            PATH_V4, "/etc/iptables/rules.v4", "firewall", validate="iptables-restore --test %s"
        ),
        Artifact(
            PATH_V6, "/etc/iptables/rules.v6", "firewall", validate="ip6tables-restore --test %s"
        ),
    )


TARGET = Declared(
    name=NAME,
    host="edge",
    applies=lambda plan: plan.firewall == NAME,
    renderer=render,
    files=_artifacts,
    secret_style=SECRET_STYLE,
    activation=FirewallBackend(
        FirewallActivation(
            table="filter",
            snapshot=(
                "iptables-save > /var/lib/posnet/fw-previous && "
                "ip6tables-save > /var/lib/posnet/fw-previous6"
            ),
            live=("iptables", "-S", "FORWARD"),
            activate=(
                (
                    "sh",
                    "-c",
                    f"test ! -e {IPSETS_DEST} || ipset restore -exist -file {IPSETS_DEST}",
                ),
                ("iptables-restore", "/etc/iptables/rules.v4"),
                ("ip6tables-restore", "/etc/iptables/rules.v6"),
            ),
            restore=(
                ("iptables-restore", "/var/lib/posnet/fw-previous"),
                ("ip6tables-restore", "/var/lib/posnet/fw-previous6"),
            ),
            restore_sh=(
                "iptables-restore /var/lib/posnet/fw-previous && "
                "ip6tables-restore /var/lib/posnet/fw-previous6"
            ),
            expect="-P FORWARD DROP",
            live_all="iptables-save",
            drop_policies=(":INPUT DROP", ":FORWARD DROP"),
            unit="netfilter-persistent",
        ),
        supports=SUPPORTS,
    ),
)
