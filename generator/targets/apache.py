"""Apache httpd reverse proxy: one VirtualHost file per ProxyPlan, for sites-enabled.

Same layout as the nginx target (generator.targets.proxy_layout.layout) so a partner sees
the same names, paths and status codes whichever server the store runs. Apache-specific
choices:
- `retry=0` on every ProxyPass: Apache otherwise marks a backend dead for 60 s after one
  failed connect, and a POS that reboots would stay unreachable for a minute after.
- Upstream TLS settings live in a `<Proxy>` section per upstream (Apache >= 2.4.30), so
  a LAN POS with a self-signed certificate and a verified remote store can share a vhost.
- The co-hosted auth endpoint is an exact path: `ProxyPassMatch` with an anchored
  regex, the path forwarded unchanged.
"""

from __future__ import annotations

from generator.plan import Plan, ProxyPlan
from generator.targets.base import ProxyActivation, alive, proxy_server
from generator.targets.proxy_layout import (
    FAILURE_STATUS_REGEX,
    Route,
    VirtualServer,
    check_ident,
    check_proxy,
    layout,
    regex_escape,
)
from generator.targets.tls_policy import policy_for

NAME = "apache"
# No secret value ever lands in this file: keys and htpasswd are deployed as files
# and referenced by path. "raw" is the strictest style should a marker ever appear.
SECRET_STYLE = "raw"  # noqa: S105 - a style name, not a secret

# a2enmod names of every module a rendered file may use (mod_log_config is built in).
REQUIRED_MODULES: tuple[str, ...] = (
    "alias",
    "auth_basic",
    "authn_core",
    "authn_file",
    "authz_core",
    "authz_user",
    "headers",
    "proxy",
    "proxy_http",
    "ssl",
)

LOG_DIR = "/var/log/apache2"
# Common log format with the path only (%U): the query string never reaches the log.
LOG_FORMAT = r"%h %l %u %t %v \"%m %U %H\" %>s %b \"%{User-agent}i\" %Dus"
# Error-log levels. mod_proxy, mod_proxy_http and mod_ssl stay at error: their messages
# there name the backend and the TLS failure (AH00957, AH02039), not the URL, and that
# is how an operator learns why a route fails. Above error they do print the backend
# URL with its query (mod_proxy AH00944 at debug, measured), so never raise them. Every
# other module logs from crit: posnet cannot test each message of each module for a
# request line (the core's AH00126 prints it at error), and nothing it needs is there.
LOG_LEVEL = "crit proxy:error proxy_http:error ssl:error"
# Error-log lines without the Referer Apache appends by default (a URL with a query).
ERROR_LOG_FORMAT = "[%{u}t] [%-m:%l] [pid %P] [client %a] %M"
# The upstream-failure log (statuses: proxy_layout.FAILURE_STATUS_REGEX).
FAILURE_EXPR = f"%{{REQUEST_STATUS}} =~ /{FAILURE_STATUS_REGEX}/"
# Ports Debian's ports.conf already listens on; a second Listen would stop Apache.
DEBIAN_PORTS = (80, 443)


def path_regex(path: str) -> str:
    """Anchored regex for exactly `path`."""
    return "^" + regex_escape(path) + "$"


def tls_upstreams(server: VirtualServer) -> list[Route]:
    """One `<Proxy>` section per https upstream origin, first route wins."""
    seen: dict[str, Route] = {}
    for r in server.routes:
        if r.tls is not None:
            seen.setdefault(r.origin, r)
    return list(seen.values())


def render_proxy(plan: Plan, proxy: ProxyPlan) -> str:
    """The Apache file for one proxy, whatever `proxy.software` says (tests render both
    servers for every proxy)."""
    from generator.templating import render as render_template

    check_proxy(proxy)
    tls = policy_for(proxy.tls.openssl)
    return render_template(
        "apache/proxy.conf.j2",
        site_id=plan.site_id,
        p=proxy,
        tls=tls,
        ssl_protocol="-all " + " ".join(f"+{v}" for v in tls.protocols),
        servers=layout(proxy, plan.lan.subnet),
        modules=REQUIRED_MODULES,
        listen=proxy.listen_port not in DEBIAN_PORTS,
        catchall_name=f"unknown-host.{check_ident(proxy.id)}.posnet.invalid",
        access_log=f"{LOG_DIR}/posnet-{proxy.id}.access.log",
        error_log=f"{LOG_DIR}/posnet-{proxy.id}.error.log",
        failure_log=f"{LOG_DIR}/posnet-{proxy.id}.upstream-errors.log",
        log_format=LOG_FORMAT,
        log_level=LOG_LEVEL,
        error_log_format=ERROR_LOG_FORMAT,
        failure_expr=FAILURE_EXPR,
        path_regex=path_regex,
        tls_upstreams=tls_upstreams,
    )


def render(plan: Plan) -> dict[str, str]:
    return {
        f"proxy/{p.id}.apache.conf": render_proxy(plan, p)
        for p in plan.proxies
        if p.software == "apache"
    }


# One file per proxy id in the stock Debian include folder of the server.
TARGET = proxy_server(
    NAME,
    "/etc/apache2/sites-enabled/posnet-{id}.conf",
    render,
    secret_style=SECRET_STYLE,
    # Debian's envvars: APACHE_PID_FILE=/var/run/apache2/apache2.pid (/var/run is /run)
    pidfile="/run/apache2/apache2.pid",
    activation=ProxyActivation(
        binary="apache2",
        service="apache2",
        # Apache's configuration reads the APACHE_* variables of Debian's envvars, and
        # its run and lock folders must exist (what apache2ctl would do; the apache2
        # binary is called directly so that errors come back unfiltered).
        env=(
            ". /etc/apache2/envvars && "
            'mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR" "$APACHE_LOG_DIR"'
        ),
        check="apache2 -t",
        pidfile='"$APACHE_PID_FILE"',
        running=alive('"$APACHE_PID_FILE"'),
        start="apache2 -k start",
        reload="apache2 -k graceful",
        modules=REQUIRED_MODULES,
    ),
)
