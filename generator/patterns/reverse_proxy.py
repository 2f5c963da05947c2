"""reverse_proxy: nginx or Apache on a LAN host routes the partner by subdomain or path
to local services or to services of other stores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from generator.patterns.base import Listener, Output, Pattern
from generator.patterns.context import TLS_DIR, Context, host_cidrs, public_name
from generator.plan import EgressFlow, ProxyPlan, ProxyRoutePlan
from generator.spec.parts import Model, ProxyAuth, ProxyRoute, TlsSpec
from generator.spec.types import (
    Fqdn,
    Hostname,
    Ident,
    IPv4,
    Port,
    Source,
)
from generator.targets.proxy_layout import is_upstream_name

if TYPE_CHECKING:
    from generator.catalog import Partner
    from generator.spec.checks import Problem
    from generator.spec.model import Site
    from generator.yamlload import YamlPath


class ReverseProxyIntegration(Model):
    pattern: Literal["reverse_proxy"]
    partner: Ident
    proxy_host: Hostname
    software: Literal["nginx", "apache"] = "nginx"
    listen_port: Port = 8443
    public_port: Port | None = Field(None, description="None: a LAN-only proxy, no port forward")
    server_name: Fqdn | None = None
    routing: Literal["subdomain", "path"] = "path"
    auth: ProxyAuth = ProxyAuth()
    tls: TlsSpec
    routes: list[ProxyRoute] = Field(min_length=1)
    sources: list[Source] | None = None
    resolvers: list[IPv4] | None = Field(
        None,
        description="DNS servers for upstream names (other stores), asked at request time;"
        " default: the store's LAN gateway",
    )
    resolver_valid: int = Field(
        30, ge=1, le=3600, strict=True, description="Seconds an upstream address is kept"
    )


def proxy_id(i: ReverseProxyIntegration) -> str:
    """The proxy's id: its config, log, TLS and htpasswd files are named after it."""
    return f"{i.partner}-proxy"


def outputs(i: ReverseProxyIntegration) -> tuple[Output, ...]:
    expected = (
        "one reverse_proxy per partner and store: give all of the partner's routes "
        "to one integration"
    )
    # the edge's exposure of the proxy is named after it too (firewall set and rules)
    return (
        Output(f"proxy {proxy_id(i)}", ("partner",), expected),
        Output(f"exposure {proxy_id(i)}", ("partner",), expected),
    )


def listeners(site: Site, i: ReverseProxyIntegration) -> tuple[Listener, ...]:
    server_name = i.server_name or public_name(site)
    names = [server_name]
    if i.routing == "subdomain":
        names += [f"{r.subdomain}.{server_name}" for r in i.routes if r.subdomain]
    where = ("server_name",) if i.server_name else ("listen_port",)
    lis = Listener(i.proxy_host, i.listen_port, i.software, ("listen_port",), tuple(names), where)
    return (lis,)


def check(site: Site, i: ReverseProxyIntegration, p: Partner, base: YamlPath) -> Iterator[Problem]:
    from generator.spec.checks import Problem, check_proxy, host_problem

    yield from host_problem(site, (*base, "proxy_host"), i.proxy_host)
    yield from check_proxy(site, i, base)
    if site.edge.egress == "restricted" and any(r.site for r in i.routes):
        # the edge admits the proxy only to store addresses its own resolver answered
        # (dnsmasq fills the flow's set): another resolver's answers are never allowed
        for k, addr in enumerate(i.resolvers or ()):
            if addr != site.lan.gateway:
                yield Problem(
                    "E210",
                    (*base, "resolvers", k),
                    f"under egress: restricted the proxy reaches other stores only at "
                    f"addresses the edge's resolver answered; {addr} is not the edge",
                    f"no resolvers (the edge, {site.lan.gateway}), or egress: open",
                )
    tls = {f"{h.name}/{s.name}": s.tls for h in site.hosts for s in h.services}
    for j, r in enumerate(i.routes):
        trust = "upstream_ca" if r.upstream_ca else "upstream_certificate"
        if (r.upstream_ca or r.upstream_certificate) and tls.get(r.service or "") is False:
            yield Problem(
                "E210",
                (*base, "routes", j, trust),
                f"{r.service} is plain http: there is no certificate to check",
                "tls: true on that service, or no upstream trust",
            )


def _routes(
    ctx: Context, i: ReverseProxyIntegration, server_name: str, pid: str
) -> tuple[list[ProxyRoutePlan], list[str]]:
    routes: list[ProxyRoutePlan] = []
    names = [server_name]
    for j, r in enumerate(i.routes):
        if r.service is not None:
            host, svc = ctx.service(r.service)
            up_host, up_port, up_tls, label = host.ip, svc.port, svc.tls, r.service
        else:
            assert r.site is not None and r.site_service is not None
            other = ctx.fleet[r.site]
            up_host = other.fqdn or str(other.public_ip)
            up_port, up_tls = other.reached_at(r.site_service)
            label = f"{r.site}/{r.site_service}"
        if i.routing == "subdomain":
            assert r.subdomain is not None
            value = f"{r.subdomain}.{server_name}"
            names.append(value)
            match = "host"
        else:
            assert r.path is not None
            value = r.path if r.path.endswith("/") else r.path + "/"
            match = "path"
        trust_ref = r.upstream_ca or r.upstream_certificate
        trust_path = None
        if trust_ref is not None:
            trust_path = f"{TLS_DIR}/{pid}-{label.replace('/', '-')}-upstream.pem"
            ctx.need(trust_ref, f"{pid} trust for upstream {label}", "upstream-ca")
        routes.append(
            ProxyRoutePlan(
                match=match,  # type: ignore[arg-type]
                value=value,
                upstream_scheme="https" if up_tls else "http",
                upstream_host=up_host,
                upstream_port=up_port,
                websocket=r.websocket,
                label=label,
                trust="ca" if r.upstream_ca else "pinned" if r.upstream_certificate else "public",
                trust_ref=trust_ref,
                trust_path=trust_path,
                route=j,
            )
        )
    return routes, names


def _resolvers(
    ctx: Context, i: ReverseProxyIntegration, routes: list[ProxyRoutePlan]
) -> tuple[str, ...]:
    """Only proxies with a named upstream need a resolver (nginx re-resolves a name
    only through one; a literal name would be resolved once, at start)."""
    if not any(is_upstream_name(r.upstream_host) for r in routes):
        return ()
    return tuple(i.resolvers) if i.resolvers else (ctx.site.lan.gateway,)


def _store_egress(
    ctx: Context, i: ReverseProxyIntegration, pid: str, ip: str, routes: list[ProxyRoutePlan]
) -> None:
    """Under `egress: restricted` a central proxy must still reach the stores it routes
    to: one egress flow per store name and port, from the proxy host (an open edge
    needs none). Stores reached by IP cannot be allowed by name; lint PN204 says so."""
    if ctx.site.edge.egress != "restricted":
        return
    remote = [r for r, spec in zip(routes, i.routes, strict=True) if spec.site is not None]
    for host, port in sorted({(r.upstream_host, r.upstream_port) for r in remote}):
        if not is_upstream_name(host):
            continue
        ctx.egress.append(
            EgressFlow(
                id=f"{pid}-{host.split('.')[0]}-{port}",
                partner=i.partner,
                purpose=f"central proxy to {host}",
                sources=host_cidrs((ip,)),
                domains=(host,),
                ports=(port,),
                protocol="tcp",
                ssl_inspection_exempt=True,
            )
        )


def resolve(ctx: Context, i: ReverseProxyIntegration, p: Partner) -> None:
    proxy = ctx.host_plan(i.proxy_host)
    pid = proxy_id(i)
    server_name = i.server_name or ctx.public_name()
    routes, names = _routes(ctx, i, server_name, pid)
    auth = i.auth
    if auth.htpasswd:
        ctx.need(auth.htpasswd, f"{pid} htpasswd file", "htpasswd")
    users = tuple((u.name, u.password) for u in auth.users or ())
    for name, ref in users:
        ctx.need(ref, f"{pid} password of user {name}", "basic-auth-password")
    if auth.client_ca:
        ctx.need(auth.client_ca, f"{pid} client CA bundle", "client-ca")
    basic, cert = auth.type == "basic", auth.type == "client_cert"
    ctx.proxies.append(
        ProxyPlan(
            integration=ctx.index,
            id=pid,
            partner=i.partner,
            pattern="reverse_proxy",
            software=i.software,
            host=proxy.name,
            host_ip=proxy.ip,
            listen_port=i.listen_port,
            server_names=tuple(names),
            tls=ctx.tls(pid, i.tls, tuple(i.resolvers or ())),
            auth=auth.type,
            htpasswd_ref=auth.htpasswd if basic else None,
            htpasswd_path=f"/etc/posnet/{pid}.htpasswd" if basic else None,
            client_ca_ref=auth.client_ca if cert else None,
            client_ca_path=f"{TLS_DIR}/{pid}-client-ca.pem" if cert else None,
            routes=tuple(sorted(routes, key=lambda r: (r.match, r.value))),
            redact_query_params=(),
            auth_path=None,
            resolvers=_resolvers(ctx, i, routes),
            resolver_valid=i.resolver_valid,
            basic_users=users if basic else (),
        )
    )
    _store_egress(ctx, i, pid, proxy.ip, routes)
    endpoints: list[str] = []
    if i.public_port is not None:
        ctx.expose_proxy(
            ctx.proxies[-1],
            i.public_port,
            tuple(i.sources if i.sources is not None else p.sources),
            "/",
        )
        for rp in routes:
            if rp.match == "host":
                url = f"{rp.value}:{i.public_port}/"
            else:
                url = f"{server_name}:{i.public_port}{rp.value}"
            ws = f" (WebSocket: wss://{url})" if rp.websocket else ""
            endpoints.append(f"https://{url} -> {rp.label}{ws}")
    ctx.brief(i.partner, p, i.pattern, endpoints)


PATTERN = Pattern(
    "reverse_proxy",
    ReverseProxyIntegration,
    resolve,
    check,
    doc=__doc__ or "",
    outputs=outputs,
    listeners=listeners,
)
