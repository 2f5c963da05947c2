"""tunnel: the partner's tunnel client on a LAN host dials out; nothing is opened inbound."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from generator.patterns.base import Pattern
from generator.patterns.context import Context
from generator.plan import TunnelPlan
from generator.spec.parts import Model, ServiceRef
from generator.spec.types import (
    Fqdn,
    Ident,
    Note,
    Port,
    SecretRef,
)

if TYPE_CHECKING:
    from generator.catalog import Partner
    from generator.spec.checks import Problem
    from generator.spec.model import Site
    from generator.yamlload import YamlPath


class TunnelIntegration(Model):
    pattern: Literal["tunnel"]
    partner: Ident
    service: ServiceRef
    token: SecretRef


class TunnelParams(Model):
    """Catalog `tunnel:` parameters of a partner. The handover tells the engineer to open
    the client's web UI and to give the partner a name under its domain: both come from
    the partner's guide, so neither has a default."""

    domain_suffix: Fqdn = Field(description="Domain the tunnel names end in")
    ui_port: Port = Field(description="Local web UI port of the tunnel client")
    uninstaller: Note | None = Field(
        None,
        description="The uninstaller of an earlier Windows client, as the partner documents"
        " it (e.g. Program Files (x86)/deliverect-tunnel/unis000.exe); without it the"
        " handover says to remove an earlier client as the partner documents",
        pattern=r"^[^/]+(?:/[^/]+)*/[^/]+$",
    )


def check(site: Site, i: TunnelIntegration, p: Partner, base: YamlPath) -> Iterator[Problem]:
    from generator.spec.checks import service_problem

    yield from service_problem(site, (*base, "service"), i.service, "the TCP tunnel client")


def resolve(ctx: Context, i: TunnelIntegration, p: Partner) -> None:
    params = p.tunnel
    assert params is not None  # the catalog refuses a tunnel partner without it
    host, svc = ctx.service(i.service)
    token = ctx.need(i.token, f"{i.partner} tunnel token", "tunnel-token")
    ctx.tunnels.append(
        TunnelPlan(
            integration=ctx.index,
            id=f"{i.partner}-tunnel",
            partner=i.partner,
            host=host.name,
            host_ip=host.ip,
            local_port=svc.port,
            token=token,
            ui_port=params.ui_port,
            domain_suffix=params.domain_suffix,
            uninstaller=params.uninstaller,
        )
    )
    ctx.add_egress(f"{i.partner}-tunnel", i.partner, p, (host.ip,), ())
    endpoint = f"https://DOMAIN-SHOWN-BY-INSTALLER.{params.domain_suffix}"
    ctx.brief(i.partner, p, i.pattern, [endpoint])


PATTERN = Pattern(
    "tunnel", TunnelIntegration, resolve, check, TunnelParams, __doc__ or "", inbound=False
)
