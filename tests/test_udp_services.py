"""UDP services: only a direct port forward can carry them, and nothing promises what
posnet cannot check.

A reverse proxy, the websocket proxy and the TCP tunnel connect to their upstream over
TCP, so a route to a UDP service is an error (E210), not a config that never connects.
A UDP exposure is no HTTP endpoint; `posnet probe` (TCP only) reports it as not
probed instead of failing it for a partner or passing it for a stranger, and the
handover does not promise an nmap verdict that a UDP scan cannot give.
"""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest

from generator.expectations import expectations
from generator.pipeline import load_plans
from generator.probe import probe_exposure
from generator.targets.handover import render as render_handover
from tests.test_claims_backed import nftables_fleet, plans_of, write_fleet
from tests.treeutil import posnet_process

FLEET = nftables_fleet("udp")

HOSTS = """\
    lan: {subnet: "198.51.100.128/26", gateway: "198.51.100.129"}
    hosts:
      - {name: proxy, role: proxy, ip: "198.51.100.130"}
      - name: pos1
        role: pos
        ip: "198.51.100.140"
        services:
          - {name: api, port: 8443, tls: true}
          - {name: voip, port: 5060, protocol: udp}
    """


def site(head: str, integrations: str) -> str:
    """A store: its head, the shared LAN and hosts, its integrations."""
    return dedent(head) + dedent(HOSTS) + dedent(integrations)


DIRECT = site(
    """\
    id: u-direct
    name: U
    wan: {ip_mode: static, public_ip: "203.0.113.10", fqdn: u.pos.example.com}
    """,
    """\
    integrations:
      - {partner: deliverect, pattern: direct, service: pos1/voip, public_port: 8443,
         sources: ["198.51.100.0/28"]}
      - {partner: deliverect, pattern: direct, service: pos1/api, public_port: 5060,
         sources: ["198.51.100.0/28"]}
    """,
)

PROXY = site(
    """\
    id: u-proxy
    name: U
    wan: {ip_mode: static, public_ip: "203.0.113.11", fqdn: v.pos.example.com}
    """,
    """\
    integrations:
      - partner: deliverect
        pattern: reverse_proxy
        proxy_host: proxy
        public_port: 38443
        sources: ["198.51.100.0/28"]
        auth: {type: basic, htpasswd: "vault:h"}
        tls: {certificate: "file:c.pem", key: "vault:k"}
        routes: [{service: pos1/voip, path: /voip/}]
    """,
)

TUNNEL = site(
    """\
    id: u-tunnel
    name: U
    wan: {ip_mode: static, public_ip: "203.0.113.12"}
    """,
    """\
    integrations:
      - {partner: deliverect, pattern: tunnel, service: pos1/voip, token: "vault:t"}
    """,
)

WEBSOCKET = site(
    """\
    id: u-ws
    name: U
    wan: {ip_mode: static, public_ip: "203.0.113.13", fqdn: w.pos.example.com}
    """,
    """\
    integrations:
      - partner: powerepos
        pattern: auth_websocket
        proxy_host: proxy
        public_port: 8443
        server_name: ws.w.pos.example.com
        websocket_service: pos1/voip
        auth_service: pos1/api
        provider_outlet_id: outlet-1
        pos_remote_id: remote-1
        auth_secret: "vault:a"
        sources: ["198.51.100.0/28"]
        tls: {certificate: "file:c.pem", key: "vault:k"}
    """,
)


@pytest.mark.parametrize(
    ("site", "text", "path", "who"),
    [
        ("u-proxy", PROXY, "integrations[0].routes[0].service", "the reverse proxy"),
        ("u-tunnel", TUNNEL, "integrations[0].service", "the TCP tunnel client"),
        ("u-ws", WEBSOCKET, "integrations[0].websocket_service", "the websocket proxy"),
    ],
)
def test_a_tcp_client_cannot_reach_a_udp_service(
    tmp_path: Path, site: str, text: str, path: str, who: str
) -> None:
    fleet, _ = load_plans(write_fleet(tmp_path, FLEET, {}, {site: text}))
    found = [(d.code, d.path, d.message) for d in fleet.diagnostics if d.severity == "error"]
    assert (
        "E210",
        path,
        f"service 'pos1/voip' is udp, but {who} connects to it over TCP",
    ) in found, found


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> object:
    root = tmp_path_factory.mktemp("fleet")
    return plans_of(write_fleet(root, FLEET, {}, {"u-direct": DIRECT}))["u-direct"]


def test_a_udp_exposure_is_no_http_endpoint(direct: object) -> None:
    udp = next(e for e in direct.exposures if e.protocol == "udp")  # type: ignore[attr-defined]
    assert not udp.http
    sheet = render_handover(direct)["HANDOVER.md"]  # type: ignore[arg-type]
    assert "- `u.pos.example.com:8443 (UDP)`" in sheet
    assert "http://u.pos.example.com:8443" not in sheet


def test_the_handover_promises_no_verdict_a_udp_scan_cannot_give(direct: object) -> None:
    sheet = render_handover(direct)["HANDOVER.md"]  # type: ignore[arg-type]
    checks = sheet.split("## Checks to run after apply", 1)[1]
    udp = checks.split("### `deliverect-pos1-voip`", 1)[1].split("###", 1)[0]
    assert "`nmap -Pn -sU -p 8443 203.0.113.10`" in udp
    assert "open|filtered" in udp and "does not test it" in udp
    assert "shows it open" not in udp and "shows it filtered" not in udp
    assert "passes" not in udp and "curl" not in udp


def test_the_probe_reports_a_udp_exposure_as_not_probed(direct: object) -> None:
    exp = expectations(direct)  # type: ignore[arg-type]
    udp = next(e for e in exp["exposures"] if e["protocol"] == "udp")
    for role in ("partner", "stranger"):
        # 192.0.2.1 is never contacted: the result comes back without a packet sent
        (result,) = probe_exposure(udp, role, "192.0.2.1", timeout=30)  # type: ignore[arg-type]
        assert result.skipped and "not probed" in result.check
        assert result.as_dict()["skipped"] is True
    # UDP 8443 is exposed, TCP 8443 (the api, forwarded only as TCP 5060) is not: a
    # stranger and a partner must still find TCP 8443 filtered
    assert 8443 in exp["blocked_ports"]


def test_probe_counts_a_udp_exposure_apart(tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path / "fleet", FLEET, {}, {"u-direct": DIRECT})
    build = tmp_path / "build"
    assert posnet_process("-q", "render", str(fleet), "-o", str(build)).returncode == 0
    # 127.0.0.1: every TCP check fails fast (closed), which is not what is tested here
    where = ("probe", str(build), "--site", "u-direct", "--host", "127.0.0.1", "--timeout", "0.2")
    res = posnet_process(*where)
    assert ", 1 not probed (UDP)" in res.stderr, res.stderr
    assert "skip deliverect-pos1-voip udp not probed" in res.stdout, res.stdout
    rows = json.loads(posnet_process(*where, "--json").stdout)
    assert [r["check"] for r in rows if r["skipped"]] == ["deliverect-pos1-voip udp not probed"]


CENTRAL = """\
    id: u-central
    name: C
    wan: {ip_mode: static, public_ip: "203.0.113.20", fqdn: hq.pos.example.com}
    lan: {subnet: "192.0.2.128/26", gateway: "192.0.2.129"}
    hosts: [{name: central-proxy, role: proxy, ip: "192.0.2.130"}]
    integrations:
      - partner: deliverect
        pattern: reverse_proxy
        proxy_host: central-proxy
        public_port: 443
        sources: ["198.51.100.0/28"]
        auth: {type: basic, htpasswd: "vault:h"}
        tls: {certificate: "file:c.pem", key: "vault:k"}
        routes:
          - {site: u-direct, site_service: pos1/api, path: /api/}
          - {site: u-direct, site_service: pos1/voip, path: /voip/}
    """


def test_a_central_proxy_cannot_route_to_another_stores_udp_service(tmp_path: Path) -> None:
    sites = {"u-direct": DIRECT, "u-central": CENTRAL}
    fleet, _ = load_plans(write_fleet(tmp_path, FLEET, {}, sites))
    found = [(d.code, d.path, d.message) for d in fleet.diagnostics if d.severity == "error"]
    assert found == [
        (
            "E300",
            "integrations[0].routes[1].site_service",
            "service pos1/voip of site 'u-direct' is udp, but the reverse proxy connects to it "
            "over TCP",
        )
    ], found
