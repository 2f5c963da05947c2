"""DDNS behind NAT, with real packets (issue 9, item 5).

The lab's edge namespace plays the ISP router: it owns the lab's public address
(203.0.113.10 on wan0) and masquerades a carrier-grade-NAT subnet behind it. The store's
edge sits behind that NAT on 100.64.0.2, in a throwaway network (and mount) namespace
that dies with the inadyn process, so nothing is left behind. The cloud namespace runs
a check-ip server that answers "Current IP Address: <address it sees>".

inadyn is run once (`-1`) with the file posnet renders for the store. With `detect: web`
it reports the public address the check-ip server saw; with the default `detect:
interface` it reports the private one (what PN114 warns about). The update itself then
fails: the provider's name does not resolve in the lab (resolv.conf points at a closed
port), so no packet leaves the lab.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .netns import CLOUD_IP, EDGE_WAN_IFACE, EDGE_WAN_IP, Lab

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
POSNET = Path(sys.executable).with_name("posnet")
CHECKIP_PORT = 8081
STORE_IP = "100.64.0.2"  # carrier-grade NAT (RFC 6598): private, never routed
ISP_IP = "100.64.0.1"
SITE = "knokke-08"

FLEET_YAML = """\
fleet: natlab
defaults:
  edge:
    kind: nftables
    management: {allow_from: ["192.0.2.64/28"], port: 22}
"""

SITE_YAML = f"""\
id: {SITE}
name: Knokke behind carrier NAT
wan:
  isp: Lab ISP
  ip_mode: dynamic
  fqdn: {SITE}.pos.example.com
  address: "{STORE_IP}"
  ddns:
    provider: noip
    client: inadyn
    username: msp-knokke
    password: env:POSNET_DDNS_KNOKKE
DETECT
lan:
  subnet: "198.51.100.128/26"
  gateway: "198.51.100.129"
"""

WEB = (
    "    detect: web\n"
    f"    checkip: {{server: {CLOUD_IP}, port: {CHECKIP_PORT}, path: /checkip, tls: false}}"
)


def posnet(*args: str) -> subprocess.CompletedProcess[str]:
    exe = POSNET if POSNET.exists() else ROOT / ".venv" / "bin" / "posnet"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=120, check=False
    )


def render(tmp: Path, detect: str) -> tuple[str, str]:
    """(inadyn.conf as posnet renders it, `posnet validate` output) for the store."""
    fleet = tmp / "fleet"
    (fleet / "sites").mkdir(parents=True)
    (fleet / "fleet.yaml").write_text(FLEET_YAML)
    (fleet / "sites" / f"{SITE}.yaml").write_text(SITE_YAML.replace("DETECT", detect))
    checked = posnet("validate", str(fleet))
    out = tmp / "build"
    res = posnet("render", str(fleet), "-o", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    conf = (out / "sites" / SITE / "ddns" / "inadyn.conf").read_text()
    return conf, checked.stdout + checked.stderr


def behind_nat(lab: Lab, tmp: Path, conf: str) -> str:
    """Run inadyn once behind the lab's NAT; its log."""
    exe = shutil.which("inadyn")
    if exe is None:
        pytest.skip("inadyn is not installed")
    (tmp / "inadyn.conf").write_text(conf)
    (tmp / "inadyn.conf").chmod(0o600)
    # A resolver nobody answers on: the provider lookup fails at once, nothing leaves.
    (tmp / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    edge = lab.ns_name("edge")
    script = " && ".join(
        [
            "mount --bind {resolv} /etc/resolv.conf",
            "ip link set lo up",
            # One veth pair: wan0 here, isp0 in the lab's edge (the ISP router).
            f"ip link add {EDGE_WAN_IFACE} type veth peer name isp0 netns {edge}",
            f"ip addr add {STORE_IP}/24 dev {EDGE_WAN_IFACE}",
            f"ip link set {EDGE_WAN_IFACE} up",
            f"ip netns exec {edge} ip addr add {ISP_IP}/24 dev isp0",
            f"ip netns exec {edge} ip link set isp0 up",
            f"ip route add default via {ISP_IP}",
            "exec {inadyn} -n -1 -l debug -f {conf} --cache-dir={cache} -P {pid}",
        ]
    ).format(
        resolv=tmp / "resolv.conf",
        inadyn=exe,
        conf=tmp / "inadyn.conf",
        cache=tmp / "cache",
        pid=tmp / "inadyn.pid",
    )
    res = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return res.stdout + res.stderr


@pytest.fixture
def nat_lab(lab_factory: Callable[..., Lab]) -> Lab:
    """A pristine lab whose edge masquerades 100.64.0.0/24 out of wan0."""
    lab = lab_factory(servers=False, sshd=False)
    ruleset = (
        "table ip isp_nat {\n"
        "  chain post {\n"
        "    type nat hook postrouting priority srcnat;\n"
        f'    ip saddr 100.64.0.0/24 oifname "{EDGE_WAN_IFACE}" masquerade\n'
        "  }\n"
        "}\n"
    )
    res = lab.run("edge", "nft", "-f", "-", input=ruleset, timeout=10)
    assert res.returncode == 0, res.stderr
    lab.start_server("cloud", CHECKIP_PORT, False, "cloud")
    return lab


def checkip_log(lab: Lab) -> str:
    return (lab.dir / "logs" / f"{lab.ns_name('cloud')}-{CHECKIP_PORT}.log").read_text()


def test_detect_web_reports_the_public_address(nat_lab: Lab, tmp_path: Path) -> None:
    conf, lint = render(tmp_path, WEB)
    assert f'checkip-server = "{CLOUD_IP}:{CHECKIP_PORT}"' in conf
    assert "iface" not in conf.replace("interface", "")
    assert "PN114" not in lint, lint
    log = behind_nat(nat_lab, tmp_path, conf)
    connect = f"Checking for IP# change, connecting to {CLOUD_IP}([{CLOUD_IP}]:{CHECKIP_PORT})"
    assert connect in log, log
    assert f"new IP# {EDGE_WAN_IP}" in log, log
    assert STORE_IP not in log, log
    # The check-ip server saw the request from the lab's public address (the NAT).
    seen = re.findall(r"^(\S+) \"GET /checkip ", checkip_log(nat_lab), re.MULTILINE)
    assert seen and set(seen) == {EDGE_WAN_IP}, checkip_log(nat_lab)


def test_detect_interface_publishes_the_private_address(nat_lab: Lab, tmp_path: Path) -> None:
    """The default reads wan0 behind the NAT: PN114 warns, and inadyn would publish
    100.64.0.2, an address no partner can reach."""
    conf, lint = render(tmp_path, "")
    assert f'iface = "{EDGE_WAN_IFACE}"' in conf
    assert "warning[PN114]" in lint and f"the WAN address {STORE_IP} is private" in lint, lint
    log = behind_nat(nat_lab, tmp_path, conf)
    assert f"querying interface {EDGE_WAN_IFACE}" in log, log
    assert EDGE_WAN_IP not in log, log
    assert "GET /checkip" not in checkip_log(nat_lab)
