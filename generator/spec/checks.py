"""Checks beyond types: addresses that fit the LAN, unique names, resolvable references.

Each check yields a Problem (code, path, message, expected); the loader turns the path
into file:line:col. The codes name what went wrong (see generator/diagnostics.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from generator import netparse
from generator.catalog import Catalog
from generator.diagnostics import require_registered
from generator.memo import last_object
from generator.spec.model import (
    Ddns,
    Host,
    Lan,
    ReverseProxyIntegration,
    Site,
)
from generator.yamlload import YamlPath

if TYPE_CHECKING:
    from generator.patterns.base import Listener


@dataclass(frozen=True)
class Problem:
    """One failed check: its registered code (generator/diagnostics.py) and where."""

    code: str
    path: YamlPath
    message: str
    expected: str  # what would be right: every diagnostic says it (see test_expected)
    at_key: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not isinstance(self.message, str):
            raise TypeError("Problem(code, path, message, ...): the code comes first")
        require_registered(self.code)


def _addr(ip: str) -> ipaddress.IPv4Address:
    return netparse.ipv4_address(ip)


def check_site(site: Site, catalog: Catalog) -> Iterator[Problem]:
    yield from _check_wan(site)
    yield from _check_lan(site)
    yield from _check_hosts(site)
    yield from _check_integrations(site, catalog)
    yield from _check_listeners(site)


def reached_from_internet(site: Site) -> bool:
    """Whether a partner connects in: only then does the store need a public address."""
    from generator.patterns import pattern_of

    return any(pattern_of(i).inbound for i in site.integrations)


def _check_wan(site: Site) -> Iterator[Problem]:
    wan = site.wan
    # Tunnel and outbound-only stores are reached by nobody: behind carrier NAT they
    # have no public address to give, and no name to keep up to date.
    inbound = reached_from_internet(site)
    if inbound and wan.ip_mode == "static" and wan.public_ip is None:
        yield Problem(
            "E206", ("wan", "ip_mode"), "a static WAN needs wan.public_ip", "public_ip: <IPv4>"
        )
    if inbound and wan.ip_mode == "dynamic":
        if wan.ddns is None:
            yield Problem(
                "E206",
                ("wan", "ip_mode"),
                "a dynamic WAN needs wan.ddns so partners can find the store",
                "ddns: {provider, username, password}",
            )
        if wan.fqdn is None and (wan.ddns is None or wan.ddns.hostname is None):
            yield Problem(
                "E206", ("wan", "ip_mode"), "a dynamic WAN needs wan.fqdn", "fqdn: <name>"
            )
    if wan.fqdn is not None and wan.fqdn.rpartition(".")[2].isdigit():
        yield Problem(  # 203.0.113.7 passes as labels: an address where a name belongs
            "E206",
            ("wan", "fqdn"),
            "is an address, not a name: its last label is all digits, which no DNS name's is",
            "a name such as store-01.pos.example.com (a static address goes in wan.public_ip)",
        )
    if wan.public_ip is not None:
        ip = _addr(wan.public_ip)
        special = _special(ip)
        if special:
            # One error, naming what the address is: "behind NAT?" fits no broadcast.
            yield Problem(
                "E205",
                ("wan", "public_ip"),
                f"{ip} is {special}: no store can be reached there",
                "the store's public IPv4 address, the one partners connect to",
            )
        elif (ip.is_private or any(ip in n for n in netparse.BEHIND_NAT)) and not (
            _is_documentation(ip)
        ):
            cgnat = ip in netparse.BEHIND_NAT[-1]
            kind = "a carrier-grade NAT address (100.64.0.0/10)" if cgnat else "a private address"
            yield Problem(
                "E205",
                ("wan", "public_ip"),
                f"{ip} is {kind}, not a public one (is the edge behind NAT?)",
                "a public IPv4 address (the edge's own private address goes in wan.address)",
            )
    if wan.address is not None and (special := _special(_addr(wan.address))):
        yield Problem(
            "E205",
            ("wan", "address"),
            f"{wan.address} is {special}: no interface can have it",
            "the edge's own unicast address on wan.interface (e.g. 192.168.1.2)",
        )
    if wan.ddns is not None and wan.ddns.checkip is not None and wan.ddns.detect != "web":
        yield Problem(
            "E211",
            ("wan", "ddns", "checkip"),
            "has no effect: the address is read from the interface unless detect is web",
            "detect: web",
        )
    if (
        wan.ddns is not None
        and wan.ddns.client == "ddclient"
        and wan.ddns.checkip is not None
        and not wan.ddns.checkip.tls
    ):
        # ddclient 3.10 with ssl=yes (which the update needs) fetches every URL by HTTPS.
        yield Problem(
            "E210",
            ("wan", "ddns", "checkip", "tls"),
            "ddclient fetches the check-ip URL over HTTPS (ssl=yes), so tls: false cannot work",
            "tls: true, or client: inadyn",
        )
    if wan.ddns is not None and wan.ddns.provider == "cloudflare" and wan.ddns.zone is None:
        yield Problem(
            "E206",
            ("wan", "ddns", "provider"),
            "cloudflare DDNS needs wan.ddns.zone",
            "zone: <the Cloudflare zone holding the name>, e.g. example.com",
        )
    if wan.ddns is not None and wan.ddns.provider != "cloudflare" and wan.ddns.zone is not None:
        # Only the cloudflare protocol sends a zone; for the others it was never written.
        yield Problem(
            "E211",
            ("wan", "ddns", "zone"),
            f"has no effect: only cloudflare takes a zone, {wan.ddns.provider} updates the "
            "host name alone",
            "no zone (or provider: cloudflare)",
        )
    if wan.ddns is not None:
        yield from _ddns_login_problems(wan.ddns)
    if (
        wan.ddns is not None
        and wan.ddns.client == "ddclient"
        and wan.ddns.username is not None
        and wan.ddns.provider in LOGIN_PROVIDERS
        and any(ch == "#" or ch.isspace() for ch in wan.ddns.username)
    ):
        # ddclient reads '#' as a comment even inside quotes and collapses whitespace.
        yield Problem(
            "E206",
            ("wan", "ddns", "username"),
            "ddclient cannot send a username containing '#' or spaces",
            "a username without '#' and spaces, or client: inadyn",
        )
    if wan.interface == site.lan.interface:
        yield Problem(
            "E207",
            ("lan", "interface"),
            "LAN and WAN interfaces must differ",
            f"an interface other than wan.interface ({wan.interface}), e.g. "
            + ("br-lan" if wan.interface != "br-lan" else "lan0"),
        )
    for part, name in (("wan", wan.interface), ("lan", site.lan.interface)):
        if name.startswith("-") or name in (".", "..", "lo", "all", "default"):
            # iptables and ip(8) would read '-x' as an option; Linux refuses '.' and '..';
            # lo is the loopback, all and default are the kernel's per-interface settings.
            yield Problem(
                "E207", (part, "interface"), "is not a usable interface name", "e.g. wan0"
            )


# Providers that take an account name; duckdns authenticates with its token alone, and
# cloudflare with an API token for the zone (inadyn and ddclient send no login for them).
LOGIN_PROVIDERS = ("noip", "dyndns", "freedns")


def _ddns_login_problems(ddns: Ddns) -> Iterator[Problem]:
    if ddns.provider in LOGIN_PROVIDERS and ddns.username is None:
        yield Problem(
            "E206",
            ("wan", "ddns"),
            f"{ddns.provider} DDNS needs wan.ddns.username",
            f"username: <the account name at {ddns.provider}>",
        )
    elif ddns.provider not in LOGIN_PROVIDERS and ddns.username is not None:
        how = "its token" if ddns.provider == "duckdns" else "an API token for wan.ddns.zone"
        yield Problem(
            "E211",
            ("wan", "ddns", "username"),
            f"has no effect: {ddns.provider} authenticates with {how} (the password) alone",
            "no username",
        )


def _is_documentation(ip: ipaddress.IPv4Address) -> bool:
    return any(ip in n for n in netparse.DOCUMENTATION)


def _special(ip: ipaddress.IPv4Address) -> str:
    """What a non-unicast address is ('' for a unicast one), as a message says it."""
    if ip.is_unspecified:
        return "the unspecified address"
    if int(ip) == 0xFFFFFFFF:
        return "the broadcast address"
    hit = netparse.address_not_unicast(ip)
    return f"a {hit[1]} address ({hit[0]})" if hit else ""


# A store LAN is the edge's own side: the firewall lets lan.subnet out to the internet,
# masquerades it and treats proxy upstreams in it as local. Wider than /16 (65,534 hosts)
# it is a typo, and 0.0.0.0/1 would hand half the internet the LAN's rights.
MIN_LAN_PREFIX = 16
_LAN_RANGE = (
    "a unicast range: RFC 1918 (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), 100.64.0.0/10 "
    "or public space routed to the store; not 0/8, 127/8, 169.254/16, 224/4 or 240/4"
)


def _hosts_of(net: ipaddress.IPv4Network) -> str:
    """'Expected' for an address that must be a host address of the LAN."""
    if net.prefixlen > 30:
        return f"a host address of lan.subnet (and a lan.subnet larger than {net})"
    return f"an address from {net.network_address + 1} to {net.broadcast_address - 1}"


def _is_host(ip: ipaddress.IPv4Address, net: ipaddress.IPv4Network) -> bool:
    return ip in net and ip not in (net.network_address, net.broadcast_address)


def _check_lan(site: Site) -> Iterator[Problem]:
    lan = site.lan
    net = netparse.ipv4_network(lan.subnet)
    if net.prefixlen > 30:
        yield Problem(
            "E202", ("lan", "subnet"), f"{net} is too small for a store LAN", "/30 or larger"
        )
    elif net.prefixlen < MIN_LAN_PREFIX:
        yield Problem(
            "E202",
            ("lan", "subnet"),
            f"{net} is too large for a store LAN ({net.num_addresses:,} addresses)",
            f"/{MIN_LAN_PREFIX} or smaller, e.g. /24 (254 hosts)",
        )
    special = netparse.not_unicast(net)
    if special is not None:
        yield Problem(
            "E202",
            ("lan", "subnet"),
            f"{net} overlaps the {special[1]} range {special[0]}: no LAN can use it",
            _LAN_RANGE,
        )
    gw = _addr(lan.gateway)
    if not _is_host(gw, net):
        yield Problem(
            "E202", ("lan", "gateway"), f"{gw} is not a host address of {net}", _hosts_of(net)
        )
    if lan.dhcp_pool is not None:
        start, end = _addr(lan.dhcp_pool.start), _addr(lan.dhcp_pool.end)
        for key, ip in (("start", start), ("end", end)):
            if not _is_host(ip, net):
                yield Problem(
                    "E202",
                    ("lan", "dhcp_pool", key),
                    f"{ip} is not a host address of {net}",
                    _hosts_of(net),
                )
        if start > end:
            yield Problem(
                "E202",
                ("lan", "dhcp_pool", "end"),
                f"the pool ends ({end}) before it starts ({start})",
                f"an end at or after the start {start}",
            )
        if start <= gw <= end:
            yield Problem(
                "E203",
                ("lan", "dhcp_pool"),
                f"the pool contains the gateway {gw}",
                f"a pool that leaves out {gw}, e.g. starting after it",
            )
    for key in ("public_ip", "address"):
        value = getattr(site.wan, key)
        if value is None or _addr(value) not in net:
            continue
        what = "the LAN gateway" if _addr(value) == gw else f"inside the LAN {net}"
        yield Problem(
            "E205",
            ("wan", key),
            f"{value} is {what}: the WAN and the LAN side of the edge cannot share addresses",
            "the store's public IPv4 address, outside lan.subnet"
            if key == "public_ip"
            else "the edge's address in the ISP router's network, outside lan.subnet",
        )
    if lan.dns.servers and lan.dns.upstreams:
        # The edge serves no DNS when clients are sent elsewhere: upstreams would be unused.
        yield Problem(
            "E211",
            ("lan", "dns", "upstreams"),
            "has no effect: with lan.dns.servers the edge does not serve DNS to the LAN",
            "either upstreams (the edge resolves) or servers (other resolvers)",
        )
    # the edge's address on the WAN: wan.address behind an ISP router (the public IP is
    # then the router's), else the public IP
    own = site.wan.address or site.wan.public_ip
    wan = {_addr(own)} - {gw} if own else set()
    yield from _dns_address_problems(site.lan, net, gw, wan)


# Ranges where no resolver can answer a LAN client or the edge (link-local stays
# allowed: some networks serve DNS there). The edge's dnsmasq never listens on loopback
# (except-interface=lo), so it may forward to a resolver there; a client may not be
# sent to its own loopback.
_NO_RESOLVER = {
    "servers": ("'this network'", "loopback", "multicast", "reserved"),
    "upstreams": ("'this network'", "multicast", "reserved"),
}


def _dns_address_problems(
    lan: Lan,
    net: ipaddress.IPv4Network,
    gw: ipaddress.IPv4Address,
    wan: Collection[ipaddress.IPv4Address] = (),
) -> Iterator[Problem]:
    """DNS addresses that cannot answer: DHCP would hand clients a resolver that is not
    there, or the edge's resolver would forward to itself."""
    lists = (
        ("servers", lan.dns.servers, "other resolvers' addresses, or none (the edge answers)"),
        ("upstreams", lan.dns.upstreams, "the resolvers the edge forwards to"),
    )
    for key, values, expected in lists:
        for j, value in enumerate(values):
            ip = _addr(value)
            special = netparse.address_not_unicast(ip)
            if special is not None and special[1] in _NO_RESOLVER[key]:
                why = f"in the {special[1]} range {special[0]}: no resolver answers there"
            elif ip == gw:
                why = (
                    "the edge itself, which serves no DNS when lan.dns.servers is set"
                    if key == "servers"
                    else "the edge itself: its resolver would forward to itself"
                )
            elif ip in wan:
                # dnsmasq answers on the LAN interface only: the edge's WAN address is
                # itself, where no resolver answers (forwarding there loops or fails)
                why = "the edge's own WAN address, where it answers no DNS"
            elif ip in (net.network_address, net.broadcast_address):
                why = f"not a host address of the LAN {net}"
            else:
                continue
            yield Problem("E202", ("lan", "dns", key, j), f"{ip} is {why}", expected)


def _check_hosts(site: Site) -> Iterator[Problem]:
    net = netparse.ipv4_network(site.lan.subnet)
    gw = _addr(site.lan.gateway)
    pool = site.lan.dhcp_pool
    names: dict[str, int] = {}
    ips: dict[str, int] = {}
    macs: dict[str, int] = {}
    for i, host in enumerate(site.hosts):
        if host.name == "edge":
            yield Problem(
                "E212",
                ("hosts", i, "name"),
                "the name 'edge' is reserved: the inventory names the store's router <site>-edge",
                "another host name",
            )
        ip = _addr(host.ip)
        if not _is_host(ip, net):
            yield Problem(
                "E202",
                ("hosts", i, "ip"),
                f"{ip} is not a host address of the LAN {net}",
                _hosts_of(net),
            )
        elif ip == gw:
            yield Problem(
                "E202",
                ("hosts", i, "ip"),
                f"{ip} is the LAN gateway (the edge)",
                "an address of its own, not lan.gateway",
            )
        if pool is not None and _addr(pool.start) <= ip <= _addr(pool.end):
            yield Problem(
                "E203",
                ("hosts", i, "ip"),
                f"fixed IP {ip} lies inside the DHCP pool {pool.start}-{pool.end}",
                "an address outside the pool",
            )
        for table, key, value in ((names, "name", host.name), (ips, "ip", host.ip)):
            if value in table:
                yield Problem(
                    "E208",
                    ("hosts", i, key),
                    f"duplicate host {key} (also hosts[{table[value]}])",
                    f"{'an IP address' if key == 'ip' else 'a name'} no other host of this "
                    "store has",
                )
            table.setdefault(value, i)
        if host.mac is not None:
            if host.mac in macs:
                yield Problem(
                    "E208",
                    ("hosts", i, "mac"),
                    f"duplicate MAC (also hosts[{macs[host.mac]}])",
                    "a MAC no other host of this store has",
                )
            macs.setdefault(host.mac, i)
        seen: dict[tuple[int, str], int] = {}
        snames: dict[str, int] = {}
        for j, svc in enumerate(host.services):
            if (svc.port, svc.protocol) in seen:
                other = seen[(svc.port, svc.protocol)]
                yield Problem(
                    "E208",
                    ("hosts", i, "services", j, "port"),
                    f"duplicate port on this host (also services[{other}])",
                    "a port (and protocol) no other service of this host has",
                )
            seen.setdefault((svc.port, svc.protocol), j)
            if svc.name in snames:
                yield Problem(
                    "E208",
                    ("hosts", i, "services", j, "name"),
                    f"duplicate service name (also services[{snames[svc.name]}])",
                    "a name no other service of this host has",
                )
            snames.setdefault(svc.name, j)
            if "health_path" in svc.model_fields_set and (not svc.http or svc.protocol == "udp"):
                # only an HTTP request over TCP asks for a path: it was silently unused
                yield Problem(
                    "E211",
                    ("hosts", i, "services", j, "health_path"),
                    "has no effect: only an HTTP service (http: true, over TCP) is asked "
                    "for a path",
                    "no health_path, or http: true on a TCP service",
                )


@last_object
def _services_by_host(site: Site) -> dict[str, frozenset[str]]:
    """Host name -> its service names (the first host of a name, as a lookup finds it):
    each route looks its service up, and a store may hold thousands of both, so
    scanning the hosts per route was quadratic."""
    index: dict[str, frozenset[str]] = {}
    for host in site.hosts:
        index.setdefault(host.name, frozenset(s.name for s in host.services))
    return index


def _find_service(site: Site, ref: str) -> tuple[bool, bool]:
    """(host exists, service exists)."""
    host_name, _, svc_name = ref.partition("/")
    services = _services_by_host(site).get(host_name)
    return services is not None, services is not None and svc_name in services


@last_object
def _udp_services(site: Site) -> frozenset[str]:
    """The `host/service` references (first host of a name) whose service is UDP."""
    first: dict[str, Host] = {}
    for host in site.hosts:
        first.setdefault(host.name, host)
    return frozenset(
        f"{h.name}/{s.name}" for h in first.values() for s in h.services if s.protocol == "udp"
    )


def service_problem(
    site: Site, path: YamlPath, ref: str, tcp_for: str | None = None
) -> Iterator[Problem]:
    """A reference to a host's service; `tcp_for` names what connects to it over TCP
    (a proxy, a TCP tunnel), which a UDP service cannot answer."""
    host_ok, svc_ok = _find_service(site, ref)
    if not host_ok:
        yield Problem(
            "E209", path, f"host '{ref.partition('/')[0]}' is not in hosts", "a host name"
        )
    elif not svc_ok:
        yield Problem(
            "E209", path, f"host has no service '{ref.partition('/')[2]}'", "a service of that host"
        )
    elif tcp_for is not None and ref in _udp_services(site):
        yield Problem(
            "E210",
            path,
            f"service '{ref}' is udp, but {tcp_for} connects to it over TCP",
            "a tcp service (protocol: tcp, the default)",
        )


def host_problem(site: Site, path: YamlPath, name: str, role: str = "") -> Iterator[Problem]:
    for host in site.hosts:
        if host.name == name:
            return
    yield Problem("E209", path, f"host '{name}' is not in hosts", "a host name")


# Servers that share one listening socket between the files of several proxies: nginx
# merges every `listen` of a port (each posnet file names its own catch-all and logs).
# Apache's files each say `Listen <port>`, and Apache refuses a second one.
_SHARES_PORTS = frozenset({"nginx"})


def _check_listeners(site: Site) -> Iterator[Problem]:
    """One host:port, one listening server: two proxies (unless both share ports, as
    nginx does), or a proxy and a service of the host, cannot both bind it."""
    from generator.patterns import pattern_of

    bound: dict[tuple[str, int], tuple[str, str]] = {}  # -> (server, who)
    named: dict[tuple[str, int, str], str] = {}  # (host, port, name) -> who answers it
    for i, host in enumerate(site.hosts):
        for j, svc in enumerate(host.services):
            if svc.protocol == "tcp":
                bound.setdefault(
                    (host.name, svc.port),
                    ("", f"its service {svc.name} (hosts[{i}].services[{j}])"),
                )
    for i, integ in enumerate(site.integrations):
        for lis in pattern_of(integ).listeners(site, integ):
            taken = bound.get((lis.host, lis.port))
            who = f"integrations[{i}] ({integ.partner} {integ.pattern}, {lis.server})"
            if taken is None:
                bound[(lis.host, lis.port)] = (lis.server, who)
                named.update({(lis.host, lis.port, n.lower()): who for n in lis.names})
                continue
            server, other = taken
            if server == lis.server and server in _SHARES_PORTS:
                yield from _shared_names(lis, i, who, named)
                continue
            if lis.key == ("listen_port",):
                expected = f"a listen_port no service or other proxy on host {lis.host} uses"
                if lis.server in _SHARES_PORTS:
                    expected += " (nginx proxies may share one)"
            else:  # a port the pattern fixes: the proxy must go elsewhere
                expected = f"a proxy host where port {lis.port} is free"
            yield Problem(
                "E214",
                ("integrations", i, *lis.key),
                f"port {lis.port} on host {lis.host} is already bound by {other}: "
                f"{who} cannot listen there too",
                expected,
            )


def _shared_names(
    lis: Listener, i: int, who: str, named: dict[tuple[str, int, str], str]
) -> Iterator[Problem]:
    """Proxies sharing a port are told apart by host name: nginx keeps the first server
    of a name and ignores the other ("conflicting server name"), whose routes,
    certificate and allow-list would then never apply."""
    for name in lis.names:
        other = named.setdefault((lis.host, lis.port, name.lower()), who)
        if other != who:
            yield Problem(
                "E214",
                ("integrations", i, *(lis.names_key or lis.key)),
                f"port {lis.port} on host {lis.host} already answers for {name} in "
                f"{other}: {who} would never be served",
                "a server_name of its own"
                + (" (or another listen_port)" if lis.key == ("listen_port",) else ""),
            )
            return


def _check_integrations(site: Site, catalog: Catalog) -> Iterator[Problem]:
    public: dict[int, int] = {}
    written: dict[str, int] = {}  # output name (Pattern.outputs) -> first integration
    mgmt = site.edge.management.port
    for i, integ in enumerate(site.integrations):
        base: YamlPath = ("integrations", i)
        partner = catalog.partners.get(integ.partner)
        if partner is None:
            known = ", ".join(sorted(catalog.partners))
            yield Problem("E201", (*base, "partner"), f"unknown partner '{integ.partner}'", known)
            continue
        if integ.pattern not in partner.patterns:
            yield Problem(
                "E204",
                (*base, "pattern"),
                f"partner '{integ.partner}' does not support the {integ.pattern} pattern",
                ", ".join(partner.patterns),
            )
        port = getattr(integ, "public_port", None)
        if port is not None:
            if port in public:
                yield Problem(
                    "E208",
                    (*base, "public_port"),
                    f"public port {port} is already used by integrations[{public[port]}]",
                    "a public port no other integration of this store uses",
                )
            elif port == mgmt:
                yield Problem(
                    "E208",
                    (*base, "public_port"),
                    f"public port {port} is the edge's management port",
                    "a port other than edge.management.port",
                )
            public.setdefault(port, i)
        from generator.patterns import pattern_of

        pat = pattern_of(integ)
        yield from pat.check(site, integ, partner, base)
        clashes = []
        for out in dict.fromkeys(pat.outputs(integ)):  # one integration may repeat one
            if out.name in written:
                clashes.append(out)
            written.setdefault(out.name, i)
        if clashes:
            first = clashes[0]
            names = " and ".join(c.name for c in clashes)
            yield Problem(
                "E213",
                (*base, *first.key),
                f"integrations[{written[first.name]}] already writes the files of {names}: "
                "this one would overwrite them",
                first.expected,
            )


def _basic_auth_problems(integ: ReverseProxyIntegration, ap: YamlPath) -> Iterator[Problem]:
    """Basic auth takes users with password references (hashed at apply) or, as before,
    a ready htpasswd file reference: exactly one of the two."""
    auth = integ.auth
    # each setting of one auth type is never read under another: it would mislead
    for name, value, kind in (
        ("users", auth.users, "basic"),
        ("htpasswd", auth.htpasswd, "basic"),
        ("client_ca", auth.client_ca, "client_cert"),
    ):
        if value is not None and auth.type != kind:
            yield Problem(
                "E210",
                (*ap, name),
                f"auth.{name} is for {kind} auth, not {auth.type}",
                f"no {name}, or type: {kind}",
            )
    if auth.type != "basic":
        return
    if auth.users is None and auth.htpasswd is None:
        yield Problem(
            "E210",
            ap,
            "basic auth needs auth.users (a password reference per user) or auth.htpasswd",
            "users: [{name: partner, password: vault:name}]",
        )
    elif auth.users is not None and auth.htpasswd is not None:
        yield Problem(
            "E210",
            (*ap, "htpasswd"),
            "auth.users and auth.htpasswd both given: the htpasswd file is generated from users",
            "remove htpasswd",
        )
    elif auth.users is not None and not auth.users:
        yield Problem(
            "E210", (*ap, "users"), "auth.users is empty: nobody could log in", "one user"
        )
    seen: set[str] = set()
    for k, user in enumerate(auth.users or ()):
        if user.name in seen:
            yield Problem(
                "E210",
                (*ap, "users", k, "name"),
                f"user {user.name!r} is declared twice",
                "each user name once",
            )
        seen.add(user.name)


def check_proxy(site: Site, integ: ReverseProxyIntegration, base: YamlPath) -> Iterator[Problem]:
    yield from _basic_auth_problems(integ, (*base, "auth"))
    if integ.auth.type == "client_cert" and integ.auth.client_ca is None:
        yield Problem(
            "E210",
            (*base, "auth"),
            "client_cert auth needs auth.client_ca",
            "client_ca: the CA that signs the partner's client certificates",
        )
    if integ.public_port is not None and site.wan.fqdn is None and integ.server_name is None:
        yield Problem(
            "E210",
            (*base, "server_name"),
            "a public proxy needs server_name or wan.fqdn",
            "server_name: <the name partners connect to>, or wan.fqdn",
        )
    keys: dict[str, int] = {}
    for j, route in enumerate(integ.routes):
        rp: YamlPath = (*base, "routes", j)
        local = route.service is not None
        remote = route.site is not None or route.site_service is not None
        if local == remote:
            yield Problem(
                "E210",
                rp,
                "a route needs either service, or site and site_service",
                "service: host/service (this store), or site and site_service (another)",
            )
        if remote and (route.site is None or route.site_service is None):
            yield Problem(
                "E210",
                rp,
                "a remote route needs both site and site_service",
                "site: <store id> and site_service: host/service",
            )
        if route.service is not None:
            yield from service_problem(site, (*rp, "service"), route.service, "the reverse proxy")
        if route.site is not None and route.site == site.id:
            yield Problem(
                "E210",
                (*rp, "site"),
                "a route to this store itself would go out to its own public name, where "
                "nothing forwards to the service",
                "service: host/service (a service of this store, reached on its LAN)",
            )
        unused = "path" if integ.routing == "subdomain" else "subdomain"
        if getattr(route, unused) is not None:
            yield Problem(
                "E211",
                (*rp, unused),
                f"{unused} has no effect with routing: {integ.routing}",
                f"no {unused}, or routing: {unused}",
            )
        if route.upstream_ca is not None and route.upstream_certificate is not None:
            yield Problem(
                "E210",
                (*rp, "upstream_certificate"),
                "give upstream_ca or upstream_certificate, not both",
                "upstream_ca: a private CA, or upstream_certificate: a pinned certificate",
            )
        key = route.subdomain if integ.routing == "subdomain" else route.path
        field = "subdomain" if integ.routing == "subdomain" else "path"
        if key is None:
            yield Problem(
                "E210",
                rp,
                f"{integ.routing} routing needs {field} on every route",
                f"{field}: on this route",
            )
        elif key in keys:
            yield Problem(
                "E208",
                (*rp, field),
                f"duplicate {field} (also routes[{keys[key]}])",
                f"a {field} no other route of this integration has",
            )
        else:
            keys[key] = j
        if integ.routing == "subdomain" and key is not None:
            yield from _subdomain_name_problem(site, integ, key, (*rp, field))


# DNS (RFC 1035): a name is at most 253 characters written out; a proxy config refuses
# a longer server name.
MAX_NAME = 253


def _subdomain_name_problem(
    site: Site, integ: ReverseProxyIntegration, subdomain: str, path: YamlPath
) -> Iterator[Problem]:
    """A subdomain route serves <subdomain>.<server name>: each part may be valid alone
    (a label, an FQDN) and still make a name longer than DNS allows."""
    from generator.patterns.context import public_name

    base = integ.server_name or public_name(site)
    name = f"{subdomain}.{base}"
    if len(name) > MAX_NAME:
        source = (
            "server_name"
            if integ.server_name
            else "wan.fqdn"
            if site.wan.fqdn
            else "wan.ddns.hostname"
        )
        yield Problem(
            "E210",
            path,
            f"{subdomain}.<{source}> is a {len(name)}-character host name: "
            f"longer than the {MAX_NAME} characters DNS allows",
            f"a subdomain and {source} of at most {MAX_NAME} characters together "
            f"(this {source} leaves {max(MAX_NAME - len(base) - 1, 0)} for the subdomain)",
        )
