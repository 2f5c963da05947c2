"""DNS and DHCP for the store LAN with dnsmasq on the edge (seeds 000, 001, 004).

DHCP keeps POS hosts on fixed addresses (a reservation per MAC; the seed forwards
ports to a fixed internal IP) and tells every client to use the edge as DNS server.
The edge's resolver is what lets a Linux edge enforce egress by domain: for a store
with restricted egress, every address dnsmasq answers for a flow's domains is added
to that flow's firewall set (`nftset=` for nftables, `ipset=` for iptables), and the
firewall lets the flow's hosts reach only those addresses.

Limits, said in the README and the handover too:
- only clients that ask the edge get through: a hard-coded IP or another resolver
  finds an empty set;
- dnsmasq adds an answer without a lifetime; it stays in the set until the firewall
  is reloaded (an apply), which empties the sets. The cache is off and the TTL given
  to clients is capped, so every lookup refills the set and a client asks again
  within `MAX_CLIENT_TTL` seconds after a reload;
- `*.example.com` also admits `example.com` itself (dnsmasq matches a domain with
  everything below it).

A store may name other DNS servers for its clients (`lan.dns.servers`): then the edge
serves DHCP only (`port=0`) and announces those servers; egress cannot be enforced by
domain there (lint PN113).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from generator import netparse
from generator.plan import LanPlan, Plan
from generator.targets.base import Artifact, Daemon, Declared
from generator.targets.firewall import dns_sets_of, resolver_domain

NAME = "dnsmasq"
# No secret reaches this file; "raw" is the strictest style should one ever be added.
SECRET_STYLE = "raw"  # noqa: S105 - a style name, not a password

PATH = "dhcp/dnsmasq.conf"
LEASE_TIME = "12h"
LEASE_FILE = "/var/lib/misc/dnsmasq.leases"
# Seconds a client may keep an answer: after a firewall reload empties the sets, a
# client looks up (and so refills its set) again within this time.
MAX_CLIENT_TTL = 300


@dataclass(frozen=True)
class SetLine:
    """One `nftset=`/`ipset=` line: the flow's domains and the set they fill."""

    domains: str  # /a.example/b.example/
    target: str  # 4#inet#posnet#dns_x or dns_x


def dhcp_range(lan: LanPlan) -> str:
    """The pool when there is one; otherwise a `static` range so reservations still work.

    The netmask is always given: a reservation outside the pool (the usual case for a
    fixed POS address) is only served when dnsmasq knows the whole subnet.
    """
    if lan.pool_start and lan.pool_end:
        return f"{lan.pool_start},{lan.pool_end},{lan.netmask},{LEASE_TIME}"
    network = netparse.ipv4_network(lan.subnet).network_address
    return f"{network},static,{lan.netmask},{LEASE_TIME}"


def serves_dhcp(plan: Plan) -> bool:
    return bool(plan.lan.pool_start or plan.dhcp)


def serves_dns(plan: Plan) -> bool:
    """The edge answers the LAN's DNS unless the store names other servers."""
    return plan.lan.edge_dns


def needed(plan: Plan) -> bool:
    return serves_dhcp(plan) or serves_dns(plan)


def set_lines(plan: Plan) -> tuple[SetLine, ...]:
    lines = []
    for s in dns_sets_of(plan).values():
        names = sorted({resolver_domain(d) for d in s.domains})
        domains = "/" + "/".join(names) + "/"
        # nft: family 4, table inet posnet; ipset: the set's own name.
        target = f"4#inet#posnet#{s.name}" if plan.firewall == "nftables" else s.name
        lines.append(SetLine(domains, target))
    return tuple(lines)


def render(plan: Plan) -> dict[str, str]:
    from generator.templating import render as render_template

    if not needed(plan):
        return {}
    text = render_template(
        "dnsmasq/dnsmasq.conf.j2",
        site_id=plan.site_id,
        lan=plan.lan,
        dns=serves_dns(plan),
        dhcp=serves_dhcp(plan),
        dhcp_range=dhcp_range(plan.lan),
        lease_file=LEASE_FILE,
        reservations=plan.dhcp,
        max_ttl=MAX_CLIENT_TTL,
        set_kind="nftset" if plan.firewall == "nftables" else "ipset",
        set_lines=set_lines(plan),
    )
    return {PATH: text}


DEST = "/etc/posnet/dnsmasq.conf"


def _artifacts(plan: Plan) -> tuple[Artifact, ...]:
    return (Artifact(PATH, DEST, "dhcp", validate="dnsmasq --test -C %s"),)


DAEMON = Daemon(
    "dnsmasq",
    "dhcp",
    "/run/posnet-dnsmasq.pid",
    "dnsmasq -C {config} --pid-file={pidfile}",
    DEST,
    own_unit=True,  # playbooks/dhcp.yml: posnet-dnsmasq.service
    leases=LEASE_FILE,
)
TARGET = Declared(NAME, "edge", needed, render, _artifacts, SECRET_STYLE, daemon=DAEMON)


# The lease file's lines are `expiry mac ip name client-id` (expiry 0: never). dnsmasq
# does not hand a reserved address to its host while a lease gives it to another MAC
# (it logs "not using configured address ... because it is leased to ..."): the POS
# gets a pool address and the exposure's DNAT points at nobody, or at the other host.
_TAKEN_AWK = (
    'BEGIN { n = split(r, a, " "); for (i = 1; i <= n; i++) '
    '{ split(a[i], p, "="); want[p[1]] = tolower(p[2]) } } '
    "function taken() { return ($3 in want) && tolower($2) != want[$3] } "
)


def _reservations(reservations: list[dict[str, str]]) -> str:
    return " ".join(f"{r['ip']}={r['mac']}" for r in reservations)


def reserved_free(leases: str, reservations: list[dict[str, str]]) -> str:
    """Shell test: no unexpired lease in `leases` gives a reserved address to another
    MAC than its reservation's (verify reads the same: posnet_state.lease_findings)."""
    check = _TAKEN_AWK + "taken() && ($1 == 0 || $1 > now) { bad = 1 } END { exit bad }"
    r = shlex.quote(_reservations(reservations))
    f = shlex.quote(leases)
    return f'test ! -e {f} || awk -v r={r} -v now="$(date +%s)" {shlex.quote(check)} {f}'


def free_reserved(leases: str, reservations: list[dict[str, str]]) -> str:
    """Shell: drop every lease that gives a reserved address to another MAC. Run while
    dnsmasq is stopped (it keeps its leases in memory and rewrites the file); the file
    is rewritten in place, so its owner and mode stay."""
    keep = _TAKEN_AWK + "!taken()"
    r = shlex.quote(_reservations(reservations))
    f = shlex.quote(leases)
    tmp = shlex.quote(leases + ".posnet")
    return (
        f"if test -e {f}; then awk -v r={r} {shlex.quote(keep)} {f} > {tmp}"
        f" && cat {tmp} > {f} && rm -f {tmp}; fi"
    )
