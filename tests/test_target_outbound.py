"""DNS for the LAN and egress enforced by domain at the edge (issue 9).

The edge's dnsmasq resolves for the LAN and adds each answer for a flow's domains to
that flow's firewall set; the firewall lets the flow's hosts reach only that set. These
tests check the rendered files with the real tools (dnsmasq --test, nft, ipset,
iptables-restore) and that both files name the same sets; the lab proves the traffic
(tests/lab/test_e2e_outbound.py).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import DEMO, require_tool

from generator.analyze import analyze
from generator.plan import Plan
from generator.targets import dnsmasq, firewall, handover, iptables, nftables


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def conf(plan: Plan) -> str:
    return dnsmasq.render(plan)["dhcp/dnsmasq.conf"]


def set_lines(text: str, kind: str) -> dict[str, list[str]]:
    """{set name: [domains]} from the `nftset=`/`ipset=` lines of a dnsmasq config."""
    out = {}
    for m in re.finditer(rf"^{kind}=/(.+)/([^/\n]+)$", text, re.M):
        out[m[2].split("#")[-1]] = m[1].split("/")
    return out


def chain(nft: str, name: str) -> str:
    return nft.split(f"chain {name} {{", 1)[1].split("\n\t}", 1)[0]


@pytest.fixture
def restricted(demo_plans: dict[str, Plan]) -> Plan:
    plan = demo_plans["ostend-05"]
    assert plan.egress_policy == "restricted" and plan.lan.edge_dns
    return plan


def test_every_flow_with_domains_has_one_set_in_both_files(restricted: Plan) -> None:
    text = conf(restricted)
    nft = nftables.render_nftables(restricted)
    sets = set_lines(text, "nftset")
    flows = [f for f in restricted.egress if f.domains]
    assert len(sets) == len(flows) >= 2
    for f in flows:
        name = firewall.dns_set_name(f.id)
        # Wildcards become the parent domain (dnsmasq matches everything below it).
        assert sets[name] == sorted({d.removeprefix("*.") for d in f.domains})
        assert f"set {name} {{" in nft
        assert f"ip daddr @{name} tcp dport 443" in nft
        assert f"nftset=/{'/'.join(sets[name])}/4#inet#posnet#{name}" in text
    assert "firebaseio.com" in sets["dns_openpos_outbound"]
    assert "*.firebaseio.com" not in text


def test_open_egress_has_no_sets(restricted: Plan) -> None:
    plan = dataclasses.replace(restricted, egress_policy="open")
    assert "nftset=" not in conf(plan) and "ipset=" not in conf(plan)
    assert "set dns_" not in nftables.render_nftables(plan)
    assert iptables.PATH_IPSETS not in iptables.render_rules(plan)


@pytest.mark.realtool
def test_dnsmasq_accepts_sets_and_upstreams(restricted: Plan, tmp_path: Path) -> None:
    exe = require_tool("dnsmasq")
    lan = dataclasses.replace(restricted.lan, dns_upstreams=("192.0.2.53", "192.0.2.54"))
    for plan in (
        restricted,
        dataclasses.replace(restricted, firewall="iptables"),
        dataclasses.replace(restricted, lan=lan),
    ):
        text = conf(plan)
        res = run(exe, "--test", "-C", str(write(tmp_path, "d.conf", text)))
        assert res.returncode == 0, res.stderr + text
    text = conf(dataclasses.replace(restricted, lan=lan))
    assert "no-resolv\nserver=192.0.2.53\nserver=192.0.2.54\n" in text
    assert "no-resolv" not in conf(restricted), "default: the edge's own resolv.conf"


@pytest.mark.realtool
def test_nft_set_takes_what_dnsmasq_adds(restricted: Plan, tmp_path: Path) -> None:
    """dnsmasq runs `add element inet posnet SET { ADDR }`; the rendered set accepts it."""
    nft = require_tool("nft")
    f = write(tmp_path, "p.nft", nftables.render_nftables(restricted))
    script = (
        f"{nft} -f {f} && {nft} add element inet posnet dns_openpos_outbound '{{ 192.0.2.131 }}'"
        f" && {nft} list set inet posnet dns_openpos_outbound"
    )
    res = run("unshare", "-rn", "sh", "-c", script)
    assert res.returncode == 0, res.stderr
    assert "192.0.2.131" in res.stdout


@pytest.mark.realtool
def test_iptables_sets_come_first(restricted: Plan, tmp_path: Path) -> None:
    """rules.v4 names the ipsets dnsmasq fills; without the ipsets file it cannot load."""
    plan = dataclasses.replace(restricted, firewall="iptables")
    files = iptables.render_rules(plan)
    names = set(set_lines(conf(plan), "ipset"))
    assert names and names == set(
        re.findall(r"^create (\S+) hash:ip", files[iptables.PATH_IPSETS], re.M)
    )
    dests = [a.source for a in iptables.TARGET.artifacts(plan)]
    assert dests[0] == iptables.PATH_IPSETS, "the sets must exist before rules.v4 is tested"
    ipset, restore = require_tool("ipset"), require_tool("iptables-restore")
    sets = write(tmp_path, "ipsets", files[iptables.PATH_IPSETS])
    v4 = write(tmp_path, "rules.v4", files[iptables.PATH_V4])
    ok = run("unshare", "-rn", "sh", "-c", f"{ipset} restore -exist -file {sets} && {restore} {v4}")
    assert ok.returncode == 0, ok.stderr
    missing = run("unshare", "-rn", restore, "--test", str(v4))
    assert missing.returncode != 0 and "doesn't exist" in missing.stderr


def test_store_dns_servers_turn_edge_dns_off(restricted: Plan) -> None:
    lan = dataclasses.replace(restricted.lan, dns_servers=("192.0.2.53",))
    plan = dataclasses.replace(restricted, lan=lan)
    text = conf(plan)
    assert "port=0" in text.splitlines()
    assert "dhcp-option=option:dns-server,192.0.2.53" in text
    assert "nftset=" not in text
    nft = nftables.render_nftables(plan)
    assert "dport 53" not in chain(nft, "input"), "nothing listens"
    forward = chain(nft, "forward")
    assert "ip daddr 192.0.2.53 udp dport 53" in forward and "@dns_" not in forward
    assert "lan: dns to the edge" in nftables.render_nftables(restricted)


def test_set_names_fit_ipset() -> None:
    long = firewall.dns_set_name("a-partner-with-a-very-long-identifier-outbound-2")
    assert len(long) <= 31 and long.startswith("dns_a_partner")
    assert long != firewall.dns_set_name("a-partner-with-a-very-long-identifier-outbound-3")


def test_upstreams_with_servers_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    site = root / "sites" / "ostend-05.yaml"
    both = '  dns: {upstreams: ["192.0.2.1"], servers: ["192.0.2.2"]}\n'
    gateway = '  gateway: "198.51.100.1"\n'
    site.write_text(site.read_text().replace(gateway, gateway + both))
    diags = [d for d in analyze(root).diagnostics if d.severity == "error"]
    assert [d.path for d in diags] == ["lan.dns.upstreams"], diags
    assert diags[0].location is not None and diags[0].location.line == 17


def test_handover_states_the_limits(restricted: Plan) -> None:
    sheet = handover.render(restricted)["HANDOVER.md"]
    assert "hard-coded IP address is blocked" in sheet
    assert f"within {dnsmasq.MAX_CLIENT_TTL} s" in sheet
    assert f"max-ttl={dnsmasq.MAX_CLIENT_TTL}" in conf(restricted)
    lan = dataclasses.replace(restricted.lan, dns_servers=("192.0.2.53",))
    other = handover.render(dataclasses.replace(restricted, lan=lan))["HANDOVER.md"]
    assert "by host and port only" in other and "192.0.2.53" in other
    assert "hard-coded IP" not in other
    opened = handover.render(dataclasses.replace(restricted, egress_policy="open"))
    assert "restricted" not in opened["HANDOVER.md"].split("### Outbound")[1].split("###")[0]
