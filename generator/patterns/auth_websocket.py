"""auth_websocket: an nginx on a LAN host terminates TLS for the partner's REST auth
endpoint and its websocket server, keeping the access token out of the logs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from generator.patterns.base import Listener, Output, Pattern
from generator.patterns.context import Context
from generator.plan import DeviceConfig, ProxyPlan, ProxyRoutePlan
from generator.spec.parts import Model, ServiceRef, TlsSpec
from generator.spec.types import (
    Fqdn,
    Hostname,
    Ident,
    Port,
    SecretRef,
    Source,
    Text,
    UrlPath,
)

if TYPE_CHECKING:
    from generator.catalog import Partner
    from generator.spec.checks import Problem
    from generator.spec.model import Site
    from generator.yamlload import YamlPath

LISTEN_PORT = 8443


class AuthWebsocketIntegration(Model):
    pattern: Literal["auth_websocket"]
    partner: Ident
    proxy_host: Hostname
    public_port: Port
    server_name: Fqdn
    websocket_service: ServiceRef
    auth_service: ServiceRef
    provider_outlet_id: Text
    pos_remote_id: Text
    auth_secret: SecretRef
    tls: TlsSpec
    sources: list[Source] | None = None


def _not_the_websocket(path: str) -> str:
    """The websocket server answers "/" (every path but the auth endpoint): an auth path
    of "/" would be a second route for the same path, and nginx refuses that."""
    if path == "/":
        raise PydanticCustomError(
            "posnet_value",
            "is the websocket's path: the auth endpoint needs a path of its own",
            {"expected": "a path other than /, e.g. /auth"},
        )
    return path


class AuthWebsocketParams(Model):
    """Catalog `auth_websocket:` parameters of a partner: the partner's own endpoint and
    token parameter (the proxy routes the one and keeps the other out of its logs), so
    neither has a default."""

    auth_path: Annotated[UrlPath, AfterValidator(_not_the_websocket)]
    token_query_param: Ident


def proxy_id(i: AuthWebsocketIntegration) -> str:
    """The proxy's id: its config, log and TLS files are named after it."""
    return f"{i.partner}-ws"


def device_id(i: AuthWebsocketIntegration) -> str:
    """The auth service's settings file is devices/<id>.properties."""
    return f"{i.partner}-auth"


def outputs(i: AuthWebsocketIntegration) -> tuple[Output, ...]:
    expected = "one auth_websocket per partner and store"
    return (
        Output(f"proxy {proxy_id(i)}", ("partner",), expected),
        Output(f"exposure {proxy_id(i)}", ("partner",), expected),
        Output(f"device {device_id(i)}", ("partner",), expected),
    )


def listeners(site: Site, i: AuthWebsocketIntegration) -> tuple[Listener, ...]:
    where = ("server_name",)
    return (Listener(i.proxy_host, LISTEN_PORT, "nginx", ("proxy_host",), (i.server_name,), where),)


def check(site: Site, i: AuthWebsocketIntegration, p: Partner, base: YamlPath) -> Iterator[Problem]:
    from generator.spec.checks import host_problem, service_problem

    yield from host_problem(site, (*base, "proxy_host"), i.proxy_host)
    proxy = "the websocket proxy"
    yield from service_problem(site, (*base, "websocket_service"), i.websocket_service, proxy)
    yield from service_problem(site, (*base, "auth_service"), i.auth_service, proxy)


def resolve(ctx: Context, i: AuthWebsocketIntegration, p: Partner) -> None:
    params = p.auth_websocket
    assert params is not None  # the catalog refuses an auth_websocket partner without it
    proxy = ctx.host_plan(i.proxy_host)
    pid = proxy_id(i)
    ws_host, ws_svc = ctx.service(i.websocket_service)
    au_host, au_svc = ctx.service(i.auth_service)
    auth_path, param = params.auth_path, params.token_query_param
    routes = (
        ProxyRoutePlan(
            "path",
            auth_path,
            "https" if au_svc.tls else "http",
            au_host.ip,
            au_svc.port,
            False,
            i.auth_service,
        ),
        ProxyRoutePlan(
            "default",
            "/",
            "https" if ws_svc.tls else "http",
            ws_host.ip,
            ws_svc.port,
            True,
            i.websocket_service,
        ),
    )
    ctx.proxies.append(
        ProxyPlan(
            integration=ctx.index,
            id=pid,
            partner=i.partner,
            pattern="auth_websocket",
            software="nginx",
            host=proxy.name,
            host_ip=proxy.ip,
            listen_port=LISTEN_PORT,
            server_names=(i.server_name,),
            tls=ctx.tls(pid, i.tls),
            auth="none",
            htpasswd_ref=None,
            htpasswd_path=None,
            client_ca_ref=None,
            client_ca_path=None,
            routes=routes,
            redact_query_params=(param,),
            auth_path=auth_path,
        )
    )
    ctx.expose_proxy(
        ctx.proxies[-1],
        i.public_port,
        tuple(i.sources if i.sources is not None else p.sources),
        auth_path,
    )
    s = ctx.need(i.auth_secret, f"{i.partner} AuthSecret", "auth-secret")
    settings = (
        ("ProviderOutletID", i.provider_outlet_id),
        ("POSRemoteID", i.pos_remote_id),
        ("AuthSecret", s.marker),
    )
    ctx.devices.append(
        DeviceConfig(device_id(i), i.partner, au_host.name, settings, "service-settings", ctx.index)
    )
    base = f"{i.server_name}:{i.public_port}"
    endpoints = [f"POST https://{base}{auth_path}", f"wss://{base}/?{param}=ACCESS_TOKEN"]
    ctx.brief(i.partner, p, i.pattern, endpoints)


PATTERN = Pattern(
    "auth_websocket",
    AuthWebsocketIntegration,
    resolve,
    check,
    AuthWebsocketParams,
    __doc__ or "",
    outputs=outputs,
    listeners=listeners,
)
