"""DDNS with inadyn 2.x (seed 000: a dynamic public IP needs a DDNS client).

libconfuse format. Every string is double-quoted: a hostname or username then can never
be read as a number, a list or a new option, and the secret marker sits where the apply
step expects a libconfuse double-quoted string.

Provider quirks (inadyn plugins and README):
- duckdns sends `username` as the token (plugins/duckdns.c), so the secret goes there and
  `password` only satisfies the parser;
- cloudflare takes the zone as `username` and an API token as `password`.

Address: `iface` (the WAN interface's address) by default; behind NAT (`detect: web`)
the provider block names a `checkip-server`/`checkip-path`, and `checkip-ssl` says
whether that check uses HTTPS (a custom server does not follow `ssl`, inadyn.conf(5)).
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.plan import DdnsPlan, Plan
from generator.targets.base import Daemon, ddns_client

NAME = "inadyn"
# The marker sits inside a libconfuse double-quoted string: `"` and `\` need escaping there.
SECRET_STYLE = "confuse"  # noqa: S105 - a style name, not a password

PATH = "ddns/inadyn.conf"
PERIOD = 300  # seconds between IP checks: inadyn's default (120) is chattier than needed

PROVIDERS = {
    "noip": "default@no-ip.com",
    "dyndns": "default@dyndns.org",
    "duckdns": "default@duckdns.org",
    "freedns": "default@freedns.afraid.org",
    "cloudflare": "default@cloudflare.com",
}
# duckdns ignores the password but inadyn's parser insists on one.
DUCKDNS_PASSWORD = "unused-by-duckdns"  # noqa: S105 - documented placeholder, not a secret


@dataclass(frozen=True)
class Account:
    """What goes into the provider block, after the provider quirks."""

    provider: str
    username: str
    password: str
    hostname: str


def confuse_quote(value: str) -> str:
    """A libconfuse double-quoted string; refuse what could break out of it."""
    if any(ch in value for ch in '"\\\r\n\0') or "${" in value:
        raise ValueError(f"inadyn: cannot write {value!r} in a libconfuse string")
    return f'"{value}"'


def account(ddns: DdnsPlan) -> Account:
    marker = ddns.password.marker
    if ddns.provider == "duckdns":
        return Account(PROVIDERS["duckdns"], marker, DUCKDNS_PASSWORD, ddns.hostname)
    if ddns.provider == "cloudflare":
        if not ddns.zone:
            raise ValueError("inadyn: cloudflare needs the DNS zone (wan.ddns.zone)")
        return Account(PROVIDERS["cloudflare"], ddns.zone, marker, ddns.hostname)
    return Account(PROVIDERS[ddns.provider], ddns.username, marker, ddns.hostname)


def render(plan: Plan) -> dict[str, str]:
    from generator.templating import render as render_template

    ddns = plan.ddns
    if ddns is None or ddns.client != "inadyn":
        return {}
    acc = account(ddns)
    checkip = None
    if ddns.checkip is not None:
        c = ddns.checkip
        checkip = {
            "server": confuse_quote(c.authority),
            "path": confuse_quote(c.path),
            "ssl": "true" if c.tls else "false",
        }
    text = render_template(
        "inadyn/inadyn.conf.j2",
        site_id=plan.site_id,
        period=PERIOD,
        iface=confuse_quote(ddns.interface),
        provider=acc.provider,
        username=confuse_quote(acc.username),
        password=confuse_quote(acc.password),
        hostname=confuse_quote(acc.hostname),
        checkip=checkip,
    )
    return {PATH: text}


DEST = "/etc/inadyn.conf"
DAEMON = Daemon(NAME, "ddns", "/run/inadyn.pid", "inadyn -f {config} -P {pidfile}", config=DEST)
TARGET = ddns_client(
    NAME, PATH, DEST, "inadyn -n --check-config -f %s", render, SECRET_STYLE, DAEMON
)
