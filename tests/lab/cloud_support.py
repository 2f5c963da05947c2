"""A lab "cloud" that answers DNS for partner names and serves HTTPS on their addresses,
plus an edge running the store's rendered firewall and dnsmasq, for the outbound tests.

Names and addresses (all in the cloud namespace's 192.0.2.128/28, RFC 5737):
partner names of seeds 001 (PPaaS) and 004 (Open POS), one name on no list, and one
address that no name points to (a hard-coded IP).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from generator import build
from generator.analyze import analyze
from generator.plan import Plan

from .netns import CLOUD_IP, CLOUD_NET, Lab

LAB_FLEET = Path(__file__).with_name("fleet")
DEVICES = "devices.pos.prod.op3n.dev"
FIREBASE = "pos-lab.firebaseio.com"  # under the catalog's *.firebaseio.com
PPAAS_API = "api.qa.ppaas.tech"
PPAAS_AUTH = "auth.qa.ppaas.tech"
UNLISTED = "tracker.example.org"  # on no partner's list
BELOW_DEVICES = f"cdn.{DEVICES}"  # a name below an exact catalog name
FIREBASE_APEX = "firebaseio.com"  # the catalog's *.firebaseio.com without a label
CLOUD_ADDRS = {
    DEVICES: "192.0.2.131",
    BELOW_DEVICES: "192.0.2.136",
    FIREBASE_APEX: "192.0.2.137",
    FIREBASE: "192.0.2.132",
    PPAAS_API: "192.0.2.133",
    PPAAS_AUTH: "192.0.2.133",
    UNLISTED: "192.0.2.134",
}
RAW_IP = "192.0.2.135"  # serves HTTPS, but no name points here
TTL = 3600

SITE = """\
id: lab-outbound
name: posnet lab outbound store
wan: {isp: Lab, ip_mode: static, public_ip: "203.0.113.10"}
lan:
  subnet: "198.51.100.128/26"
  gateway: "198.51.100.129"
  dhcp_pool: {start: "198.51.100.150", end: "198.51.100.160"}
  dns: {upstreams: ["%(cloud)s"]}
edge: {egress: restricted}
hosts:
  - {name: pos1, role: pos, ip: "198.51.100.140", mac: "%(mac)s"}
  - {name: pos2, role: pos, ip: "198.51.100.141"}
integrations:
  - {partner: openpos, pattern: outbound_only, hosts: [pos1]}
"""
POS1_MAC = "52:54:00:00:09:40"


def outbound_plan(tmp: Path, kind: str = "nftables") -> tuple[Plan, Path]:
    """The lab store's Plan and its rendered tree (firewall back-end `kind`)."""
    fleet = tmp / "fleet"
    (fleet / "sites").mkdir(parents=True)
    shutil.copy(LAB_FLEET / "fleet.yaml", fleet / "fleet.yaml")
    site = SITE % {"cloud": CLOUD_IP, "mac": POS1_MAC}
    if kind != "nftables":
        site = site.replace(
            "edge: {egress: restricted}", f"edge: {{egress: restricted, kind: {kind}}}"
        )
    (fleet / "sites" / "lab-outbound.yaml").write_text(site)
    a = analyze(fleet)
    assert not a.failed(), a.diagnostics
    out = tmp / "build"
    build.render_tree(out, a.fleet.name, a.plans, a.digests)
    return a.plans[0], out / "sites" / "lab-outbound"


def start_cloud(lab: Lab) -> None:
    """Cloud addresses, a DNS server for the partner names, HTTPS on every address."""
    prefix = CLOUD_NET.split("/")[1]
    for ip in sorted({*CLOUD_ADDRS.values(), RAW_IP}):
        lab.run("cloud", "ip", "addr", "add", f"{ip}/{prefix}", "dev", "eth0", check=True)
    argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv"]
    argv += ["--no-hosts", f"--listen-address={CLOUD_IP}", "--bind-interfaces"]
    argv += [f"--local-ttl={TTL}", f"--pid-file={lab.dir}/cloud-dns.pid"]
    argv += [f"--address=/{name}/{ip}" for name, ip in sorted(CLOUD_ADDRS.items())]
    lab.popen("cloud", *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_udp(lab, "cloud", 53)
    lab.start_server("cloud", 443, True, "cloud")


def _wait_udp(lab: Lab, ns: str, port: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while not lab.listening(ns, port, "udp"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{ns}: nothing on udp/{port}")
        time.sleep(0.05)


def start_edge(lab: Lab, site_dir: Path, plan: Plan) -> None:
    """Load the rendered firewall and run the rendered dnsmasq in the edge namespace."""
    if plan.firewall == "nftables":
        lab.run("edge", "nft", "-f", str(site_dir / "firewall/nftables.nft"), check=True)
    else:
        lab.run(
            "edge",
            "ipset",
            "restore",
            "-exist",
            "-file",
            str(site_dir / "firewall/ipsets"),
            check=True,
        )
        lab.run("edge", "iptables-restore", str(site_dir / "firewall/rules.v4"), check=True)
    conf = (site_dir / "dhcp/dnsmasq.conf").read_text()
    conf = conf.replace(
        "dhcp-leasefile=/var/lib/misc/dnsmasq.leases", f"dhcp-leasefile={lab.dir}/leases"
    )
    path = lab.dir / "edge-dnsmasq.conf"
    path.write_text(conf)
    argv = [
        "dnsmasq",
        "--keep-in-foreground",
        "-C",
        str(path),
        f"--pid-file={lab.dir}/edge-dns.pid",
    ]
    lab.popen("edge", *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_udp(lab, "edge", 53)


UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc calls this with the lease in the environment; print it and configure eth0.
case "$1" in
  bound|renew)
    echo "ip=$ip router=$router dns=$dns"
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    ip route replace default via "$router"
    ;;
esac
"""


def dhcp_lease(lab: Lab, role: str, mac: str) -> dict[str, str]:
    """Drop `role`'s static address, take `mac`, and ask the edge by DHCP (udhcpc)."""
    script = lab.dir / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    lab.run(role, "ip", "link", "set", "eth0", "down", check=True)
    lab.run(role, "ip", "link", "set", "eth0", "address", mac, check=True)
    lab.run(role, "ip", "addr", "flush", "dev", "eth0", check=True)
    lab.run(role, "ip", "link", "set", "eth0", "up", check=True)
    out = lab.run(
        role,
        "busybox",
        "udhcpc",
        "-i",
        "eth0",
        "-n",
        "-q",
        "-f",
        "-t",
        "5",
        "-s",
        str(script),
        timeout=40,
    )
    m = re.search(r"^ip=(\S+) router=(\S+) dns=(.*)$", out.stdout, re.M)
    assert m, out.stdout + out.stderr
    return {"ip": m[1], "router": m[2], "dns": m[3].strip()}


def lookup(lab: Lab, role: str, name: str, server: str) -> list[str]:
    """Addresses `server` answers for `name`, asked from `role` (busybox nslookup)."""
    out = lab.run(role, "busybox", "nslookup", "-type=a", name, server, timeout=15)
    answers = out.stdout.split(name, 1)[1] if name in out.stdout else ""
    return re.findall(r"Address:\s*(\d+\.\d+\.\d+\.\d+)", answers)


def https(lab: Lab, role: str, name: str, ip: str) -> int:
    """HTTP status of https://name/ at ip from `role` (0: no answer)."""
    return lab.curl(role, f"https://{name}/", 3, "--resolve", f"{name}:443:{ip}").http_code
