"""DNS addresses that could not answer are errors at their line (E202).

With `lan.dns.servers` the edge serves DHCP only (dnsmasq `port=0`) and announces those
servers: naming the edge itself announced a resolver that is not there. An upstream at
the edge's LAN address would make its resolver forward to itself, and one at its WAN
address asks where dnsmasq answers nothing (it listens on the LAN interface only).
Addresses no resolver can have (0/8, multicast, 240/4 with the broadcast address, a
client's own loopback, the LAN's network or broadcast address) were announced or
forwarded to as written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.spec.model import Lan, LanDns, LintConfig, Site
from tests.test_bad_input import errors, make_fleet, pos, sub

GENT = "sites/gent-01.yaml"
POOL = '  dhcp_pool: {start: "198.51.100.150", end: "198.51.100.180"}\n'


def _with_dns(tmp_path: Path, dns: str) -> tuple[Path, bytes]:
    return make_fleet(tmp_path, GENT, sub(POOL, POOL + f"  dns: {dns}\n"))


@pytest.mark.parametrize(
    ("dns", "at", "path", "message"),
    [
        (
            '{servers: ["198.51.100.129"]}',
            '"198.51.100.129"]',
            "lan.dns.servers[0]",
            "198.51.100.129 is the edge itself, which serves no DNS when lan.dns.servers is set",
        ),
        (
            '{upstreams: ["198.51.100.129"]}',
            '"198.51.100.129"]',
            "lan.dns.upstreams[0]",
            "198.51.100.129 is the edge itself: its resolver would forward to itself",
        ),
        (  # the edge's WAN address: dnsmasq answers on the LAN interface only
            '{upstreams: ["203.0.113.10"]}',
            '"203.0.113.10"]',
            "lan.dns.upstreams[0]",
            "203.0.113.10 is the edge's own WAN address, where it answers no DNS",
        ),
        (
            '{servers: ["203.0.113.10"]}',
            '"203.0.113.10"]',
            "lan.dns.servers[0]",
            "203.0.113.10 is the edge's own WAN address, where it answers no DNS",
        ),
        (
            '{servers: ["192.0.2.53", "0.0.0.0"]}',
            '"0.0.0.0',
            "lan.dns.servers[1]",
            "0.0.0.0 is in the 'this network' range 0.0.0.0/8",
        ),
        (
            '{servers: ["255.255.255.255"]}',
            '"255.255',
            "lan.dns.servers[0]",
            "255.255.255.255 is in the reserved range 240.0.0.0/4",
        ),
        (
            '{servers: ["127.0.0.1"]}',
            '"127.0.0.1',
            "lan.dns.servers[0]",
            "127.0.0.1 is in the loopback range 127.0.0.0/8",
        ),
        (
            '{upstreams: ["224.0.0.251"]}',
            '"224.0.0.251',
            "lan.dns.upstreams[0]",
            "224.0.0.251 is in the multicast range 224.0.0.0/4",
        ),
        (
            '{servers: ["198.51.100.191"]}',
            '"198.51.100.191',
            "lan.dns.servers[0]",
            "198.51.100.191 is not a host address of the LAN 198.51.100.128/26",
        ),
    ],
)
def test_a_dns_address_that_cannot_answer_is_an_error(
    tmp_path: Path, dns: str, at: str, path: str, message: str
) -> None:
    root, text = _with_dns(tmp_path, dns)
    errs = [e for e in errors(root) if e.location.file.endswith(GENT)]  # hq routes to gent
    assert [(e.code, e.path) for e in errs] == [("E202", path)], errs
    assert errs[0].message.startswith(message)
    assert (errs[0].location.line, errs[0].location.col) == pos(text, at)


@pytest.mark.parametrize(
    "dns",
    [
        '{servers: ["192.0.2.53", "198.51.100.130"]}',  # elsewhere, or a LAN host
        '{upstreams: ["127.0.0.53"]}',  # a resolver on the edge's loopback: dnsmasq is not
        '{upstreams: ["169.254.169.253"]}',  # link-local resolvers exist
    ],
)
def test_dns_addresses_that_can_answer_pass(tmp_path: Path, dns: str) -> None:
    root, _ = _with_dns(tmp_path, dns)
    assert errors(root) == []


def test_model_defaults_are_shared_not_copied() -> None:
    """Lan.dns and Site.lint default to one shared instance (pydantic deep-copied an
    unhashable default into every store); their hash agrees with equality."""
    data = {
        "id": "s1",
        "name": "S",
        "wan": {"isp": "x", "ip_mode": "dynamic"},
        "lan": {"subnet": "192.168.1.0/24", "gateway": "192.168.1.1"},
        "edge": {"management": {"allow_from": ["192.0.2.1"]}},
    }
    a, b = Site.model_validate(data), Site.model_validate(data)
    assert a.lan.dns is b.lan.dns is Lan.model_fields["dns"].default
    assert a.lint is b.lint is Site.model_fields["lint"].default
    assert hash(LanDns(upstreams=["192.0.2.53"])) == hash(LanDns(upstreams=["192.0.2.53"]))
    assert LanDns(upstreams=["192.0.2.53"]) != LanDns(servers=["192.0.2.53"])
    assert hash(LintConfig(disable=["PN101"])) == hash(LintConfig(disable=["PN101"]))
