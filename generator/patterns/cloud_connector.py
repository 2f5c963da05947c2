"""cloud_connector: payment devices and the POS talk to the partner's cloud over
websockets; posnet writes each device's property file and the egress they need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StringConstraints

from generator.patterns.base import Output, Pattern
from generator.patterns.context import Context, host_cidrs
from generator.plan import DeviceConfig, EgressFlow, LanFlow
from generator.spec.parts import Model
from generator.spec.types import (
    DomainPattern,
    Fqdn,
    Hostname,
    Ident,
    Port,
    ProfileName,
    SecretRef,
    Text,
    UrlPath,
)

if TYPE_CHECKING:
    from generator.catalog import Partner
    from generator.spec.checks import Problem
    from generator.spec.model import Site
    from generator.yamlload import YamlPath


class Environment(Model):
    api_host: Fqdn
    auth_host: Fqdn
    session_hosts: list[DomainPattern] | None = Field(
        None,
        min_length=1,
        description="Hosts of the connection URL (devices) and session URL (POS) the cloud"
        " returns at run time, as the partner confirms them (api_host again if they are on"
        " it); unpublished for PPaaS, so without them restricted egress may block the"
        " second connection (lint PN116)",
    )


class CloudConnectorIntegration(Model):
    pattern: Literal["cloud_connector"]
    partner: Ident
    environment: Ident = "qa"
    domain: Ident = Field(description="{your-domain} from onboarding")
    pos_host: Hostname
    devices: list[Hostname] = Field(min_length=1)
    client_id: Text
    client_secret: SecretRef
    # The partner's guide asks for "{location of the pem file on the device}" and names
    # none: the store gives it (no invented default; a missing one is E100 at the entry).
    ssl_profile_crt: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._/-]{1,200}$")]
    local_fallback_port: Port | None = Field(None, description="Device server port when offline")


class CloudConnectorParams(Model):
    """Catalog `cloud_connector:` parameters of a partner."""

    environments: dict[Ident, Environment] = Field(default_factory=dict)
    # The partner's own paths and device TLS profile (written into each device's file):
    # no defaults, a partner added in fleet.yaml gives them as its guide does.
    device_listener_path: UrlPath
    pos_listener_path: UrlPath
    token_path_template: UrlPath = Field(description="DOMAIN is replaced by the store's domain")
    ssl_profile_name: ProfileName


def device_id(i: CloudConnectorIntegration, device: str) -> str:
    """A payment device's settings file is devices/<id>.properties."""
    return f"{i.partner}-{device}"


def outputs(i: CloudConnectorIntegration) -> tuple[Output, ...]:
    return tuple(
        Output(
            f"device {device_id(i, d)}",
            ("devices", j),
            "each device in one cloud_connector of the partner",
        )
        for j, d in enumerate(i.devices)
    )


def check(
    site: Site, i: CloudConnectorIntegration, p: Partner, base: YamlPath
) -> Iterator[Problem]:
    from generator.spec.checks import Problem, host_problem

    yield from host_problem(site, (*base, "pos_host"), i.pos_host)
    for j, name in enumerate(i.devices):
        yield from host_problem(site, (*base, "devices", j), name)
    envs = p.cloud_connector.environments if p.cloud_connector else {}
    if i.environment not in envs:
        yield Problem(
            "E204",
            (*base, "environment"),
            f"partner '{i.partner}' has no environment '{i.environment}'; environments are "
            f"added under partners.{i.partner}.cloud_connector.environments in fleet.yaml",
            (", ".join(sorted(envs)) or "an environment in the catalog")
            + f" (see `posnet catalog {i.partner}`)",
        )


def resolve(ctx: Context, i: CloudConnectorIntegration, p: Partner) -> None:
    params = p.cloud_connector
    assert params is not None  # the catalog refuses a cloud_connector partner without it
    env = params.environments[i.environment]
    pos = ctx.hosts[i.pos_host]
    ips = (pos.ip, *(ctx.hosts[d].ip for d in i.devices))
    ctx.egress.append(
        EgressFlow(
            id=f"{i.partner}-cloud-connector",
            partner=i.partner,
            purpose=f"{p.title} websockets and OAuth2 ({i.environment})",
            sources=host_cidrs(ips),
            domains=tuple(sorted({env.api_host, env.auth_host, *(env.session_hosts or ())})),
            ports=(443,),
            protocol="tcp",
            ssl_inspection_exempt=True,
        )
    )
    secret_need = ctx.need(i.client_secret, f"{i.partner} client secret", "client-secret")
    dev_path = params.device_listener_path
    token_path = params.token_path_template.replace("DOMAIN", i.domain)
    for d in sorted(i.devices):
        registration = (
            '{"client_id":"' + i.client_id + '","client_secret":"' + secret_need.marker + '"}'
        )
        props = (
            ("custom_registration_data", registration),
            ("ep_register_url", f"wss://{env.api_host}{dev_path}"),
            ("enable_ssl", "1"),
            ("ssl_profile_name", params.ssl_profile_name),
            ("ssl_profile_crt", i.ssl_profile_crt),
        )
        ctx.devices.append(
            DeviceConfig(device_id(i, d), i.partner, d, props, "payment-device", ctx.index)
        )
        if i.local_fallback_port is not None:
            ctx.add_flow(
                LanFlow(
                    f"{i.partner}-fallback-{d}",
                    i.partner,
                    "local fallback when the cloud is unreachable",
                    (f"{pos.ip}/32",),
                    ctx.hosts[d].ip,
                    i.local_fallback_port,
                    "tcp",
                    "device-fallback",
                    ctx.index,
                )
            )
    endpoints = [
        f"POST https://{env.auth_host}{token_path}",
        f"wss://{env.api_host}{params.pos_listener_path}",
        f"wss://{env.api_host}{dev_path}",
    ]
    # Seed 001, steps 3 and 8: the cloud returns the URL a device connects to after
    # registering and the session URL the POS claims, and publishes neither's host.
    runtime = () if env.session_hosts else ("connection URL (devices)", "session URL (POS)")
    notes: tuple[str, ...] = ()
    if runtime and ctx.site.edge.egress == "restricted":
        hosts = " and ".join(sorted({env.api_host, env.auth_host}))
        notes = (
            f"{p.title} returns the devices' connection URL and the POS's session URL at run "
            f"time and does not publish their hosts; under restricted egress posnet lets the "
            f"devices and the POS reach only {hosts} on port 443, so confirm those hosts "
            f"with the partner (then set partners.{i.partner}.cloud_connector.environments."
            f"{i.environment}.session_hosts in fleet.yaml)",
        )
    ctx.brief(i.partner, p, i.pattern, endpoints, notes, runtime)


PATTERN = Pattern(
    "cloud_connector",
    CloudConnectorIntegration,
    resolve,
    check,
    CloudConnectorParams,
    __doc__ or "",
    inbound=False,
    outputs=outputs,
)
