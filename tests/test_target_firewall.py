"""Edge firewall targets (nftables, iptables-restore) checked by the real programs.

Every demo store is rendered in BOTH formats (whatever its `firewall:` says), then
checked in a throwaway network namespace (`unshare -rn`): nothing on the machine
changes. Every real check also shows that a broken copy is rejected.
Packet-level behaviour (partner in, stranger out) is the lab's job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import DEMO, require_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.plan import (
    EgressFlow,
    Exposure,
    LanPlan,
    ManagementPlan,
    Plan,
    WanPlan,
)
from generator.targets import firewall, iptables, nftables

SITES = sorted(p.stem for p in (DEMO / "sites").glob("*.yaml"))
GENT_DNAT = (
    'iifname "wan0" ip saddr @src_deliverect-pos1-api ip daddr 203.0.113.10 tcp dport 18443'
    ' counter dnat ip to 198.51.100.140:8443 comment "dnat deliverect-pos1-api partner deliverect"'
)


# --- helpers -------------------------------------------------------------------------


def run(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a sandboxed command; the timeout guarantees nothing lingers."""
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=check)


def nft_check(path: Path) -> subprocess.CompletedProcess[str]:
    return run("unshare", "-rn", require_tool("nft"), "-c", "-f", str(path))


def ipsets_first(files: dict[str, str], tmp: Path) -> str:
    """Shell prefix creating the DNS sets rules.v4 names (as the activation does)."""
    if iptables.PATH_IPSETS not in files:
        return ""
    f = write(tmp, "ipsets", files[iptables.PATH_IPSETS])
    return f"{require_tool('ipset')} restore -exist -file {f} && "


def ipt(files: dict[str, str], tmp: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """An iptables tool in a scratch namespace, after the store's DNS sets exist."""
    return run("unshare", "-rn", "sh", "-c", ipsets_first(files, tmp) + " ".join(argv))


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def nft_objects(ruleset: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [o[kind] for o in ruleset["nftables"] if kind in o]


def posnet_rules(ruleset: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in nft_objects(ruleset, "rule") if r["table"] == "posnet"]


def plan_of(demo_plans: dict[str, Plan], site: str) -> Plan:
    return demo_plans[site]


def input_lines(text: str, chain: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"-A {chain} ")]


# --- the registry contract ----------------------------------------------------------


def test_each_target_renders_only_for_its_kind(demo_plans: dict[str, Plan]) -> None:
    for plan in demo_plans.values():
        nft_files = nftables.render(plan)
        ipt_files = iptables.render(plan)
        if plan.firewall == "nftables":
            assert set(nft_files) == {"firewall/nftables.nft"}
            assert ipt_files == {}
        else:
            assert nft_files == {}
            assert set(ipt_files) == {"firewall/rules.v4", "firewall/rules.v6"}
    kinds = {p.firewall for p in demo_plans.values()}
    assert kinds == {"nftables", "iptables"}, "the demo fleet should use both kinds"


@pytest.mark.parametrize("site", SITES)
def test_headers_determinism_and_secret_style(demo_plans: dict[str, Plan], site: str) -> None:
    plan = plan_of(demo_plans, site)
    files = {"nft": nftables.render_nftables(plan), **iptables.render_rules(plan)}
    again = {"nft": nftables.render_nftables(plan), **iptables.render_rules(plan)}
    assert files == again
    for text in files.values():
        first = text.splitlines()[0]
        assert first.startswith(f"# posnet: store {site} ")
        assert "generated, do not edit" in first
        assert text.endswith("\n") and not text.endswith("\n\n")
        assert "@@POSNET_SECRET" not in text
        assert "/work/" not in text and "/tmp/" not in text
    assert nftables.SECRET_STYLE == iptables.SECRET_STYLE == "raw"


# --- content ---------------------------------------------------------------------------


def test_gent_nft_content(demo_plans: dict[str, Plan]) -> None:
    text = nftables.render_nftables(demo_plans["gent-01"])
    assert GENT_DNAT in text
    assert "elements = { 198.51.100.0/28, 203.0.113.20/32 }" in text
    # The reload idiom, before the definition.
    head = text.index("table inet posnet\ndelete table inet posnet\n")
    assert head < text.index("table inet posnet {")
    input_chain = text.split("chain input {")[1].split("}")[0].splitlines()
    assert "policy drop;" in input_chain[1]
    # Management is the first rule: nothing before it can drop the MSP.
    assert input_chain[2].strip().startswith("ip saddr 192.0.2.64/28 tcp dport 22 ")
    assert "chain forward {\n\t\ttype filter hook forward priority filter; policy drop;" in text
    assert "type filter hook output priority filter; policy accept;" in text
    assert 'oifname "wan0" ip saddr 198.51.100.128/26 counter masquerade' in text
    assert (
        'iifname "wan0" ip saddr @src_deliverect-pos1-api ip daddr 198.51.100.140 tcp dport 8443'
        ' ct status dnat counter accept comment "exposure deliverect-pos1-api partner deliverect"'
    ) in text
    assert 'log prefix "posnet-drop input: "' in text
    assert 'log prefix "posnet-drop forward: "' in text
    assert " iif " not in text and " oif " not in text, "interfaces must match by name"


def test_gent_iptables_content(demo_plans: dict[str, Plan]) -> None:
    files = iptables.render_rules(demo_plans["gent-01"])
    v4, v6 = files["firewall/rules.v4"], files["firewall/rules.v6"]
    assert "Without --noflush" in v4 and "REPLACES the whole" in v4
    dnat = input_lines(v4, "PREROUTING")
    assert dnat == [
        f"-A PREROUTING -i wan0 -s {src} -d 203.0.113.10 -p tcp -m tcp --dport 18443"
        ' -m comment --comment "dnat deliverect-pos1-api partner deliverect"'
        " -j DNAT --to-destination 198.51.100.140:8443"
        for src in ("198.51.100.0/28", "203.0.113.20/32")
    ]
    assert input_lines(v4, "INPUT")[0] == (
        '-A INPUT -s 192.0.2.64/28 -p tcp -m tcp --dport 22 -m comment --comment "management (msp)"'
        " -j ACCEPT"
    )
    assert ":INPUT DROP [0:0]" in v4 and ":FORWARD DROP [0:0]" in v4
    assert ":OUTPUT ACCEPT [0:0]" in v4
    assert "-A POSTROUTING -o wan0 -s 198.51.100.128/26" in v4 and "-j MASQUERADE" in v4
    fwd = [x for x in input_lines(v4, "FORWARD") if "exposure deliverect-pos1-api" in x]
    assert len(fwd) == 2 and all("--ctstate DNAT" in x and "-d 198.51.100.140" in x for x in fwd)
    # IPv6: default drop, no NAT table, no IPv4 address, neighbour discovery kept.
    assert ":INPUT DROP [0:0]" in v6 and ":FORWARD DROP [0:0]" in v6
    assert "*nat" not in v6 and "192.0.2.64" not in v6 and "198.51.100" not in v6
    assert "--icmpv6-type neighbour-solicitation" in v6
    assert input_lines(v6, "FORWARD")[-1].endswith("-j DROP")


@pytest.mark.parametrize("site", ["antwerp-02", "leuven-04"])
def test_dynamic_wan_has_no_daddr_in_dnat(demo_plans: dict[str, Plan], site: str) -> None:
    plan = demo_plans[site]
    assert plan.wan.public_ip is None
    pre = firewall.build(plan).chain("prerouting").rules
    assert pre and all(r.match.daddr is None for r in pre)
    text = nftables.render_nftables(plan)
    dnat = [x for x in text.splitlines() if "dnat ip to" in x]
    assert dnat and all("daddr" not in x for x in dnat)
    v4 = iptables.render_rules(plan)["firewall/rules.v4"]
    assert all(" -d " not in x for x in input_lines(v4, "PREROUTING"))


def test_exposure_without_sources_has_no_saddr(demo_plans: dict[str, Plan]) -> None:
    plan = demo_plans["gent-01"]
    open_exp = dataclasses.replace(plan.exposures[0], sources=())
    plan = dataclasses.replace(plan, exposures=(open_exp,))
    text = nftables.render_nftables(plan)
    assert "set src_" not in text
    assert (
        'iifname "wan0" ip daddr 203.0.113.10 tcp dport 18443 counter'
        " dnat ip to 198.51.100.140:8443"
    ) in text
    v4 = iptables.render_rules(plan)["firewall/rules.v4"]
    assert (
        len(input_lines(v4, "PREROUTING")) == 1 and " -s " not in input_lines(v4, "PREROUTING")[0]
    )


def test_egress_open_vs_restricted(demo_plans: dict[str, Plan]) -> None:
    """Restricted egress by source, port and DNS set; the LAN may not resolve outside."""
    restricted = demo_plans["ostend-05"]
    assert restricted.egress_policy == "restricted"
    plan = dataclasses.replace(restricted, egress_policy="open")
    text = nftables.render_nftables(plan)
    assert 'iifname "br-lan" oifname "wan0" ip saddr 198.51.100.0/26 counter accept' in text

    assert "set dns_" not in text
    text = nftables.render_nftables(restricted)
    assert "egress open:" not in text
    assert (
        'iifname "br-lan" oifname "wan0" ip saddr 198.51.100.11 ip daddr @dns_deliverect_tunnel'
        ' tcp dport 443 counter accept comment "egress deliverect-tunnel partner deliverect"'
    ) in text.replace("198.51.100.11/32", "198.51.100.11")
    assert (
        "ip saddr { 198.51.100.12/32, 198.51.100.21/32 } ip daddr @dns_openpos_outbound"
        " tcp dport 443" in text
    )
    assert "dport 53" not in nft_chain(text, "forward"), "the LAN may resolve only at the edge"
    v4 = iptables.render_rules(restricted)["firewall/rules.v4"]
    egress = [x for x in input_lines(v4, "FORWARD") if "-o wan0" in x]
    # 3 source lines for the two flows, each limited to its DNS set; no DNS out.
    assert len(egress) == 3 and all("--dport 443" in x for x in egress)
    assert all("-m set --match-set dns_" in x and x.count(" dst ") == 1 for x in egress)


def nft_chain(text: str, name: str) -> str:
    return text.split(f"chain {name} {{", 1)[1].split("}", 1)[0]


def test_drop_logging_is_optional(demo_plans: dict[str, Plan]) -> None:
    plan = demo_plans["gent-01"]
    text = nftables.render_nftables(plan, log_drops=False)
    assert "log" not in text.replace("posnet", "")
    assert text.count('counter drop comment "default drop"') == 2
    v4 = iptables.render_rules(plan, log_drops=False)["firewall/rules.v4"]
    assert "-j LOG" not in v4 and "posnet-drop" not in v4


@pytest.mark.parametrize("site", SITES)
def test_every_exposure_is_in_both_formats(demo_plans: dict[str, Plan], site: str) -> None:
    plan = demo_plans[site]
    nft = nftables.render_nftables(plan)
    v4 = iptables.render_rules(plan)["firewall/rules.v4"]
    for e in plan.exposures:
        for note in (f"dnat {e.id} partner {e.partner}", f"exposure {e.id} partner {e.partner}"):
            assert nft.count(f'"{note}"') == 1
            assert v4.count(f'"{note}"') == max(1, len(e.sources))


def test_model_rejects_what_a_format_could_not_say() -> None:
    with pytest.raises(ValueError, match="family"):
        firewall.Match("ipv6", saddr=firewall.AddrSet("ipv4", ("192.0.2.0/24",)))
    with pytest.raises(ValueError, match="ports need"):
        firewall.Match("ipv4", proto="icmp", dports=(1,))
    with pytest.raises(ValueError, match="IPv4 only"):
        firewall.Rule(firewall.Match("ipv6"), firewall.Masquerade())
    assert firewall.comment('a "quoted"\nline') == "a _quoted__line"
    assert firewall.collapse(["192.0.2.0/25", "192.0.2.128/25", "192.0.2.5"], "ipv4") == (
        "192.0.2.0/24",
    )


# --- real checks: nftables -------------------------------------------------------------

NFT_BREAKAGES = {
    "syntax": ("policy drop;", "policy dorp;"),
    "missing set": ("ip saddr 192.0.2.64/28", "ip saddr @no_such_set"),
}


@pytest.mark.realtool
@pytest.mark.parametrize("site", SITES)
def test_nft_check_accepts_and_rejects_broken(
    demo_plans: dict[str, Plan], site: str, tmp_path: Path
) -> None:
    text = nftables.render_nftables(demo_plans[site])
    good = nft_check(write(tmp_path, "good.nft", text))
    assert good.returncode == 0, good.stderr
    for name, (old, new) in NFT_BREAKAGES.items():
        assert old in text
        bad = nft_check(write(tmp_path, f"bad-{name}.nft", text.replace(old, new, 1)))
        assert bad.returncode != 0, f"nft -c accepted a broken file ({name})"


@pytest.mark.realtool
@pytest.mark.parametrize("site", SITES)
def test_nft_loads_twice_without_doubling_or_touching_others(
    demo_plans: dict[str, Plan], site: str, tmp_path: Path
) -> None:
    """Load, reload, then try a broken file: one posnet table, same rules, foreign kept."""
    nft = require_tool("nft")
    plan = demo_plans[site]
    text = nftables.render_nftables(plan)
    good = write(tmp_path, "posnet.nft", text)
    broken = write(tmp_path, "broken.nft", text.replace("policy drop;", "policy dorp;", 1))
    script = f"""
        set -e
        {nft} add table ip other
        {nft} add chain ip other keep
        {nft} add rule ip other keep counter comment '"foreign"'
        {nft} -f {good} && {nft} -j list ruleset > {tmp_path}/once.json
        {nft} -f {good} && {nft} -j list ruleset > {tmp_path}/twice.json
        if {nft} -f {broken} 2>/dev/null; then echo broken-loaded; exit 3; fi
        {nft} -j list ruleset > {tmp_path}/after-broken.json
    """
    res = run("unshare", "-rn", "sh", "-c", script)
    assert res.returncode == 0, res.stdout + res.stderr
    once, twice, after = (
        json.loads((tmp_path / f"{n}.json").read_text()) for n in ("once", "twice", "after-broken")
    )
    expected = firewall.rule_count(firewall.build(plan))
    for ruleset in (once, twice, after):
        tables = [(t["family"], t["name"]) for t in nft_objects(ruleset, "table")]
        assert tables.count(("inet", "posnet")) == 1
        assert ("ip", "other") in tables
        assert len(posnet_rules(ruleset)) == expected
        foreign = [r for r in nft_objects(ruleset, "rule") if r["table"] == "other"]
        assert [r.get("comment") for r in foreign] == ["foreign"]
        policies = {c["name"]: c.get("policy") for c in nft_objects(ruleset, "chain")}
        assert policies["input"] == policies["forward"] == "drop"
    assert posnet_rules(once) == posnet_rules(twice) == posnet_rules(after)


@pytest.mark.realtool
def test_gent_loaded_ruleset_has_the_partner_set_and_dnat(
    demo_plans: dict[str, Plan], tmp_path: Path
) -> None:
    """Read back what the kernel holds, not what we wrote."""
    nft = require_tool("nft")
    path = write(tmp_path, "gent.nft", nftables.render_nftables(demo_plans["gent-01"]))
    res = run("unshare", "-rn", "sh", "-c", f"{nft} -f {path} && {nft} -j list ruleset")
    assert res.returncode == 0, res.stderr
    ruleset = json.loads(res.stdout)
    (s,) = [s for s in nft_objects(ruleset, "set") if s["name"] == "src_deliverect-pos1-api"]
    assert s["elem"] == [{"prefix": {"addr": "198.51.100.0", "len": 28}}, "203.0.113.20"]
    (pre,) = [r for r in posnet_rules(ruleset) if r["chain"] == "prerouting"]
    dnat = [x["dnat"] for x in pre["expr"] if "dnat" in x]
    assert dnat == [{"family": "ip", "addr": "198.51.100.140", "port": 8443}]
    assert {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                      "right": 18443}} in pre["expr"]  # fmt: skip


@pytest.mark.realtool
def test_long_exposure_ids_get_bounded_unique_set_names(
    demo_plans: dict[str, Plan], tmp_path: Path
) -> None:
    """Spec ids may be 63 characters each, so `src_<partner>-<host>-<service>` can pass
    the nft name limit; such names are shortened with a digest (render used to raise),
    stay distinct and stable, and a name that fits is kept as it is."""
    plan = demo_plans["gent-01"]
    (e,) = plan.exposures
    long_a = "p" * 63 + "-" + "h" * 63 + "-" + "s" * 60 + "a"
    long_b = "p" * 63 + "-" + "h" * 63 + "-" + "s" * 60 + "b"
    fits = "f" * (128 - len("src_"))  # posnet's cap (nft itself takes 255 bytes)
    ids = (long_a, long_b, long_a, fits)  # long_a twice: the second gets a suffix too
    exposures = tuple(
        dataclasses.replace(e, id=i, public_port=20000 + n) for n, i in enumerate(ids)
    )
    plan = dataclasses.replace(plan, exposures=exposures)
    text = nftables.render_nftables(plan)
    assert text == nftables.render_nftables(plan)
    names = [s.name or "" for s in firewall.build(plan).sets]
    assert len(set(names)) == 4
    assert all(len(n) <= 128 for n in names)
    assert names[3] == f"src_{fits}"
    assert names[0].startswith("src_ppp") and names[0] != names[1]
    nft = require_tool("nft")
    path = write(tmp_path, "long.nft", text)
    assert nft_check(path).returncode == 0
    res = run("unshare", "-rn", "sh", "-c", f"{nft} -f {path} && {nft} -j list ruleset")
    assert res.returncode == 0, res.stderr
    loaded = {s["name"] for s in nft_objects(json.loads(res.stdout), "set")}
    assert set(names) <= loaded
    # The DNS sets shorten the same way (ipset's 31 characters), as before.
    digest = hashlib.sha256(b"x" * 40).hexdigest()[:8]
    assert firewall.dns_set_name("x" * 40) == "dns_" + "x" * 18 + "_" + digest


# --- real checks: iptables -------------------------------------------------------------

IPT_BREAKAGES = {
    "bad port": ("--dport 22 ", "--dport 99999 "),
    "no commit": ("COMMIT\n", "\n"),
}


@pytest.mark.realtool
@pytest.mark.parametrize("site", SITES)
def test_iptables_restore_test_accepts_and_rejects_broken(
    demo_plans: dict[str, Plan], site: str, tmp_path: Path
) -> None:
    files = iptables.render_rules(demo_plans[site])
    for path, tool, breakages in (
        ("firewall/rules.v4", "iptables-restore", IPT_BREAKAGES),
        ("firewall/rules.v6", "ip6tables-restore", {"bad type": ("neighbour-", "nope-")}),
    ):
        exe = require_tool(tool)
        text = files[path]
        good = ipt(files, tmp_path, exe, "--test", str(write(tmp_path, "good", text)))
        assert good.returncode == 0, good.stderr
        for name, (old, new) in breakages.items():
            assert old in text
            bad_file = write(tmp_path, "bad", text.replace(old, new, 1))
            bad = ipt(files, tmp_path, exe, "--test", str(bad_file))
            assert bad.returncode != 0, f"{tool} --test accepted a broken file ({name})"


@pytest.mark.realtool
@pytest.mark.parametrize("site", SITES)
def test_iptables_loads_twice_and_keeps_other_tables(
    demo_plans: dict[str, Plan], site: str, tmp_path: Path
) -> None:
    """A real load (catches what --test misses, e.g. unknown targets) repeated twice."""
    files = iptables.render_rules(demo_plans[site])
    for path, fam in (("firewall/rules.v4", "iptables"), ("firewall/rules.v6", "ip6tables")):
        restore, save, cmd = (require_tool(f"{fam}{x}") for x in ("-restore", "-save", ""))
        text = files[path]
        f = write(tmp_path, fam, text)
        script = f"""
            set -e
            {ipsets_first(files, tmp_path)} true
            {cmd} -t mangle -A PREROUTING -m comment --comment foreign -j ACCEPT
            {restore} {f}
            {restore} {f}
            {save}
        """
        res = run("unshare", "-rn", "sh", "-c", script)
        assert res.returncode == 0, res.stderr
        saved = res.stdout
        wrote = [x for x in text.splitlines() if x.startswith("-A ")]
        loaded = [x for x in saved.splitlines() if x.startswith("-A ")]
        assert len(loaded) == len(wrote) + 1, "rules doubled or lost"
        assert "-A PREROUTING -m comment --comment foreign -j ACCEPT" in loaded
        assert ":INPUT DROP" in saved and ":FORWARD DROP" in saved


@pytest.mark.realtool
def test_reloading_the_dns_ipsets_empties_them(demo_plans: dict[str, Plan], tmp_path: Path) -> None:
    """The README and the handover promise that an address dnsmasq once answered stays
    allowed only until the firewall is reloaded. The bad state: a member in a DNS set
    (added as dnsmasq adds it); loading the sets again must remove it (an audit found
    the ipset file only created the sets, so members survived every apply)."""
    plan = replace(demo_plans["ostend-05"], firewall="iptables")
    files = iptables.render_rules(plan)
    names = [
        ln.split()[1] for ln in files[iptables.PATH_IPSETS].splitlines() if ln[:7] == "create "
    ]
    assert names, "ostend-05 has restricted egress: it must get DNS sets"
    ipset = require_tool("ipset")
    f = write(tmp_path, "ipsets", files[iptables.PATH_IPSETS])
    script = f"""
        set -e
        {ipset} restore -exist -file {f}
        {ipset} add {names[0]} 192.0.2.9
        {ipset} list {names[0]} | grep -qx 192.0.2.9
        {ipset} restore -exist -file {f}
        {ipset} list {names[0]}
    """
    res = run("unshare", "-rn", "sh", "-c", script)
    assert res.returncode == 0, res.stderr
    members = res.stdout.split("Members:", 1)[1].split()
    assert members == [], f"a reload kept {members}"


# --- property test: random plans always load --------------------------------------------

_ident = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}[a-z0-9]\Z")
_port = st.integers(1, 65535)
_proto = st.sampled_from(["tcp", "udp"])


@st.composite
def _cidr(draw: st.DrawFn) -> str:
    addr = ipaddress.IPv4Address(draw(st.integers(0, 2**32 - 1)))
    return str(ipaddress.IPv4Network((addr, draw(st.integers(0, 32))), strict=False))


@st.composite
def _plans(draw: st.DrawFn) -> Plan:
    lan_net = ipaddress.IPv4Network("198.51.100.128/26")
    lan_ip = st.integers(2, 62).map(lambda i: str(lan_net[i]))
    exposures = tuple(
        Exposure(
            id=eid,
            partner=draw(_ident),
            pattern="direct",
            public_port=draw(_port),
            protocol=draw(_proto),
            target_host="pos",
            target_ip=draw(lan_ip),
            target_port=draw(_port),
            sources=tuple(draw(st.lists(_cidr(), max_size=5))),
            tls=False,
            http=False,
            health_path="/",
        )
        for eid in draw(st.lists(_ident, max_size=4, unique=True))
    )
    egress = tuple(
        EgressFlow(
            id=draw(_ident),
            partner=draw(_ident),
            purpose="test",
            sources=tuple(f"{ip}/32" for ip in draw(st.lists(lan_ip, max_size=3))),
            domains=("example.com",),
            ports=tuple(draw(st.lists(_port, min_size=1, max_size=20))),
            protocol=draw(_proto),
            ssl_inspection_exempt=False,
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    v6_mgmt = st.sampled_from(["2001:db8::/32", "2001:db8:1::/48", "2001:db8::1/128"])
    mgmt = tuple(draw(st.lists(st.one_of(_cidr(), v6_mgmt), min_size=1, max_size=3)))
    static = draw(st.booleans())
    return Plan(
        site_id="prop",
        site_name="Property",
        fleet="test",
        group=None,
        wan=WanPlan(
            mode="static" if static else "dynamic",
            isp="isp",
            interface=draw(st.sampled_from(["wan0", "eth0", "ppp0", "en.p1-s0"])),
            public_ip="203.0.113.77" if static else None,
            fqdn=None,
        ),
        lan=LanPlan(
            subnet=str(lan_net),
            gateway=str(lan_net[1]),
            interface="br-lan",
            prefixlen=26,
            netmask=str(lan_net.netmask),
            pool_start=None,
            pool_end=None,
            domain=None,
        ),
        management=ManagementPlan(port=draw(_port), allow_from=mgmt),
        firewall="nftables",
        egress_policy=draw(st.sampled_from(["open", "restricted"])),
        hosts=(),
        exposures=exposures,
        egress=egress,
    )


@pytest.mark.realtool
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=_plans(), log_drops=st.booleans())
def test_random_plans_pass_every_real_checker(plan: Plan, log_drops: bool, tmp_path: Path) -> None:
    nft_text = nftables.render_nftables(plan, log_drops=log_drops)
    nft_file = write(tmp_path, "p.nft", nft_text)
    res = nft_check(nft_file)
    assert res.returncode == 0, res.stderr + nft_text
    nft = require_tool("nft")
    load = f"{nft} -f {nft_file} && {nft} -f {nft_file} && {nft} -j list ruleset"
    res = run("unshare", "-rn", "sh", "-c", load)
    assert res.returncode == 0, res.stderr + nft_text
    expected = firewall.rule_count(firewall.build(plan, log_drops=log_drops))
    assert len(posnet_rules(json.loads(res.stdout))) == expected
    files = iptables.render_rules(plan, log_drops=log_drops)
    for path, tool in (
        ("firewall/rules.v4", "iptables-restore"),
        ("firewall/rules.v6", "ip6tables-restore"),
    ):
        f = write(tmp_path, tool, files[path])
        res = ipt(files, tmp_path, require_tool(tool), "--test", str(f))
        assert res.returncode == 0, res.stderr + files[path]
    v6_mgmt = [c for c in plan.management.allow_from if ":" in c]
    if v6_mgmt:
        assert f"--dport {plan.management.port} " in files["firewall/rules.v6"]
    v4_sources = [
        x.split(" -s ")[1].split()[0]
        for x in files["firewall/rules.v4"].splitlines()
        if " -s " in x
    ]
    assert all(":" not in s for s in v4_sources), "an IPv6 source reached rules.v4"
