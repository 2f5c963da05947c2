"""nginx reverse proxy: one file per ProxyPlan, included in the http{} context.

Choices that are not obvious from the template:
- Every name that can clash with another conf.d file (log_format, map variable,
  catch-all server name) carries the proxy id, and the catch-all is made the port's
  default by coming first rather than by `default_server`, so two posnet proxies on one
  host never make `nginx -t` fail on a duplicate.
- A literal host name in `proxy_pass` is resolved once when nginx (re)loads, and one
  that does not resolve stops the whole config. Named upstreams (a central proxy's
  stores, often on DDNS) therefore go through a variable and the proxy's `resolver`
  with a validity time: looked up per request, failing only their own route.
- A server name too long for nginx's server-name hash (see SERVER_NAME_HASH_MAX) is
  written as an anchored regular expression, which nginx matches outside that hash;
  posnet never sets the http-level server_names_hash_bucket_size, which may appear
  only once per nginx and may already be in the host's nginx.conf.
- The error log is at `emerg` (see ERROR_LEVEL): what an operator needs from it at
  request time (an unreachable upstream) goes to a second access log filtered with
  `if=` on the status, which prints the path (the request URI cut at "?") and
  never the request line.
"""

from __future__ import annotations

from generator.plan import Plan, ProxyPlan
from generator.targets.base import ProxyActivation, alive, proxy_server
from generator.targets.names import bounded
from generator.targets.proxy_layout import (
    FAILURE_STATUS_REGEX,
    check_hostname,
    check_ident,
    check_proxy,
    layout,
    regex_escape,
)
from generator.targets.tls_policy import SYSTEM_CA_BUNDLE, policy_for

NAME = "nginx"
# No secret value ever lands in this file: keys and htpasswd are deployed as files
# and referenced by path. "raw" is the strictest style should a marker ever appear.
SECRET_STYLE = "raw"  # noqa: S105 - a style name, not a secret

LOG_DIR = "/var/log/nginx"
# nginx appends the full request line (query string included) to every message it
# writes while serving a request, at every level up to alert; emerg is the only level
# it keeps for start-up and resource exhaustion. Request-time failures are reported by
# the upstream-failure access log instead (status, upstream address, path only).
ERROR_LEVEL = "emerg"
# Names that carry the proxy id are bounded (targets.names.bounded), so any legal id
# loads: PCRE2 refuses a named group longer than 32 code units ("subpattern name is
# too long"), and nginx keeps variable names in a hash whose 64-byte buckets
# (variables_hash_bucket_size, http-level like the server-name one below) hold names
# of up to 46 characters. The longest variable adds _VAR_SUFFIX to the base name.
CAPTURE_NAME_MAX = 32
VARIABLE_NAME_MAX = 46
_VAR_SUFFIX = "_upstream_failed"
# nginx keeps exact server names in a hash whose bucket must hold one name:
# 8 + align(len + 2, 8) + 8 bytes on a 64-bit host, within server_names_hash_bucket_size
# (64 by default there: the CPU cache line; Debian's nginx.conf leaves it commented
# out). So a name of more than 46 characters fails nginx -t with "could not build
# server_names_hash", and a legal FQDN runs to 253. Such a name is written as
# "~^name$" instead: regular-expression names are tried in order outside the hash,
# case-insensitively like exact names. Shorter names stay exact (and unchanged). The
# access log's $server_name then shows that expression (~^name$) instead of the name.
SERVER_NAME_HASH_MAX = 46


def server_name(name: str) -> str:
    """The `server_name` argument for one host name: itself, or an anchored regex."""
    check_hostname(name)
    if len(name) <= SERVER_NAME_HASH_MAX:
        return name
    return f'"~^{regex_escape(name)}$"'


def _var(proxy_id: str) -> str:
    """nginx variable and log_format names allow no hyphen."""
    return "posnet_" + check_ident(proxy_id).replace("-", "_")


def render_proxy(plan: Plan, proxy: ProxyPlan) -> str:
    """The nginx file for one proxy, whatever `proxy.software` says (tests render both
    servers for every proxy)."""
    from generator.templating import render as render_template

    check_proxy(proxy)
    servers = layout(proxy, plan.lan.subnet)
    base = bounded(_var(proxy.id), VARIABLE_NAME_MAX - len(_VAR_SUFFIX))
    websocket = any(r.websocket for s in servers for r in s.routes)
    return render_template(
        "nginx/proxy.conf.j2",
        site_id=plan.site_id,
        p=proxy,
        tls=policy_for(proxy.tls.openssl),
        system_ca_bundle=SYSTEM_CA_BUNDLE,
        servers=servers,
        log_format=base,
        map_var=f"{base}_connection" if websocket else "",
        catchall_name=f"unknown-host.{check_ident(proxy.id)}.posnet.invalid",
        access_log=f"{LOG_DIR}/posnet-{proxy.id}.access.log",
        error_log=f"{LOG_DIR}/posnet-{proxy.id}.error.log",
        error_level=ERROR_LEVEL,
        upstream_var=f"{base}_upstream",
        path_var=f"{base}_path",
        path_capture=bounded(f"{base}_path_p", CAPTURE_NAME_MAX),
        regex_escape=regex_escape,
        server_name=server_name,
        failure_log=f"{LOG_DIR}/posnet-{proxy.id}.upstream-errors.log",
        failure_var=base + _VAR_SUFFIX,
        failure_status=FAILURE_STATUS_REGEX,
    )


def render(plan: Plan) -> dict[str, str]:
    return {
        f"proxy/{p.id}.nginx.conf": render_proxy(plan, p)
        for p in plan.proxies
        if p.software == "nginx"
    }


PIDFILE = "/run/nginx.pid"


# One file per proxy id in the stock Debian include folder of the server.
TARGET = proxy_server(
    NAME,
    "/etc/nginx/conf.d/posnet-{id}.conf",
    render,
    secret_style=SECRET_STYLE,
    activation=ProxyActivation(
        binary="nginx",
        service="nginx",
        env="true",
        check="nginx -t -q",
        pidfile=PIDFILE,
        running=alive(PIDFILE),
        start="nginx",
        reload="nginx -s reload",
    ),
)
