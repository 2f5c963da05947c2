"""HANDOVER.md: the sheet an engineer hands to the store's IT and to each partner.

Why a generated sheet: the seeds are full of steps that no config file can carry (tell
the partner the FQDN and port, uninstall an old tunnel first, tick Secured on each
terminal, validate the public port from outside). Rendering them from the same Plan as
the configs keeps the sheet true to what was applied, store by store.

Secrets appear only as references (`vault:...`), never as values or markers. Tables are
built here, not in the template, so that every cell is escaped (`|` -> `\\|`) and every
row has as many cells as its header.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from generator import netparse
from generator.plan import (
    DeviceConfig,
    Exposure,
    HostPlan,
    PartnerBrief,
    Plan,
    ProxyPlan,
    TunnelPlan,
    WindowsBinding,
    host_at,
)
from generator.targets import devices
from generator.targets.base import Declared
from generator.targets.dnsmasq import MAX_CLIENT_TTL
from generator.targets.netsh import EXIT_CODES, script_names
from generator.topology import MERMAID_LEGEND, mermaid, topology

NAME = "handover"
# The sheet never holds a secret or a marker (only references); "raw" is the strictest.
SECRET_STYLE = "raw"  # noqa: S105 - a style name, not a password
PATH = "HANDOVER.md"
MARKER = "@@POSNET_SECRET_"

# `_` only matters at a word edge (GFM ignores intraword underscores): payment_terminal
# stays readable in the raw sheet, while `_x_` cannot turn into emphasis.
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
NONE = "-"


_MD_MAYBE = re.compile(r"[\\`*\[\]<>_]")  # a character _MD_SPECIAL may escape


def text(value: str) -> str:
    """Prose value with Markdown punctuation escaped (an `_` must not start emphasis)."""
    if _MD_MAYBE.search(value) is None:  # most values: no substitution to set up
        return value
    return _MD_SPECIAL.sub(r"\\\1", value)


def code(value: str) -> str:
    """Inline code span; a value holding a backtick gets a longer fence."""
    fence = "``" if "`" in value else "`"
    pad = " " if "`" in value else ""
    return f"{fence}{pad}{value}{pad}{fence}"


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def markdown(self) -> str:
        out = [_row(self.headers), "|" + "|".join("---" for _ in self.headers) + "|"]
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(f"row {row!r} does not match headers {self.headers!r}")
            out.append(_row(row))
        return "\n".join(out)


def _row(cells: Sequence[str]) -> str:
    """A table row. Each cell: `|` escaped (also inside code spans, per GFM), never
    empty, on one line (checked once per row: the sheet has 80 cells a store)."""
    joined = "\0".join(cells)
    if "\n" in joined or "\r" in joined:
        raise ValueError(f"a table cell cannot span lines: {cells!r}")
    return "| " + " | ".join([c.replace("|", "\\|") if c else NONE for c in cells]) + " |"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return Table(tuple(headers), tuple(tuple(r) for r in rows)).markdown()


def _bare(cidr: str) -> str:
    net = netparse.ipv4_network(cidr, strict=False)
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def _who(plan: Plan, cidr: str) -> str:
    """A source as the store knows it: host name and IP when it is one of its hosts."""
    ip = _bare(cidr)
    host = host_at(plan, ip) if "/" not in ip else None
    return f"{host.name} ({ip})" if host else ip


def _host_label(plan: Plan, ip: str) -> str:
    host = host_at(plan, ip)
    return f"{host.name} {ip}" if host else ip


def _title(plan: Plan, partner: str) -> str:
    return next((b.title for b in plan.briefs if b.partner == partner), partner)


def _ref_of(plan: Plan, value: str) -> list[str]:
    return sorted(s.ref for s in plan.secrets if s.marker in value)


# ---- store -------------------------------------------------------------------------


def store_table(plan: Plan) -> str:
    w, lan = plan.wan, plan.lan
    rows = [
        ("Store id", code(plan.site_id)),
        ("Name", text(plan.site_name)),
        ("Fleet", text(plan.fleet) or NONE),
        ("Group", text(plan.group) if plan.group else NONE),
        ("ISP", text(w.isp)),
        (
            "WAN mode",
            w.mode if w.mode == "static" or not plan.exposures else "dynamic (not recommended)",
        ),
        ("Public IP", w.public_ip or _no_public_ip(plan)),
        ("FQDN", code(w.fqdn) if w.fqdn else NONE),
    ]
    if w.address:
        rows.append(("WAN address", f"{w.address} on {code(w.interface)} (behind NAT)"))
    if plan.ddns:
        d = plan.ddns
        # Behind NAT the interface's address is not the public one: say who reports it.
        src = f"asking {code(d.checkip.url)}" if d.checkip else f"on {code(d.interface)}"
        account = f" account {code(d.username)}," if d.username else ""  # duckdns: none
        rows.append(
            (
                "DDNS",
                f"{d.provider} via {d.client} {src}: hostname {code(d.hostname)},{account}"
                f" password from {code(d.password.ref)}",
            )
        )
    rows += [
        ("LAN", f"{lan.subnet}, gateway {lan.gateway} ({code(lan.interface)})"),
        ("Edge firewall", f"{plan.firewall}, inbound policy drop"),
        ("Outbound policy", plan.egress_policy),
        (
            "Management",
            f"SSH port {plan.management.port} from {', '.join(plan.management.allow_from)}",
        ),
    ]
    return table(("Field", "Value"), rows)


def _no_public_ip(plan: Plan) -> str:
    if plan.ddns:
        return "dynamic, follows the DDNS name"
    if not plan.exposures:
        return "none needed: no partner connects in from the internet"
    return NONE


def hosts_table(plan: Plan) -> str:
    rows = [
        (
            code(h.name),
            text(h.role),
            text(h.os),
            h.ip,
            code(h.mac) if h.mac else "none: set the IP on the host",
            _services(h),
        )
        for h in plan.hosts
    ]
    return table(("Name", "Role", "OS", "Fixed IP", "MAC", "Services"), rows)


def _services(h: HostPlan) -> str:
    return ", ".join(
        f"{text(s.name)} {s.port}/{s.protocol}{' TLS' if s.tls else ''}" for s in h.services
    )


# ---- partners ----------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerSection:
    title: str
    pattern: str
    endpoints: tuple[str, ...]
    notes: tuple[str, ...]
    extra: tuple[str, ...]


def partner_sections(plan: Plan) -> list[PartnerSection]:
    extra = _PartnerLines(plan)
    return [
        PartnerSection(
            title=text(b.title),
            pattern=text(b.pattern),
            endpoints=tuple(code(e) for e in b.endpoints),
            notes=tuple(text(n) for n in b.notes),
            extra=tuple(extra.of(b)),
        )
        for b in plan.briefs
    ]


class _PartnerLines:
    """The exposure and proxy lines of each brief: those of its own integration (of
    every integration of its partner, for a brief that names none). Grouped once per
    store: a store with a thousand integrations listed every port under every one."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.exposures: dict[object, list[Exposure]] = {}
        self.proxies: dict[object, list[ProxyPlan]] = {}
        self.public_port: dict[tuple[str, int], int] = {}  # forwarded to ip:port
        for e in plan.exposures:
            self.exposures.setdefault(e.partner, []).append(e)
            self.exposures.setdefault((e.partner, e.integration), []).append(e)
            self.public_port.setdefault((e.target_ip, e.target_port), e.public_port)
        for p in plan.proxies:
            self.proxies.setdefault(p.partner, []).append(p)
            self.proxies.setdefault((p.partner, p.integration), []).append(p)

    def of(self, b: PartnerBrief) -> list[str]:
        key: object = b.partner if b.integration < 0 else (b.partner, b.integration)
        out = []
        for e in self.exposures.get(key, []):
            if e.open_to_anyone:
                every = f" ({', '.join(e.sources)} is every address)" if e.sources else ""
                out.append(f"Requests to port {e.public_port} are accepted from anyone{every}.")
            else:
                src = ", ".join(e.sources)
                out.append(f"Requests to port {e.public_port} are accepted only from: {src}.")
        for p in self.proxies.get(key, []):
            out.append(_proxy_line(p))
            out.extend(_upstream_certificates(p, self.plan.lan.subnet))
            port = self.public_port.get((p.host_ip, p.listen_port))
            out.extend(_proxy_dns_and_checks(p, self.plan, port))
        return out


def _proxy_dns_and_checks(p: ProxyPlan, plan: Plan, port: int | None) -> list[str]:
    """DNS records the proxy's names need, and per route a curl that sends the right SNI
    and Host to the store's public address (--resolve), so it tests routing and auth,
    not the catch-all server that answers unknown names with 404. `port`: the public
    port forwarded to the proxy, if any."""
    if port is None:
        return []
    out = []
    public = plan.wan.public_ip
    for name in p.server_names:
        if name == plan.wan.fqdn:
            continue
        if plan.wan.mode == "dynamic" and plan.wan.fqdn:
            record = f"CNAME {code(plan.wan.fqdn)} (the store's DDNS name follows its address)"
        else:
            record = f"A {public}" if public else "A (the store's public address)"
        out.append(f"DNS: create {code(name)} {record}.")

    # A dynamic store is reached through its DDNS name; SNI and Host stay the route's.
    def reach(name: str) -> str:
        if public:
            return f"--resolve {name}:{port}:{public}"
        return f"--connect-to {name}:{port}:{plan.wan.fqdn or 'STORE-ADDRESS'}:{port}"

    cred = {
        "none": "",
        "basic": f"-u {p.basic_users[0][0] if p.basic_users else 'USER'}:PASSWORD ",
        "client_cert": "--cert CLIENT.crt --key CLIENT.key ",
    }[p.auth]
    for r in sorted(p.routes, key=lambda r: (r.match, r.value)):
        name, path = (r.value, "/") if r.match == "host" else (p.server_names[0], r.value)
        curl = (
            f"curl -sS -o /dev/null -w '%{{http_code}}\\n' {reach(name)} "
            f"{cred}https://{name}:{port}{path}"
        )
        want = "an answer from the POS (not 404)"
        out.append(f"Check {code(r.label)}: {code(curl)} prints {want}.")
    if p.auth == "basic":
        name = p.server_names[0]
        out.append("Check auth: the same command without -u prints 401.")
    return out


def _upstream_certificates(p: ProxyPlan, lan_subnet: str) -> list[str]:
    """What certificate each https upstream must present, as the proxy checks it."""
    from generator.targets.tls_policy import is_lan_upstream

    out = []
    for r in sorted(p.routes, key=lambda r: r.label):
        if r.upstream_scheme != "https":
            continue
        where = f"{code(r.label)} ({r.upstream_host}:{r.upstream_port})"
        if r.trust == "ca":
            need = f"chains to the CA in {code(r.trust_ref or '')}"
        elif r.trust == "pinned":
            need = f"is exactly the pinned certificate in {code(r.trust_ref or '')}"
        elif is_lan_upstream(r.upstream_host, lan_subnet):
            out.append(f"Upstream {where}: in the store LAN, its certificate is not verified.")
            continue
        else:
            need = "chains to a public CA"
        out.append(
            f"Upstream {where} must present a certificate for {code(r.upstream_host)} that {need}."
        )
    return out


def _basic_auth(p: ProxyPlan) -> str:
    """The partner is given a password, so the sheet names where each one lives; the
    generated htpasswd file only holds hashes and is never handed out."""
    if p.basic_users:
        users = ", ".join(f"user {code(n)} (password in {code(ref)})" for n, ref in p.basic_users)
        return f"basic auth: {users}"
    return f"basic auth (credentials from {code(p.htpasswd_ref or '')})"


def _proxy_line(p: ProxyPlan) -> str:
    auth = {
        "none": "no proxy authentication",
        "basic": _basic_auth(p),
        "client_cert": f"client certificates signed by the CA in {code(p.client_ca_ref or '')}",
    }[p.auth]
    names = ", ".join(code(n) for n in p.server_names)
    cert = "trusted certificate" if p.tls.trusted else "self-signed certificate"
    redact = (
        f"; {', '.join(code(q) for q in p.redact_query_params)} kept out of the logs"
        if p.redact_query_params
        else ""
    )
    return (
        f"Reverse proxy: {p.software} on {code(p.host)} ({p.host_ip}:{p.listen_port}),"
        f" names {names}, {cert}, {auth}{redact}."
    )


# ---- what store IT must open -------------------------------------------------------


def exposures_table(plan: Plan) -> str:
    rows = [
        (
            code(e.id),
            f"{e.public_port} -> {e.target_host} {e.target_ip}:{e.target_port}",
            e.protocol,
            ", ".join(e.sources) if e.sources else "anyone (no allow-list: not recommended)",
            text(_title(plan, e.partner)),
        )
        for e in plan.exposures
    ]
    return table(
        ("Exposure", "Public port -> host:port", "Protocol", "Allowed sources", "Partner"), rows
    )


def egress_table(plan: Plan) -> str:
    rows = [
        (
            code(f.id),
            ", ".join(_who(plan, s) for s in f.sources),
            ", ".join(code(d) for d in f.domains),
            ", ".join(f"{p}/{f.protocol}" for p in f.ports),
            "yes" if f.ssl_inspection_exempt else "no",
            text(f.purpose),
        )
        for f in plan.egress
    ]
    return table(
        ("Flow", "From hosts", "To domains", "Ports", "SSL-inspection exemption", "Purpose"),
        rows,
    )


def exemptions(plan: Plan) -> list[str]:
    """Names the store's TLS-inspecting proxy must pass through untouched, one per line
    with the flows that need them (empty when the store declares no inspection)."""
    flows: dict[str, list[str]] = {}
    for f in plan.egress:
        if f.ssl_inspection_exempt:
            for d in f.domains:
                flows.setdefault(d, []).append(f.id)
    return [f"{code(d)} ({', '.join(code(i) for i in ids)})" for d, ids in sorted(flows.items())]


def lan_table(plan: Plan) -> str:
    rows = [
        (
            code(f.id),
            ", ".join(_who(plan, s) for s in f.sources),
            _who(plan, f.dest_ip),
            f"{f.port}/{f.protocol}",
            text(f.purpose),
        )
        for f in plan.lan_flows
    ]
    return table(("Flow", "From", "To", "Port", "Purpose"), rows)


def dhcp_table(plan: Plan) -> str:
    rows = [(code(d.name), code(d.mac), d.ip) for d in plan.dhcp]
    return table(("Host", "MAC", "IP"), rows)


# ---- steps -------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowsSection:
    b: WindowsBinding
    title: str
    enable: str
    undo: str
    clients: str
    window: str
    swiftpos: bool


def windows_sections(plan: Plan) -> list[WindowsSection]:
    out = []
    for b in plan.windows:
        enable, undo = script_names(b)
        out.append(
            WindowsSection(
                b=b,
                title=text(_title(plan, b.partner)),
                enable=code(enable),
                undo=code(undo),
                clients=", ".join(_host_label(plan, _bare(c)) for c in b.client_sources),
                window=text(b.maintenance_window),
                swiftpos=b.partner == "swiftpos-netpos",
            )
        )
    return out


@dataclass(frozen=True)
class TunnelSection:
    t: TunnelPlan
    title: str
    uninstall_dir: str | None  # where the partner's documented uninstaller is, if any
    uninstaller: str | None
    service: str
    purpose: str
    windows: bool  # the partner documents a Windows installer (and uninstaller) only
    os: str


def tunnel_sections(plan: Plan) -> list[TunnelSection]:
    out = []
    for t in plan.tunnels:
        host = plan.host(t.host)
        svc = next((s.name for s in host.services if s.port == t.local_port), None)
        folder, _, program = (t.uninstaller or "").rpartition("/")
        out.append(
            TunnelSection(
                t=t,
                title=text(_title(plan, t.partner)),
                uninstall_dir=code(folder) if t.uninstaller else None,
                uninstaller=code(program) if t.uninstaller else None,
                service=f"{t.host}/{svc}" if svc else t.host,
                purpose=text(t.token.purpose),
                windows=host.os == "windows",
                os={"linux": "Linux"}.get(host.os, "this host's operating system"),
            )
        )
    return out


@dataclass(frozen=True)
class DeviceRow:
    d: DeviceConfig
    path: str
    keys: str
    refs: tuple[str, ...]
    collected: str  # where `posnet apply` writes the completed file (default folder)


@dataclass(frozen=True)
class ConnectorSection:
    title: str
    partner: str
    endpoints: tuple[str, ...]  # the POS's (token, pos-listener)
    device_endpoints: tuple[str, ...]  # where the devices register (their ep_register_url)
    devices: tuple[DeviceRow, ...]
    cert: tuple[str, ...]
    cert_ca: str  # the catalog's ssl_profile_name(s) the devices' PEM file is of
    fallback: tuple[str, ...]


def _device_row(plan: Plan, d: DeviceConfig) -> DeviceRow:
    refs = sorted({r for _, v in d.properties for r in _ref_of(plan, v)})
    return DeviceRow(
        d=d,
        path=code(f"devices/{d.id}.properties"),
        keys=", ".join(code(k) for k, _ in d.properties),
        refs=tuple(code(r) for r in refs),
        collected=code(devices.collected_path(plan, d)),
    )


def devices_table(plan: Plan) -> str:
    rows = []
    for d in plan.devices:
        row = _device_row(plan, d)
        rows.append(
            (
                row.collected,
                code(d.device),
                text(_title(plan, d.partner)),
                row.keys,
                ", ".join(row.refs) or "none",
                row.path,
            )
        )
    headers = ("Completed file", "For", "Partner", "Properties", "Secrets", "In the build tree")
    return table(headers, rows)


def connector_sections(plan: Plan) -> list[ConnectorSection]:
    partners = sorted({d.partner for d in plan.devices if d.kind == "payment-device"})
    return [_connector(plan, p) for p in partners]


def _connector(plan: Plan, partner: str) -> ConnectorSection:
    devices = [d for d in plan.devices if d.partner == partner]
    brief = next(b for b in plan.briefs if b.partner == partner)
    certs = sorted(
        {
            f"{code(d.device)}: {code(v)}"
            for d in devices
            for k, v in d.properties
            if k == "ssl_profile_crt"
        }
    )
    fallback = tuple(
        f"{', '.join(_who(plan, s) for s in f.sources)} -> {_who(plan, f.dest_ip)}"
        f" port {f.port}/{f.protocol}"
        for f in plan.lan_flows
        if f.partner == partner and f.kind == "device-fallback"
    )
    registers = sorted({v for d in devices for k, v in d.properties if k == "ep_register_url"})
    return ConnectorSection(
        title=text(brief.title),
        partner=partner,
        endpoints=tuple(code(e) for e in brief.endpoints if e not in registers),
        device_endpoints=tuple(code(e) for e in registers),
        devices=tuple(_device_row(plan, d) for d in devices),
        cert=tuple(certs),
        cert_ca=", ".join(
            sorted({code(v) for d in devices for k, v in d.properties if k == "ssl_profile_name"})
        ),
        fallback=fallback,
    )


# ---- checks and secrets ------------------------------------------------------------


@dataclass(frozen=True)
class ExposureCheck:
    e: Exposure
    probe: str
    nmap: str
    curl: str | None
    sources: str


def exposure_checks(plan: Plan) -> list[ExposureCheck]:
    from generator.expectations import server_names

    public = plan.wan.public_ip or plan.wan.fqdn or "PUBLIC-IP"
    names = server_names(plan)  # a proxy's server name (its certificate's), else the store's
    out = []
    for e in plan.exposures:
        scheme = "https" if e.tls else "http"
        mtls = _needs_client_cert(plan, e)
        scan = " -sU" if e.protocol == "udp" else ""  # nmap scans TCP unless told
        url = f"{scheme}://{names[e.id]}:{e.public_port}{e.health_path}"
        out.append(
            ExposureCheck(
                e=e,
                probe=code(f"posnet probe build --site {plan.site_id} --as partner"),
                nmap=code(f"nmap -Pn{scan} -p {e.public_port} {public}"),
                curl=code(f"curl -sSI {mtls}{url}") if e.http else None,
                sources=", ".join(e.sources) if e.sources else "anywhere",
            )
        )
    return out


def _needs_client_cert(plan: Plan, e: Exposure) -> str:
    """curl options for a proxy that demands a client certificate (else the handshake fails)."""
    for p in plan.proxies:
        if (p.host_ip, p.listen_port) == (e.target_ip, e.target_port) and p.auth == "client_cert":
            return "--cert CLIENT.crt --key CLIENT.key "
    return ""


def egress_checks(plan: Plan) -> list[str]:
    out = []
    for f in plan.egress:
        hosts = ", ".join(_who(plan, s) for s in f.sources)
        for d in f.domains:
            if d.startswith("*."):
                continue
            port = "" if f.ports == (443,) else f":{f.ports[0]}"
            out.append(f"from {hosts}: {code(f'curl -sSI https://{d}{port}/')}")
    return out


def secrets_table(plan: Plan) -> str:
    rows = [(code(s.ref), text(s.purpose)) for s in plan.secrets]
    return table(("Secret reference", "Purpose"), rows)


# ---- render ------------------------------------------------------------------------


def context(plan: Plan) -> dict[str, object]:
    return {
        "plan": plan,
        "site_name": text(plan.site_name),
        "public": plan.wan.public_ip or (code(plan.wan.fqdn) if plan.wan.fqdn else NONE),
        "fqdn": code(plan.wan.fqdn) if plan.wan.fqdn else None,
        "isp": text(plan.wan.isp),
        "store_table": store_table(plan),
        "hosts_table": hosts_table(plan),
        "partners": partner_sections(plan),
        "exposures_table": exposures_table(plan) if plan.exposures else None,
        "egress_table": egress_table(plan) if plan.egress else None,
        "dns_max_ttl": MAX_CLIENT_TTL,
        "exemptions": exemptions(plan),
        "lan_table": lan_table(plan) if plan.lan_flows else None,
        "dhcp_table": dhcp_table(plan) if plan.dhcp else None,
        "windows": windows_sections(plan),
        "tunnels": tunnel_sections(plan),
        "devices_table": devices_table(plan) if plan.devices else None,
        "devices_out": code(f"{devices.DEVICES_OUT}/{plan.site_id}/"),
        "devices_dir": code(f"DIR/{plan.site_id}/"),
        "connectors": connector_sections(plan),
        "exposure_checks": exposure_checks(plan),
        "egress_checks": egress_checks(plan),
        "secrets_table": secrets_table(plan) if plan.secrets else None,
        "code": code,
        "exit": EXIT_CODES,
    }


def diagram_section(plan: Plan) -> str:
    """The store as a Mermaid flowchart (GitHub and GitLab draw it in place); the fleet
    report draws the same topology as SVG."""
    lines = mermaid(topology(plan))
    return f"\n## Network diagram\n\n{MERMAID_LEGEND}\n\n```mermaid\n{lines}```\n"


def render(plan: Plan) -> dict[str, str]:
    from generator.templating import render as render_template

    out = render_template("handover/HANDOVER.md.j2", **context(plan)) + diagram_section(plan)
    if MARKER in out:
        raise RuntimeError(f"{plan.site_id}: a secret marker reached {PATH}")
    return {PATH: out}


TARGET = Declared(NAME, "manual", lambda plan: True, render, secret_style=SECRET_STYLE)
