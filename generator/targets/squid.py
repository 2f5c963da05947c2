"""Outbound allow-list for an existing squid (seed 004: outbound-only domains, wildcards,
SSL-inspection exemptions).

`squid-posnet.conf` is a snippet for `include`, placed before the proxy's own
`http_access deny` lines and before any `ssl_bump bump` rule: squid takes the first
matching rule. It only allows (CONNECT from a flow's sources to its domains and ports)
and splices the exempt domains; it never denies, so it cannot change what the rest of
the proxy's policy does.

`*.example.com` becomes `.example.com` (squid's subdomain form, which also matches
example.com itself). Names already covered by such an entry are left out: squid warns
about them and they add nothing. Values go one per `acl` line (squid appends repeated
lines), so a pull request shows one changed domain as one changed line.

The snippet is for squid as an explicit proxy: `dstdomain` and `ssl::server_name`
compare the CONNECT request's name, which squid has from ssl_bump step 1. An
intercepting squid has only the server's IP address at step 1 (`ssl::server_name` gets
the SNI only after an `ssl_bump peek` at step 1; `dstdomain` tries a reverse lookup), so
the snippet's comment and the handover say what such a proxy adds: `ssl_bump peek step1`
before the include, and its own `http_access` decision at step 1. The snippet does not
peek itself: a peek at step 1 would take that step from the proxy's own rules for every
connection, and still leave the allow lines unmatched at step 1.

The splice lines (`posnet_nobump`) appear only for flows that carry an exemption: an
outbound_only integration with `ssl_inspection: true` (false renders none) and the cloud
connector, whose devices trust only their own CA. posnet runs no proxy on the edge: the
store's own proxy must include the snippet (the handover says so).

`domains.txt` is the same list for firewalls and proxies that import a plain list.
UDP flows cannot go through squid: they appear in domains.txt only.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.plan import EgressFlow, Plan
from generator.targets.base import Declared
from generator.targets.names import bounded

NAME = "squid"
# No secret reaches these files; "raw" is the strictest style should one ever be added.
SECRET_STYLE = "raw"  # noqa: S105 - a style name, not a password

SNIPPET = "allowlist/squid-posnet.conf"
DOMAINS = "allowlist/domains.txt"
# squid 5 defines an ACL name of 63 characters but refuses to use one of more than 62
# ("FATAL: Bungled ... http_access allow ..."); each flow's names are its prefix plus
# at most ACL_SUFFIX, so the prefix is bounded to leave room for it.
ACL_NAME_MAX = 62
ACL_SUFFIX = "_ports"  # the longest of _src, _dst, _ports


@dataclass(frozen=True)
class SquidFlow:
    acl: str  # acl name prefix, posnet_<flow id> (bounded, unique in the file)
    flow: EgressFlow
    domains: tuple[str, ...]
    comment: str


def one_line(text: str) -> str:
    """Comment text that cannot start a new line (Plan text is single-line already)."""
    return " ".join(text.split())


def squid_domain(domain: str) -> str:
    """`*.example.com` -> `.example.com`; plain names unchanged."""
    return "." + domain[2:] if domain.startswith("*.") else domain


def covered(domain: str, by: str) -> bool:
    """True when the squid entry `by` (a `.parent` form) already matches `domain`."""
    return by.startswith(".") and domain != by and (domain == by[1:] or domain.endswith(by))


def squid_domains(domains: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Squid form, duplicates and names covered by a wildcard removed, sorted."""
    converted = sorted({squid_domain(d) for d in domains})
    return tuple(d for d in converted if not any(covered(d, other) for other in converted))


def proxied(flow: EgressFlow) -> bool:
    """squid relays TCP from known sources to named domains; anything else is firewall-only."""
    return flow.protocol == "tcp" and bool(flow.domains) and bool(flow.sources)


def acl_prefix(flow_id: str) -> str:
    """`posnet_<flow id>`, cut (with a digest) so `<prefix>_ports` fits squid's limit."""
    return bounded(f"posnet_{flow_id}", ACL_NAME_MAX - len(ACL_SUFFIX))


def squid_flows(plan: Plan) -> tuple[SquidFlow, ...]:
    """The proxied flows in Plan order, each ACL block once.

    Two integrations can bring the same flow (two tunnels from one host): writing its
    block twice repeats every ACL value, which squid warns about. A flow whose id is
    taken by a different flow gets its own names (`_2`, ...) rather than merged ACLs,
    which would allow every source to every domain and port of both.
    """
    flows: list[SquidFlow] = []
    seen: set[tuple[object, ...]] = set()
    taken: set[str] = set()
    for f in plan.egress:
        if not proxied(f):
            continue
        domains = squid_domains(f.domains)
        same = (f.id, f.sources, domains, f.ports)  # what the ACL lines say
        if same in seen:
            continue
        seen.add(same)
        acl, n = acl_prefix(f.id), 1
        while acl in taken:
            n += 1
            acl = acl_prefix(f"{f.id}_{n}")
        taken.add(acl)
        comment = one_line(f"{f.id} ({f.partner}): {f.purpose}")
        flows.append(SquidFlow(acl=acl, flow=f, domains=domains, comment=comment))
    return tuple(flows)


def skipped_flows(plan: Plan) -> list[str]:
    return [
        one_line(f"{f.id} ({f.partner}): {f.protocol.upper()}, not proxied; allow it on the"
                 " firewall")
        for f in plan.egress
        if not proxied(f)
    ]  # fmt: skip


def nobump_domains(plan: Plan) -> tuple[str, ...]:
    return squid_domains([d for f in plan.egress if f.ssl_inspection_exempt for d in f.domains])


def render(plan: Plan) -> dict[str, str]:
    from generator.templating import render as render_template

    if not plan.egress:
        return {}
    flows = squid_flows(plan)
    snippet = render_template(
        "squid/squid-posnet.conf.j2",
        site_id=plan.site_id,
        flows=flows,
        skipped=skipped_flows(plan),
        nobump=nobump_domains(plan),
    )
    domains = render_template(
        "squid/domains.txt.j2",
        site_id=plan.site_id,
        domains=sorted({d for f in plan.egress for d in f.domains}),
    )
    return {SNIPPET: snippet, DOMAINS: domains}


TARGET = Declared(NAME, "manual", lambda plan: bool(plan.egress), render, secret_style=SECRET_STYLE)
