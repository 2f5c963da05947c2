"""DHCP (dnsmasq), DDNS (inadyn, ddclient) and egress allow-list (squid) targets.

Every rendered file is read by the real program, sandboxed:
- `dnsmasq --test -C F`, plus a live DHCP exchange in a throwaway network namespace
  (`unshare -rn`, a veth pair: dnsmasq on one end, a raw-socket DHCP client of ours on
  the other) proving that a reserved MAC is offered its fixed address;
- `inadyn -n --check-config -f F` for every provider;
- ddclient has no check mode: our own 3.10 parser checks every file, and when ddclient
  is installed it reads the file for real inside `unshare -rn` (only lo and a veth with a
  documentation address: its update attempt cannot leave the namespace) and we compare
  ddclient's debug dump of the parsed settings and its warnings;
- `squid -k parse -f F` on a minimal squid.conf (temp pid/log paths, an ssl-bump port
  with a throwaway certificate) that includes the snippet before `http_access deny all`.
Each real check also shows that a deliberately broken copy is rejected.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.plan import (
    DdnsPlan,
    DhcpReservation,
    EgressFlow,
    HostPlan,
    LanPlan,
    ManagementPlan,
    Plan,
    SecretNeed,
    WanPlan,
)
from generator.targets import ddclient, dnsmasq, inadyn, squid

PROVIDERS = ("noip", "dyndns", "duckdns", "freedns", "cloudflare")
OPENPOS_DOMAINS = (
    ".firebaseio.com",
    ".googleapis.com",
    ".gstatic.com",
    "cdnassetsstorage.blob.core.windows.net",
    "devices.pos.prod.op3n.dev",
    "ingest.logging.tools.openpos.tech",
)
MARKER = "@@POSNET_SECRET_vault_test_ddns@@"


# --- helpers -------------------------------------------------------------------------


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command; the timeout guarantees nothing lingers."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def write(tmp: Path, name: str, text: str, mode: int = 0o600) -> Path:
    p = tmp / name
    p.write_text(text)
    p.chmod(mode)
    return p


def directives(text: str) -> list[str]:
    """Lines that are neither blank nor comments."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def base_plan(**changes: object) -> Plan:
    """A small valid store, built from Plan dataclasses directly (no spec, no resolver)."""
    plan = Plan(
        site_id="test-01",
        site_name="Test 01",
        fleet="test",
        group=None,
        wan=WanPlan("dynamic", "isp", "wan0", None, "test-01.pos.example.com"),
        lan=LanPlan(
            subnet="198.51.100.0/24",
            gateway="198.51.100.1",
            interface="br-lan",
            prefixlen=24,
            netmask="255.255.255.0",
            pool_start="198.51.100.100",
            pool_end="198.51.100.200",
            domain=None,
        ),
        management=ManagementPlan(22, ("192.0.2.0/24",)),
        firewall="nftables",
        egress_policy="open",
        hosts=(HostPlan("pos1", "pos", "linux", "198.51.100.10", "52:54:00:00:00:10", ()),),
        dhcp=(DhcpReservation("pos1", "52:54:00:00:00:10", "198.51.100.10"),),
    )
    return dataclasses.replace(plan, **changes)  # type: ignore[arg-type]


def ddns_plan(
    provider: str,
    client: str,
    hostname: str = "store.pos.example.com",
    username: str = "msp-user",
) -> DdnsPlan:
    return DdnsPlan(
        client=client,  # type: ignore[arg-type]
        provider=provider,  # type: ignore[arg-type]
        hostname=hostname,
        username=username,
        password=SecretNeed("vault:test_ddns", MARKER, "DDNS account password"),
        zone="example.com" if provider == "cloudflare" else None,
        interface="wan0",
    )


# --- dnsmasq -------------------------------------------------------------------------


def dnsmasq_test(path: Path) -> subprocess.CompletedProcess[str]:
    return run(require_tool("dnsmasq"), "--test", "-C", str(path))


@pytest.mark.realtool
def test_dnsmasq_every_demo_store_passes_dnsmasq_test(
    demo_plans: dict[str, Plan], tmp_path: Path
) -> None:
    for site, plan in demo_plans.items():
        files = dnsmasq.render(plan)
        assert set(files) == {"dhcp/dnsmasq.conf"}, site  # every demo store has a pool or MAC
        text = files["dhcp/dnsmasq.conf"]
        res = dnsmasq_test(write(tmp_path, f"{site}.conf", text))
        assert res.returncode == 0, (site, res.stderr)
        assert "syntax check OK" in res.stderr + res.stdout
        lines = text.splitlines()
        assert lines[0].startswith(f"# posnet {site}:") and "generated, do not edit" in lines[0]
        for needed in ("interface=br-lan", "bind-interfaces", "dhcp-authoritative"):
            assert needed in lines, (site, needed)
        # The edge serves DNS to the LAN (no demo store names other servers) and says so.
        assert "port=0" not in lines
        assert f"dhcp-option=option:router,{plan.lan.gateway}" in lines
        assert f"dhcp-option=option:dns-server,{plan.lan.gateway}" in lines
        for host in plan.hosts:
            if host.mac:
                assert f"dhcp-host={host.mac},{host.ip},{host.name}" in lines, (site, host)
            else:
                assert not any(host.ip in ln and "dhcp-host" in ln for ln in lines)


def test_dnsmasq_range_forms(demo_plans: dict[str, Plan]) -> None:
    pool = dnsmasq.render(demo_plans["antwerp-02"])["dhcp/dnsmasq.conf"]
    assert "dhcp-range=198.51.100.100,198.51.100.120,255.255.255.128,12h" in pool
    # mechelen-hq has reservations but no pool: a static range makes them work
    static = dnsmasq.render(demo_plans["mechelen-hq"])["dhcp/dnsmasq.conf"]
    assert "dhcp-range=192.0.2.128,static,255.255.255.192,12h" in static
    assert "dhcp-host=52:54:00:00:20:30,192.0.2.130,central-proxy" in static


def test_dnsmasq_nothing_without_pool_reservation_or_dns() -> None:
    lan = dataclasses.replace(
        base_plan().lan, pool_start=None, pool_end=None, dns_servers=("192.0.2.53",)
    )
    assert dnsmasq.render(base_plan(lan=lan, dhcp=())) == {}


def test_dnsmasq_dns_only_without_pool_or_reservation() -> None:
    """The edge still resolves for the LAN when nothing needs DHCP."""
    lan = dataclasses.replace(base_plan().lan, pool_start=None, pool_end=None)
    text = dnsmasq.render(base_plan(lan=lan, dhcp=()))["dhcp/dnsmasq.conf"]
    assert "port=0" not in text and "dhcp-range" not in text and "cache-size=0" in text


@pytest.mark.realtool
def test_dnsmasq_rejects_a_broken_copy(demo_plans: dict[str, Plan], tmp_path: Path) -> None:
    text = dnsmasq.render(demo_plans["ostend-05"])["dhcp/dnsmasq.conf"]
    assert dnsmasq_test(write(tmp_path, "good.conf", text)).returncode == 0
    for broken in (
        text.replace("dhcp-host=", "dhcp-hots=", 1),
        text.replace("dhcp-range=198.51.100.40", "dhcp-range=198.51.100.400", 1),
        text.replace(",12h", ",12 hours", 1),
    ):
        res = dnsmasq_test(write(tmp_path, "bad.conf", broken))
        assert res.returncode != 0, broken


# The live DHCP exchange. `netns_dhcp_session` runs INSIDE `unshare -rn` (this file is
# executed as a script there): it makes a veth pair, starts dnsmasq on one end and sends
# a DHCPDISCOVER per MAC from the other end with a raw AF_PACKET socket (the client end
# has no address, exactly like a booting POS), then stops dnsmasq.


def _checksum(data: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def dhcp_discover_frame(mac: str, xid: int) -> bytes:
    """Ethernet + IPv4 + UDP + BOOTP DHCPDISCOVER, 0.0.0.0:68 -> 255.255.255.255:67."""
    hw = bytes.fromhex(mac.replace(":", ""))
    options = bytes([53, 1, 1, 55, 3, 1, 3, 15, 255])
    bootp = (
        struct.pack("!BBBBIHH", 1, 1, 6, 0, xid, 0, 0x8000)
        + bytes(16)
        + hw
        + bytes(10 + 64 + 128)
        + b"\x63\x82\x53\x63"
        + options
    )
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4), b"\xff" * 4
    )
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return b"\xff" * 6 + hw + b"\x08\x00" + header + udp


def parse_dhcp_reply(frame: bytes, xid: int) -> dict[str, str] | None:
    """yiaddr and a few options of a BOOTREPLY for `xid`, or None for anything else."""
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ip_len = (frame[14] & 0x0F) * 4
    udp = 14 + ip_len
    if struct.unpack("!H", frame[udp + 2 : udp + 4])[0] != 68:
        return None
    bootp = frame[udp + 8 :]
    if bootp[0] != 2 or struct.unpack("!I", bootp[4:8])[0] != xid:
        return None
    reply = {"yiaddr": socket.inet_ntoa(bootp[16:20])}
    opts, i = bootp[240:], 0
    while i < len(opts) and opts[i] != 255:
        if opts[i] == 0:
            i += 1
            continue
        code, length = opts[i], opts[i + 1]
        value = opts[i + 2 : i + 2 + length]
        if code == 53:
            reply["type"] = str(value[0])
        elif code == 3:
            reply["router"] = socket.inet_ntoa(value[:4])
        elif code == 1:
            reply["netmask"] = socket.inet_ntoa(value[:4])
        elif code == 6:
            reply["dns"] = socket.inet_ntoa(value[:4])
        i += 2 + length
    return reply


def dhcp_offer(iface: str, mac: str, timeout: float = 5.0) -> dict[str, str] | None:
    xid = int.from_bytes(os.urandom(4), "big")
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800)) as s:
        s.bind((iface, 0))
        s.settimeout(0.5)
        s.send(dhcp_discover_frame(mac, xid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = parse_dhcp_reply(s.recv(4096), xid)
            except TimeoutError:  # as a DHCP client does: dnsmasq may not listen yet
                s.send(dhcp_discover_frame(mac, xid))
                continue
            if reply and reply.get("type") == "2":  # DHCPOFFER
                return reply
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _die_with_parent() -> None:
    """dnsmasq gets SIGTERM if this process dies (e.g. killed by the test's timeout)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM


def netns_dhcp_session(
    exe: str, conf: str, iface: str, gw_cidr: str, macs: list[str]
) -> dict[str, object]:
    """Inside a fresh network namespace: dnsmasq on `iface`, one DISCOVER per MAC."""
    _ip("link", "set", "lo", "up")
    _ip("link", "add", iface, "type", "veth", "peer", "name", "posnetcli")
    _ip("addr", "add", gw_cidr, "dev", iface)
    _ip("link", "set", iface, "up")
    _ip("link", "set", "posnetcli", "up")
    # -d: foreground, no privilege drop (a user namespace cannot switch groups).
    proc = subprocess.Popen(
        [exe, "-d", "-C", conf, f"--pid-file={conf}.pid", "--log-facility=-", "--log-dhcp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_die_with_parent,  # safe: this script starts no threads
    )
    offers: dict[str, object] = {}
    try:
        time.sleep(0.3)
        for mac in macs:
            _ip("link", "set", "posnetcli", "address", mac)
            offers[mac] = dhcp_offer("posnetcli", mac)
    finally:
        proc.terminate()
        try:
            log, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            log, _ = proc.communicate()
    return {"offers": offers, "log": log, "rc": proc.returncode}


@pytest.mark.realtool
def test_dnsmasq_live_dhcp_offers_the_reserved_address(
    demo_plans: dict[str, Plan], tmp_path: Path
) -> None:
    exe = require_tool("dnsmasq")
    require_tool("unshare")
    plan = demo_plans["ostend-05"]
    text = dnsmasq.render(plan)["dhcp/dnsmasq.conf"]
    leases = tmp_path / "leases"
    text = text.replace(f"dhcp-leasefile={dnsmasq.LEASE_FILE}", f"dhcp-leasefile={leases}")
    conf = write(tmp_path, "dnsmasq.conf", text)
    stranger = "52:54:00:99:99:99"
    macs = [r.mac for r in plan.dhcp] + [stranger]
    gw_cidr = f"{plan.lan.gateway}/{plan.lan.prefixlen}"
    args = json.dumps([exe, str(conf), plan.lan.interface, gw_cidr, macs])
    res = run("unshare", "-rn", sys.executable, __file__, "dhcp-session", args, timeout=60)
    assert res.returncode == 0, res.stderr
    session = json.loads(res.stdout)
    offers = session["offers"]
    for r in plan.dhcp:
        offer = offers[r.mac]
        assert offer is not None, (r, session["log"])
        assert offer["yiaddr"] == r.ip, (r, offer)
        assert offer["router"] == plan.lan.gateway
        assert offer["netmask"] == plan.lan.netmask
        assert "dns" not in offer  # port=0: no DNS server announced (see dnsmasq.py)
    # an unknown MAC gets an address from the pool, not a reserved one
    pool = offers[stranger]
    assert pool is not None, session["log"]
    addr = ipaddress.IPv4Address(pool["yiaddr"])
    assert plan.lan.pool_start and plan.lan.pool_end
    assert ipaddress.IPv4Address(plan.lan.pool_start) <= addr
    assert addr <= ipaddress.IPv4Address(plan.lan.pool_end)


# --- inadyn --------------------------------------------------------------------------


def inadyn_check(path: Path) -> subprocess.CompletedProcess[str]:
    return run(require_tool("inadyn"), "-n", "--check-config", "-f", str(path))


@pytest.mark.realtool
@pytest.mark.parametrize("provider", PROVIDERS)
def test_inadyn_every_provider_passes_check_config(provider: str, tmp_path: Path) -> None:
    plan = base_plan(ddns=ddns_plan(provider, "inadyn"))
    files = inadyn.render(plan)
    assert set(files) == {"ddns/inadyn.conf"}
    text = files["ddns/inadyn.conf"]
    res = inadyn_check(write(tmp_path, "inadyn.conf", text))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"provider {inadyn.PROVIDERS[provider]} {{" in text
    assert 'iface = "wan0"' in text
    assert 'hostname = "store.pos.example.com"' in text
    assert "0600" in text.splitlines()[1]
    if provider == "duckdns":  # the token travels as username (plugins/duckdns.c)
        assert f'username = "{MARKER}"' in text
    elif provider == "cloudflare":  # zone as username, API token as password
        assert 'username = "example.com"' in text
        assert f'password = "{MARKER}"' in text
    else:
        assert 'username = "msp-user"' in text
        assert f'password = "{MARKER}"' in text


@pytest.mark.realtool
def test_inadyn_demo_store_and_broken_copies(demo_plans: dict[str, Plan], tmp_path: Path) -> None:
    text = inadyn.render(demo_plans["antwerp-02"])["ddns/inadyn.conf"]
    assert text.startswith("# posnet antwerp-02:")
    assert "provider default@no-ip.com {" in text
    assert 'password = "@@POSNET_SECRET_env_POSNET_DDNS_ANTWERP@@"' in text
    assert inadyn_check(write(tmp_path, "good.conf", text)).returncode == 0
    for broken in (
        text.replace("default@no-ip.com", "default@no-such-provider.example"),
        text.replace("    hostname", "    hostnme"),
        text.replace('"msp-antwerp"', '"msp-antwerp'),
        text.replace("    password = ", "    password "),
        text.replace("period = 300", "period = often"),
    ):
        res = inadyn_check(write(tmp_path, "bad.conf", broken))
        assert res.returncode != 0, broken


INADYN_SERVER = {
    "noip": "dynupdate.no-ip.com",
    "dyndns": "members.dyndns.org",
    "duckdns": "www.duckdns.org",
    "freedns": "freedns.afraid.org",
    "cloudflare": "api.cloudflare.com",
}


def inadyn_live(tmp: Path, text: str) -> str:
    """One real inadyn cycle (-1) in a namespace with only lo and a veth `wan0`.

    inadyn reads the WAN address from wan0, decides to update, and then fails to resolve
    its provider: nothing can leave the namespace. Its debug log shows what it parsed.
    `--check-config` alone misses a missing hostname or password (measured, 2.10).
    """
    exe = require_tool("inadyn")
    conf = write(tmp, "inadyn-live.conf", text)
    script = (
        "ip link set lo up && ip link add wan0 type veth peer name wanpeer"
        " && ip addr add 203.0.113.7/24 dev wan0 && ip link set wan0 up"
        f" && exec {exe} -n -1 -l debug -f {conf} --cache-dir={tmp / 'cache'}"
        f" -P {tmp / 'inadyn.pid'}"
    )
    res = run("unshare", "-rn", "sh", "-c", script)
    return res.stdout + res.stderr


@pytest.mark.realtool
@pytest.mark.parametrize("provider", PROVIDERS)
def test_inadyn_live_cycle_uses_wan_address_and_provider(provider: str, tmp_path: Path) -> None:
    plan = base_plan(ddns=ddns_plan(provider, "inadyn"))
    text = inadyn.render(plan)["ddns/inadyn.conf"]
    log = inadyn_live(tmp_path, text)
    assert "Checking for IP# change, querying interface wan0" in log, log
    assert "Update forced for alias store.pos.example.com, new IP# 203.0.113.7" in log, log
    assert f"Failed resolving hostname {INADYN_SERVER[provider]}" in log, log
    if provider == "cloudflare":
        assert "Zone: example.com" in log, log
    # without a hostname inadyn has nothing to update (and --check-config does not notice)
    log = inadyn_live(tmp_path, re.sub(r"\n    hostname = .*", "", text))
    assert "Update forced for alias" not in log, log


def test_inadyn_only_for_its_client(demo_plans: dict[str, Plan]) -> None:
    assert inadyn.render(demo_plans["leuven-04"]) == {}  # ddclient store
    assert inadyn.render(demo_plans["gent-01"]) == {}  # static IP, no DDNS
    assert ddclient.render(demo_plans["antwerp-02"]) == {}  # inadyn store


def test_inadyn_refuses_a_value_that_would_break_out() -> None:
    plan = base_plan(ddns=ddns_plan("noip", "inadyn", username='a"b'))
    with pytest.raises(ValueError, match="libconfuse"):
        inadyn.render(plan)


# --- ddclient ------------------------------------------------------------------------

DDCLIENT_EXPECT = {
    "dyndns": {"protocol": "dyndns2", "server": "members.dyndns.org"},
    "noip": {"protocol": "dyndns2", "server": "dynupdate.no-ip.com"},
    "duckdns": {"protocol": "duckdns", "server": "www.duckdns.org"},
    "freedns": {"protocol": "freedns", "server": "freedns.afraid.org"},
    "cloudflare": {"protocol": "cloudflare", "zone": "example.com"},
}


GLOBALS = "<globals>"


def ddclient_real(tmp: Path, text: str) -> tuple[dict[str, dict[str, str]], list[str], str]:
    """ddclient reads the file in a namespace with only lo and a veth `wan0`.

    Returns (settings per host from ddclient's debug dump, plus its globals under
    GLOBALS; warning lines; full output).
    The update it then attempts fails inside the namespace: no route leads out.
    """
    exe = require_tool("ddclient")
    conf = write(tmp, "ddclient.conf", text)
    # A cache from an earlier (failed) attempt makes ddclient wait and warn.
    (tmp / "ddclient.cache").unlink(missing_ok=True)
    script = (
        "ip link set lo up && ip link add wan0 type veth peer name wanpeer"
        " && ip addr add 203.0.113.7/24 dev wan0 && ip link set wan0 up"
        # -daemon=0: one cycle; -nosyslog: nothing reaches the machine's log
        f" && exec {exe} -daemon=0 -foreground -nosyslog -noquiet -verbose -debug"
        f" -file {conf} -cache {tmp / 'ddclient.cache'}"
    )
    res = run("unshare", "-rn", "sh", "-c", script, timeout=60)
    out = res.stdout + res.stderr
    hosts: dict[str, dict[str, str]] = {}
    for m in re.finditer(r"^config\{([^}]+)\}\{([^}]+)\}\s*: ?(.*)$", out, re.MULTILINE):
        hosts.setdefault(m.group(1), {})[m.group(2)] = m.group(3).strip()
    # options ddclient keeps global only (ssl, syslog, daemon) are in its globals dump
    hosts[GLOBALS] = {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^globals\{([^}]+)\}\s*: ?(.*)$", out, re.MULTILINE)
    }
    # The update itself must fail in the sandbox (no network, no DNS): with
    # IO::Socket::SSL installed ddclient gets as far as the connect and warns.
    warnings = [
        ln for ln in out.splitlines() if ln.startswith("WARNING") and "cannot connect to" not in ln
    ]
    return hosts, warnings, out


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ddclient_every_provider_passes_own_checker(provider: str) -> None:
    plan = base_plan(ddns=ddns_plan(provider, "ddclient"))
    text = ddclient.render(plan)["ddns/ddclient.conf"]
    assert ddclient.check_ddclient_conf(text) == []
    parsed = ddclient.parse_ddclient_conf(text)
    host = "store.pos.example.com"
    assert set(parsed.hosts) == {host}
    opts = parsed.hosts[host]
    assert opts["password"] == MARKER
    assert (opts["use"], opts["if"], opts["ssl"]) == ("if", "wan0", "yes")
    assert opts["protocol"] == DDCLIENT_EXPECT[provider]["protocol"]
    if provider == "cloudflare":
        assert (opts["zone"], opts["login"]) == ("example.com", "token")
    elif provider == "duckdns":
        assert "login" not in opts
    else:
        assert opts["login"] == "msp-user"
    assert text.splitlines()[-1] == host  # the host line comes last
    assert f"password='{MARKER}'" in text


def test_ddclient_duckdns_uses_the_bare_sub_name() -> None:
    plan = base_plan(ddns=ddns_plan("duckdns", "ddclient", hostname="store7.duckdns.org"))
    text = ddclient.render(plan)["ddns/ddclient.conf"]
    assert text.splitlines()[-1] == "store7"


@pytest.mark.realtool
@pytest.mark.parametrize("provider", PROVIDERS)
def test_ddclient_reads_every_provider_without_warnings(provider: str, tmp_path: Path) -> None:
    plan = base_plan(ddns=ddns_plan(provider, "ddclient"))
    text = ddclient.render(plan)["ddns/ddclient.conf"]
    hosts, warnings, out = ddclient_real(tmp_path, text)
    host = ddclient.host_name(plan.ddns)  # type: ignore[arg-type]
    assert warnings == [], out
    assert set(hosts) == {host, GLOBALS}, out
    got = hosts[host]
    for key, value in DDCLIENT_EXPECT[provider].items():
        assert got[key] == value, (key, got)
    assert (got["use"], got["if"], hosts[GLOBALS]["ssl"]) == ("if", "wan0", "1")
    assert "get_ip: using if, wan0 reports 203.0.113.7" in out


@pytest.mark.realtool
def test_ddclient_real_parse_flags_a_broken_copy(
    demo_plans: dict[str, Plan], tmp_path: Path
) -> None:
    text = ddclient.render(demo_plans["leuven-04"])["ddns/ddclient.conf"]
    _, warnings, out = ddclient_real(tmp_path, text)
    assert warnings == [], out
    for broken, expect in (
        (text.replace("ssl=yes", "sssl=yes"), "unrecognized keyword 'sssl'"),
        (text.replace("protocol=dyndns2", "protocol=dyndns9"), "Invalid Value for keyword"),
        (text.replace("use=if", "use=iff"), "Invalid Value for keyword"),
    ):
        _, warnings, out = ddclient_real(tmp_path, broken)
        assert any(expect in w for w in warnings), out


def test_ddclient_demo_store(demo_plans: dict[str, Plan]) -> None:
    text = ddclient.render(demo_plans["leuven-04"])["ddns/ddclient.conf"]
    lines = text.splitlines()
    assert lines[0].startswith("# posnet leuven-04:") and "generated, do not edit" in lines[0]
    assert "0600" in text
    for needed in (
        "ssl=yes",
        "use=if",
        "if=wan0",
        "protocol=dyndns2",
        "login=msp-leuven",
        "password='@@POSNET_SECRET_vault_leuven_04_ddns@@'",
    ):
        assert needed in lines
    assert lines[-1] == "leuven-04.pos.example.com"


BROKEN_DDCLIENT = (
    ("ssl=yes", "sssl=yes", "unknown keyword 'sssl'"),
    ("ssl=yes", "ssl=perhaps", "is not a boolean"),
    ("ssl=yes\n", "", "ssl is not on"),
    ("protocol=dyndns2", "protocol=dyndns9", "is not a ddclient protocol"),
    ("use=if", "use=iff", "is not a 'use' strategy"),
    ("if=wan0", "if=wan 0", "host 0: protocol is missing"),  # a stray word is a host
    ("daemon=300", "daemon=5x", "is not an interval"),
    ("login=msp-leuven", "login='msp-leuven", "unterminated quote"),
    ("login=msp-leuven\n", "", "login is missing"),
    ("password='@@POSNET_SECRET_vault_leuven_04_ddns@@'\n", "", "password is missing"),
    ("leuven-04.pos.example.com", "# leuven-04.pos.example.com", "no host to update"),
    ("syslog=yes", "syslog=yes \\ ", "whitespace after the continuation"),
    ("example.com\n", "example.com \\\n", "ends inside a continuation"),
    ("server=members.dyndns.org", "server=localhost", "is not an FQDN"),
    ("leuven-04.pos.example.com", "leuven-04.pos.example.com extra words here", "unexpected"),
)


@pytest.mark.parametrize(("old", "new", "expect"), BROKEN_DDCLIENT)
def test_ddclient_checker_catches_broken_files(
    demo_plans: dict[str, Plan], old: str, new: str, expect: str
) -> None:
    text = ddclient.render(demo_plans["leuven-04"])["ddns/ddclient.conf"]
    assert old in text
    problems = ddclient.check_ddclient_conf(text.replace(old, new, 1))
    assert any(expect in p for p in problems), problems


def test_ddclient_checker_reads_continuations_and_quotes() -> None:
    text = (
        "# one host, ddclient's documented multi-line form\n"
        "ssl=yes, use=if, if=eth0 \\\n"
        "protocol=cloudflare, zone=example.com, \\\n"
        "login=token, password='s3cr#t,with space' \\\n"
        "a.example.com\n"
        "protocol=dyndns2, ssl=yes, use=if, if=eth0, login=a\\,b\\'c password=x b.example.com\n"
    )
    parsed = ddclient.parse_ddclient_conf(text)
    assert parsed.problems == []
    assert parsed.hosts["a.example.com"]["password"] == "s3cr#t,with space"
    assert parsed.hosts["a.example.com"]["zone"] == "example.com"
    assert parsed.hosts["b.example.com"]["login"] == "a,b'c"
    assert ddclient.check_ddclient_conf(text) == []


@pytest.mark.parametrize("username", ["msp#1", "msp user", "msp\tuser"])
def test_ddclient_refuses_usernames_it_cannot_carry(username: str) -> None:
    plan = base_plan(ddns=ddns_plan("dyndns", "ddclient", username=username))
    with pytest.raises(ValueError, match="ddclient cannot use the DDNS username"):
        ddclient.render(plan)


@pytest.mark.parametrize("username", ["o'brien", "a,b", "(x)/y+z@example.com", "üser:1"])
def test_ddclient_escapes_usernames_it_can_carry(username: str) -> None:
    plan = base_plan(ddns=ddns_plan("freedns", "ddclient", username=username))
    text = ddclient.render(plan)["ddns/ddclient.conf"]
    parsed = ddclient.parse_ddclient_conf(text)
    assert parsed.hosts["store.pos.example.com"]["login"] == username


# --- squid ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bump_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway self-signed certificate + key for the ssl-bump port of the test conf."""
    openssl = require_tool("openssl")
    d = tmp_path_factory.mktemp("squid-cert")
    pem = d / "bump.pem"
    res = run(
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=posnet-test", "-keyout", str(pem),
        "-out", str(d / "cert.pem"),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    pem.write_text(pem.read_text() + (d / "cert.pem").read_text())
    return pem


def squid_parse(tmp: Path, snippet: str, cert: Path) -> subprocess.CompletedProcess[str]:
    """`squid -k parse` on a minimal squid.conf including the snippet before deny all.

    Every path squid could touch points into `tmp`; -k parse starts no daemon. Squid only
    warns (exit 0) about some mistakes, so a WARNING or ERROR line counts as rejection.
    """
    inc = write(tmp, "squid-posnet.conf", snippet, 0o644)
    conf = write(
        tmp,
        "squid.conf",
        f"pid_filename {tmp / 'squid.pid'}\n"
        f"cache_log {tmp / 'cache.log'}\n"
        "access_log none\n"
        "cache_store_log none\n"
        f"coredump_dir {tmp}\n"
        f"http_port 127.0.0.1:3128 ssl-bump cert={cert} generate-host-certificates=off\n"
        f"include {inc}\n"
        "ssl_bump bump all\n"
        "http_access deny all\n",
        0o644,
    )
    res = run(require_tool("squid"), "-k", "parse", "-f", str(conf))
    bad = re.search(r"WARNING|ERROR|FATAL|Bungled", res.stdout + res.stderr)
    if res.returncode == 0 and bad:
        return subprocess.CompletedProcess(res.args, 1, res.stdout, res.stderr)
    return res


@pytest.mark.realtool
def test_squid_every_demo_store_passes_squid_parse(
    demo_plans: dict[str, Plan], tmp_path: Path, bump_cert: Path
) -> None:
    rendered = 0
    for site, plan in demo_plans.items():
        files = squid.render(plan)
        if not plan.egress:
            assert files == {}, site
            continue
        rendered += 1
        assert set(files) == {"allowlist/squid-posnet.conf", "allowlist/domains.txt"}
        snippet = files["allowlist/squid-posnet.conf"]
        res = squid_parse(tmp_path, snippet, bump_cert)
        assert res.returncode == 0, (site, res.stdout + res.stderr)
        assert snippet.startswith(f"# posnet {site}:")
        # allows only; the proxy keeps its own denies
        assert not any(ln.startswith("http_access deny") for ln in directives(snippet))
        for line in directives(snippet):
            assert "*" not in line, line  # squid would read a '*' literally
        for flow in plan.egress:
            acl = f"posnet_{flow.id}"
            assert f"http_access allow posnet_connect {acl}_src {acl}_dst {acl}_ports" in snippet
            for src in flow.sources:
                assert f"acl {acl}_src src {src}\n" in snippet
    assert rendered == 2


def test_squid_openpos_domains_and_exemptions(demo_plans: dict[str, Plan]) -> None:
    files = squid.render(demo_plans["ostend-05"])
    snippet = files["allowlist/squid-posnet.conf"]
    for domain in OPENPOS_DOMAINS:
        assert f"acl posnet_openpos-outbound_dst dstdomain {domain}\n" in snippet
        assert f"acl posnet_nobump ssl::server_name {domain}\n" in snippet
    assert "acl posnet_openpos-outbound_ports port 443\n" in snippet
    # the tunnel flow is allowed but NOT exempt from inspection
    assert "acl posnet_deliverect-tunnel_dst dstdomain .tunnel.deliverect.com\n" in snippet
    assert "ssl::server_name .tunnel.deliverect.com" not in snippet
    lines = snippet.splitlines()
    splice = lines.index("ssl_bump splice posnet_nobump")
    assert all(i < splice for i, ln in enumerate(lines) if "posnet_nobump ssl::" in ln)
    domains = files["allowlist/domains.txt"].splitlines()
    assert domains[0].startswith("# posnet ostend-05:")
    assert domains[1:] == [
        "*.firebaseio.com",
        "*.googleapis.com",
        "*.gstatic.com",
        "*.tunnel.deliverect.com",
        "cdnassetsstorage.blob.core.windows.net",
        "devices.pos.prod.op3n.dev",
        "ingest.logging.tools.openpos.tech",
    ]
    ppaas = squid.render(demo_plans["bruges-06"])["allowlist/squid-posnet.conf"]
    assert "acl posnet_nobump ssl::server_name api.qa.ppaas.tech\n" in ppaas
    assert "ssl_bump splice posnet_nobump" in ppaas


def test_squid_wildcards_cover_their_subdomains() -> None:
    assert squid.squid_domains(["*.example.com", "a.example.com", "example.com", "x.org"]) == (
        ".example.com",
        "x.org",
    )
    assert squid.squid_domains(["*.a.example.com", "*.example.com"]) == (".example.com",)
    assert squid.squid_domains(["badexample.com", "*.example.com"]) == (
        ".example.com",
        "badexample.com",
    )


@pytest.mark.realtool
def test_squid_rejects_broken_copies(
    demo_plans: dict[str, Plan], tmp_path: Path, bump_cert: Path
) -> None:
    snippet = squid.render(demo_plans["ostend-05"])["allowlist/squid-posnet.conf"]
    assert squid_parse(tmp_path, snippet, bump_cert).returncode == 0
    for broken in (
        snippet.replace(" dstdomain ", " dstdomian ", 1),
        snippet.replace("ssl_bump splice posnet_nobump", "ssl_bump splice posnet_nobmp"),
        snippet.replace("src 198.51.100.12/32", "src 198.51.100.312/32"),
        snippet.replace("http_access allow posnet_connect", "http_access allow posnet_conect"),
        snippet.replace(" ssl::server_name ", " ssl:server_name ", 1),
        snippet.replace(".firebaseio.com\n", ".firebaseio.com\nacl posnet_nobump "
                        "ssl::server_name a.firebaseio.com\n", 1),
        snippet.replace("_ports port 443", "_ports port https-ish", 1),
    ):  # fmt: skip
        res = squid_parse(tmp_path, broken, bump_cert)
        assert res.returncode != 0, broken


def test_squid_udp_flows_are_listed_not_proxied() -> None:
    flow = EgressFlow("ntp", "p", "time sync", ("198.51.100.10/32",), ("ntp.example.com",),
                      (123,), "udp", False)  # fmt: skip
    files = squid.render(base_plan(egress=(flow,)))
    assert "ntp.example.com" in files["allowlist/domains.txt"]
    snippet = files["allowlist/squid-posnet.conf"]
    assert "posnet_ntp" not in snippet and "# ntp (p): UDP, not proxied" in snippet


def _tcp_flow(fid: str, *hosts: int, domain: str = "api.example.com") -> EgressFlow:
    sources = tuple(f"198.51.100.{h}/32" for h in hosts)
    return EgressFlow(fid, "p", "backend", sources, (domain,), (443,), "tcp", False)


@pytest.mark.realtool
def test_squid_acl_names_fit_whatever_the_flow_id(tmp_path: Path, bump_cert: Path) -> None:
    """A flow id is partner + pattern (up to 63 + 9 characters, or a central proxy's
    store names): `posnet_<id>_ports` used to pass squid's 62 characters ("FATAL:
    Bungled"). Long names keep a digest of the full name, so two long ids that share
    their start stay apart; short ones are unchanged."""
    long_a, long_b = "a" * 63 + "-outbound", "a" * 63 + "-tunnel"
    flows = (_tcp_flow(long_a, 10), _tcp_flow(long_b, 11), _tcp_flow("short", 12))
    snippet = squid.render(base_plan(egress=flows))["allowlist/squid-posnet.conf"]
    res = squid_parse(tmp_path, snippet, bump_cert)
    assert res.returncode == 0, (snippet, res.stdout + res.stderr)
    names = {w for line in directives(snippet) for w in line.split() if w.startswith("posnet_")}
    assert names and all(len(n) <= squid.ACL_NAME_MAX for n in names)
    allows = [ln for ln in directives(snippet) if ln.startswith("http_access allow")]
    assert len(allows) == 3 and len(set(allows)) == 3
    assert "http_access allow posnet_connect posnet_short_src posnet_short_dst" in snippet
    assert snippet == squid.render(base_plan(egress=flows))["allowlist/squid-posnet.conf"]


@pytest.mark.realtool
def test_squid_writes_a_repeated_flow_once(tmp_path: Path, bump_cert: Path) -> None:
    """Two tunnel (or cloud connector) integrations from one host bring the same flow
    twice: its block was written twice and squid warned about every repeated value.
    Identical definitions are written once; a different flow under the same id gets
    its own names instead of merged ACLs (which would cross sources and ports)."""
    same = _tcp_flow("deliverect-tunnel", 10)
    other = dataclasses.replace(_tcp_flow("deliverect-tunnel", 11), ports=(8443,))
    flows = (same, same, other, same)
    snippet = squid.render(base_plan(egress=flows))["allowlist/squid-posnet.conf"]
    res = squid_parse(tmp_path, snippet, bump_cert)
    assert res.returncode == 0, (snippet, res.stdout + res.stderr)
    lines = directives(snippet)
    assert len(lines) == len(set(lines)), snippet
    allows = [ln for ln in lines if ln.startswith("http_access allow")]
    assert allows == [
        "http_access allow posnet_connect posnet_deliverect-tunnel_src"
        " posnet_deliverect-tunnel_dst posnet_deliverect-tunnel_ports",
        "http_access allow posnet_connect posnet_deliverect-tunnel_2_src"
        " posnet_deliverect-tunnel_2_dst posnet_deliverect-tunnel_2_ports",
    ]
    assert "acl posnet_deliverect-tunnel_2_ports port 8443" in lines
    assert "acl posnet_deliverect-tunnel_2_src src 198.51.100.11/32" in lines


# --- property tests: random values stay one directive per line and pass the checkers ---

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
FQDN = st.lists(LABEL, min_size=2, max_size=4).map(".".join)
DOMAIN = st.tuples(st.booleans(), FQDN).map(lambda t: ("*." if t[0] else "") + t[1])
TEXT = st.from_regex(r"[\w .,:()/'+@#-]{1,40}", fullmatch=True).map(str.strip).filter(bool)
IDENT = st.from_regex(r"[a-z0-9]([a-z0-9_-]{0,20}[a-z0-9])?", fullmatch=True)
PORTS = st.lists(st.integers(1, 65535), min_size=1, max_size=3, unique=True).map(tuple)
MAC = st.lists(st.integers(0, 255), min_size=5, max_size=5).map(
    lambda b: "52:" + ":".join(f"{x:02x}" for x in b)
)
PROPS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def reservations(draw: st.DrawFn) -> tuple[DhcpReservation, ...]:
    names = draw(st.lists(LABEL, min_size=0, max_size=5, unique=True))
    macs = draw(st.lists(MAC, min_size=len(names), max_size=len(names), unique=True))
    ips = draw(st.lists(st.integers(2, 99), min_size=len(names), max_size=len(names), unique=True))
    return tuple(
        DhcpReservation(n, m, f"198.51.100.{i}") for n, m, i in zip(names, macs, ips, strict=True)
    )


@pytest.mark.realtool
@PROPS
@given(dhcp=reservations(), domain=st.none() | FQDN, pool=st.booleans())
def test_property_dnsmasq(
    tmp_path: Path, dhcp: tuple[DhcpReservation, ...], domain: str | None, pool: bool
) -> None:
    lan = base_plan().lan
    lan = dataclasses.replace(
        lan,
        domain=domain,
        pool_start=lan.pool_start if pool else None,
        pool_end=lan.pool_end if pool else None,
    )
    files = dnsmasq.render(base_plan(lan=lan, dhcp=dhcp))
    text = files["dhcp/dnsmasq.conf"]
    lines = directives(text)
    assert all(re.fullmatch(r"[a-z-]+(=\S+)?", ln) for ln in lines), lines
    assert [ln for ln in lines if ln.startswith("dhcp-host=")] == [
        f"dhcp-host={r.mac},{r.ip},{r.name}" for r in dhcp
    ]
    # interface, except-interface, bind-interfaces and four DNS lines; DHCP adds five.
    dhcp_lines = 5 + len(dhcp) + (domain is not None) if (pool or dhcp) else 0
    assert len(lines) == 7 + dhcp_lines
    res = dnsmasq_test(write(tmp_path, "p.conf", text))
    assert res.returncode == 0, (text, res.stderr)


@pytest.mark.realtool
@PROPS
@given(provider=st.sampled_from(PROVIDERS), hostname=FQDN, username=TEXT)
def test_property_inadyn(tmp_path: Path, provider: str, hostname: str, username: str) -> None:
    plan = base_plan(ddns=ddns_plan(provider, "inadyn", hostname, username))
    text = inadyn.render(plan)["ddns/inadyn.conf"]
    keys = [ln.split()[0] for ln in directives(text)]
    assert keys == ["period", "iface", "provider", "username", "password", "hostname", "}"]
    assert f'hostname = "{hostname}"' in text
    res = inadyn_check(write(tmp_path, "p.conf", text))
    assert res.returncode == 0, (text, res.stdout + res.stderr)


def ddclient_can_carry(username: str) -> bool:
    return "#" not in username and not any(ch.isspace() for ch in username)


@PROPS
@given(provider=st.sampled_from(PROVIDERS), hostname=FQDN, username=TEXT)
def test_property_ddclient_own_checker(provider: str, hostname: str, username: str) -> None:
    plan = base_plan(ddns=ddns_plan(provider, "ddclient", hostname, username))
    if provider in ("dyndns", "noip", "freedns") and not ddclient_can_carry(username):
        with pytest.raises(ValueError, match="ddclient cannot use"):
            ddclient.render(plan)
        return
    text = ddclient.render(plan)["ddns/ddclient.conf"]
    assert ddclient.check_ddclient_conf(text) == []
    lines = directives(text)
    assert all(re.fullmatch(r"[a-z0-9_-]+=\S+", ln) for ln in lines[:-1]), lines
    parsed = ddclient.parse_ddclient_conf(text)
    host = ddclient.host_name(plan.ddns)  # type: ignore[arg-type]
    assert list(parsed.hosts) == [host] and lines[-1] == host
    if provider in ("dyndns", "noip", "freedns"):
        assert parsed.hosts[host]["login"] == username


@pytest.mark.realtool
@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(provider=st.sampled_from(PROVIDERS), hostname=FQDN, username=TEXT.filter(ddclient_can_carry))
def test_property_ddclient_real(
    tmp_path: Path, provider: str, hostname: str, username: str
) -> None:
    plan = base_plan(ddns=ddns_plan(provider, "ddclient", hostname, username))
    text = ddclient.render(plan)["ddns/ddclient.conf"]
    hosts, warnings, out = ddclient_real(tmp_path, text)
    assert warnings == [], out
    assert set(hosts) == {ddclient.host_name(plan.ddns), GLOBALS}, out  # type: ignore[arg-type]


@st.composite
def egress_flows(draw: st.DrawFn) -> tuple[EgressFlow, ...]:
    ids = draw(st.lists(IDENT, min_size=1, max_size=3, unique=True))
    flows = []
    for fid in ids:
        hosts = draw(st.lists(st.integers(2, 250), min_size=1, max_size=3, unique=True))
        flows.append(
            EgressFlow(
                id=fid,
                partner=draw(IDENT),
                purpose=draw(TEXT),
                sources=tuple(f"198.51.100.{h}/32" for h in hosts),
                domains=tuple(draw(st.lists(DOMAIN, min_size=1, max_size=4, unique=True))),
                ports=draw(PORTS),
                protocol="tcp",
                ssl_inspection_exempt=draw(st.booleans()),
            )
        )
    return tuple(flows)


@pytest.mark.realtool
@PROPS
@given(flows=egress_flows())
def test_property_squid(tmp_path: Path, bump_cert: Path, flows: tuple[EgressFlow, ...]) -> None:
    files = squid.render(base_plan(egress=flows))
    snippet = files["allowlist/squid-posnet.conf"]
    for line in directives(snippet):
        words = line.split()
        if words[0] == "acl":
            assert len(words) >= 4 and "*" not in line, line
            assert len(words) == 4 or words[2] == "port", line
        else:
            assert words[:2] in (["http_access", "allow"], ["ssl_bump", "splice"]), line
    allows = [ln for ln in directives(snippet) if ln.startswith("http_access allow")]
    assert len(allows) == len(flows)
    res = squid_parse(tmp_path, snippet, bump_cert)
    assert res.returncode == 0, (snippet, res.stdout + res.stderr)
    listed = directives(files["allowlist/domains.txt"])
    assert listed == sorted({d for f in flows for d in f.domains})


def _main(argv: list[str]) -> Iterator[str]:
    """Entry point when this file runs as a script inside `unshare -rn`."""
    if argv[:1] == ["dhcp-session"]:
        exe, conf, iface, gw_cidr, macs = json.loads(argv[1])
        yield json.dumps(netns_dhcp_session(exe, conf, iface, gw_cidr, macs))


if __name__ == "__main__":
    for out in _main(sys.argv[1:]):
        print(out)
