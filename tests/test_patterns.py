"""Integration patterns are modules in a registry; catalog parameters are per pattern."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from generator.catalog import Partner
from generator.errors import Diagnostic
from generator.patterns import PatternError, builtin, pattern_of, patterns
from generator.pipeline import load_plans
from generator.spec.model import DirectIntegration, PatternName, TunnelIntegration
from tests.test_bad_input import DEMO, errors, make_fleet, pos, sub


def only_error(root: Path, code: str) -> Diagnostic:
    """The fleet's single error, which must have `code` (any other error fails the test)."""
    errs = errors(root)
    assert [e.code for e in errs] == [code], errs
    return errs[0]


def test_every_spec_pattern_has_exactly_one_module() -> None:
    assert set(patterns()) == set(get_args(PatternName)) == set(builtin())
    for name, pat in patterns().items():
        assert pat.name == name
        assert pat.model.model_fields["pattern"].annotation.__args__ == (name,)  # type: ignore[union-attr]
        assert pat.doc.strip(), f"pattern {name} has no docstring"
        assert pat.model.__module__ == f"generator.patterns.{name}", "model lives elsewhere"
        if pat.params is not None:
            assert pat.params.__module__ == f"generator.patterns.{name}"


def test_dispatch_refuses_a_model_of_another_pattern() -> None:
    wrong = TunnelIntegration.model_construct(pattern="direct", partner="x")
    with pytest.raises(PatternError, match="expects DirectIntegration, got TunnelIntegration"):
        pattern_of(wrong)
    unknown = DirectIntegration.model_construct(pattern="carrier_pigeon", partner="x")
    with pytest.raises(PatternError, match="no pattern module for 'carrier_pigeon'"):
        pattern_of(unknown)


def test_catalog_parameters_are_one_sub_model_per_pattern() -> None:
    per_pattern = {n for n, p in patterns().items() if p.params is not None}
    assert per_pattern <= set(Partner.model_fields)
    for name in per_pattern:
        assert Partner.model_fields[name].annotation is not None
    # No flat, pattern-specific field is left on the partner.
    for flat in ("tunnel_domain_suffix", "environments", "default_port", "auth_path"):
        assert flat not in Partner.model_fields


def test_fleet_override_merges_into_the_pattern_parameters(tmp_path: Path) -> None:
    root, _ = make_fleet(
        tmp_path,
        "fleet.yaml",
        sub(
            "partners:\n", "partners:\n  ppaas:\n    cloud_connector: {ssl_profile_name: OTHERCA}\n"
        ),
    )
    fleet, plans = load_plans(root)
    assert fleet.ok, fleet.diagnostics
    props = [dict(d.properties) for p in plans for d in p.devices if d.partner == "ppaas"]
    assert props and all(pr["ssl_profile_name"] == "OTHERCA" for pr in props)
    # the built-in environments survive the override (mappings merge)
    assert all(pr["ep_register_url"].startswith("wss://api.qa.ppaas.tech/") for pr in props)


def test_old_flat_partner_field_is_an_error(tmp_path: Path) -> None:
    root, _ = make_fleet(
        tmp_path, "fleet.yaml", sub("partners:\n", "partners:\n  ppaas:\n    ssl_profile_name: X\n")
    )
    errs = errors(root)
    assert errs and any("ssl_profile_name" in (e.message + e.expected) for e in errs), errs


def test_requires_trusted_certificate_is_gone(tmp_path: Path) -> None:
    """The field was read by nothing; the partner's note says it. Setting it is an error."""
    assert "requires_trusted_certificate" not in Partner.model_fields
    root, _ = make_fleet(
        tmp_path,
        "fleet.yaml",
        sub(
            "partners:\n",
            "partners:\n  swiftpos-netpos:\n"
            "    windows_https: {requires_trusted_certificate: true}\n",
        ),
    )
    assert errors(root)


# ------------------------------------------------- two integrations, one set of files (E213)

SECOND_PROXY = """  - partner: deliverect
    pattern: reverse_proxy
    proxy_host: pos2
    public_port: 38444
    auth: {type: basic, htpasswd: vault:brussels_03_htpasswd}
    tls: {certificate: file:certs/b2.pem, key: vault:b2}
    routes: [{service: pos1/api, path: /other/}]
"""

SECOND_WS = """  - partner: powerepos
    pattern: auth_websocket
    proxy_host: integrator
    public_port: 18444
    server_name: ws2.bruges-06.pos.example.com
    websocket_service: integrator/ws
    auth_service: integrator/auth
    provider_outlet_id: outlet-2
    pos_remote_id: remote-2
    auth_secret: vault:s2
    tls: {certificate: file:c2.pem, key: vault:k2}
"""

SECOND_BINDING = """  - partner: swiftpos-netpos
    pattern: windows_https
    host: backoffice
    port: 10101
    thumbprint: "00000000000012d9cd34315bb56d78c08da59000"
    clients: [touch1]
    maintenance_window: Monday
"""


@pytest.mark.parametrize(
    "rel, extra, needle, path, names, expected",
    [
        (
            "sites/brussels-03.yaml",
            SECOND_PROXY,
            "deliverect\n    pattern: reverse_proxy\n    proxy_host: pos2",
            "integrations[1].partner",
            "proxy deliverect-proxy",
            "one reverse_proxy per partner and store",
        ),
        (
            "sites/bruges-06.yaml",
            SECOND_WS,
            "powerepos\n    pattern: auth_websocket\n    proxy_host: integrator\n"
            "    public_port: 18444",
            "integrations[2].partner",
            "proxy powerepos-ws and exposure powerepos-ws and device powerepos-auth",
            "one auth_websocket per partner and store",
        ),
        (
            "sites/ostend-05.yaml",
            SECOND_BINDING,
            "backoffice\n    port: 10101",
            "integrations[3].host",
            "windows binding swiftpos-netpos-backoffice",
            "one windows_https per partner and host",
        ),
    ],
    ids=["reverse-proxy-two-hosts", "auth-websocket-twice", "windows-https-twice"],
)
def test_two_integrations_writing_the_same_files_are_refused(
    tmp_path: Path, rel: str, extra: str, needle: str, path: str, names: str, expected: str
) -> None:
    """Files are named after the partner (and host): a second integration with the same
    name overwrote the first one's config, script or properties file at render."""
    root, text = make_fleet(tmp_path, rel, lambda raw: raw + extra.encode())
    e = only_error(root, "E213")
    line, col = pos(text, needle)
    assert e.location.file.endswith(rel)
    assert (e.location.line, e.location.col) == (line, col), e
    assert e.path == path
    assert f"already writes the files of {names}" in e.message
    assert "would overwrite" in e.message and e.message.startswith("integrations[")
    assert expected in e.expected


def test_one_partner_and_service_exposed_twice_is_refused(tmp_path: Path) -> None:
    """A second public port for the same partner and service rendered two exposures of
    one id (deliverect-pos1-api), which `posnet diff` keyed by that id: moving the first
    one's port was shown as a change to the second one's, and a change to the first
    one's sources was not shown at all."""
    extra = "  - {partner: deliverect, pattern: direct, service: pos1/api, public_port: 18444}\n"
    root, text = make_fleet(tmp_path, "sites/gent-01.yaml", lambda raw: raw + extra.encode())
    clash = [e for e in errors(root) if e.code == "E213"]
    assert len(clash) == 1, errors(root)
    e = clash[0]
    assert e.location.file.endswith("sites/gent-01.yaml")
    assert (e.location.line, e.location.col) == pos(text, "pos1/api, public_port: 18444")
    assert e.path == "integrations[1].service"
    assert "exposure deliverect-pos1-api" in e.message
    assert "one direct integration per partner and service" in e.expected


@pytest.mark.parametrize(
    ("rel", "service", "path", "over"),
    [
        (
            "sites/brussels-03.yaml",
            "{name: api, port: 8443, tls: true}",
            "routes[0].service",
            "the reverse proxy",
        ),
        (
            "sites/bruges-06.yaml",
            "{name: ws, port: 9000, tls: false}",
            "websocket_service",
            "the websocket proxy",
        ),
        (
            "sites/ostend-05.yaml",
            "{name: orders, port: 8081, tls: false}",
            "service",
            "the TCP tunnel client",
        ),
    ],
    ids=["reverse-proxy-route", "auth-websocket", "tunnel"],
)
def test_a_udp_service_behind_an_http_proxy_or_tcp_tunnel_is_refused(
    tmp_path: Path, rel: str, service: str, path: str, over: str
) -> None:
    """A route, websocket or tunnel to a service with protocol: udp validated: nginx,
    Apache and the TCP tunnel connect over TCP, so it could never answer (and the LAN
    flow the firewall opened for it was UDP)."""
    root, _ = make_fleet(tmp_path, rel, sub(service, service[:-1] + ", protocol: udp}"))
    found = [e for e in errors(root) if e.code == "E210" and e.location.file.endswith(rel)]
    assert len(found) == 1, errors(root)
    assert found[0].path.endswith(path), found[0]
    assert "is udp, but" in found[0].message, found[0]
    assert f"{over} connects to it over TCP" in found[0].message, found[0]


def test_exposures_of_two_patterns_never_share_an_id(tmp_path: Path) -> None:
    """A direct exposure is named partner-host-service, a proxy's partner-proxy: partner
    `dl` to pos1/proxy and a reverse proxy of partner `dl-pos1` were both `dl-pos1-proxy`,
    one firewall set for two partners' allow-lists. Every exposure's id is declared as
    an output, so the clash is E213 like any other."""
    partners = (
        "partners:\n"
        "  dl: {title: DL, patterns: [direct], sources: [192.0.2.0/28]}\n"
        "  dl-pos1: {title: DL1, patterns: [reverse_proxy], sources: [192.0.2.32/28]}\n"
    )
    service = "      - {name: api, port: 8443, tls: true}\n"
    direct = "  - {partner: dl, pattern: direct, service: pos1/proxy, public_port: 19090}\n"

    def edit(raw: bytes) -> bytes:
        text = raw.decode().replace(service, service + "      - {name: proxy, port: 9090}\n")
        return (text.replace("partner: deliverect", "partner: dl-pos1") + direct).encode()

    root, _ = make_fleet(tmp_path, "sites/brussels-03.yaml", edit)
    fleet = root / "fleet.yaml"
    fleet.write_text(fleet.read_text().replace("partners:\n", partners))
    clash = [e for e in errors(root) if e.code == "E213"]
    assert len(clash) == 1, errors(root)
    assert "exposure dl-pos1-proxy" in clash[0].message
    assert clash[0].path == "integrations[1].service"
    assert "rename the service or the partner" in clash[0].expected


def test_render_refuses_two_items_that_would_write_one_file(tmp_path: Path) -> None:
    """The safety net behind E213: a plan with two proxies of one id is an error at
    render, never one file silently holding the last of them."""
    import dataclasses

    from generator.targets import render_site

    _, plans = load_plans(DEMO)
    plan = next(p for p in plans if p.proxies)
    twice = dataclasses.replace(plan, proxies=(*plan.proxies, plan.proxies[0]))
    with pytest.raises(RuntimeError, match="bruges-06: two proxies named powerepos-ws would write"):
        render_site(twice)
    device = next(p for p in plans if p.devices)
    twice = dataclasses.replace(device, devices=(*device.devices, device.devices[0]))
    with pytest.raises(RuntimeError, match=r"two devices named .* would write the same files"):
        render_site(twice)
    exposed = next(p for p in plans if p.exposures)
    twice = dataclasses.replace(exposed, exposures=(*exposed.exposures, exposed.exposures[0]))
    with pytest.raises(RuntimeError, match=r"two exposures named .* would write the same files"):
        render_site(twice)


# ------------------------------------------------------- one host:port, two listeners (E214)

BRUGES_PROXY = """  - partner: deliverect
    pattern: reverse_proxy
    proxy_host: integrator
    software: {software}
    listen_port: {port}
    auth: {{type: client_cert, client_ca: file:ca3.pem}}
    tls: {{certificate: file:c3.pem, key: vault:k3}}
    routes: [{{service: integrator/api, path: /api/}}]
"""


def _bruges_with_proxy(tmp_path: Path, software: str, port: int) -> tuple[Path, bytes]:
    extra = BRUGES_PROXY.format(software=software, port=port)
    root, _ = make_fleet(
        tmp_path,
        "sites/bruges-06.yaml",
        sub(
            "    services:\n      - {name: ws,",
            "    services:\n      - {name: api, port: 8080}\n      - {name: ws,",
        ),
    )
    site = root / "sites/bruges-06.yaml"
    site.write_bytes(site.read_bytes() + extra.encode())
    return root, site.read_bytes()


def test_an_apache_proxy_on_the_port_of_an_nginx_proxy_is_refused(tmp_path: Path) -> None:
    """bruges-06's auth_websocket nginx listens on integrator:8443; an Apache proxy on
    the same host and port could not bind it (its file says Listen 8443)."""
    root, text = _bruges_with_proxy(tmp_path, "apache", 8443)
    e = only_error(root, "E214")
    assert e.location.file.endswith("sites/bruges-06.yaml")
    assert (e.location.line, e.location.col) == pos(text, "8443\n    auth: {type: client_cert")
    assert e.path == "integrations[2].listen_port"
    assert e.message == (
        "port 8443 on host integrator is already bound by integrations[1] (powerepos "
        "auth_websocket, nginx): integrations[2] (deliverect reverse_proxy, apache) cannot "
        "listen there too"
    )
    assert e.expected == "a listen_port no service or other proxy on host integrator uses"


def test_nginx_proxies_share_a_port(tmp_path: Path) -> None:
    """nginx serves every file's server on one socket: two nginx proxies may share it."""
    root, _ = _bruges_with_proxy(tmp_path, "nginx", 8443)
    assert errors(root) == []


def test_nginx_proxies_sharing_a_port_need_names_of_their_own(tmp_path: Path) -> None:
    """nginx keeps the first server of a name on a socket and ignores the other
    ("conflicting server name"): the second proxy's routes, certificate and allow-list
    would never apply. Names compare without case, as DNS does."""
    root, text = _bruges_with_proxy(tmp_path, "nginx", 8443)
    site = root / "sites/bruges-06.yaml"
    clash = text.replace(
        b"    software: nginx\n",
        b"    software: nginx\n    server_name: WS.bruges-06.pos.example.com\n",
    )
    site.write_bytes(clash)
    e = only_error(root, "E214")
    assert e.path == "integrations[2].server_name"
    assert (e.location.line, e.location.col) == pos(clash, "WS.bruges-06.pos.example.com")
    assert e.message == (
        "port 8443 on host integrator already answers for ws.bruges-06.pos.example.com in "
        "integrations[1] (powerepos auth_websocket, nginx): integrations[2] (deliverect "
        "reverse_proxy, nginx) would never be served"
    )
    assert e.expected == "a server_name of its own (or another listen_port)"
    site.write_bytes(clash.replace(b"WS.bruges-06", b"api.bruges-06"))
    assert errors(root) == []


def test_two_proxies_named_after_the_store_on_one_port_are_refused(tmp_path: Path) -> None:
    """Without server_name a proxy answers for the store's public name: two of them on
    one host and port are one server to nginx (found by trying a fleet from outside)."""
    root, text = _bruges_with_proxy(tmp_path, "nginx", 9443)
    fleet = root / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace(
            "partners:\n",
            "partners:\n  kv: {title: KV, patterns: [reverse_proxy], sources: [192.0.2.0/27]}\n",
        )
    )
    second = BRUGES_PROXY.format(software="nginx", port=9443).replace("deliverect", "kv")
    site = root / "sites/bruges-06.yaml"
    site.write_text(text.decode() + second.replace("ca3.pem", "ca4.pem"))
    e = only_error(root, "E214")
    assert e.path == "integrations[3].listen_port"
    assert "already answers for bruges-06.pos.example.com in integrations[2]" in e.message


def test_a_proxy_on_the_port_of_a_service_of_its_host_is_refused(tmp_path: Path) -> None:
    root, text = make_fleet(
        tmp_path, "sites/brussels-03.yaml", sub("proxy_host: proxy", "proxy_host: pos1")
    )
    e = only_error(root, "E214")
    assert e.location.file.endswith("sites/brussels-03.yaml")
    assert (e.location.line, e.location.col) == pos(text, "8443\n    public_port: 38443")
    assert e.path == "integrations[0].listen_port"
    assert e.message.startswith(
        "port 8443 on host pos1 is already bound by its service api (hosts[1].services[0]): "
        "integrations[0] (deliverect reverse_proxy, nginx) cannot listen there too"
    )


def test_a_fixed_proxy_port_taken_by_a_service_is_reported_at_the_proxy_host(
    tmp_path: Path,
) -> None:
    """auth_websocket always listens on 8443: the error points at proxy_host."""
    root, text = make_fleet(
        tmp_path,
        "sites/bruges-06.yaml",
        sub(
            "      - {name: ws, port: 9000",
            "      - {name: web, port: 8443}\n      - {name: ws, port: 9000",
        ),
    )
    e = only_error(root, "E214")
    assert (e.location.line, e.location.col) == pos(text, "integrator\n    public_port: 8443")
    assert e.path == "integrations[1].proxy_host"
    assert "already bound by its service web" in e.message
    assert e.expected == "a proxy host where port 8443 is free"


def test_an_auth_path_of_slash_is_refused_in_the_catalog(tmp_path: Path) -> None:
    """The websocket answers "/": an auth path "/" validated and then stopped render with
    an internal error (two routes for path /). It is an error at the partner entry."""
    root, text = make_fleet(
        tmp_path,
        "fleet.yaml",
        sub("  powerepos:\n", "  powerepos:\n    auth_websocket: {auth_path: /}\n"),
    )
    e = only_error(root, "E100")
    assert e.location.file.endswith("fleet.yaml")
    assert (e.location.line, e.location.col) == pos(text, "/}")
    assert e.path == "partners.powerepos.auth_websocket.auth_path"
    assert e.message == "is the websocket's path: the auth endpoint needs a path of its own"
    assert e.expected == "a path other than /, e.g. /auth"


def test_a_subdomain_name_longer_than_dns_allows_is_refused(tmp_path: Path) -> None:
    """A 247-character wan.fqdn and subdomain `api` are each valid, but api.<fqdn> has
    251 + 4 characters: render stopped with an internal error (unsafe host name)."""
    label = "a" * 60
    fqdn = ".".join([label] * 4) + ".com"  # 247 characters, labels of 60
    assert len(fqdn) == 247
    root, text = make_fleet(
        tmp_path,
        "sites/brussels-03.yaml",
        lambda raw: (
            raw.decode()
            .replace("fqdn: brussels-03.pos.example.com", f"fqdn: {fqdn}")
            .replace("routing: path", "routing: subdomain")
            .replace("path: /pos1/}", "subdomain: kassa1}")
            .replace("path: /pos2/,", "subdomain: k2,")
            .encode()
        ),
    )
    e = only_error(root, "E210")
    assert e.location.file.endswith("sites/brussels-03.yaml")
    assert (e.location.line, e.location.col) == pos(text, "kassa1}")
    assert e.path == "integrations[0].routes[0].subdomain"
    assert e.message == (
        "kassa1.<wan.fqdn> is a 254-character host name: longer than the 253 characters DNS allows"
    )
    assert e.expected == (
        "a subdomain and wan.fqdn of at most 253 characters together "
        "(this wan.fqdn leaves 5 for the subdomain)"
    )
