"""Tunnel-only stores (issue 9, item 6): a store that only dials out (tunnel, outbound
only, cloud connector, LAN-only Windows HTTPS) needs no public IP, FQDN or DDNS, and its
handover carries the notes of its patterns only, with tunnel steps for the tunnel host's
OS. The store is tests/fleets/tunnel-only/sites/zeebrugge-07.yaml: behind carrier NAT,
a Linux POS behind a Deliverect tunnel, a kiosk outbound to Open POS.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from test_bad_input import errors, make_fleet, sub
from test_target_firewall import nft_check

from generator.analyze import analyze
from generator.build import fleet_files, render_plan
from generator.pipeline import load_plans
from generator.spec.checks import reached_from_internet
from generator.spec.load import load_fleet
from tests.conftest import DEMO

FLEET = Path(__file__).parent / "fleets" / "tunnel-only"
SITE = "zeebrugge-07"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    fleet, plans = load_plans(FLEET)
    assert fleet.ok, [d.message for d in fleet.diagnostics if d.severity == "error"]
    (plan,) = plans
    files = render_plan(plan)
    files.update({k: v for k, v in fleet_files(plans).items() if SITE in k})
    return files


def test_store_without_public_ip_fqdn_or_ddns_is_valid() -> None:
    res = analyze(FLEET)
    found = {(d.code, d.severity) for d in res.diagnostics}
    # Only the advice that tunnels are not for production; no dynamic-IP or FQDN warning.
    assert found == {("PN104", "info")}, res.diagnostics


def test_no_ddns_no_port_forward_and_a_valid_ruleset(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    assert not [k for k in rendered if k.startswith("ddns/")]
    ruleset = rendered["firewall/nftables.nft"]
    assert "dnat" not in ruleset
    path = tmp_path / "nftables.nft"
    path.write_text(ruleset)
    res = nft_check(path)
    assert res.returncode == 0, res.stderr


def test_inventory_leaves_the_address_to_the_operator(rendered: dict[str, str]) -> None:
    host_vars = yaml.safe_load(rendered[f"inventory/host_vars/{SITE}-edge.yml"])
    assert "ansible_host" not in host_vars  # not `null`: Ansible then uses the host name
    assert host_vars["posnet_site"] == SITE


def test_handover_has_no_inbound_advice(rendered: dict[str, str]) -> None:
    sheet = rendered["HANDOVER.md"]
    assert "| Public IP | none needed: no partner connects in from the internet |" in sheet
    assert "| WAN mode | dynamic |" in sheet
    assert "Dynamic public IP: not recommended" not in sheet
    assert "No inbound port is opened: nothing is forwarded from the internet" in sheet
    # (the sheet's "egress allow-list" is the outbound list, not partner-IP advice)
    inbound = (
        "Allow-list the",
        "are accepted only from",
        "Share the FQDN and port",
        "no allow-list",
    )
    for advice in inbound:
        assert advice not in sheet, advice
    assert "add the tunnel's https URL to the channel link" in sheet


def test_linux_tunnel_host_gets_no_windows_uninstaller(rendered: dict[str, str]) -> None:
    steps = rendered["HANDOVER.md"].split("## Tunnel steps", 1)[1].split("\n## ", 1)[0]
    for windows in ("unis000.exe", "Program Files", "Windows installer and run"):
        assert windows not in steps, windows
    assert "ask Deliverect for the tunnel\n   client for Linux" in steps
    assert "Install the client on `kassa1` and run it with:" in steps
    assert "Port: `8081`" in steps


def test_windows_tunnel_host_keeps_the_vendor_steps(demo_plans: dict[str, object]) -> None:
    sheet = render_plan(demo_plans["ostend-05"])["HANDOVER.md"]  # type: ignore[arg-type]
    steps = sheet.split("## Tunnel steps", 1)[1].split("\n## ", 1)[0]
    assert "`Program Files (x86)/deliverect-tunnel` and run\n   `unis000.exe`" in steps
    assert "Download the partner's Windows installer" in steps


def test_direct_store_still_needs_its_public_address(tmp_path: Path) -> None:
    """The exemption is for stores nobody connects in to, not a loophole."""
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    site = root / "sites" / f"{SITE}.yaml"
    site.write_text(
        site.read_text()
        + "  - {partner: deliverect, pattern: direct, service: kassa1/orders,"
        + " public_port: 28081}\n"
    )
    messages = {d.message for d in errors(root)}
    assert "a dynamic WAN needs wan.ddns so partners can find the store" in messages
    assert "a dynamic WAN needs wan.fqdn" in messages


def test_central_proxy_cannot_route_to_a_store_without_address(tmp_path: Path) -> None:
    """mechelen-hq's proxy routes to antwerp-02; made tunnel-only, it has no address."""
    root, _ = make_fleet(
        tmp_path,
        "sites/antwerp-02.yaml",
        sub("  fqdn: antwerp-02.pos.example.com\n", ""),
    )
    text = (root / "sites/antwerp-02.yaml").read_text()
    text = text.split("  ddns:\n", 1)[0] + "edge:" + text.split("\nedge:", 1)[1]
    text = text.split("integrations:\n", 1)[0] + (
        "integrations:\n  - {partner: deliverect, pattern: tunnel, service: till1/api,"
        " token: env:T}\n"
    )
    (root / "sites/antwerp-02.yaml").write_text(text)
    mine = [d for d in errors(root) if d.site == "mechelen-hq"]
    assert [d.message for d in mine] == [
        "site 'antwerp-02' has no public address (wan.fqdn or wan.public_ip)"
    ], errors(root)
    assert mine[0].path.endswith(".site")


@pytest.mark.parametrize("root", [DEMO, FLEET], ids=["demo", "tunnel-only"])
def test_inbound_flag_agrees_with_the_plan(root: Path) -> None:
    """A store the patterns call not reached from the internet gets no exposure."""
    fleet = load_fleet(root)
    _, plans = load_plans(root)
    by_id = {p.site_id: p for p in plans}
    for ls in fleet.sites:
        assert ls.site is not None
        assert reached_from_internet(ls.site) == bool(by_id[ls.id].exposures), ls.id
