"""OCSP stapling (Mozilla intermediate sets it) where the certificate allows it: on for
a trusted (CA-issued) certificate unless tls.ocsp_stapling: false, off for a self-signed
one. nginx verifies the staple against the public CAs except under client-certificate
auth, where those CAs as ssl_trusted_certificate would admit their client certificates.
Apache's cache is server-wide, outside every VirtualHost. nginx -t / apache2 -t and the
live runs of these configs are in tests/test_target_proxy.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from generator.plan import Plan, ProxyPlan
from generator.targets import apache, nginx
from tests.conftest import load_plans
from tests.test_bad_input import B, make_fleet, sub

TRUSTED_CA = "ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;"


def proxy_of(plan: Plan) -> ProxyPlan:
    (p,) = plan.proxies
    return p


def brussels(tmp_path: Path, tls_extra: str) -> Plan:
    root, _ = make_fleet(
        tmp_path, B, sub('      openssl: "3.0"\n', f'      openssl: "3.0"\n{tls_extra}')
    )
    fleet, plans = load_plans(root)
    assert fleet.ok, fleet.diagnostics
    return next(p for p in plans if p.site_id == "brussels-03")


def test_trusted_certificate_staples_and_verifies(demo_plans: dict[str, Plan]) -> None:
    plan = demo_plans["brussels-03"]
    p = proxy_of(plan)
    assert p.tls.stapling and p.tls.ocsp_resolvers == (plan.lan.gateway,)
    ng = nginx.render_proxy(plan, p)
    servers = ng.count("\nserver {")
    assert ng.count("ssl_stapling on;") == servers
    assert ng.count("ssl_stapling_verify on;") == servers == ng.count(TRUSTED_CA)
    # nginx needs a resolver for the responder's name; exactly one per server block.
    for block in ng.split("\nserver {")[1:]:
        assert len(re.findall(r"^    resolver ", block, re.M)) == 1, block
    ap = apache.render_proxy(plan, p)
    outside = re.sub(r"<VirtualHost.*?</VirtualHost>", "", ap, flags=re.S)
    assert 'SSLStaplingCache "shmcb:posnet_ocsp_stapling(128000)"' in outside
    for vhost in re.findall(r"<VirtualHost.*?</VirtualHost>", ap, flags=re.S):
        assert "SSLStaplingCache" not in vhost
    assert ap.count("SSLUseStapling on") == ap.count("<VirtualHost ")


def test_client_cert_proxy_does_not_trust_public_cas(demo_plans: dict[str, Plan]) -> None:
    plan = demo_plans["leuven-04"]
    p = proxy_of(plan)
    assert p.auth == "client_cert" and p.tls.stapling
    ng = nginx.render_proxy(plan, p)
    assert "ssl_stapling on;" in ng and "ssl_stapling_verify off;" in ng
    assert not re.search(r"^ +ssl_trusted_certificate", ng, re.M)


@pytest.mark.parametrize(
    "extra", ["      trusted: false\n", "      ocsp_stapling: false\n"], ids=["self-signed", "off"]
)
def test_stapling_off(tmp_path: Path, extra: str) -> None:
    plan = brussels(tmp_path, extra)
    p = proxy_of(plan)
    assert not p.tls.stapling and p.tls.ocsp_resolvers == ()
    ng, ap = nginx.render_proxy(plan, p), apache.render_proxy(plan, p)
    assert "ssl_stapling" not in ng and "Stapling" not in ap
    assert "# OCSP stapling off" in ng and "# OCSP stapling off" in ap


def test_stapling_forced_on_for_a_self_signed_certificate(tmp_path: Path) -> None:
    p = proxy_of(brussels(tmp_path, "      trusted: false\n      ocsp_stapling: true\n"))
    assert p.tls.stapling
