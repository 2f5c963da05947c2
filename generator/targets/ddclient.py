"""DDNS with ddclient 3.10 (Debian 12), for stores that already standardise on it.

ddclient has no check mode, so this module carries its own parser of the 3.10 syntax
(`check_ddclient_conf`), modelled on ddclient's `_read_config`: `#` comments (even
inside quotes), trailing-backslash continuation, the special `password='...'` rule,
`key=value` assignments with quotes and backslash escapes, then `host [login
[password]]`. It is run on every render, so a file ddclient would misread is never written.

IP source: `use=if` + `if=<wan>`. 3.10 also knows `usev4=ifv4`, but with it the default
`use=ip` still runs and warns on every cycle ("unable to determine IP address with
strategy use=ip"); `use=if` is clean, and 3.10 copies its address into the IPv4 slot
that the freedns and cloudflare protocols read. Behind NAT (`detect: web`): `use=web`
with `web=<URL>`; ddclient takes the first IPv4 address in the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from generator.plan import DdnsPlan, Plan
from generator.targets.base import Daemon, ddns_client

NAME = "ddclient"
# The marker sits in `password='...'`: ddclient takes everything between the first and
# the last single quote of that line, without escapes; a newline cannot be expressed.
SECRET_STYLE = "ddclient"  # noqa: S105 - a style name, not a password

PATH = "ddns/ddclient.conf"
DAEMON_INTERVAL = 300

# fmt: off
# Keys ddclient 3.10 defines (global, common and per-protocol variables).
KNOWN_KEYS = frozenset((
    "atime", "backupmx", "cache", "cmd", "cmd-skip", "cmdv4", "cmdv6", "curl", "custom",
    "daemon", "debug", "dynurl", "exec", "facility", "file", "force", "foreground", "fw",
    "fw-login", "fw-password", "fw-skip", "fw-ssl-validate", "fwv4", "fwv4-skip", "fwv6",
    "fwv6-skip", "geturl", "help", "host", "if", "ifv4", "ifv6", "ip", "ipv4", "ipv6", "login",
    "mail", "mail-failure", "max-interval", "max-warn", "min-error-interval", "min-interval",
    "min_interval", "mtime", "mx", "password", "pid", "postscript", "priority", "protocol",
    "proxy", "quiet", "quietreply", "retry", "script", "server", "ssl", "ssl_ca_dir",
    "ssl_ca_file", "static", "status", "status-ipv4", "status-ipv6", "syslog", "tcp", "test",
    "timeout", "ttl", "use", "usev4", "usev6", "verbose", "warned-min-error-interval",
    "warned-min-interval", "web", "web-skip", "web-ssl-validate", "webv4", "webv4-skip",
    "webv6", "webv6-skip", "wildcard", "wtime", "zone",
))
PROTOCOLS = frozenset((
    "1984", "changeip", "cloudflare", "cloudns", "dinahosting", "dnsexit", "dnsmadeeasy",
    "dondominio", "dslreports1", "duckdns", "dyndns1", "dyndns2", "easydns", "freedns",
    "freemyip", "gandi", "godaddy", "googledomains", "hetzner", "keysystems", "namecheap",
    "nfsn", "njalla", "noip", "nsupdate", "ovh", "sitelutions", "woima", "yandex", "zoneedit1",
))
USE = frozenset((
    "cisco", "cisco-asa", "cmd", "fw", "if", "ip", "no", "web",
))
USEV4 = frozenset((
    "cisco-asav4", "ciscov4", "cmdv4", "disabled", "fwv4", "ifv4", "ipv4", "webv4",
))
BOOL_KEYS = frozenset((
    "backupmx", "curl", "custom", "debug", "exec", "force", "foreground", "fw-ssl-validate",
    "help", "quiet", "retry", "ssl", "static", "syslog", "test", "verbose", "web-ssl-validate",
    "wildcard",
))
DELAY_KEYS = frozenset((
    "daemon", "max-interval", "min-error-interval", "min-interval", "min_interval", "timeout",
))
# fmt: on

BOOL_RE = re.compile(r"^(y(es)?|t(rue)?|1|n(o)?|f(alse)?|0)$", re.IGNORECASE)
DELAY_RE = re.compile(r"^\d+(s|m|h|d|seconds|minutes|hours|days)?$", re.IGNORECASE)
IF_RE = re.compile(r"^[a-zA-Z0-9:._-]+$")
FQDN_RE = re.compile(r"[^.]\.[^.]")
# A URL ddclient reads as one word: no quote, comma, '#', backslash or space.
WEB_RE = re.compile(r"^https?://[A-Za-z0-9.:-]+/[A-Za-z0-9._~/-]*$")
# ddclient's own rule: a key containing "password" takes a '...' value (or one word).
PASSWORD_LINE_RE = re.compile(r"^([^#]*\s)?([^#]*?password\S*?)\s*=\s*('.*'|[^']\S*)(.*)")
ASSIGNMENT_RE = re.compile(r"^[,\s]*([a-z][0-9a-z_-]*)=(.*)", re.IGNORECASE)

# provider -> (protocol, server or None for the protocol's default)
PROTOCOL_OF = {
    "dyndns": ("dyndns2", "members.dyndns.org"),
    "noip": ("dyndns2", "dynupdate.no-ip.com"),
    "duckdns": ("duckdns", None),
    "freedns": ("freedns", None),
    "cloudflare": ("cloudflare", None),
}


@dataclass
class ParsedConf:
    """ddclient's view of a file: global options, per-host options, problems found."""

    globals: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- rendering


def login_value(login: str) -> str:
    """`login=` value with ddclient's quoting; refuse what ddclient cannot carry.

    `#` starts a comment even inside quotes, and whitespace is collapsed before parsing,
    so neither can be written at all.
    """
    if "#" in login or any(ch.isspace() for ch in login) or not login:
        raise ValueError(
            f"ddclient cannot use the DDNS username {login!r}: it must not be empty or"
            " contain '#' or whitespace (use inadyn, or another account name)"
        )
    return re.sub(r"([,'\"\\])", r"\\\1", login)


def options(ddns: DdnsPlan) -> list[tuple[str, str]]:
    """Provider part of the file, in ddclient's documented order; password comes last."""
    protocol, server = PROTOCOL_OF[ddns.provider]
    opts = [("protocol", protocol)]
    if server:
        opts.append(("server", server))
    if ddns.provider == "cloudflare":
        if not ddns.zone:
            raise ValueError("ddclient: cloudflare needs the DNS zone (wan.ddns.zone)")
        # login=token selects API-token auth (Authorization: Bearer) in ddclient 3.10.
        opts += [("zone", ddns.zone), ("login", "token")]
    elif ddns.provider != "duckdns":  # duckdns authenticates with the token alone
        opts.append(("login", login_value(ddns.username)))
    opts.append(("password", f"'{ddns.password.marker}'"))
    return opts


def host_name(ddns: DdnsPlan) -> str:
    """duckdns wants the bare sub-name (ddclient's example: `myhost`)."""
    if ddns.provider == "duckdns" and ddns.hostname.endswith(".duckdns.org"):
        return ddns.hostname.removesuffix(".duckdns.org")
    return ddns.hostname


def render(plan: Plan) -> dict[str, str]:
    from generator.templating import render as render_template

    ddns = plan.ddns
    if ddns is None or ddns.client != "ddclient":
        return {}
    if not IF_RE.match(ddns.interface):
        raise ValueError(f"ddclient: invalid interface name {ddns.interface!r}")
    web = ddns.checkip.url if ddns.checkip is not None else None
    if web is not None and not WEB_RE.match(web):
        raise ValueError(f"ddclient: cannot write the check-ip URL {web!r}")
    text = render_template(
        "ddclient/ddclient.conf.j2",
        site_id=plan.site_id,
        daemon=DAEMON_INTERVAL,
        web=web,
        interface=ddns.interface,
        options=options(ddns),
        host=host_name(ddns),
    )
    problems = check_ddclient_conf(text)
    if problems:  # a bug in this module, never a user error: values are checked above
        raise RuntimeError("ddclient.conf failed its own check: " + "; ".join(problems))
    return {PATH: text}


# ---------------------------------------------------------------- checking


def parse_assignment(rest: str) -> tuple[str | None, str, str, list[str]]:
    """One `key=value` off the front of `rest`, as ddclient's parse_assignment reads it."""
    m = ASSIGNMENT_RE.match(rest)
    if not m:
        return None, "", rest, []
    name, rest = m.group(1), m.group(2)
    value, escape, quote, i = [], False, "", 0
    while i < len(rest):
        c = rest[i]
        if escape:
            value.append(c)
            escape = False
        elif c == "\\":
            escape = True
        elif quote and c == quote:
            quote = ""
        elif not quote and c in "'\"":
            quote = c
        elif not quote and (c.isspace() or c == ","):
            break
        else:
            value.append(c)
        i += 1
    problems = []
    if escape:
        problems.append(f"assignment to {name!r} ends with the escape character")
    if quote:
        problems.append(f"assignment to {name!r} has an unterminated quote ({quote})")
    return name, "".join(value), rest[i:], problems


def value_problem(key: str, value: str) -> str | None:
    """Why ddclient would drop this value (its check_value), or None."""
    checks: list[tuple[bool, str]] = [
        (key in BOOL_KEYS and not BOOL_RE.match(value), "is not a boolean"),
        (key in DELAY_KEYS and not DELAY_RE.match(value), "is not an interval"),
        (key in ("ttl", "max-warn") and not value.isdigit(), "is not a number"),
        (key == "protocol" and value.lower() not in PROTOCOLS, "is not a ddclient protocol"),
        (key == "use" and value.lower() not in USE, "is not a 'use' strategy"),
        (key == "usev4" and value.lower() not in USEV4, "is not a 'usev4' strategy"),
        (key in ("if", "ifv4", "ifv6") and not IF_RE.match(value), "is not an interface"),
        (key in ("server", "zone", "mx") and not FQDN_RE.search(value), "is not an FQDN"),
        (key == "web" and not WEB_RE.match(value), "is not a check-ip URL"),
        (key in ("login", "password", "host") and value == "", "is empty"),
    ]
    for failed, why in checks:
        if failed:
            return why
    return None


def _logical_lines(
    text: str, parsed: ParsedConf, passwords: dict[str, str]
) -> Iterator[tuple[int, str]]:
    """Physical lines to logical ones: password rule, comments, continuations.

    A generator, like ddclient's read loop: `passwords` holds what the lines read so far
    said, so a later `password=` line cannot change an earlier host.
    """
    continuation = ""
    physical = text.split("\n")  # like perl's <FD>: a final newline adds no line
    if physical and physical[-1] == "":
        physical.pop()
    for lineno, raw in enumerate(physical, start=1):
        line = raw.replace("\r", "")  # perl: s/[\r\n]//g
        if re.search(r"\\\s+$", line):
            parsed.problems.append(f"line {lineno}: whitespace after the continuation '\\'")
        m = PASSWORD_LINE_RE.match(line)
        if m:
            head, key, value, tail = m.group(1) or "", m.group(2), m.group(3), m.group(4)
            quoted = re.match(r"^'(.*)'$", value)
            passwords[key] = quoted.group(1) if quoted else value
            line = f"{head}{key}=dummy{tail}"
        line = continuation + re.sub(r"#.*", "", line)
        if line.endswith("\\"):
            continuation = line[:-1]
            continue
        continuation = ""
        line = re.sub(r"\s+", " ", line.strip())
        if line:
            yield lineno, line
    if continuation.strip():
        parsed.problems.append("the file ends inside a continuation line (ddclient drops it)")


def _assignments(lineno: int, line: str, parsed: ParsedConf) -> tuple[dict[str, str], str]:
    local: dict[str, str] = {}
    rest = line
    while True:
        name, value, rest, problems = parse_assignment(rest)
        parsed.problems += [f"line {lineno}: {p}" for p in problems]
        rest = re.sub(r"^[,\s]+", "", rest)
        if name is None:
            return local, rest
        local[name] = value


def parse_ddclient_conf(text: str) -> ParsedConf:
    """Read a ddclient.conf the way ddclient 3.10 does, collecting what it would warn about."""
    parsed = ParsedConf()
    passwords: dict[str, str] = {}  # file-wide, like ddclient's %passwords
    for lineno, line in _logical_lines(text, parsed, passwords):
        local, rest = _assignments(lineno, line, parsed)
        for key in list(local):
            if key in passwords:
                local[key] = passwords[key]
            if key not in KNOWN_KEYS:
                parsed.problems.append(f"line {lineno}: unknown keyword {key!r}")
                del local[key]
                continue
            why = value_problem(key, local[key])
            if why:
                parsed.problems.append(f"line {lineno}: {key}={local[key]!r} {why}")
                del local[key]
        args = re.sub(r"\s*,\s*", ",", rest).split()
        if "host" in local:
            args = [f"{args[0]},{local['host']}" if args else local["host"], *args[1:]]
        if not args:
            parsed.globals.update(local)
            continue
        if len(args) > 3:
            parsed.problems.append(f"line {lineno}: unexpected words after the password")
        entry = {**parsed.globals, **local}
        for key, positional in zip(("login", "password"), args[1:3], strict=False):
            entry[key] = positional
        for host in filter(None, args[0].split(",")):
            parsed.hosts[host] = dict(entry)
    return parsed


def host_problems(host: str, opts: dict[str, str]) -> list[str]:
    """Settings posnet needs for a working, encrypted update of this host."""
    protocol = opts.get("protocol", "")
    required = ["protocol", "password", "use"]
    if protocol != "duckdns":
        required.append("login")
    if protocol == "cloudflare":
        required.append("zone")
    if opts.get("use") == "if":
        required.append("if")
    if opts.get("use") == "web":
        required.append("web")
    problems = [f"host {host}: {key} is missing" for key in required if key not in opts]
    if not BOOL_RE.match(opts.get("ssl", "")) or opts["ssl"].lower()[0] not in "yt1":
        problems.append(f"host {host}: ssl is not on (credentials would travel in clear)")
    return problems


def check_ddclient_conf(text: str) -> list[str]:
    """Problems ddclient 3.10 would warn about or silently ignore; empty when fine."""
    parsed = parse_ddclient_conf(text)
    problems = list(parsed.problems)
    if not parsed.hosts:
        problems.append("no host to update")
    for host, opts in parsed.hosts.items():
        problems += host_problems(host, opts)
    return problems


DEST = "/etc/ddclient.conf"
DAEMON = Daemon(
    NAME,
    "ddns",
    "/run/ddclient.pid",
    "ddclient -daemon 300 -file {config} -pid {pidfile}",
    config=DEST,
)
TARGET = ddns_client(NAME, PATH, DEST, "", render, SECRET_STYLE, DAEMON)
