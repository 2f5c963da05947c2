"""The lab itself works: topology, reachability, the edge as an ssh host, teardown.

Most tests run against a private lab of this module (not the session ``lab``),
because other lab tests load firewalls onto the shared edge and these tests
state facts about the bare network. One test checks the session fixture.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import require_lab
from .netns import (
    CLOUD_HTTPS_PORT,
    CLOUD_IP,
    CTL_IP,
    EDGE_LAN_IFACE,
    EDGE_LAN_IP,
    EDGE_WAN_IFACE,
    EDGE_WAN_IP,
    INET_WAN_IP,
    LAN_NET,
    PARTNER_IP,
    POS1_IP,
    POS2_IP,
    POS_HTTP_PORT,
    POS_HTTPS_PORT,
    ROLES,
    SSH_PORT,
    STRANGER_IP,
    Lab,
    cleanup_stale,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def bare() -> Iterator[Lab]:
    """A lab nobody else touches: no firewall on the edge, nothing applied."""
    require_lab()
    lab = Lab()
    try:
        yield lab.up()
    finally:
        lab.down()


def _addrs(lab: Lab, role: str) -> set[str]:
    out = lab.run(role, "ip", "-4", "-o", "addr", "show", check=True).stdout
    return {line.split()[3] for line in out.splitlines()}


def _alive(pid: int) -> bool:
    """A process exists and is not a zombie (a zombie holds no namespace)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_session_fixture_is_up_and_marked(lab: Lab, request: pytest.FixtureRequest) -> None:
    assert lab.is_up
    assert request.node.get_closest_marker("lab") is not None
    assert lab.ssh("hostname", check=True).stdout.strip() == "edge"


def test_lab_factory_gives_private_labs(
    lab_factory: Callable[..., Lab], lab: Lab, request: pytest.FixtureRequest
) -> None:
    private = lab_factory(servers=False, sshd=False)
    assert private.prefix != lab.prefix
    assert request.node.get_closest_marker("lab") is not None
    assert private.can_connect("pos1", EDGE_LAN_IP, SSH_PORT, timeout=1) is False  # refused
    assert private.run("pos1", "ip", "route", "get", EDGE_LAN_IP).returncode == 0


def test_topology_addresses_and_routes(bare: Lab) -> None:
    assert set(bare.ns) == set(ROLES)
    assert all(name.startswith(bare.prefix) for name in bare.ns.values())
    assert f"{EDGE_WAN_IP}/24" in _addrs(bare, "edge")
    assert f"{EDGE_LAN_IP}/26" in _addrs(bare, "edge")
    assert f"{POS1_IP}/26" in _addrs(bare, "pos1")
    assert f"{CTL_IP}/28" in _addrs(bare, "ctl")
    links = bare.run("edge", "ip", "-o", "link", "show", check=True).stdout
    assert f" {EDGE_WAN_IFACE}@" in links
    assert f"master {EDGE_LAN_IFACE}" in links
    assert bare.run("edge", "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
    nf = bare.run("edge", "sysctl", "-n", "net.bridge.bridge-nf-call-iptables").stdout
    assert nf.strip() == "0"
    # inet routes only its connected links: no default, nothing to the LAN.
    assert bare.run("inet", "ip", "route", "show", "default").stdout.strip() == ""
    assert bare.run("inet", "ip", "route", "get", POS1_IP).returncode != 0
    assert "default via" in bare.run("pos1", "ip", "route").stdout
    # Read-only look at the root namespace: the lab added nothing there.
    root_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert EDGE_LAN_IFACE not in root_links
    assert EDGE_WAN_IFACE not in root_links
    root_routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert "198.51.100." not in root_routes
    assert "203.0.113." not in root_routes


def test_partner_reaches_edge_wan(bare: Lab) -> None:
    assert bare.can_connect("partner", EDGE_WAN_IP, SSH_PORT)
    assert bare.can_connect("stranger", EDGE_WAN_IP, SSH_PORT)  # no firewall yet
    assert not bare.can_connect("partner", EDGE_WAN_IP, 2222, timeout=1)  # refused


def test_edge_has_no_firewall_by_default(bare: Lab) -> None:
    assert bare.edge_exec(["nft", "list", "ruleset"], check=True).stdout.strip() == ""


def test_ssh_from_ctl_lands_in_overlay(bare: Lab) -> None:
    cfg = str(bare.ssh_config_path)
    out = bare.run("ctl", "ssh", "-F", cfg, "edge", "hostname", timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "edge"
    # sshd saw the connection coming from ctl, through inet.
    assert bare.ssh("echo $SSH_CLIENT", check=True).stdout.split()[0] == CTL_IP

    probe = f"posnet-lab-probe-{uuid.uuid4().hex[:8]}"
    bare.ssh(f"echo written-on-edge > /etc/{probe}", check=True)
    assert (bare.overlay_upper("/etc") / probe).read_text() == "written-on-edge\n"
    assert not Path("/etc", probe).exists(), "wrote into the machine's real /etc"
    assert bare.edge_exec(f"cat /etc/{probe}", check=True).stdout == "written-on-edge\n"
    # The edge's /tmp is private too.
    bare.ssh(f"echo x > /tmp/{probe}", check=True)
    assert not Path("/tmp", probe).exists()
    assert bare.edge_exec(f"cat /tmp/{probe}").stdout == "x\n"
    # The edge sees its own hostname file, the machine keeps its own.
    assert bare.edge_exec("cat /etc/hostname").stdout.strip() == "edge"


def test_testinfra_from_pytest_process(bare: Lab) -> None:
    """testinfra's ssh backend works from the root namespace: the ProxyCommand
    opens the connection from ctl, so no packet leaves the root namespace."""
    testinfra = pytest.importorskip("testinfra")
    host = testinfra.get_host("ssh://edge", ssh_config=str(bare.ssh_config_path))
    assert host.check_output("hostname") == "edge"
    assert host.file("/etc/resolv.conf").contains("nameserver 127.0.0.1")


def test_ansible_from_ctl(bare: Lab) -> None:
    ansible = Path(sys.executable).with_name("ansible")
    if not ansible.exists():
        pytest.skip("ansible-core not installed in this venv")
    out = bare.run(
        "ctl",
        str(ansible),
        "edge",
        "-m",
        "ansible.builtin.command",
        "-a",
        "hostname",
        env=bare.ansible_env(),
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "edge | CHANGED" in out.stdout
    assert out.stdout.rstrip().endswith("edge")


def test_pos_servers_answer_over_lan(bare: Lab) -> None:
    code, status, body = bare.curl("pos2", f"https://{POS1_IP}:{POS_HTTPS_PORT}/")
    assert (code, status, body.strip()) == (0, 200, "pos1")
    assert bare.curl("pos1", f"http://{POS2_IP}:{POS_HTTP_PORT}/").body.strip() == "pos2"
    # The certificate carries the host's lab name.
    crt = bare.cert_path("pos1")
    named = bare.curl(
        "pos2",
        f"https://pos1.lab.invalid:{POS_HTTPS_PORT}/",
        3,
        "--cacert",
        str(crt),
        "--resolve",
        f"pos1.lab.invalid:{POS_HTTPS_PORT}:{POS1_IP}",
    )
    assert named.http_code == 200, named
    # The server saw pos2's own address: LAN traffic is bridged, not NATed.
    assert bare.curl("pos2", f"http://{POS1_IP}:{POS_HTTP_PORT}/client").body.strip() == POS2_IP


def test_inet_does_not_route_to_lan(bare: Lab) -> None:
    result = bare.curl("partner", f"https://{POS1_IP}:{POS_HTTPS_PORT}/", 2)
    assert result.exit_code != 0
    assert result.http_code == 0
    assert not bare.can_connect("stranger", POS2_IP, POS_HTTP_PORT, timeout=1)


def test_lan_egress_needs_the_edge_masquerade(bare: Lab) -> None:
    url = f"https://{CLOUD_IP}:{CLOUD_HTTPS_PORT}/client"
    # Without NAT the cloud's reply to a LAN address dies in inet.
    assert bare.curl("pos1", url, 1).exit_code != 0
    table = "posnet_labtest"
    ruleset = (
        f"table ip {table} {{\n"
        "  chain post { type nat hook postrouting priority srcnat; policy accept;\n"
        f'    ip saddr {LAN_NET} oifname "{EDGE_WAN_IFACE}" masquerade\n'
        "  }\n}\n"
    )
    loaded = bare.edge_exec(["nft", "-f", "-"], input=ruleset)
    assert loaded.returncode == 0, loaded.stderr
    try:
        res = bare.curl("pos1", url)
        assert (res.http_code, res.body.strip()) == (200, EDGE_WAN_IP)
        assert bare.curl("pos1", f"https://{CLOUD_IP}/").body.strip() == "cloud"
    finally:
        bare.edge_exec(["nft", "delete", "table", "ip", table], check=True)
    assert bare.curl("pos1", url, 1).exit_code != 0
    assert bare.edge_exec(["nft", "list", "ruleset"]).stdout.strip() == ""


def test_partner_to_inet_is_routed(bare: Lab) -> None:
    # inet forwards between its links (partner -> edge WAN already shown);
    # the edge reaches the cloud directly from its WAN address.
    assert bare.curl("edge", f"https://{CLOUD_IP}/").body.strip() == "cloud"
    assert bare.curl("partner", f"https://{CLOUD_IP}/").body.strip() == "cloud"
    assert bare.run("partner", "ip", "route", "get", STRANGER_IP).returncode == 0
    assert bare.run("partner", "ip", "route", "get", PARTNER_IP).returncode == 0
    assert INET_WAN_IP in bare.run("edge", "ip", "route", "show", "default").stdout


def test_teardown_leaves_nothing() -> None:
    require_lab()
    lab = Lab()
    lab.up()
    try:
        # An ssh master started from the root namespace (as testinfra does)
        # lives outside the lab's namespaces; down() must stop it too.
        cfg = str(lab.ssh_config_path)
        subprocess.run(["ssh", "-F", cfg, "edge", "true"], check=True, timeout=20)
        check = subprocess.run(
            ["ssh", "-F", cfg, "-O", "check", "edge"], capture_output=True, text=True
        )
        master = int(check.stderr.split("pid=")[1].split(")")[0])
        pids = lab.pids() | {master}
        assert len(pids) >= 7  # sshd, 5 servers, ssh session/relay...
    finally:
        lab.down()
    assert lab.down_seconds < 10
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.prefix not in left
    assert not [p for p in pids if _alive(p)]
    assert not lab.dir.exists()
    assert not [n for n in lab.ns.values() if Path("/etc/netns", n).exists()]
    lab.down()  # idempotent


def _unused_lab_id() -> str:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return next(f"{i:04x}" for i in range(0xFFFF, 0, -1) if f"pn{i:04x}-" not in names)


def test_cleanup_stale_removes_dead_labs_only(lab: Lab) -> None:
    lab_id = _unused_lab_id()
    stale = f"pn{lab_id}-stale"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    Path("/etc/netns", stale).mkdir(parents=True, exist_ok=True)
    stale_dir = lab.dir.with_name(f"posnet-lab-{lab_id}")
    stale_dir.mkdir()  # no owner file: its run crashed before writing it
    sleeper = subprocess.Popen(["ip", "netns", "exec", stale, "sleep", "60"])
    try:
        removed = cleanup_stale()
        sleeper.wait(timeout=5)
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)
    assert stale in removed
    assert not Path("/etc/netns", stale).exists()
    assert not stale_dir.exists()
    # The live session lab (owner: this process) was left alone.
    assert not set(lab.ns.values()) & set(removed)
    assert lab.ssh("true").returncode == 0


SIGTERM_PROBE = Path(__file__).with_name("sigterm_probe.py")


def test_sigterm_mid_test_removes_the_lab(tmp_path: Path) -> None:
    # A CI timeout sends SIGTERM: the labs of the running tests must go with pytest,
    # not stay until the next run's cleanup.
    require_lab()
    names = tmp_path / "names"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "lab",
         str(SIGTERM_PROBE)],
        env={**os.environ, "POSNET_LAB_NAMES": str(names)}, cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not names.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert names.exists(), proc.communicate(timeout=30)[0] if proc.poll() is not None else ""
        lab_names = names.read_text().split()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab_names and not [n for n in lab_names if n in listed], out[-2000:]
    assert proc.returncode != 0
