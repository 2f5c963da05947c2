"""outbound_only: POS devices reach the partner's cloud; optionally signed LAN HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StringConstraints

from generator.patterns.base import Pattern
from generator.patterns.context import Context, host_cidrs
from generator.plan import LanFlow
from generator.spec.parts import Model
from generator.spec.types import (
    WILDCARD_RE,
    Hostname,
    Ident,
    Port,
)

if TYPE_CHECKING:
    from generator.catalog import Partner
    from generator.spec.checks import Problem
    from generator.spec.model import Site
    from generator.yamlload import YamlPath


class OutboundOnlyIntegration(Model):
    pattern: Literal["outbound_only"]
    partner: Ident
    hosts: list[Hostname] = Field(min_length=1)
    extra_domains: list[Annotated[str, StringConstraints(max_length=253)]] = Field(
        default_factory=list
    )
    ssl_inspection: bool = Field(
        False,
        description="The store's own proxy inspects TLS: render the partner's exemptions"
        " (squid ssl_bump splice lines and the handover list); false renders none",
    )
    lan_http_port: Port | None = Field(None, description="Signed local HTTP between POS devices")


def check(site: Site, i: OutboundOnlyIntegration, p: Partner, base: YamlPath) -> Iterator[Problem]:
    from generator.spec.checks import Problem, host_problem

    for j, name in enumerate(i.hosts):
        yield from host_problem(site, (*base, "hosts", j), name)
    for j, dom in enumerate(i.extra_domains):
        if not WILDCARD_RE.fullmatch(dom.lower()):
            yield Problem(
                "E210",
                (*base, "extra_domains", j),
                "is not a domain name or a *.domain wildcard",
                "devices.example.com or *.example.com",
            )


def resolve(ctx: Context, i: OutboundOnlyIntegration, p: Partner) -> None:
    ips = tuple(ctx.hosts[h].ip for h in i.hosts)
    extra = tuple(d.lower() for d in i.extra_domains)
    ctx.add_egress(f"{i.partner}-outbound", i.partner, p, ips, extra, inspected=i.ssl_inspection)
    if i.lan_http_port is not None:
        for h in sorted(i.hosts):
            others = host_cidrs([ctx.hosts[o].ip for o in i.hosts if o != h])
            if others:
                ctx.add_flow(
                    LanFlow(
                        f"{i.partner}-local-{h}",
                        i.partner,
                        "signed local HTTP between POS components",
                        others,
                        ctx.hosts[h].ip,
                        i.lan_http_port,
                        "tcp",
                        "local-http",
                        ctx.index,
                    )
                )
    doms = sorted({d for e in ctx.egress if e.partner == i.partner for d in e.domains})
    ctx.brief(i.partner, p, i.pattern, [f"outbound tcp/443 to {d}" for d in doms])


PATTERN = Pattern(
    "outbound_only", OutboundOnlyIntegration, resolve, check, doc=__doc__ or "", inbound=False
)
