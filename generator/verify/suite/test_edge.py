"""The packaged testinfra suite: run by `posnet verify` against the edges of a build.

Every expectation comes from the host's inventory variables (rendered from the same
Plan as the configs), so the suite never drifts from what was rendered.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from generator.targets import firewall_backend

MARKER = "@@POSNET_SECRET_"


@pytest.fixture(scope="module")
def hv(host: Any) -> dict[str, Any]:
    variables: dict[str, Any] = host.ansible.get_variables()
    if "posnet_expectations" not in variables:
        if "posnet_proxy_servers" in variables:
            pytest.skip("not an edge: proxies are checked by the playbook and probes")
        pytest.fail("host has no posnet_expectations: is this a posnet inventory?")
    return variables


def _ruleset(host: Any, kind: str) -> str:
    # The command and the expected policies come from the firewall target's declaration.
    cmd = host.run(firewall_backend(kind)[1].activation.live_all)
    assert cmd.rc == 0, f"no active posnet ruleset: {cmd.stderr.strip()}"
    return str(cmd.stdout)


def test_firewall_loaded_default_drop(host: Any, hv: dict[str, Any]) -> None:
    kind = hv["posnet_firewall"]
    rules = _ruleset(host, kind)
    for policy in firewall_backend(kind)[1].activation.drop_policies:
        assert re.search(policy, rules, re.S), f"{kind}: no {policy!r} in the live ruleset"


def test_management_port_kept(host: Any, hv: dict[str, Any]) -> None:
    rules = _ruleset(host, hv["posnet_firewall"])
    port = str(hv["posnet_management_port"])
    assert re.search(rf"dport {port}\b|--dport {port}\b", rules), "management port rule missing"


def test_each_exposure_forwarded(host: Any, hv: dict[str, Any]) -> None:
    rules = _ruleset(host, hv["posnet_firewall"])
    for exp in hv["posnet_expectations"]["exposures"]:
        target = exp["target"]
        assert target in rules, f"{exp['id']}: no DNAT to {target}"


def test_files_installed(host: Any, hv: dict[str, Any]) -> None:
    problems = []
    for spec in hv["posnet_files"]:
        f = host.file(spec["dest"])
        if not f.exists:
            problems.append(f"{spec['dest']}: missing")
            continue
        if (f.user, f.group) != ("root", "root"):
            problems.append(f"{spec['dest']}: owned by {f.user}:{f.group}")
        if f.mode != int(spec["mode"], 8):
            problems.append(f"{spec['dest']}: mode {oct(f.mode)}, expected {spec['mode']}")
        if MARKER in f.content_string:
            problems.append(f"{spec['dest']}: secret marker left unfilled")
    assert hv["posnet_files"], "no posnet files for this host"
    assert not problems, problems


def test_dhcp_server_listening(host: Any, hv: dict[str, Any]) -> None:
    confs = [f["dest"] for f in hv["posnet_files"] if f["component"] == "dhcp"]
    if not confs:
        pytest.skip("no DHCP on this store")
    # without a pool or a reservation dnsmasq serves DNS only (no dhcp-range): nothing
    # to listen for, as the installed file says
    if not any("\ndhcp-range=" in host.file(c).content_string for c in confs):
        pytest.skip("no DHCP range on this store: dnsmasq serves DNS only")
    # dnsmasq with bind-interfaces listens on 0.0.0.0%<lan>:67, which testinfra's
    # socket parser does not read; ask ss directly.
    listening = host.run("ss -Hlun 'sport = :67'")
    assert listening.rc == 0 and ":67" in listening.stdout, "no DHCP server on udp/67"
    lan = hv["posnet_lan_interface"]
    assert f"%{lan}:67" in listening.stdout or "0.0.0.0:67" in listening.stdout
