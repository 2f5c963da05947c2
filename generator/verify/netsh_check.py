"""Our own validator for the Windows batch files posnet renders (nothing here runs cmd.exe).

Why: Windows cannot run in CI, yet a wrong netsh line only shows up on a store's back
office during a maintenance window. This checker knows the small cmd.exe subset posnet
emits and the netsh commands of seed 002, and rejects what would break or weaken them:
unknown commands or arguments, malformed values (url, ipport, certhash, appid, sddl),
`user=` account names (localized on non-English Windows), ports that differ between
urlacl, sslcert and the firewall rule, an add not preceded by its delete (a re-run would
fail or duplicate), a missing errorlevel check, LF line endings, over-long lines and
characters cmd.exe would interpret (`%`, `&`, `|`, `^`, `<`, `>`).

`check_netsh_script(text)` returns a list of problems; an empty list means ok.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_LINE = 8191  # cmd.exe's limit for one command line
REDIRECT = " >nul 2>&1"  # the only redirection posnet emits (silence a probe or a delete)
SPECIAL = "%&|^<>"

GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
URL_RE = re.compile(r"^https://\+:(\d{1,5})/$")
IPPORT_RE = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$")
HEX40_RE = re.compile(r"^[0-9A-Fa-f]{40}$")
APPID_RE = re.compile(rf"^\{{{GUID}\}}$")
BARE_GUID_RE = re.compile(rf"^{GUID}$")
# D: then ACEs (type;flags;rights;object;inherit-object;SID). Rights: generic codes or hex.
SID = r"(?:[A-Z]{2}|S-1-\d+(?:-\d+)+)"
ACE = rf"\((?:A|D);;(?:(?:GA|GR|GW|GX)+|0x[0-9A-Fa-f]+);;;{SID}\)"
SDDL_RE = re.compile(rf"^D:(?:{ACE})+$")
LABEL_RE = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)$")
TOKEN_RE = re.compile(r'(?:[^\s"]+|"[^"]*")+')
CERTUTIL_RE = re.compile(r"^certutil -store My ([0-9A-Fa-f]+)$")
IF_RE = re.compile(r"^if (not )?errorlevel (\d+) (goto ([A-Za-z_][A-Za-z0-9_]*)|echo .+)$", re.I)
GOTO_RE = re.compile(r"^goto :?([A-Za-z_][A-Za-z0-9_]*)$", re.I)
EXIT_RE = re.compile(r"^exit /b (\d+)$", re.I)

# Lines that carry no netsh semantics (their characters are still checked).
PLAIN = frozenset({"rem", "setlocal", "endlocal", "echo", "echo."})

Validator = Callable[[str], str | None]


def _port(text: str) -> str | None:
    return None if text.isdigit() and 1 <= int(text) <= 65535 else f"port {text} out of range"


def _url(v: str) -> str | None:
    m = URL_RE.match(v)
    if not m:
        return f"url={v} is not of the form https://+:<port>/"
    return _port(m.group(1))


def _ipport(v: str) -> str | None:
    m = IPPORT_RE.match(v)
    if not m:
        return f"ipport={v} is not of the form <IPv4>:<port> (e.g. 0.0.0.0:10101)"
    try:
        ipaddress.IPv4Address(m.group(1))
    except ValueError:
        return f"ipport={v}: {m.group(1)} is not an IPv4 address"
    return _port(m.group(2))


def _certhash(v: str) -> str | None:
    if HEX40_RE.match(v):
        return None
    return f"certhash must be 40 hex digits (the SHA-1 thumbprint); got {len(v)} characters"


def _appid(v: str) -> str | None:
    if APPID_RE.match(v):
        return None
    if BARE_GUID_RE.match(v):
        return f"appid={v} needs braces: appid={{{v}}}"
    return f"appid={v} is not a GUID in braces like {{77ba29fd-9f7a-45b0-8d7e-1ee5d879951b}}"


def _sddl(v: str) -> str | None:
    return None if SDDL_RE.match(v) else f"sddl={v} is not an SDDL DACL like D:(A;;GX;;;WD)"


def _one_of(*allowed: str) -> Validator:
    def check(v: str) -> str | None:
        return None if v.lower() in allowed else f"{v} is not one of {', '.join(allowed)}"

    return check


def _localport(v: str) -> str | None:
    if not v.isdigit():
        return f"localport={v} must be a single port number"
    return _port(v)


def _remoteip(v: str) -> str | None:
    if v.lower() == "any":
        return "remoteip=any opens the port to every address; list the client IPs"
    for item in v.split(","):
        try:
            ipaddress.IPv4Network(item, strict=True)
        except ValueError:
            return f"remoteip item {item!r} is not an IPv4 address or network"
    return None


def _name(v: str) -> str | None:
    return None if v.strip() else "name is empty"


def _store(v: str) -> str | None:
    return None if v.isalpha() else f"certstorename={v} is not a store name"


VALUES: dict[str, Validator] = {
    "url": _url,
    "sddl": _sddl,
    "listen": _one_of("yes", "no"),
    "delegate": _one_of("yes", "no"),
    "ipport": _ipport,
    "certhash": _certhash,
    "appid": _appid,
    "certstorename": _store,
    "name": _name,
    "dir": _one_of("in", "out"),
    "action": _one_of("allow", "block", "bypass"),
    "protocol": _one_of("tcp", "udp"),
    "localport": _localport,
    "remoteip": _remoteip,
    "enable": _one_of("yes", "no"),
    "profile": _one_of("any", "domain", "private", "public"),
}


@dataclass(frozen=True)
class Spec:
    required: frozenset[str]
    optional: frozenset[str] = frozenset()


def _spec(required: str, optional: str = "") -> Spec:
    return Spec(frozenset(required.split()), frozenset(optional.split()))


# (context, verb, object) -> arguments. Only what the seed's procedure needs.
COMMANDS: dict[tuple[str, str, str], Spec] = {
    ("http", "add", "urlacl"): _spec("url sddl", "listen delegate"),
    ("http", "delete", "urlacl"): _spec("url"),
    ("http", "show", "urlacl"): _spec("", "url"),
    ("http", "add", "sslcert"): _spec("ipport certhash appid", "certstorename"),
    ("http", "delete", "sslcert"): _spec("ipport"),
    ("http", "show", "sslcert"): _spec("", "ipport"),
    ("firewall", "add", "rule"): _spec(
        "name dir action protocol localport remoteip", "enable profile"
    ),
    ("firewall", "delete", "rule"): _spec("name", "dir protocol localport"),
    ("firewall", "show", "rule"): _spec("name"),
}
IDENTITY = {"urlacl": "url", "sslcert": "ipport", "rule": "name"}
PORT_OF: dict[str, Callable[[str], str | None]] = {
    "urlacl": lambda v: m.group(1) if (m := URL_RE.match(v)) else None,
    "sslcert": lambda v: m.group(2) if (m := IPPORT_RE.match(v)) else None,
    "rule": lambda v: v if v.isdigit() else None,
}
PORT_ARG = {"urlacl": "url", "sslcert": "ipport", "rule": "localport"}


@dataclass(frozen=True)
class NetshCommand:
    line: int
    context: str  # "http" or "firewall" (netsh advfirewall firewall)
    verb: str
    obj: str
    args: dict[str, str]

    @property
    def identity(self) -> str:
        return self.args.get(IDENTITY[self.obj], "")

    @property
    def port(self) -> str | None:
        value = self.args.get(PORT_ARG[self.obj])
        return PORT_OF[self.obj](value) if value is not None else None


@dataclass
class _Script:
    lines: list[str]
    problems: list[str] = field(default_factory=list)
    commands: list[NetshCommand] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    gotos: list[tuple[int, str]] = field(default_factory=list)
    certutil: list[tuple[int, str]] = field(default_factory=list)
    elevation_line: int | None = None

    def problem(self, n: int, msg: str) -> None:
        self.problems.append(f"line {n}: {msg}")


def check_netsh_script(text: str) -> list[str]:
    """Problems found in one rendered batch script; empty means it passed."""
    problems = _check_endings(text)
    script = _Script(text.replace("\r\n", "\n").split("\n"))
    if script.lines and script.lines[-1] == "":
        script.lines.pop()
    if not script.lines or script.lines[0] != "@echo off":
        script.problem(1, "the script must start with @echo off")
    for n, line in enumerate(script.lines, 1):
        _check_line(script, n, line)
    _check_flow(script)
    _check_netsh_semantics(script)
    return problems + script.problems


def _check_endings(text: str) -> list[str]:
    out = []
    lf_only = [i for i, ch in enumerate(text) if ch == "\n" and (i == 0 or text[i - 1] != "\r")]
    if lf_only:
        first = text.count("\n", 0, lf_only[0]) + 1
        out.append(
            f"line {first}: LF line ending without CR ({len(lf_only)} in total): "
            "cmd.exe needs CRLF, labels and goto break otherwise"
        )
    if re.search(r"\r(?!\n)", text):
        out.append("a bare CR (without LF) in the file")
    if text and not text.endswith("\n"):
        out.append("the last line has no line ending")
    return out


def _check_line(s: _Script, n: int, line: str) -> None:
    if len(line) > MAX_LINE:
        s.problem(n, f"{len(line)} characters, longer than cmd.exe's limit of {MAX_LINE}")
    stripped = line.strip()
    if not stripped:
        return
    word = stripped.split()[0].lower()
    redirected = word in {"net", "netsh", "certutil"} and stripped.endswith(REDIRECT)
    body = stripped[: -len(REDIRECT)] if redirected else stripped
    bad = sorted({ch for ch in body if ch in SPECIAL})
    if bad:
        s.problem(
            n,
            f"stray {' '.join(bad)}: cmd.exe would interpret it"
            " (posnet only emits ' >nul 2>&1' after net, netsh and certutil)",
        )
    if body.count('"') % 2:
        s.problem(n, "unbalanced double quote")
    _classify(s, n, stripped, body, word)


def _classify(s: _Script, n: int, stripped: str, body: str, word: str) -> None:
    if m := LABEL_RE.match(stripped):
        if m.group(1).lower() in s.labels:
            s.problem(n, f"label :{m.group(1)} defined twice")
        s.labels[m.group(1).lower()] = n
    elif stripped == "@echo off" or word in PLAIN:
        pass
    elif word == "net":
        if stripped != "net session" + REDIRECT:
            s.problem(n, "the only net command allowed is the elevation probe net session")
        elif not s.commands:
            s.elevation_line = n
    elif word == "certutil":
        m = CERTUTIL_RE.match(body)
        if not m:
            s.problem(n, "the only certutil command allowed is certutil -store My <thumbprint>")
        else:
            s.certutil.append((n, m.group(1)))
    elif word == "netsh":
        _parse_netsh(s, n, body)
    elif word == "if":
        _parse_if(s, n, stripped)
    elif word == "goto":
        if m := GOTO_RE.match(stripped):
            s.gotos.append((n, m.group(1).lower()))
        else:
            s.problem(n, "malformed goto")
    elif word == "exit":
        if not EXIT_RE.match(stripped):
            s.problem(n, "use exit /b <code> (a bare exit closes the operator's window)")
    else:
        s.problem(n, f"unknown command {word!r}")


def _parse_if(s: _Script, n: int, stripped: str) -> None:
    m = IF_RE.match(stripped)
    if not m:
        s.problem(n, "only 'if [not] errorlevel N goto LABEL' or '... echo TEXT' is allowed")
        return
    if m.group(4):
        s.gotos.append((n, m.group(4).lower()))


def _parse_netsh(s: _Script, n: int, body: str) -> None:
    tokens = TOKEN_RE.findall(body)
    low = [t.lower() for t in tokens]
    if low[1:2] == ["http"] and len(tokens) >= 4:
        context, verb, obj, rest = "http", low[2], low[3], tokens[4:]
    elif low[1:3] == ["advfirewall", "firewall"] and len(tokens) >= 5:
        context, verb, obj, rest = "firewall", low[3], low[4], tokens[5:]
    else:
        s.problem(n, f"unknown netsh command: {' '.join(tokens[:5])}")
        return
    spec = COMMANDS.get((context, verb, obj))
    if spec is None:
        s.problem(n, f"unknown netsh command: {context} {verb} {obj}")
        return
    args = _parse_args(s, n, rest)
    if "user" in args:
        s.problem(
            n,
            f"user={args['user']}: account names are localized and fail on non-English"
            " Windows; use sddl=D:(A;;GX;;;WD)",
        )
    for key in sorted(spec.required - args.keys()):
        s.problem(n, f"netsh {context} {verb} {obj}: missing {key}=")
    for key in sorted(args.keys() - spec.required - spec.optional - {"user"}):
        s.problem(n, f"netsh {context} {verb} {obj}: unexpected argument {key}=")
    for key, value in args.items():
        check = VALUES.get(key)
        msg = check(value) if check else None
        if msg:
            s.problem(n, msg)
    s.commands.append(NetshCommand(n, context, verb, obj, args))


def _parse_args(s: _Script, n: int, tokens: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for tok in tokens:
        key, eq, value = tok.partition("=")
        if not eq or not key:
            s.problem(n, f"argument {tok!r} is not key=value (positional or unquoted space?)")
            continue
        key = key.lower()
        if key in args:
            s.problem(n, f"argument {key}= given twice")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        args[key] = value
    return args


def _next_statement(s: _Script, n: int) -> tuple[int, str]:
    """The next line after line n that is not blank or a comment."""
    for i in range(n, len(s.lines)):
        text = s.lines[i].strip()
        if text and not text.lower().startswith("rem"):
            return i + 1, text
    return len(s.lines) + 1, ""


def _check_flow(s: _Script) -> None:
    for n, label in s.gotos:
        if label != "eof" and label not in s.labels:
            s.problem(n, f"goto {label}: no such label")
    for label, n in s.labels.items():
        _check_failure_block(s, label, n)
    changes = [c for c in s.commands if c.verb in {"add", "delete"}]
    if changes and (s.elevation_line is None or s.elevation_line > changes[0].line):
        s.problem(changes[0].line, "no elevation check (net session) before the first change")
    elif s.elevation_line is not None:
        m = IF_RE.match(_next_statement(s, s.elevation_line)[1])
        if not (m and m.group(4) and not m.group(1) and m.group(2) == "1"):
            s.problem(s.elevation_line, "net session must be followed by if errorlevel 1 goto")
    for n, _ in s.certutil:
        nxt, text = _next_statement(s, n)
        if not IF_RE.match(text):
            s.problem(nxt, "certutil must be followed by an errorlevel check")


def _check_failure_block(s: _Script, label: str, start: int) -> None:
    """A label jumped to on failure must say something and exit non-zero."""
    if not any(target == label for _, target in s.gotos):
        return
    echoed = False
    for i in range(start, len(s.lines)):
        text = s.lines[i].strip()
        if LABEL_RE.match(text):
            break
        if text.lower().startswith("echo"):
            echoed = True
        if m := EXIT_RE.match(text):
            if int(m.group(1)) == 0:
                s.problem(i + 1, f"label :{label} is a failure path but exits 0")
            elif not echoed:
                s.problem(i + 1, f"label :{label} exits without a message for the operator")
            return
    s.problem(start, f"label :{label} never reaches exit /b")


def _check_netsh_semantics(s: _Script) -> None:
    deleted: set[tuple[str, str]] = set()
    for c in s.commands:
        key = (c.obj, c.identity.lower())
        if c.verb == "delete":
            deleted.add(key)
        elif c.verb == "add":
            if key not in deleted:
                s.problem(
                    c.line,
                    f"add {c.obj} {c.identity} is not preceded by a delete of the same"
                    f" {IDENTITY[c.obj]}: a re-run would fail or duplicate it",
                )
            _check_errorlevel_after(s, c)
    _check_ports(s)
    _check_certutil_hash(s)


def _check_errorlevel_after(s: _Script, c: NetshCommand) -> None:
    nxt, text = _next_statement(s, c.line)
    m = IF_RE.match(text)
    if not (m and not m.group(1) and m.group(2) == "1" and m.group(4)):
        s.problem(
            nxt,
            f"add {c.obj} is not followed by 'if errorlevel 1 goto <failure label>'",
        )


def _check_ports(s: _Script) -> None:
    adds = [c for c in s.commands if c.verb == "add"]
    pool = adds or [c for c in s.commands if c.verb == "delete" and c.obj != "rule"]
    ports: dict[str, list[str]] = {}
    for c in pool:
        port = c.port
        if port is not None:
            ports.setdefault(port, []).append(f"{c.obj} (line {c.line})")
    if len(ports) > 1:
        detail = "; ".join(f"{p}: {', '.join(w)}" for p, w in sorted(ports.items()))
        s.problems.append(
            f"port mismatch between urlacl, sslcert and the firewall rule ({detail}):"
            " HTTPS needs one port for all three"
        )


def _check_certutil_hash(s: _Script) -> None:
    bound = {c.args.get("certhash", "").lower() for c in s.commands if c.obj == "sslcert"}
    bound.discard("")
    for n, thumb in s.certutil:
        if bound and thumb.lower() not in bound:
            s.problem(n, f"certutil checks {thumb} but sslcert binds {', '.join(sorted(bound))}")
