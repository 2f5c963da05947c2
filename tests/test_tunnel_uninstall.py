"""The tunnel steps name an uninstaller only where the partner documents one.

Seed 000 gives Deliverect's: `Program Files (x86)/deliverect-tunnel`, `unis000.exe`.
The handover used to print that file under a folder made up from any partner's id, so
a fleet's own tunnel partner got an uninstaller nobody ever published. The catalog now
carries it (`tunnel.uninstaller`), and without one the sheet names none.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import PosnetError
from generator.pipeline import load_plans
from generator.targets.handover import render as render_handover
from tests.test_claims_backed import nftables_fleet, plans_of, write_fleet

FLEET = nftables_fleet(
    "tunnels",
    """\
      acme:
        title: Acme Delivery
        patterns: [tunnel]
        tunnel: {domain_suffix: t.acme.example, ui_port: 4041}
""",
)

SITE = """\
    id: {id}
    name: T
    wan: {{ip_mode: static, public_ip: "203.0.113.12"}}
    lan: {{subnet: "198.51.100.128/26", gateway: "198.51.100.129"}}
    hosts:
      - name: pos1
        role: pos
        os: windows
        ip: "198.51.100.140"
        services: [{{name: api, port: 8443, tls: true}}]
    integrations:
      - {{partner: {partner}, pattern: tunnel, service: pos1/api, token: "vault:t"}}
    """


def steps(tmp_path: Path, partner: str) -> str:
    site = SITE.format(id=f"t-{partner}", partner=partner)
    plan = plans_of(write_fleet(tmp_path, FLEET, {}, {f"t-{partner}": site}))[f"t-{partner}"]
    sheet = render_handover(plan)["HANDOVER.md"]
    return sheet.split("## Tunnel steps", 1)[1].split("\n## ", 1)[0]


def test_deliverects_uninstaller_is_the_one_its_guide_names(tmp_path: Path) -> None:
    text = steps(tmp_path, "deliverect")
    assert "browse to `Program Files (x86)/deliverect-tunnel` and run\n   `unis000.exe`." in text


def test_a_partner_without_a_documented_uninstaller_gets_none_made_up(tmp_path: Path) -> None:
    text = steps(tmp_path, "acme")
    assert "unis000.exe" not in text and "acme-tunnel" not in text, text
    assert "1. Uninstall any previous tunnel client first, the way Acme Delivery documents it." in (
        text
    )


def test_a_fleet_names_its_partners_uninstaller(tmp_path: Path) -> None:
    fleet = FLEET.replace(
        "tunnel: {domain_suffix: t.acme.example, ui_port: 4041}",
        "tunnel: {domain_suffix: t.acme.example, ui_port: 4041,"
        ' uninstaller: "Program Files/Acme/remove.exe"}',
    )
    site = SITE.format(id="t-acme", partner="acme")
    plan = plans_of(write_fleet(tmp_path, fleet, {}, {"t-acme": site}))["t-acme"]
    text = render_handover(plan)["HANDOVER.md"]
    assert "browse to `Program Files/Acme` and run\n   `remove.exe`." in text


def test_an_uninstaller_without_a_folder_is_refused(tmp_path: Path) -> None:
    fleet = FLEET.replace(
        "tunnel: {domain_suffix: t.acme.example, ui_port: 4041}",
        'tunnel: {domain_suffix: t.acme.example, ui_port: 4041, uninstaller: "remove.exe"}',
    )
    site = SITE.format(id="t-acme", partner="acme")
    with pytest.raises(PosnetError) as exc:
        load_plans(write_fleet(tmp_path, fleet, {}, {"t-acme": site}))
    (bad,) = exc.value.diagnostics
    assert bad.path == "partners.acme.tunnel.uninstaller"
    assert "Program Files (x86)/acme-tunnel/uninstall.exe" in (bad.expected or "")
