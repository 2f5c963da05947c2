"""The E-code registry: every error code posnet reports, with a title, a why and examples.

Like Terraform's diagnostics and ansible-lint's rule docs, a code is a unit of its own:
`posnet rules` lists it, `posnet rules --explain E203` prints its doc, SARIF viewers show
its title and why. A Diagnostic with an E-code that is not registered here cannot be
made (errors.Diagnostic checks), so a new check always comes with its documentation.
Codes are grouped by hundreds: E0xx files and commands, E1xx types and names, E2xx
checks within one store, E3xx checks across stores, E4xx the build tree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    title: str
    why: str
    # An excerpt of the demo fleet (examples/demo-fleet): its first line, a comment, names
    # the file; `...` stands for the rest of an entry, or first in a list for the file's
    # entries. tests/test_diagnostics.py places each into that file: bad gets the code,
    # good validates without errors.
    bad: str = ""  # a YAML fragment that gets this code
    good: str = ""  # the same fragment fixed
    # The located value failed validation (it may be a secret typed in the wrong place):
    # the source snippet shows keys only, never values.
    masks_values: bool = False

    def doc(self) -> str:
        """Markdown like a lint rule's doc: title, why, bad and good example."""
        parts = [f"# {self.code} {self.title}\n\n{self.why}\n"]
        for head, text in (("Bad", self.bad), ("Good", self.good)):
            if text:
                parts.append(f"\n## {head}\n\n```yaml\n{text.rstrip()}\n```\n")
        return "".join(parts)


_CODES = (
    Code(
        "E001",
        "YAML syntax error",
        "The file is not YAML posnet can read (tabs, unclosed quotes, duplicate keys, "
        "anchors, tags, merge keys, numbers not in plain decimal such as 8_443 or 0x1F "
        "that YAML 1.1 and 1.2 read differently): nothing in it can be checked until it "
        "parses.",
        '# sites/gent-01.yaml\nname: "Gent Korenmarkt',
        '# sites/gent-01.yaml\nname: "Gent Korenmarkt"',
        masks_values=True,
    ),
    Code(
        "E002",
        "Missing or unusable file",
        "A file or folder posnet needs is absent, unreadable, or a store is defined twice.",
    ),
    Code(
        "E003",
        "Ignored or unusable input",
        "A file that is not a store, or a source (Git revision, folder) posnet cannot "
        "read; nothing of it is used.",
    ),
    Code(
        "E004",
        "posnet init refused",
        "The scaffold would overwrite a file or got an invalid fleet name.",
    ),
    Code(
        "E005",
        "Report input missing",
        "The report needs the fleet the build tree was rendered from.",
    ),
    Code(
        "E100",
        "Wrong type or form",
        "A value does not have the type or form the spec allows (an integer, a known key, "
        "an address, a secret reference, ...). The message never echoes the value: it may "
        "be a secret typed in the wrong place.",
        (
            "# sites/gent-01.yaml\n"
            "hosts:\n"
            "  - {name: pos1, role: pos, ip: 198.51.100.140, services: [{name: api, port: https}]}"
        ),
        (
            "# sites/gent-01.yaml\n"
            "hosts:\n"
            "  - {name: pos1, role: pos, ip: 198.51.100.140, services: [{name: api, port: 8443}]}"
        ),
        masks_values=True,
    ),
    Code(
        "E101",
        "Unknown or mismatched name",
        "A store selects a group that does not exist, or an id differs from its file "
        "name: the file name is what everything else refers to.",
        "# sites/gent-01.yaml\nid: gent-1",
        "# sites/gent-01.yaml\nid: gent-01",
    ),
    Code(
        "E102",
        "Unknown lint rule",
        "lint.disable names a rule id posnet does not have, so nothing is disabled.",
        "# sites/gent-01.yaml\nlint: {disable: [PN999]}",
        "# sites/gent-01.yaml\nlint: {disable: [PN109]}",
    ),
    Code(
        "E201",
        "Unknown partner",
        "An integration names a partner that is neither built in nor added in fleet.yaml "
        "`partners:`; posnet cannot know its addresses and ports.",
        (
            "# sites/gent-01.yaml\n"
            "integrations:\n"
            "  - {partner: delivereckt, pattern: direct, service: pos1/api, ...}"
        ),
        (
            "# sites/gent-01.yaml\n"
            "integrations:\n"
            "  - {partner: deliverect, pattern: direct, service: pos1/api, ...}"
        ),
    ),
    Code(
        "E202",
        "Address does not fit the LAN",
        "A gateway, DHCP pool bound or host address is not a usable host address of "
        "lan.subnet (or is the gateway itself), a DNS server or upstream could not answer "
        "(the edge itself, the LAN's network or broadcast address, not unicast), or the "
        "subnet itself is unusable: smaller "
        "than /30, larger than /16 (surely a typo: the firewall gives the whole subnet the "
        "LAN's rights), or not unicast (0/8, loopback, link-local, multicast, 240/4). RFC "
        "1918, 100.64.0.0/10 and public space routed to the store are all fine.",
        (
            "# sites/gent-01.yaml\n"
            "lan: {subnet: 198.51.100.128/26, gateway: 198.51.100.129}\n"
            "hosts:\n"
            "  - {name: pos1, ip: 198.51.100.40, ...}"
        ),
        (
            "# sites/gent-01.yaml\n"
            "lan: {subnet: 198.51.100.128/26, gateway: 198.51.100.129}\n"
            "hosts:\n"
            "  - {name: pos1, ip: 198.51.100.140, ...}"
        ),
    ),
    Code(
        "E203",
        "Address inside the DHCP pool",
        "A fixed address (a host, the gateway) lies inside lan.dhcp_pool: the DHCP server "
        "could lease it to another device, and the partner's traffic would reach that "
        "device instead.",
        (
            "# sites/gent-01.yaml\n"
            "lan:\n"
            "  dhcp_pool: {start: 198.51.100.150, end: 198.51.100.180}\n"
            "hosts:\n"
            "  - {name: pos1, ip: 198.51.100.160, ...}"
        ),
        (
            "# sites/gent-01.yaml\n"
            "lan:\n"
            "  dhcp_pool: {start: 198.51.100.150, end: 198.51.100.180}\n"
            "hosts:\n"
            "  - {name: pos1, ip: 198.51.100.140, ...}"
        ),
    ),
    Code(
        "E204",
        "Partner does not offer this",
        "The integration asks the partner for a pattern, environment or default it does "
        "not have in the catalog.",
        (
            "# sites/bruges-06.yaml\n"
            "integrations:\n"
            "  - {partner: ppaas, pattern: cloud_connector, environment: stage, ...}"
        ),
        (
            "# sites/bruges-06.yaml\n"
            "integrations:\n"
            "  - {partner: ppaas, pattern: cloud_connector, environment: qa, ...}"
        ),
    ),
    Code(
        "E205",
        "Unusable WAN address",
        "wan.public_ip is private, not unicast (unspecified, broadcast, loopback, "
        "multicast, ...) or inside the LAN: partners on the Internet could not reach the "
        "store there. wan.address (the edge's own address behind an ISP router) cannot be "
        "such an address or lie inside the LAN either: one side of the edge would shadow "
        "the other.",
        "# sites/gent-01.yaml\nwan: {ip_mode: static, public_ip: 10.0.0.5}",
        "# sites/gent-01.yaml\nwan: {ip_mode: static, public_ip: 203.0.113.10}",
    ),
    Code(
        "E206",
        "WAN settings incomplete",
        "The WAN mode needs settings that are missing or that the DDNS client cannot "
        "send (a static WAN without public_ip, a dynamic one without ddns or fqdn, a "
        "cloudflare update without zone, an address written as wan.fqdn).",
        "# sites/antwerp-02.yaml\nwan: {ip_mode: static}",
        "# sites/antwerp-02.yaml\nwan: {ip_mode: static, public_ip: 203.0.113.40}",
    ),
    Code(
        "E207",
        "Unusable interface",
        "The WAN and LAN interfaces are the same, or a name that ip(8) and iptables would misread.",
        "# sites/gent-01.yaml\nwan: {interface: eth0}\nlan: {interface: eth0}",
        "# sites/gent-01.yaml\nwan: {interface: eth0}\nlan: {interface: eth1}",
    ),
    Code(
        "E208",
        "Duplicate in a store",
        "Two hosts, services, MACs, public ports or proxy routes of one store share what "
        "must be unique: the edge could serve only one of them.",
        (
            "# sites/gent-01.yaml\n"
            "hosts:\n"
            "  - {name: pos1, ip: 198.51.100.140, ...}\n"
            "  - {name: pos1, ip: 198.51.100.141, ...}"
        ),
        (
            "# sites/gent-01.yaml\n"
            "hosts:\n"
            "  - {name: pos1, ip: 198.51.100.140, ...}\n"
            "  - {name: pos2, ip: 198.51.100.141, ...}"
        ),
    ),
    Code(
        "E209",
        "Unknown host or service",
        "An integration refers to a host or host/service the store's hosts do not have.",
        (
            "# sites/gent-01.yaml\n"
            "integrations:\n"
            "  - {partner: deliverect, pattern: direct, service: pos9/api, ...}"
        ),
        (
            "# sites/gent-01.yaml\n"
            "integrations:\n"
            "  - {partner: deliverect, pattern: direct, service: pos1/api, ...}"
        ),
    ),
    Code(
        "E210",
        "Integration settings incomplete or conflicting",
        "An integration lacks a setting its choice needs (basic auth without htpasswd, a "
        "route without path) or combines settings that exclude each other.",
        (
            "# sites/brussels-03.yaml\n"
            "integrations:\n"
            "  - {routing: path, routes: [{service: pos1/api}], ...}"
        ),
        (
            "# sites/brussels-03.yaml\n"
            "integrations:\n"
            "  - {routing: path, routes: [{service: pos1/api, path: /pos1/}], ...}"
        ),
    ),
    Code(
        "E211",
        "Setting has no effect",
        "A setting is ignored because of another one; leaving it would mislead a reader.",
        "# sites/gent-01.yaml\nlan:\n  dns: {servers: [198.51.100.141], upstreams: [9.9.9.9]}",
        "# sites/gent-01.yaml\nlan:\n  dns: {servers: [198.51.100.141]}",
    ),
    Code(
        "E212",
        "Reserved name",
        "The name is taken by posnet itself (the inventory calls the router <site>-edge).",
        (
            "# sites/gent-01.yaml\n"
            "hosts:\n"
            "  - ...\n"
            "  - {name: edge, role: server, ip: 198.51.100.142}"
        ),
        (
            "# sites/gent-01.yaml\n"
            "hosts:\n"
            "  - ...\n"
            "  - {name: backoffice, role: server, ip: 198.51.100.142}"
        ),
    ),
    Code(
        "E213",
        "Two integrations write the same files",
        "Files, logs and firewall rules are named after the partner (and the host, for a "
        "Windows binding; the service, for a direct exposure): two integrations of one "
        "store that get the same name would write the same files, and only the last one "
        "would be deployed (two exposures of one name were both rendered, but "
        "`posnet diff` told their changes apart by name).",
        (
            "# sites/gent-01.yaml\n"
            "integrations:\n"
            "  - {partner: deliverect, pattern: direct, service: pos1/api, ...}\n"
            "  - {partner: deliverect, pattern: direct, service: pos1/api, public_port: 18444}"
        ),
        (
            "# sites/gent-01.yaml\n"
            "integrations:\n"
            "  - {partner: deliverect, pattern: direct, service: pos1/api, ...}\n"
            "  - {partner: deliverect, pattern: direct, service: pos2/api, public_port: 18444}"
        ),
    ),
    Code(
        "E214",
        "Port already taken on the host",
        "A proxy would listen on a host's port that a service of that host or another "
        "proxy already listens on: only one of them can bind it, and the other fails to "
        "start. nginx proxies of one host may share a port (one server, one socket) when "
        "each answers for names of its own: nginx ignores the second server of a name, so "
        "its routes, certificate and allow-list would never apply. An Apache proxy and "
        "anything else may not share a port.",
        (
            "# sites/brussels-03.yaml\n"
            "hosts:\n"
            "  - {name: proxy, ...}\n"
            "  - {name: pos1, services: [{name: api, port: 8443}], ...}\n"
            "integrations:\n"
            "  - {pattern: reverse_proxy, proxy_host: pos1, listen_port: 8443, ...}"
        ),
        (
            "# sites/brussels-03.yaml\n"
            "hosts:\n"
            "  - {name: proxy, ...}\n"
            "  - {name: pos1, services: [{name: api, port: 8443}], ...}\n"
            "integrations:\n"
            "  - {pattern: reverse_proxy, proxy_host: pos1, listen_port: 9443, ...}"
        ),
    ),
    Code(
        "E300",
        "Conflict across stores",
        "Two stores share a public name or address, or a central proxy routes to a store "
        "or service that does not exist (or has errors).",
        "# sites/gent-01.yaml\nwan: {fqdn: antwerp-02.pos.example.com}",
        "# sites/gent-01.yaml\nwan: {fqdn: gent-01.pos.example.com}",
    ),
    Code(
        "E401",
        "Build tree file is stale",
        "The build tree is out of date: it differs from what the spec renders now. "
        "Run `posnet render FLEET -o BUILD` and commit the result.",
    ),
    Code(
        "E402",
        "Build tree file is missing",
        "The build tree is out of date: the spec renders it, the tree lacks it. "
        "Run `posnet render FLEET -o BUILD` and commit the result.",
    ),
    Code(
        "E403",
        "Stray file in the build tree",
        "The build tree is out of date: the tree holds it, the spec renders it not. "
        "Run `posnet render FLEET -o BUILD` and commit the result.",
    ),
)

CODES: dict[str, Code] = {c.code: c for c in _CODES}


class UnregisteredCode(ValueError):
    """A programming error: a check reports a code without registering it."""


def code(name: str) -> Code:
    """The registered code; an unknown E-code is a bug in posnet, not in the input."""
    try:
        return CODES[name]
    except KeyError:
        raise UnregisteredCode(f"{name} is not a registered diagnostic code") from None


def require_registered(name: str) -> None:
    """E-codes must be registered; other ids (lint rules PNxxx) have their own registry."""
    if name.startswith("E") and name not in CODES:
        raise UnregisteredCode(f"{name} is not a registered diagnostic code")
