"""direct: a port forward from the edge to one LAN service, allow-listed to the partner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from generator.patterns.base import Output, Pattern
from generator.patterns.context import Context
from generator.plan import Exposure
from generator.spec.parts import Model, ServiceRef
from generator.spec.types import (
    Ident,
    Port,
    Source,
)

if TYPE_CHECKING:
    from generator.catalog import Partner
    from generator.spec.checks import Problem
    from generator.spec.model import Site
    from generator.yamlload import YamlPath


class DirectIntegration(Model):
    pattern: Literal["direct"]
    partner: Ident
    service: ServiceRef
    public_port: Port
    sources: list[Source] | None = Field(None, description="Override the catalog's source IPs")


def exposure_id(i: DirectIntegration) -> str:
    """The exposure's id: its firewall set and rules, its checks in expectations.json and
    its entry in `posnet diff` are named after it."""
    return f"{i.partner}-{i.service.replace('/', '-')}"


def outputs(i: DirectIntegration) -> tuple[Output, ...]:
    # Two exposures of one id (a second public port for the same partner and service)
    # rendered, but `posnet diff` keyed them by that id and showed a change to the first
    # as one to the second, or not at all.
    return (
        Output(
            f"exposure {exposure_id(i)}",
            ("service",),
            "one direct integration per partner and service, and an exposure name no "
            "other integration of the store has (a proxy's is <partner>-proxy or "
            "<partner>-ws): rename the service or the partner",
        ),
    )


def check(site: Site, i: DirectIntegration, p: Partner, base: YamlPath) -> Iterator[Problem]:
    from generator.spec.checks import service_problem

    yield from service_problem(site, (*base, "service"), i.service)


def resolve(ctx: Context, i: DirectIntegration, p: Partner) -> None:
    host, svc = ctx.service(i.service)
    sources = tuple(i.sources if i.sources is not None else p.sources)
    http = svc.http and svc.protocol == "tcp"  # HTTP runs over TCP
    ctx.expose(
        Exposure(
            integration=ctx.index,
            id=exposure_id(i),
            partner=i.partner,
            pattern=i.pattern,
            public_port=i.public_port,
            protocol=svc.protocol,
            target_host=host.name,
            target_ip=host.ip,
            target_port=svc.port,
            sources=sources,
            tls=svc.tls,
            http=http,
            health_path=svc.health_path,
        )
    )
    scheme = "https" if svc.tls else "http"
    endpoint = f"{ctx.public_name()}:{i.public_port}"
    if svc.protocol == "udp":
        endpoint = f"{endpoint} (UDP)"
    ctx.brief(i.partner, p, i.pattern, [f"{scheme}://{endpoint}/" if http else endpoint])


PATTERN = Pattern("direct", DirectIntegration, resolve, check, doc=__doc__ or "", outputs=outputs)
