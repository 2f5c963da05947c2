"""A broken store cannot pass: each tampering of an applied edge is caught by `posnet
verify` and `posnet drift` (named), by the stranger's probe where it opens a port, and
undone by `posnet apply` (changed, then changed=0 on the next run). One lab for the
module; each tampering starts from the state the previous apply restored.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.targets.base import alive

from .e2e_support import posnet, recap, render_demo, running_lab, write_overlay
from .netns import EDGE_WAN_IP, Lab

pytestmark = pytest.mark.lab
SITE = "gent-01"
HOST = "gent-01-edge"
BARE = "ostend-05"  # a store without exposures
BARE_HOST = "ostend-05-edge"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab() as the_lab:
        yield the_lab


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_demo(tmp_path_factory.mktemp("tamper") / "build")


@pytest.fixture(scope="module")
def overlay(lab: Lab, tree: Path) -> Path:
    return write_overlay(
        lab, [HOST, BARE_HOST], {"posnet_watchdog_seconds": 30, "posnet_confirm_timeout": 10}
    )


def apply(lab: Lab, tree: Path, overlay: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return posnet(lab, "apply", str(tree), "-i", str(overlay), "--limit", HOST, *extra)


def verify(lab: Lab, tree: Path, overlay: Path) -> subprocess.CompletedProcess[str]:
    return posnet(lab, "verify", str(tree), "-i", str(overlay), "--limit", HOST)


def drift(lab: Lab, tree: Path, overlay: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return posnet(lab, "drift", str(tree), "-i", str(overlay), "--limit", HOST, *extra)


def stranger_probe(
    lab: Lab, tree: Path, site: str = SITE, *extra: str
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "generator", "probe", str(tree), "--site", site]
    return lab.run(
        "stranger", *argv, "--as", "stranger", "--timeout", "1.5", "--json", *extra, timeout=60
    )


def test_applied_store_is_in_sync(lab: Lab, tree: Path, overlay: Path) -> None:
    res = apply(lab, tree, overlay)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert recap(res.stdout, HOST)["changed"] > 0
    # The lab has no systemd: apply says what the host's init must start at boot.
    boot = "has no systemd; make its init run `{}` at boot"
    cmd = "dnsmasq -C /etc/posnet/dnsmasq.conf --pid-file=/run/posnet-dnsmasq.pid"
    assert boot.format(cmd) in " ".join(res.stdout.split()), res.stdout[-3000:]
    ok = verify(lab, tree, overlay)
    assert ok.returncode == 0, ok.stdout[-4000:] + ok.stderr[-2000:]
    assert f"ok   live state {HOST}: in sync" in ok.stdout
    d = drift(lab, tree, overlay, "--format", "json")
    assert d.returncode == 0, d.stdout + d.stderr
    report = json.loads(d.stdout)
    assert report["summary"]["in sync"] == 1 and report["hosts"][0]["drift"] == []


def test_stranger_sees_every_port_filtered(lab: Lab, tree: Path) -> None:
    res = stranger_probe(lab, tree)
    assert res.returncode == 0, res.stdout + res.stderr
    results = json.loads(res.stdout)
    assert all(r["ok"] and r["detail"].startswith("filtered") for r in results), results
    checks = {r["check"] for r in results}
    assert "port 22 filtered (management)" in checks
    assert "deliverect-pos1-api filtered" in checks


# A tampering: shell command on the edge, what verify/drift must name, whether it opens a
# port to the stranger, and the apply task that must report "changed" when undoing it.
Tamper = tuple[str, list[str], bool, str]
ACTIVATE = "Arm the watchdog and activate the ruleset"

ACCEPT_ALL: Tamper = (
    "nft insert rule inet posnet input accept && nft insert rule inet posnet forward accept",
    [
        "chain input: extra rule #1 rule without comment: accept",
        "chain forward: extra rule #1 rule without comment: accept",
    ],
    True,
    ACTIVATE,
)
EXTRA_DNAT: Tamper = (
    'nft add rule inet posnet prerouting iifname "wan0" tcp dport 2323 '
    "dnat ip to 198.51.100.140:8080",
    [
        "chain prerouting: extra rule #2 rule without comment: iifname wan0 tcp dport 2323 "
        "dnat to 198.51.100.140:8080"
    ],
    False,
    ACTIVATE,
)
DELETED_RULE: Tamper = (
    "nft delete rule inet posnet forward handle $(nft -a list chain inet posnet forward"
    " | sed -n 's/.*exposure deliverect-pos1-api.*# handle //p')",
    ['chain forward: missing rule "exposure deliverect-pos1-api partner deliverect"'],
    False,
    ACTIVATE,
)
# Flushing the rules of a policy-drop table also drops the management connection (no
# remote tool could repair that); a table removed altogether leaves all open.
FLUSHED_TABLE: Tamper = (
    "nft delete table inet posnet",
    ["table inet posnet is not loaded"],
    True,
    ACTIVATE,
)
# One command switches the whole table off: sets, chains and rules list as before.
DORMANT: Tamper = (
    "nft add table inet posnet '{ flags dormant; }'",
    ["table inet posnet: flags "],
    True,
    ACTIVATE,
)
STOPPED_DNSMASQ: Tamper = (
    'kill "$(cat /run/posnet-dnsmasq.pid)"',
    ["dnsmasq: not running (/run/posnet-dnsmasq.pid)"],
    False,
    "Restart the posnet dnsmasq",
)
IP_FORWARD_OFF: Tamper = (
    "echo 0 > /proc/sys/net/ipv4/ip_forward",
    ["net.ipv4.ip_forward = 0, expected 1"],
    False,
    "Set the kernel settings now",
)

# Forwarding off for the next boot only: the live value is still right.
SAVED_FORWARDING_OFF: Tamper = (
    "sed -i 's/^net.ipv4.ip_forward = 1/net.ipv4.ip_forward = 0/' /etc/sysctl.d/90-posnet.conf",
    [
        "after a reboot net.ipv4.ip_forward = 0 (/etc/sysctl.d/90-posnet.conf), expected 1",
    ],
    False,
    "Persist the kernel settings an edge needs (forwarding on, bridge netfilter off)",
)
# dnsmasq restarted on an edited config, then the file put back with its old mtime
# (`cp -p`): content and mtime are the build's, the daemon runs the edit; the change
# time (ctime) still tells.
RESTORED_UNDER_OLD_MTIME: Tamper = (
    "cp -p /etc/posnet/dnsmasq.conf /root/dnsmasq.orig"
    " && echo 'dhcp-option=option:router,198.51.100.150' >> /etc/posnet/dnsmasq.conf"
    ' && kill "$(cat /run/posnet-dnsmasq.pid)" && sleep 0.5'
    " && dnsmasq -C /etc/posnet/dnsmasq.conf --pid-file=/run/posnet-dnsmasq.pid"
    " && sleep 1.5 && cp -p /root/dnsmasq.orig /etc/posnet/dnsmasq.conf",
    ["dnsmasq: runs a configuration older than /etc/posnet/dnsmasq.conf"],
    False,
    "Restart the posnet dnsmasq",
)

# Tamperings that do not hide one another are applied together: one verify, drift, probe
# and apply per batch keeps the module fast. Each must still be named on its own, and
# the apply must report the task that undoes each one as changed. A removed table hides
# every rule change, so it gets a batch of its own.
BATCHES = {
    "accept-all on top of input and forward, extra dnat, deleted rule, stopped dnsmasq, "
    "ip_forward off, forwarding off after a reboot": [
        ACCEPT_ALL,
        EXTRA_DNAT,
        DELETED_RULE,
        STOPPED_DNSMASQ,
        IP_FORWARD_OFF,
        SAVED_FORWARDING_OFF,
    ],
    "flushed table": [FLUSHED_TABLE],
    "dormant table": [DORMANT],
    "config put back under its old mtime": [RESTORED_UNDER_OLD_MTIME],
}


def changed_tasks(out: str, host: str) -> set[str]:
    """Names of the tasks that reported `changed` for host in ansible-playbook's output."""
    names: set[str] = set()
    task = ""
    for line in out.splitlines():
        m = re.match(r"^TASK \[(.*)\] \**$", line)
        if m:
            task = m.group(1)
        elif re.match(rf"^changed: \[{re.escape(host)}\]", line):
            names.add(task)
    return names


@pytest.mark.parametrize("batch", list(BATCHES))
def test_tampering_is_caught_and_undone(lab: Lab, tree: Path, overlay: Path, batch: str) -> None:
    tampers = BATCHES[batch]
    for command, _, _, _ in tampers:
        done = lab.edge_exec(command, timeout=10)
        assert done.returncode == 0, done.stderr
    v = verify(lab, tree, overlay)
    assert v.returncode == 1, v.stdout[-3000:]
    d = drift(lab, tree, overlay)
    assert d.returncode == 5, d.stdout + d.stderr
    for _, named, _, _ in tampers:
        for text in named:
            assert text in v.stdout, v.stdout[-3000:]
            assert text in d.stdout, d.stdout
    if any(opens for _, _, opens, _ in tampers):
        p = stranger_probe(lab, tree)
        assert p.returncode == 1, p.stdout
        assert any(not r["ok"] for r in json.loads(p.stdout))
    fixed = apply(lab, tree, overlay)
    assert fixed.returncode == 0, fixed.stdout[-4000:] + fixed.stderr[-2000:]
    assert recap(fixed.stdout, HOST)["changed"] > 0
    undone = changed_tasks(fixed.stdout, HOST)
    for _, _, _, task in tampers:
        assert task in undone, (task, undone)


def test_rules_beside_posnets_table_are_named_and_left_to_the_admin(
    lab: Lab, tree: Path, overlay: Path
) -> None:
    """Another nft table with a hooked chain, and legacy iptables rules, run beside
    posnet's table: verify and drift passed while they dropped a partner's traffic or
    accepted everything unseen. They are named now; apply leaves them (another tool may
    own them) and says nothing changed, so the admin removes them."""
    tamper = (
        "nft add table inet evil && nft add chain inet evil evilfwd "
        "'{ type filter hook forward priority -10; policy accept; }' && "
        "nft add rule inet evil evilfwd tcp dport 8443 drop && "
        "iptables-legacy -I FORWARD -j ACCEPT"
    )
    assert lab.edge_exec(tamper, timeout=10).returncode == 0
    try:
        named = [
            "table inet evil beside posnet's hooks evilfwd (forward)",
            "iptables-legacy table filter: 1 rule(s) beside posnet's nftables",
        ]
        v = verify(lab, tree, overlay)
        d = drift(lab, tree, overlay)
        assert v.returncode == 1 and d.returncode == 5, v.stdout[-3000:] + d.stdout
        for text in named:
            assert text in v.stdout and text in d.stdout, (text, d.stdout)
    finally:
        undo = "nft delete table inet evil; iptables-legacy -D FORWARD -j ACCEPT"
        lab.edge_exec(undo, timeout=10)
    assert drift(lab, tree, overlay).returncode == 0


def dhcp_address(lab: Lab, mac: str) -> str:
    """The address the edge's DHCP offers a client with `mac` on the LAN (a macvlan
    beside pos1's interface, removed after; busybox udhcpc, no address configured)."""
    script = (
        "ip link add dh0 link eth0 type macvlan mode bridge && "
        f"ip link set dh0 address {mac} && ip link set dh0 up && "
        "timeout 20 busybox udhcpc -i dh0 -n -q -f -s /bin/true -t 4 2>&1; ip link del dh0"
    )
    out = lab.run("pos1", "sh", "-c", script, timeout=40).stdout
    m = re.search(r"lease of (\S+) obtained", out)
    return m.group(1) if m else out


# pos1's reservation in the demo fleet's gent-01 (198.51.100.140, the exposure's target).
POS1_MAC, POS1_IP = "52:54:00:00:01:40", "198.51.100.140"
RESTART_DNSMASQ = (
    'kill "$(cat /run/posnet-dnsmasq.pid)" && sleep 0.5'
    " && dnsmasq -C /etc/posnet/dnsmasq.conf --pid-file=/run/posnet-dnsmasq.pid"
)


def test_reserved_address_leased_to_another_host_is_freed(
    lab: Lab, tree: Path, overlay: Path
) -> None:
    """A lease that gives pos1's reserved address to another MAC (a rogue client that
    asked first, a hand-edited lease file): dnsmasq then offers pos1 a pool address and
    the partner's DNAT points at whoever holds .140. Config, daemon and ruleset are all
    posnet's, so verify and drift passed and apply changed nothing."""
    stolen = f'echo "0 52:54:00:00:99:99 {POS1_IP} thief *" >> /var/lib/misc/dnsmasq.leases'
    assert lab.edge_exec(f"{stolen} && {RESTART_DNSMASQ}", timeout=10).returncode == 0
    assert dhcp_address(lab, POS1_MAC) != POS1_IP
    named = (
        f"dnsmasq: {POS1_IP}, reserved for pos1 ({POS1_MAC}), is leased to "
        "52:54:00:00:99:99 (/var/lib/misc/dnsmasq.leases)"
    )
    v = verify(lab, tree, overlay)
    d = drift(lab, tree, overlay)
    assert v.returncode == 1 and d.returncode == 5, v.stdout[-3000:] + d.stdout
    assert named in v.stdout and named in d.stdout, d.stdout
    fixed = apply(lab, tree, overlay)
    assert fixed.returncode == 0, fixed.stdout[-4000:]
    assert "Restart the posnet dnsmasq" in changed_tasks(fixed.stdout, HOST)
    assert dhcp_address(lab, POS1_MAC) == POS1_IP
    assert drift(lab, tree, overlay).returncode == 0


def test_second_dhcp_server_on_the_edge_is_named(lab: Lab, tree: Path, overlay: Path) -> None:
    """A second dnsmasq on the LAN's DHCP port (its own range, its own router): both get
    every broadcast and both answer. posnet's dnsmasq, its files and the ruleset are
    untouched, so verify and drift passed. It is named now; apply leaves a process it
    did not start to the admin."""
    rogue = (
        "dnsmasq -C /dev/null --port=0 --interface=br-lan --bind-interfaces"
        " --dhcp-range=198.51.100.185,198.51.100.190,12h --dhcp-option=3,198.51.100.130"
        " --dhcp-leasefile=/run/rogue.leases --pid-file=/run/rogue-dnsmasq.pid"
    )
    assert lab.edge_exec(rogue, timeout=10).returncode == 0
    try:
        pid = lab.edge_exec("cat /run/rogue-dnsmasq.pid", timeout=10).stdout.strip()
        named = f"dnsmasq: pid {pid} (dnsmasq) also serves udp 67"
        v = verify(lab, tree, overlay)
        d = drift(lab, tree, overlay)
        assert v.returncode == 1 and d.returncode == 5, v.stdout[-3000:] + d.stdout
        assert named in v.stdout and named in d.stdout, d.stdout
    finally:
        lab.edge_exec('kill "$(cat /run/rogue-dnsmasq.pid)"', timeout=10)
    assert drift(lab, tree, overlay).returncode == 0


def test_dhcp_server_on_another_bridge_is_no_rival(lab: Lab, tree: Path, overlay: Path) -> None:
    """libvirt's (or LXD's) dnsmasq on its own bridge: DHCP on 0.0.0.0:67 like posnet's,
    but bound to that bridge (dnsmasq binds its DHCP socket to the device when it
    serves exactly one interface), DNS on the bridge's address. It never gets the
    LAN's broadcasts, so it is no rival; /proc/net/udp alone showed it as one."""
    other = (
        "ip link add virbr0 type bridge && ip addr add 192.168.122.1/24 dev virbr0"
        " && ip link set virbr0 up && dnsmasq -C /dev/null --strict-order --bind-dynamic"
        " --except-interface=lo --interface=virbr0 --listen-address=192.168.122.1"
        " --dhcp-range=192.168.122.2,192.168.122.254,12h"
        " --dhcp-leasefile=/run/virbr0.leases --pid-file=/run/virbr0-dnsmasq.pid"
    )
    try:
        started = lab.edge_exec(other, timeout=10)
        assert started.returncode == 0, started.stderr
        pid = lab.edge_exec("cat /run/virbr0-dnsmasq.pid", timeout=10).stdout.strip()
        # The premise, as ss shows it: both DHCP sockets on 0.0.0.0:67, each bound to
        # its bridge; the other dnsmasq's DNS on 192.168.122.1 only.
        ss = lab.edge_exec("ss -H -ulnp", timeout=10).stdout
        mine = [line for line in ss.splitlines() if f"pid={pid}," in line]
        assert any("0.0.0.0%virbr0:67 " in line for line in mine), ss
        assert any("192.168.122.1:53 " in line for line in mine), ss
        assert "0.0.0.0%br-lan:67 " in ss, ss
        v = verify(lab, tree, overlay)
        assert v.returncode == 0 and "also serves" not in v.stdout, v.stdout[-3000:]
    finally:
        lab.edge_exec(
            'kill "$(cat /run/virbr0-dnsmasq.pid)"; ip link del virbr0; rm -f /run/virbr0*',
            timeout=10,
        )


def test_second_apply_changes_nothing_and_drift_is_back_in_sync(
    lab: Lab, tree: Path, overlay: Path
) -> None:
    again = apply(lab, tree, overlay)
    assert again.returncode == 0 and recap(again.stdout, HOST)["changed"] == 0, again.stdout[-3000:]
    d2 = drift(lab, tree, overlay, "--format", "markdown")
    assert d2.returncode == 0 and f"| {SITE} | {HOST} | in sync |" in d2.stdout, d2.stdout


def test_verify_passes_again_and_partner_reaches_pos(lab: Lab, tree: Path, overlay: Path) -> None:
    ok = verify(lab, tree, overlay)
    assert ok.returncode == 0, ok.stdout[-4000:]
    assert lab.curl("partner", f"https://{EDGE_WAN_IP}:18443/", 3).http_code == 200


def two_edges(overlay: Path, name: str, broken: dict[str, str]) -> Path:
    """The lab's two-edge fleet: HOST, and BARE_HOST pinned to the lab edge and broken as
    given. Its variables go in a host_vars file beside the inventory: the build's own
    host_vars (its real, documentation-range address) outrank an inventory file's host
    variables, and no packet may head there from the root namespace."""
    folder = overlay.parent / name
    (folder / "host_vars").mkdir(parents=True, exist_ok=True)
    data = json.loads(overlay.read_text())
    data["posnet_edges"]["hosts"] = {HOST: None, BARE_HOST: None}
    inv = folder / "inventory.yml"
    inv.write_text(json.dumps(data))
    pinned = {"ansible_host": EDGE_WAN_IP, **broken}
    (folder / "host_vars" / f"{BARE_HOST}.yml").write_text(json.dumps(pinned))
    return inv


def dnsmasq_runs(lab: Lab) -> bool:
    """The playbooks' own test: this machine's init reaps late, a killed dnsmasq lingers
    as a zombie that `kill -0` would call running."""
    return lab.edge_exec(alive("/run/posnet-dnsmasq.pid"), timeout=10).returncode == 0


# A store with a firewall kind the playbook does not know fails at its first firewall
# task (before touching the ruleset of the edge it shares with HOST); one that refuses
# the login is unreachable (so is one without a working Python). Ansible's
# max_fail_percentage counts failed stores only.
FAILED = {"posnet_firewall": "none-such"}
UNREACHABLE = {"ansible_user": "posnet-nobody"}


def test_max_fail_percentage_zero_stops_the_roll_out(lab: Lab, tree: Path, overlay: Path) -> None:
    """The healthy store's dnsmasq (stopped by hand, restarted by the DHCP play) stays
    stopped: the run ended at the task that failed on the broken store."""
    inv = two_edges(overlay, "failing", FAILED)
    assert lab.edge_exec(STOPPED_DNSMASQ[0], timeout=10).returncode == 0
    # One fork: both stores are the same lab edge, whose ssh control socket two parallel
    # first logins would race for (the loser would be unreachable, not failed).
    args = ["apply", str(tree), "-i", str(inv), "--limit", f"{BARE_HOST}:{HOST}", "--forks", "1"]
    res = posnet(lab, *args, "--max-fail-percentage", "0")
    assert res.returncode == 1, res.stdout[-3000:]
    assert f"posnet apply: {BARE_HOST}: failed" in res.stderr
    assert "NO MORE HOSTS LEFT" in res.stdout
    assert not dnsmasq_runs(lab), (
        res.stdout
        + lab.edge_exec(
            "ps -ef; cat /run/posnet-dnsmasq.pid; cat /proc/$(cat /run/posnet-dnsmasq.pid)/status",
            timeout=10,
        ).stdout
    )
    res = posnet(lab, *args)
    assert res.returncode == 1, res.stdout[-3000:]
    assert f"posnet apply: {BARE_HOST}: failed" in res.stderr
    assert recap(res.stdout, HOST)["failed"] == 0
    assert "Restart the posnet dnsmasq" in changed_tasks(res.stdout, HOST)
    assert dnsmasq_runs(lab)


def test_fleet_run_isolates_an_unreachable_store(lab: Lab, tree: Path, overlay: Path) -> None:
    """Two stores, one broken (its edge refuses our login): the other is applied through
    every play, the run exits 1 naming the broken one; drift calls it unreachable (exit 4
    with no drift)."""
    inv = two_edges(overlay, "broken", UNREACHABLE)
    assert lab.edge_exec(IP_FORWARD_OFF[0], timeout=10).returncode == 0
    args = ["apply", str(tree), "-i", str(inv), "--limit", f"{BARE_HOST}:{HOST}"]
    res = posnet(lab, *args, "--forks", "2")
    assert res.returncode == 1, res.stdout[-3000:]
    assert f"posnet apply: {BARE_HOST}: unreachable" in res.stderr
    assert recap(res.stdout, HOST)["failed"] == 0 and recap(res.stdout, HOST)["ok"] > 3
    assert "Set the kernel settings now" in changed_tasks(res.stdout, HOST)
    d = posnet(lab, "drift", str(tree), "-i", str(inv), "--limit", f"{BARE_HOST}:{HOST}")
    assert d.returncode == 4, d.stdout + d.stderr
    assert f"unreachable  {BARE_HOST}" in d.stdout and f"in sync      {HOST}" in d.stdout


def test_store_without_exposures_is_probed_filtered(lab: Lab, tree: Path, overlay: Path) -> None:
    pin = json.dumps({"ansible_host": EDGE_WAN_IP})
    res = posnet(
        lab,
        "apply",
        str(tree),
        "-i",
        str(overlay),
        "--limit",
        BARE_HOST,
        "--tags",
        "firewall",
        "-e",
        pin,
    )
    assert res.returncode == 0, res.stdout[-3000:]
    p = stranger_probe(lab, tree, BARE, "--host", EDGE_WAN_IP)
    assert p.returncode == 0, p.stdout + p.stderr
    results = json.loads(p.stdout)
    assert results and all(r["detail"].startswith("filtered") for r in results)
    assert "port 22 filtered (management)" in {r["check"] for r in results}
