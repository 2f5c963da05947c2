"""A partner added in fleet.yaml declares what only its own documents can say.

A fleet's `acme: {patterns: [tunnel]}` without a `tunnel:` block used to get the
made-up defaults `ui_port: 4040` and `domain_suffix: tunnel.invalid`: its handover told
the engineer to open https://localhost:4040 and to give the partner
https://DOMAIN.tunnel.invalid. The same held for an auth_websocket partner (`/auth`,
`token`), a cloud_connector partner (PPaaS's paths and INGETRUST profile) and an egress
entry without ports (443). Those values now have no default: fleet.yaml is refused at
the line of the partner that leaves one out, saying what it must declare.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import Diagnostic, PosnetError
from generator.pipeline import load_plans
from generator.targets.handover import render as render_handover
from tests.test_claims_backed import plans_of, write_fleet

FLEET = """\
    fleet: required
    partners:
      acme:
        title: Acme Delivery
{partner}
    defaults:
      edge: {{kind: nftables, management: {{allow_from: ["192.0.2.64/28"], port: 22}}}}
      wan: {{isp: TestISP}}
    """

TUNNEL_SITE = """\
    id: t1
    name: T
    wan: {ip_mode: static, public_ip: "203.0.113.12"}
    lan: {subnet: "198.51.100.128/26", gateway: "198.51.100.129"}
    hosts:
      - name: pos1
        role: pos
        os: windows
        ip: "198.51.100.140"
        services: [{name: api, port: 8443, tls: true}]
    integrations:
      - {partner: acme, pattern: tunnel, service: pos1/api, token: "vault:t"}
    """


def fleet(partner: str) -> str:
    """FLEET with the given YAML lines under partner `acme`."""
    return FLEET.format(partner="\n".join(" " * 8 + line for line in partner.splitlines()))


def refused(tmp_path: Path, partner: str) -> Diagnostic:
    """The one diagnostic of a fleet whose partner `acme` has the given YAML lines."""
    root = write_fleet(tmp_path, fleet(partner), {}, {"t1": TUNNEL_SITE})
    with pytest.raises(PosnetError) as exc:
        load_plans(root)
    (bad,) = exc.value.diagnostics
    return bad


def test_a_tunnel_partner_without_its_tunnel_block_is_refused(tmp_path: Path) -> None:
    bad = refused(tmp_path, "patterns: [tunnel]")
    assert bad.location.file.endswith("fleet.yaml") and bad.location.line == 3, bad
    assert bad.path == "partners.acme.tunnel"
    assert "uses the tunnel pattern but has no tunnel: block" in bad.message
    assert "domain_suffix: Domain the tunnel names end in" in bad.message
    assert "ui_port: Local web UI port of the tunnel client" in bad.message
    assert (
        bad.expected == "tunnel: {domain_suffix: ..., ui_port: ...} as the partner documents them"
    )


def test_a_tunnel_block_without_the_ui_port_is_refused(tmp_path: Path) -> None:
    bad = refused(tmp_path, "patterns: [tunnel]\ntunnel: {domain_suffix: t.acme.example}")
    assert bad.path == "partners.acme.tunnel.ui_port"
    assert bad.message == "missing required key 'ui_port'"


@pytest.mark.parametrize(
    ("pattern", "keys"),
    [
        ("auth_websocket", "auth_path: ..., token_query_param: ..."),
        (
            "cloud_connector",
            "device_listener_path: ..., pos_listener_path: ..., token_path_template: ..., "
            "ssl_profile_name: ...",
        ),
    ],
)
def test_other_patterns_without_their_block_are_refused(
    tmp_path: Path, pattern: str, keys: str
) -> None:
    bad = refused(
        tmp_path, f"patterns: [tunnel, {pattern}]\ntunnel: {{domain_suffix: a.b, ui_port: 1}}"
    )
    assert bad.path == f"partners.acme.{pattern}"
    assert f"uses the {pattern} pattern but has no {pattern}: block" in bad.message
    assert bad.expected == f"{pattern}: {{{keys}}} as the partner documents them"


def test_an_egress_entry_without_ports_is_refused(tmp_path: Path) -> None:
    bad = refused(
        tmp_path,
        "patterns: [tunnel]\ntunnel: {domain_suffix: t.acme.example, ui_port: 4041}\n"
        "egress: [{purpose: Acme tunnel, domains: [relay.acme.example]}]",
    )
    assert bad.path == "partners.acme.egress[0].ports"
    assert bad.message == "missing required key 'ports'"


def test_the_handover_uses_what_the_partner_declared(tmp_path: Path) -> None:
    partner = "patterns: [tunnel]\ntunnel: {domain_suffix: t.acme.example, ui_port: 4041}"
    root = write_fleet(tmp_path, fleet(partner), {}, {"t1": TUNNEL_SITE})
    sheet = render_handover(plans_of(root)["t1"])["HANDOVER.md"]
    assert "Open `https://localhost:4041` on `pos1`" in sheet
    assert "https://DOMAIN.t.acme.example" in sheet
    assert "4040" not in sheet and ".invalid" not in sheet
