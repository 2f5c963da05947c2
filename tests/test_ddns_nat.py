"""DDNS behind NAT (issue 9, item 5): `wan.ddns.detect: web` makes inadyn and ddclient ask
a check-ip server for the public address instead of reading the WAN interface, and both
files still pass the clients' own parsers. The lab proof (a real NAT, a real check-ip
server) is tests/lab/test_e2e_ddns_nat.py.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from test_bad_input import errors, make_fleet, sub
from test_target_services import (
    GLOBALS,
    PROVIDERS,
    base_plan,
    ddclient_real,
    ddns_plan,
    inadyn_check,
    inadyn_live,
    write,
)

from generator.pipeline import load_plans
from generator.plan import CheckIpPlan, Plan
from generator.resolve import DEFAULT_CHECKIP
from generator.targets import ddclient, handover, inadyn

A = "sites/antwerp-02.yaml"  # dynamic WAN, inadyn
L = "sites/leuven-04.yaml"  # dynamic WAN, ddclient
LAB_CHECKIP = CheckIpPlan("192.0.2.130", 8081, "/checkip", False)


def web_plan(provider: str, client: str, checkip: CheckIpPlan = LAB_CHECKIP) -> Plan:
    return base_plan(ddns=dataclasses.replace(ddns_plan(provider, client), checkip=checkip))


def fleet_plan(tmp_path: Path, rel: str, old: str, new: str) -> Plan:
    root, _ = make_fleet(tmp_path, rel, sub(old, new))
    fleet, plans = load_plans(root)
    assert fleet.ok, [d.message for d in fleet.diagnostics if d.severity == "error"]
    site = Path(rel).stem
    return next(p for p in plans if p.site_id == site)


# ---------------------------------------------------------------- spec -> plan


def test_detect_web_without_checkip_uses_the_public_default(tmp_path: Path) -> None:
    plan = fleet_plan(
        tmp_path,
        A,
        "    password: env:POSNET_DDNS_ANTWERP\n",
        "    password: env:POSNET_DDNS_ANTWERP\n    detect: web\n",
    )
    assert plan.ddns is not None and plan.ddns.checkip == DEFAULT_CHECKIP
    assert DEFAULT_CHECKIP.url == "https://api.ipify.org/"
    text = inadyn.render(plan)["ddns/inadyn.conf"]
    assert 'checkip-server = "api.ipify.org"' in text and "checkip-ssl = true" in text
    assert "iface" not in text


def test_checkip_server_path_and_port_from_the_spec(tmp_path: Path) -> None:
    new = (
        "    password: vault:leuven_04_ddns\n    detect: web\n"
        "    checkip: {server: checkip.example.net, port: 8443, path: /ip}\n"
    )
    plan = fleet_plan(tmp_path, L, "    password: vault:leuven_04_ddns\n", new)
    text = ddclient.render(plan)["ddns/ddclient.conf"]
    assert "use=web\nweb=https://checkip.example.net:8443/ip\n" in text
    assert "use=if" not in text and "if=" not in text
    assert ddclient.check_ddclient_conf(text) == []


def test_detect_interface_stays_the_default(tmp_path: Path) -> None:
    plan = fleet_plan(tmp_path, A, "ip_mode: dynamic\n", "ip_mode: dynamic\n")
    assert plan.ddns is not None and plan.ddns.checkip is None
    assert 'iface = "wan0"' in inadyn.render(plan)["ddns/inadyn.conf"]


@pytest.mark.parametrize(
    ("rel", "old", "new", "path", "message"),
    [
        (
            A,
            "    password: env:POSNET_DDNS_ANTWERP\n",
            "    password: env:POSNET_DDNS_ANTWERP\n    checkip: {server: checkip.example.net}\n",
            "wan.ddns.checkip",
            "has no effect: the address is read from the interface unless detect is web",
        ),
        (
            L,
            "    password: vault:leuven_04_ddns\n",
            "    password: vault:leuven_04_ddns\n    detect: web\n"
            "    checkip: {server: checkip.example.net, tls: false}\n",
            "wan.ddns.checkip.tls",
            "ddclient fetches the check-ip URL over HTTPS (ssl=yes), so tls: false cannot work",
        ),
        (
            A,
            "    password: env:POSNET_DDNS_ANTWERP\n",
            "    password: env:POSNET_DDNS_ANTWERP\n    detect: web\n"
            "    checkip: {server: checkip.example.net, path: 'ip?x=1'}\n",
            "wan.ddns.checkip.path",
            "",
        ),
        (
            A,
            "    password: env:POSNET_DDNS_ANTWERP\n",
            "    password: env:POSNET_DDNS_ANTWERP\n    detect: web\n"
            "    checkip: {server: 'checkip.example.net\"#'}\n",
            "wan.ddns.checkip.server",
            "",
        ),
        (
            A,
            "    password: env:POSNET_DDNS_ANTWERP\n",
            "    password: env:POSNET_DDNS_ANTWERP\n    detect: router\n",
            "wan.ddns.detect",
            "",
        ),
    ],
    ids=["checkip-without-web", "ddclient-plain-http", "bad-path", "hostile-server", "bad-detect"],
)
def test_bad_detect_settings_are_located(
    tmp_path: Path, rel: str, old: str, new: str, path: str, message: str
) -> None:
    root, _ = make_fleet(tmp_path, rel, sub(old, new))
    mine = [d for d in errors(root) if d.path == path or d.path.startswith(path + ".")]
    assert mine, errors(root)
    assert message in mine[0].message
    assert mine[0].location.file.endswith(rel) and mine[0].location.line > 1


# ---------------------------------------------------------------- inadyn


@pytest.mark.realtool
@pytest.mark.parametrize("provider", PROVIDERS)
def test_inadyn_checkip_passes_check_config(provider: str, tmp_path: Path) -> None:
    text = inadyn.render(web_plan(provider, "inadyn"))["ddns/inadyn.conf"]
    assert 'checkip-server = "192.0.2.130:8081"' in text
    assert 'checkip-path = "/checkip"' in text and "checkip-ssl = false" in text
    assert not re.search(r"^\s*iface", text, re.MULTILINE)
    res = inadyn_check(write(tmp_path, "inadyn.conf", text))
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.realtool
def test_inadyn_live_cycle_asks_the_checkip_server(tmp_path: Path) -> None:
    """In a namespace with only `wan0`: inadyn connects to the check-ip server (which is
    unreachable there) instead of reading wan0's address."""
    log = inadyn_live(tmp_path, inadyn.render(web_plan("noip", "inadyn"))["ddns/inadyn.conf"])
    assert "Checking for IP# change, connecting to 192.0.2.130([192.0.2.130]:8081)" in log, log
    assert "querying interface" not in log and "203.0.113.7" not in log, log


# ---------------------------------------------------------------- ddclient


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ddclient_web_passes_own_checker(provider: str) -> None:
    text = ddclient.render(web_plan(provider, "ddclient", DEFAULT_CHECKIP))["ddns/ddclient.conf"]
    assert ddclient.check_ddclient_conf(text) == []
    opts = ddclient.parse_ddclient_conf(text).hosts[
        ddclient.host_name(ddns_plan(provider, "ddclient"))
    ]
    assert (opts["use"], opts["web"]) == ("web", "https://api.ipify.org/")
    assert "if" not in opts


def test_ddclient_checker_wants_a_web_url_with_use_web() -> None:
    text = ddclient.render(web_plan("noip", "ddclient", DEFAULT_CHECKIP))["ddns/ddclient.conf"]
    assert "host store.pos.example.com: web is missing" in ddclient.check_ddclient_conf(
        text.replace("web=https://api.ipify.org/\n", "")
    )
    broken = text.replace("web=https://api.ipify.org/", "web=ftp://api.ipify.org/")
    assert any("is not a check-ip URL" in p for p in ddclient.check_ddclient_conf(broken))


@pytest.mark.realtool
@pytest.mark.parametrize("provider", PROVIDERS)
def test_ddclient_reads_use_web(provider: str, tmp_path: Path) -> None:
    """The real ddclient 3.10 parses the file and fetches the check-ip URL (unreachable in
    the namespace), never reading wan0."""
    plan = web_plan(provider, "ddclient", CheckIpPlan("192.0.2.130", 8081, "/checkip", True))
    text = ddclient.render(plan)["ddns/ddclient.conf"]
    hosts, warnings, out = ddclient_real(tmp_path, text)
    host = ddclient.host_name(plan.ddns)  # type: ignore[arg-type]
    assert set(hosts) == {host, GLOBALS}, out
    assert (hosts[host]["use"], hosts[host]["web"]) == ("web", "https://192.0.2.130:8081/checkip")
    assert "get_ip: using web, https://192.0.2.130:8081/checkip reports" in out, out
    assert "203.0.113.7" not in out
    # Only the failed fetch (no route out of the namespace) is warned about.
    unexpected = [w for w in warnings if "IP address" not in w and "neither IPv4" not in w]
    assert unexpected == [], out


def test_handover_names_the_checkip_server(tmp_path: Path) -> None:
    new = '  fqdn: antwerp-02.pos.example.com\n  address: "192.168.1.2"\n'
    root, _ = make_fleet(tmp_path, A, sub("  fqdn: antwerp-02.pos.example.com\n", new))
    text = (
        (root / A)
        .read_text()
        .replace(
            "    password: env:POSNET_DDNS_ANTWERP\n",
            "    password: env:POSNET_DDNS_ANTWERP\n    detect: web\n",
        )
    )
    (root / A).write_text(text)
    _, plans = load_plans(root)
    plan = next(p for p in plans if p.site_id == "antwerp-02")
    sheet = handover.render(plan)["HANDOVER.md"]
    assert "| WAN address | 192.168.1.2 on `wan0` (behind NAT) |" in sheet
    assert "noip via inadyn asking `https://api.ipify.org/`: hostname" in sheet
