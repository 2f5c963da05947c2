"""windows_https: a Windows back-office service switched to HTTPS (netsh scripts)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from generator import netparse
from generator.patterns.base import Output, Pattern
from generator.patterns.context import Context, host_cidrs
from generator.plan import LanFlow, WindowsBinding
from generator.spec.parts import Model
from generator.spec.types import (
    Fqdn,
    Guid,
    Hostname,
    Ident,
    Port,
    Text,
    Thumbprint,
)

if TYPE_CHECKING:
    from generator.catalog import Partner
    from generator.spec.checks import Problem
    from generator.spec.model import Site
    from generator.yamlload import YamlPath

# Language-neutral equivalent of `user=EVERYONE` (WD = World): works on any Windows locale.
EVERYONE_SDDL = "D:(A;;GX;;;WD)"


class WindowsHttpsIntegration(Model):
    pattern: Literal["windows_https"]
    partner: Ident
    host: Hostname
    port: Port | None = Field(None, description="Defaults to the catalog's port (10101)")
    appid: Guid | None = None
    thumbprint: Thumbprint
    name: Fqdn | None = Field(
        None,
        description="Host name the clients use, which the certificate must carry"
        " (default: <host>.<lan.domain>); an IP address fails the certificate's name check",
    )
    clients: list[Hostname] = Field(min_length=1)
    maintenance_window: Text


class WindowsHttpsParams(Model):
    """Catalog `windows_https:` parameters of a partner (defaults for the integration)."""

    default_port: Port | None = None
    appid: Guid | None = None


def binding_id(i: WindowsHttpsIntegration) -> str:
    """The binding's id: its enable and undo scripts and firewall rule are named after it."""
    return f"{i.partner}-{i.host}"


def outputs(i: WindowsHttpsIntegration) -> tuple[Output, ...]:
    return (
        Output(
            f"windows binding {binding_id(i)}",
            ("host",),
            "one windows_https per partner and host",
        ),
    )


def check(site: Site, i: WindowsHttpsIntegration, p: Partner, base: YamlPath) -> Iterator[Problem]:
    from generator.spec.checks import MAX_NAME, Problem, host_problem

    params = p.windows_https or WindowsHttpsParams()
    yield from host_problem(site, (*base, "host"), i.host)
    for host in site.hosts:
        if host.name == i.host and host.os != "windows":
            yield Problem(
                "E210",
                (*base, "host"),
                "windows_https needs a host with os: windows",
                "a host with os: windows (netsh configures its HTTPS binding)",
            )
    for j, name in enumerate(i.clients):
        yield from host_problem(site, (*base, "clients", j), name)
    if i.name is not None and netparse.ip_address_or_none(i.name) is not None:
        yield Problem(
            "E210",
            (*base, "name"),
            "is an address: the certificate is checked against a host name",
            "the DNS name the certificate carries",
        )
    domain = site.lan.domain
    if i.name is None and domain is not None and len(i.host) + 1 + len(domain) > MAX_NAME:
        yield Problem(
            "E210",
            (*base, "host"),
            f"the clients' default name {i.host}.<lan.domain> is a "
            f"{len(i.host) + 1 + len(domain)}-character host name: longer than the "
            f"{MAX_NAME} characters DNS allows",
            "name: the (shorter) name the certificate carries, or a shorter lan.domain",
        )
    if i.port is None and params.default_port is None:
        yield Problem(
            "E204",
            (*base, "port"),
            "no port given and the partner has no default",
            "port: the HTTPS port the partner's service listens on",
        )
    port = i.port or params.default_port
    declared = sorted({s.port for h in site.hosts if h.name == i.host for s in h.services})
    if port is not None and declared and port not in declared:
        shown = ", ".join(map(str, declared))
        yield Problem(
            "E210",
            (*base, "port") if i.port is not None else (*base, "host"),
            f"the HTTPS binding is for port {port}, but {i.host}'s services listen on "
            f"{shown}: the service would stay on plain HTTP",
            f"port: the port of {i.host}'s service ({shown})",
        )
    if i.appid is None and params.appid is None:
        yield Problem(
            "E204",
            (*base, "appid"),
            "no appid given and the partner has no default",
            "appid: the application's GUID, e.g. 77ba29fd-9f7a-45b0-8d7e-1ee5d879951b",
        )


def resolve(ctx: Context, i: WindowsHttpsIntegration, p: Partner) -> None:
    params = p.windows_https or WindowsHttpsParams()
    host = ctx.hosts[i.host]
    port = i.port or params.default_port
    appid = i.appid or params.appid
    assert port is not None and appid is not None
    clients = host_cidrs([ctx.hosts[c].ip for c in i.clients])
    domain = ctx.site.lan.domain
    name = i.name or (f"{host.name}.{domain}" if domain else None)
    ctx.windows.append(
        WindowsBinding(
            integration=ctx.index,
            id=binding_id(i),
            partner=i.partner,
            host=host.name,
            host_ip=host.ip,
            port=port,
            appid=appid,
            thumbprint=i.thumbprint,
            sddl=EVERYONE_SDDL,
            client_sources=clients,
            maintenance_window=i.maintenance_window,
            name=name,
        )
    )
    ctx.add_flow(
        LanFlow(
            f"{i.partner}-{host.name}-https",
            i.partner,
            f"{p.title} over HTTPS",
            clients,
            host.ip,
            port,
            "tcp",
            "windows-https",
            ctx.index,
        )
    )
    where = name or host.ip
    ctx.brief(i.partner, p, i.pattern, [f"https://{where}:{port}/ (LAN only)"])


PATTERN = Pattern(
    "windows_https",
    WindowsHttpsIntegration,
    resolve,
    check,
    WindowsHttpsParams,
    __doc__ or "",
    inbound=False,  # the HTTPS binding serves the store's own clients on the LAN
    outputs=outputs,
)
