"""What probe and the handover expect from outside must match what the store serves.

An audit against the vendor guides found two false expectations: a store whose exposure
has no allow-list (open to anyone, lint PN103) was told, in its handover and by `probe
--as stranger`, that the port is filtered; and a proxy with a `server_name` of its own
was checked by the store's WAN name, which reaches only the catch-all server and fails a
certificate check. Each test builds the store and asks a real loopback server.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.expectations import expectations
from generator.probe import probe_exposure
from generator.targets.handover import render as render_handover
from tests.test_claims_backed import nftables_fleet, plans_of, write_fleet
from tests.tls_server import make_cert, serve_tls

FLEET = nftables_fleet("names")

OPEN_TO_ANYONE = """\
    id: a-direct
    name: A
    wan: {ip_mode: static, public_ip: "203.0.113.10", fqdn: a.pos.example.com}
    lan: {subnet: "198.51.100.128/26", gateway: "198.51.100.129"}
    hosts:
      - name: pos1
        role: pos
        ip: "198.51.100.140"
        services: [{name: api, port: 8443, tls: true}]
    integrations: [{partner: deliverect, pattern: direct, service: pos1/api, public_port: 18443}]
    """

OWN_NAME = """\
    id: r2
    name: R2
    wan: {ip_mode: static, public_ip: "203.0.113.15", fqdn: r2.pos.example.com}
    lan: {subnet: "198.51.100.128/26", gateway: "198.51.100.129"}
    hosts:
      - {name: proxy, role: proxy, ip: "198.51.100.130"}
      - name: pos1
        role: pos
        ip: "198.51.100.140"
        services: [{name: api, port: 8443, tls: true}]
    integrations:
      - partner: deliverect
        pattern: reverse_proxy
        proxy_host: proxy
        public_port: 38443
        server_name: pos.partner-gw.example.com
        sources: ["198.51.100.0/28"]
        auth: {type: basic, users: [{name: deliverect, password: "vault:x"}]}
        tls: {certificate: "file:c.pem", key: "vault:k"}
        routes: [{service: pos1/api, path: /pos1/}]
    """


# An allow-list that adds up to every address is none: two /1s.
EVERY_ADDRESS = (
    OPEN_TO_ANYONE.replace("a-direct", "b-every")
    .replace("203.0.113.10", "203.0.113.11")
    .replace("a.pos.example.com", "b.pos.example.com")
    .replace("public_port: 18443}", 'public_port: 18443, sources: ["0.0.0.0/1", "128.0.0.0/1"]}')
)


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("fleet")
    sites = {"a-direct": OPEN_TO_ANYONE, "r2": OWN_NAME, "b-every": EVERY_ADDRESS}
    return plans_of(write_fleet(root, FLEET, {}, sites))


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_a_stranger_finds_an_exposure_without_allow_list_open(
    plans: dict[str, object], listener: int
) -> None:
    (exposure,) = expectations(plans["a-direct"])["exposures"]  # type: ignore[arg-type]
    assert exposure["sources"] == []
    found = probe_exposure({**exposure, "public_port": listener}, "stranger", "127.0.0.1")
    assert [(r.check, r.ok) for r in found] == [("deliverect-pos1-api open to anyone", True)], found
    # with an allow-list, the same open port is a failure for a stranger
    allowed = {
        **exposure,
        "public_port": listener,
        "sources": ["198.51.100.0/28"],
        "open_to_anyone": False,
    }
    assert not probe_exposure(allowed, "stranger", "127.0.0.1")[0].ok


def test_the_handover_of_an_exposure_without_allow_list_does_not_promise_filtered(
    plans: dict[str, object],
) -> None:
    text = render_handover(plans["a-direct"])["HANDOVER.md"]  # type: ignore[arg-type]
    checks = text.split("## Checks to run after apply", 1)[1]
    assert "filtered" not in checks.split("###")[1], checks
    assert "anyone may connect" in checks and "expects the port open" in checks


def test_a_proxy_is_checked_by_its_own_server_name(
    plans: dict[str, object], tmp_path: Path
) -> None:
    """The proxy's certificate names pos.partner-gw.example.com only: probe with
    --verify-tls passes, sending that name (it failed on the WAN name before)."""
    (exposure,) = expectations(plans["r2"])["exposures"]  # type: ignore[arg-type]
    assert exposure["server_name"] == "pos.partner-gw.example.com"
    text = render_handover(plans["r2"])["HANDOVER.md"]  # type: ignore[arg-type]
    assert "curl -sSI https://pos.partner-gw.example.com:38443/" in text
    assert "https://r2.pos.example.com:38443" not in text
    cert, key = make_cert(tmp_path, "gw", "DNS:pos.partner-gw.example.com")
    seen: list[bytes] = []

    def answer(request: bytes) -> bytes:
        seen.append(request)
        return b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"

    server = serve_tls(tmp_path / "srv", answer, cert_and_key=(cert, key))
    port, _ = next(server)
    try:
        found = probe_exposure(
            {**exposure, "public_port": port}, "partner", "127.0.0.1", 3.0, True, str(cert)
        )
    finally:
        server.close()
    assert [(r.check, r.ok) for r in found] == [
        ("deliverect-proxy tcp", True),
        ("deliverect-proxy tls", True),
        ("deliverect-proxy http", True),
        ("deliverect-proxy auth basic", True),
    ], found
    assert all(b"\r\nHost: pos.partner-gw.example.com\r\n" in r for r in seen), seen


def test_an_allow_list_of_every_address_is_no_allow_list(
    plans: dict[str, object], listener: int, tmp_path: Path
) -> None:
    """sources ["0.0.0.0/0"] (or two /1s) opens the port to everyone: there was no
    PN103, the handover said 'accepted only from', and a stranger's probe failed the
    correct store because it expected the port filtered."""
    from generator.lint import site_findings

    plan = plans["b-every"]
    (exposure,) = expectations(plan)["exposures"]  # type: ignore[arg-type]
    assert exposure["open_to_anyone"] is True
    found = probe_exposure({**exposure, "public_port": listener}, "stranger", "127.0.0.1")
    assert [(r.check, r.ok) for r in found] == [("deliverect-pos1-api open to anyone", True)]
    text = render_handover(plan)["HANDOVER.md"]  # type: ignore[arg-type]
    assert "accepted from anyone (0.0.0.0/1, 128.0.0.0/1 is every address)" in text
    assert "expects the port open" in text
    (pn103,) = [m for rid, _, m in site_findings(plan) if rid == "PN103"]  # type: ignore[arg-type]
    assert "is every address" in pn103
