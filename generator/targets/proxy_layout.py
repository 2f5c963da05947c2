"""How one proxy's routes become virtual servers, and the guards on what reaches a
proxy template. Shared by the nginx and Apache targets; the TLS values they apply are
in generator.targets.tls_policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from generator import netparse
from generator.plan import ProxyPlan, ProxyRoutePlan
from generator.targets.tls_policy import UpstreamTls, upstream_tls

# Statuses written to the upstream-failure log of both servers: 502/503/504 when the
# proxy got no usable answer, and 500, Apache's answer when the TLS handshake to the
# upstream fails (an upstream's own 500 lands there too, which is worth seeing).
FAILURE_STATUS_REGEX = "^50[0234]$"

# Guards: Plan values are already constrained by the spec, but a template must never
# be the place where a stray quote, brace or newline turns into a directive.
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$")
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_FILE_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_COMMENT = re.compile(r"^[A-Za-z0-9 ._/:@-]*$")  # text that goes into a # comment


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"unsafe {what} for a proxy config: {value!r}")
    return value


def check_hostname(value: str) -> str:
    return _check(_HOSTNAME, value, "host name")


def check_url_path(value: str) -> str:
    return _check(_URL_PATH, value, "URL path")


def check_file_path(value: str) -> str:
    return _check(_FILE_PATH, value, "file path")


def check_ident(value: str) -> str:
    return _check(_IDENT, value, "identifier")


def check_comment(value: str) -> str:
    return _check(_COMMENT, value, "comment text")


_REGEX_SPECIAL = re.compile(r"([.^$*+?()\[\]{}|\\])")


def regex_escape(path: str) -> str:
    """A URL path as a regex literal (paths are already limited to URL-safe chars)."""
    return _REGEX_SPECIAL.sub(r"\\\1", path)


def is_upstream_name(host: str) -> bool:
    """True for a DNS name, False for an IP literal: only names need a resolver."""
    return netparse.ip_address_or_none(host) is None


def check_proxy(proxy: ProxyPlan) -> None:
    """Every ProxyPlan value a template prints outside the routes."""
    check_ident(proxy.id)
    check_ident(proxy.partner)
    check_ident(proxy.pattern)
    for name in proxy.server_names:
        check_hostname(name)
    for param in proxy.redact_query_params:
        check_ident(param)
    check_file_path(proxy.tls.cert_path)
    check_file_path(proxy.tls.key_path)
    if proxy.auth == "basic":
        check_file_path(proxy.htpasswd_path or "")
    if proxy.auth == "client_cert":
        check_file_path(proxy.client_ca_path or "")
    for addr in proxy.resolvers:
        netparse.ip_address(addr)  # ValueError on anything else
    if not 1 <= int(proxy.resolver_valid) <= 3600:
        raise ValueError(f"unsafe resolver validity: {proxy.resolver_valid!r}")


# Proxy layout: which virtual servers and routes a ProxyPlan becomes. Shared so that
# nginx and Apache expose exactly the same names and paths.


@dataclass(frozen=True)
class Route:
    """One route as both servers need it.

    kind "prefix": value ends in "/", the prefix is stripped toward the upstream
    (`/pos1/x` -> `/x`); kind "exact": a single endpoint (the co-hosted auth path),
    forwarded with its path unchanged because the upstream serves it there;
    kind "default": everything else on that server name.
    """

    kind: Literal["exact", "prefix", "default"]
    path: str
    origin: str  # scheme://host:port
    websocket: bool
    tls: UpstreamTls | None  # None for plain http upstreams
    label: str
    host: str  # upstream host (IP or name)
    port: int

    @property
    def dynamic(self) -> bool:
        """A named upstream: resolved per request (nginx) or per connection (Apache),
        never only at start-up."""
        return is_upstream_name(self.host)

    @property
    def scheme(self) -> str:
        return self.origin.split("://", 1)[0]


@dataclass(frozen=True)
class VirtualServer:
    name: str
    routes: tuple[Route, ...]  # exact first, then longest prefix, default last

    @property
    def has_default(self) -> bool:
        return any(r.kind == "default" for r in self.routes)

    @property
    def needs_upstream_tls(self) -> bool:
        return any(r.tls is not None for r in self.routes)

    @property
    def has_dynamic(self) -> bool:
        return any(r.dynamic for r in self.routes)


def _route(
    kind: Literal["exact", "prefix", "default"], path: str, r: ProxyRoutePlan, lan_subnet: str
) -> Route:
    check_hostname(r.upstream_host)
    check_url_path(path)
    check_comment(r.label)
    return Route(
        kind=kind,
        path=path,
        origin=f"{r.upstream_scheme}://{r.upstream_host}:{int(r.upstream_port)}",
        websocket=r.websocket,
        tls=(
            upstream_tls(r.upstream_host, lan_subnet, r.trust, check_file_path(r.trust_path))
            if r.upstream_scheme == "https" and r.trust_path is not None
            else upstream_tls(r.upstream_host, lan_subnet)
            if r.upstream_scheme == "https"
            else None
        ),
        label=r.label,
        host=r.upstream_host,
        port=int(r.upstream_port),
    )


def _order(routes: list[Route]) -> tuple[Route, ...]:
    rank = {"exact": 0, "prefix": 1, "default": 2}
    return tuple(sorted(routes, key=lambda r: (rank[r.kind], -len(r.path), r.path)))


def layout(proxy: ProxyPlan, lan_subnet: str) -> tuple[VirtualServer, ...]:
    """Group routes into virtual servers: path/default routes on the first server name,
    one server per host route. Names without routes get no server: the catch-all
    answers them with 404 like any unknown host."""
    main = check_hostname(proxy.server_names[0])
    by_name: dict[str, list[Route]] = {}
    paths: set[tuple[str, str]] = set()  # (server name, path): a store may hold thousands
    for r in proxy.routes:
        if r.match == "host":
            name = check_hostname(r.value)
            if name in by_name:
                raise ValueError(f"two routes for host {name}")
            by_name[name] = [_route("default", "/", r, lan_subnet)]
            continue
        kind: Literal["exact", "prefix", "default"]
        if r.match == "default" or r.value == "/":
            kind = "default"
        else:
            kind = "prefix" if r.value.endswith("/") else "exact"
        path = "/" if kind == "default" else r.value
        if (main, path) in paths:
            raise ValueError(f"two routes for path {path} on {main}")
        paths.add((main, path))
        by_name.setdefault(main, []).append(_route(kind, path, r, lan_subnet))
    return tuple(VirtualServer(name, _order(rs)) for name, rs in by_name.items())


def front_door(proxy: ProxyPlan, lan_subnet: str) -> tuple[str, str]:
    """The server name and path a check from outside asks for: the first route of the
    first virtual server. A name with no route, or `/` under path routing, only reaches
    the catch-all's 404 (and nginx answers that before it asks for a password)."""
    server = layout(proxy, lan_subnet)[0]
    return server.name, server.routes[0].path
