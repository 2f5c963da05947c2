"""The live-vs-intended comparison (playbooks/library/posnet_state.py), the fleet
verdicts of `posnet drift` and the port states of `posnet probe`, without the lab.

Rulesets are loaded for real, each in its own scratch network namespace, so a
"tampered live" ruleset and the intended one are both what the kernel lists.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.inventory import artifacts, file_spec
from generator.plan import Plan
from generator.probe import probe_exposure, probe_not_exposed, tcp_state
from generator.runtime import drift, probe
from generator.targets import playbook_kinds, targets
from generator.targets.base import Daemon, alive, runs_as_started
from generator.verify.state import (
    EXIT_DRIFT,
    EXIT_IN_SYNC,
    EXIT_UNCHECKED,
    collect,
    exit_code,
    parse_recap,
    render,
)
from tests.conftest import load_playbook_plugin, require_tool
from tests.treeutil import render_demo

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="scratch namespaces need root")


ps = load_playbook_plugin("library", "posnet_state")
DAEMONS: dict[str, dict[str, Any]] = playbook_kinds("daemons")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_demo(tmp_path_factory.mktemp("state") / "build")


def _nft(tree: Path, tamper: str = "", site: str = "gent-01") -> dict[str, Any]:
    require_tool("nft")
    text = (tree / f"sites/{site}/firewall/nftables.nft").read_text()
    extra = f" && {tamper}" if tamper else ""
    res = ps._scratch(f'nft -f "$1"{extra} && nft -j list table inet posnet', text)
    assert res.returncode == 0, res.stderr
    return dict(ps.normalise_nft(json.loads(res.stdout)))


@needs_root
def test_same_ruleset_in_sync_counters_and_handles_ignored(tree: Path) -> None:
    want = _nft(tree)
    # Traffic counters differ between live and scratch: a counter with values set.
    live = _nft(tree, "nft add rule inet posnet output counter packets 5 bytes 9 accept")
    assert ps.compare_nft(_nft(tree), want) == []
    assert [f["detail"] for f in ps.compare_nft(live, want)] == [
        "chain output: extra rule #1 rule without comment: accept"
    ]


@needs_root
@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (
            "nft insert rule inet posnet input accept",
            "chain input: extra rule #1 rule without comment: accept",
        ),
        (
            "nft add rule inet posnet prerouting tcp dport 2222 dnat ip to 198.51.100.140:22",
            "chain prerouting: extra rule #2 rule without comment: tcp dport 2222 "
            "dnat to 198.51.100.140:22",
        ),
        (
            "nft flush chain inet posnet postrouting",
            'chain postrouting: missing rule "lan to internet"',
        ),
        (
            "nft chain inet posnet forward '{ policy accept; }'",
            "chain forward: policy accept, expected drop",
        ),
        (
            "nft add element inet posnet src_deliverect-pos1-api '{ 192.0.2.99 }'",
            "set src_deliverect-pos1-api: changed",
        ),
    ],
)
def test_each_nft_tampering_is_named(tree: Path, tamper: str, expected: str) -> None:
    found = [f["detail"] for f in ps.compare_nft(_nft(tree, tamper), _nft(tree))]
    assert expected in found, found


@needs_root
def test_a_dormant_table_is_drift(tree: Path) -> None:
    """`flags dormant` switches every chain off: nothing is filtered, yet the sets,
    chains and rules listed as before, so verify, drift and apply called it in sync."""
    live = _nft(tree, "nft add table inet posnet '{ flags dormant; }'")
    (found,) = [f["detail"] for f in ps.compare_nft(live, _nft(tree))]
    assert found.startswith("table inet posnet: flags "), found  # nft 1.0.6: "ipv4_addr"
    assert found.endswith(", expected none (dormant: filters nothing)"), found


@needs_root
def test_tables_beside_posnets_that_hook_packets_are_drift(tree: Path) -> None:
    """Another table's base chain sees every packet too (it can drop or redirect what
    posnet's rules admit); one without a hook does nothing and is not named."""
    require_tool("nft")
    text = (tree / "sites/gent-01/firewall/nftables.nft").read_text()
    tamper = (
        "nft add table inet evil && nft add chain inet evil evilfwd "
        "'{ type filter hook forward priority -10 ; policy accept ; }' && "
        "nft add table ip quiet && nft add chain ip quiet plain"
    )
    res = ps._scratch(f'nft -f "$1" && {tamper} && nft -j list ruleset', text)
    assert res.returncode == 0, res.stderr
    found = [f["detail"] for f in ps.foreign_tables(json.loads(res.stdout))]
    assert found == ["table inet evil beside posnet's hooks evilfwd (forward)"]


def test_legacy_iptables_rules_beside_nftables_are_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    """x_tables rules are not in `nft list`: a legacy ACCEPT or DNAT ran unseen."""
    saved = {
        "iptables-legacy-save": "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n"
        "-A INPUT -j ACCEPT\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n",
        "ip6tables-legacy-save": "",
    }
    monkeypatch.setattr(ps.shutil, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(
        ps,
        "_run",
        lambda argv: subprocess.CompletedProcess(argv, 0, saved[argv[0]], ""),
    )
    assert [f["detail"] for f in ps.legacy_rules()] == [
        "iptables-legacy table filter: 1 rule(s) beside posnet's nftables, "
        "policy not ACCEPT in FORWARD"
    ]
    saved["iptables-legacy-save"] = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"
    assert ps.legacy_rules() == []


@needs_root
def test_dns_set_members_added_by_dnsmasq_are_not_drift(tree: Path) -> None:
    """The bad state an audit found: on a restricted-egress store, dnsmasq adds every
    answered address to the flow's dns_ set, so verify and drift called every such store
    drifted and each apply re-activated its firewall. Members of a set rendered empty
    are not compared; the set's declaration still is, and other sets' members are."""
    want = _nft(tree, site="ostend-05")
    add = "nft add element inet posnet dns_deliverect_tunnel '{ 192.0.2.9 }'"
    assert ps.compare_nft(_nft(tree, add, site="ostend-05"), want) == []
    gone = "nft delete set inet posnet dns_openpos_outbound"
    drop = "nft flush chain inet posnet forward && " + gone
    found = [f["detail"] for f in ps.compare_nft(_nft(tree, drop, site="ostend-05"), want)]
    assert "set dns_openpos_outbound: missing" in found, found
    typed = "nft add set inet posnet dns_x '{ type ipv4_addr; }'"
    found = [f["detail"] for f in ps.compare_nft(_nft(tree, typed, site="ostend-05"), want)]
    assert found == ["set dns_x: extra"], found


def test_missing_table_is_named() -> None:
    want = {"sets": {}, "chains": {}, "rules": {}}
    assert ps.compare_nft(None, want) == [
        {"what": "firewall", "detail": "table inet posnet is not loaded"}
    ]


@needs_root
def test_iptables_extra_and_missing_rules_named(tree: Path) -> None:
    require_tool("iptables-restore")
    text = (tree / "sites/antwerp-02/firewall/rules.v4").read_text()
    want = ps.parse_iptables_save(
        ps._scratch('iptables-restore "$1" && iptables-save', text).stdout
    )
    tampered = ps._scratch(
        'iptables-restore "$1" && iptables -I FORWARD -j ACCEPT && iptables -D INPUT -i lo '
        "-m comment --comment loopback -j ACCEPT && iptables -P INPUT ACCEPT && iptables-save",
        text,
    )
    assert tampered.returncode == 0, tampered.stderr
    found = [
        f["detail"]
        for f in ps.compare_iptables(ps.parse_iptables_save(tampered.stdout), want, "ipv4")
    ]
    assert (
        "chain ipv4 filter FORWARD: extra rule #1 rule without comment: -A FORWARD -j ACCEPT"
        in found
    )
    assert 'chain ipv4 filter INPUT: missing rule "loopback"' in found
    assert "chain ipv4 filter INPUT: policy ACCEPT, expected DROP" in found
    assert ps.compare_iptables(want, want, "ipv4") == []


def test_files_hash_mode_and_secret_markers(tmp_path: Path) -> None:
    good = tmp_path / "good.conf"
    good.write_text("port=0\n")
    good.chmod(0o644)
    edited = tmp_path / "edited.conf"
    edited.write_text("port=53\n")
    edited.chmod(0o644)
    secret = tmp_path / "secret.conf"
    secret.write_text("password=@@POSNET_SECRET_1@@\n")
    secret.chmod(0o644)
    import hashlib

    digest = hashlib.sha256(b"port=0\n").hexdigest()
    files = [
        {"dest": str(good), "mode": "0644", "sha256": digest},
        {"dest": str(edited), "mode": "0644", "sha256": digest},
        {"dest": str(secret), "mode": "0600", "sha256": "x", "secret": True},
        {"dest": str(tmp_path / "gone"), "mode": "0644", "sha256": digest},
    ]
    found = [f["detail"] for f in ps.file_findings(files)]
    owned = [] if os.geteuid() == 0 else ["not owned by root"]
    assert f"{edited}: content differs from the build" in found
    assert f"{secret}: secret marker left unfilled" in found
    assert f"{secret}: mode 644, expected 0600" in found
    assert f"{tmp_path / 'gone'}: missing" in found
    assert not [f for f in found if f.startswith(f"{good}:")] or owned


def test_services_not_running_and_stale(tmp_path: Path) -> None:
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text("port=0\n")
    files = [{"dest": str(conf), "component": "dhcp", "server": "dnsmasq"}]
    found = ps.service_findings(files, DAEMONS)
    assert found and "dnsmasq: not running" in found[0]["detail"]
    # A pid file pointing at this (non-dnsmasq) process is not dnsmasq.
    (tmp_path / "pid").write_text(str(os.getpid()))
    assert ps.service_findings(
        files, {"dnsmasq": {**DAEMONS["dnsmasq"], "pid": str(tmp_path / "pid")}}
    )[0]["detail"].endswith(f"is not dnsmasq (it runs {os.readlink('/proc/self/exe')})")
    # A daemon (sleep) started after its config was written runs it.
    daemon = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "pid").write_text(str(daemon.pid))
        as_sleep = {
            "dnsmasq": {**DAEMONS["dnsmasq"], "name": "sleep", "pid": str(tmp_path / "pid"),
                        "start": ""}
        }  # fmt: skip
        assert ps.service_findings(files, as_sleep) == []
        # Edited after the start, then given its old mtime back (`cp -p`, `touch -d`):
        # the change time still says so.
        time.sleep(1.5)
        conf.write_text("port=0\ndhcp-option=option:router,198.51.100.150\n")
        os.utime(conf, (1, 1))
        found = ps.service_findings(files, as_sleep)
        assert found and "runs a configuration older than" in found[0]["detail"], found
    finally:
        daemon.kill()
        daemon.wait()


@pytest.mark.parametrize(
    ("argv", "start", "found"),
    [
        # an impostor under the daemon's name (`exec -a dnsmasq sleep 30`)
        (["bash", "-c", "exec -a dnsmasq sleep 30"], "", "is not dnsmasq (it runs "),
        # the daemon restarted by hand with options of its own
        (["sleep", "31"], "sleep 30", "runs `sleep 31`, not posnet's `sleep 30`"),
    ],
)
def test_a_process_that_is_not_the_daemon_posnet_starts_is_drift(
    tmp_path: Path, argv: list[str], start: str, found: str
) -> None:
    """The pid file's process had only to hold the name in its command line: a renamed
    `sleep`, or dnsmasq restarted with a rogue DNS server and router, passed verify,
    drift and apply. Its program and, where posnet gives it, its command must match."""
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text("port=0\n")
    os.utime(conf, (1, 1))
    proc = subprocess.Popen(argv)
    try:
        pidfile = tmp_path / "pid"
        pidfile.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # bash has exec'd sleep
            if os.path.basename(os.readlink(f"/proc/{proc.pid}/exe")) == "sleep":
                break
            time.sleep(0.01)
        name = "dnsmasq" if not start else "sleep"
        daemons = {
            "dnsmasq": {"name": name, "component": "dhcp", "pid": str(pidfile), "start": start}
        }
        spec = [{"dest": str(conf), "component": "dhcp", "server": "dnsmasq"}]
        details = [f["detail"] for f in ps.service_findings(spec, daemons)]
        assert len(details) == 1 and found in details[0], details
        if start:  # the same command exactly is the daemon
            daemons["dnsmasq"]["start"] = "sleep 31"
            assert ps.service_findings(spec, daemons) == []
    finally:
        proc.kill()
        proc.wait()


def test_apply_restarts_what_is_not_the_daemon_as_posnet_started_it(tmp_path: Path) -> None:
    """apply's own test (playbooks/dhcp.yml) accepted any live pid: an impostor under
    the daemon's name, or the daemon run with other options, stayed, DHCP with it."""
    pidfile = tmp_path / "pid"

    def runs(name: str, command: str) -> bool:
        test = runs_as_started(str(pidfile), name, command)
        return subprocess.run(["sh", "-c", test]).returncode == 0

    for argv, name, command, expected in [
        (["sleep", "30"], "sleep", "sleep 30", True),
        (["sleep", "31"], "sleep", "sleep 30", False),
        (["bash", "-c", "exec -a dnsmasq sleep 30"], "dnsmasq", "dnsmasq 30", False),
    ]:
        proc = subprocess.Popen(argv)
        try:
            pidfile.write_text(f"{proc.pid}\n")
            time.sleep(0.2)  # bash has exec'd sleep
            assert runs(name, command) is expected, (argv, name, command)
        finally:
            proc.kill()
            proc.wait()
    assert not runs("sleep", "sleep 30")  # and a pid gone


def _zombie(tmp_path: Path) -> tuple[int, Path]:
    """A child that has exited and is not reaped yet, and a pid file naming it."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    status = Path(f"/proc/{pid}/status")
    for _ in range(200):
        if "\nState:\tZ" in status.read_text():
            break
        time.sleep(0.01)
    pidfile = tmp_path / "zombie.pid"
    pidfile.write_text(f"{pid}\n")
    return pid, pidfile


def test_a_zombie_is_not_running(tmp_path: Path) -> None:
    """A daemon killed on a host whose init reaps late still answers `kill -0`; the
    playbooks' test and verify both call it stopped, so apply starts it again."""
    pid, pidfile = _zombie(tmp_path)
    try:
        assert "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
        assert subprocess.run(["sh", "-c", f'kill -0 "$(cat {pidfile})"']).returncode == 0
        assert subprocess.run(["sh", "-c", alive(str(pidfile))]).returncode != 0
        conf = tmp_path / "dnsmasq.conf"
        conf.write_text("port=0\n")
        as_python = {"dnsmasq": {**DAEMONS["dnsmasq"], "name": "python", "pid": str(pidfile)}}
        spec = [{"dest": str(conf), "component": "dhcp", "server": "dnsmasq"}]
        found = ps.service_findings(spec, as_python)
        assert [f["detail"] for f in found] == [f"python: not running ({pidfile})"]
    finally:
        os.waitpid(pid, 0)
    live = tmp_path / "live.pid"
    live.write_text(f"{os.getpid()}\n")
    assert subprocess.run(["sh", "-c", alive(str(live))]).returncode == 0
    for gone in (tmp_path / "missing.pid", pidfile):  # no file; a pid now reaped
        assert subprocess.run(["sh", "-c", alive(str(gone))]).returncode != 0


def test_ddns_clients_checked_by_the_server_the_inventory_names() -> None:
    """A file names the target whose daemon reads it (`server`); each stopped client is
    named, and a file of another component or with no server names no daemon."""
    for client in ("inadyn", "ddclient"):
        spec = [{"dest": f"/etc/{client}.conf", "component": "ddns", "server": client}]
        found = ps.service_findings(spec, DAEMONS)
        assert [f["detail"] for f in found] == [f"{client}: not running (/run/{client}.pid)"]
    assert ps.service_findings([{"dest": "/etc/inadyn.conf", "component": "ddns"}], DAEMONS) == []
    wrong = [{"dest": "/etc/inadyn.conf", "component": "dhcp", "server": "inadyn"}]
    assert ps.service_findings(wrong, DAEMONS) == []


def test_the_inventory_names_the_daemon_of_every_file(demo_plans: dict[str, Plan]) -> None:
    """Every installed file of a target with a daemon carries that target as `server`,
    and the daemon's start command names the pid file verify reads and the config."""
    seen = set()
    for plan in demo_plans.values():
        for target in (t for t in targets() if t.daemon is not None and t.applies_to(plan)):
            for declared in target.artifacts(plan):
                installed = {a.destination: a for a in artifacts(plan, declared.host)}
                spec = file_spec(plan, installed[declared.destination])
                assert spec["server"] == target.name
                assert spec["component"] == target.daemon.component
                start = DAEMONS[target.name]["start"]
                if start:
                    assert DAEMONS[target.name]["pid"] in start
                    assert spec["dest"] in start
                seen.add(target.name)
    assert {"dnsmasq", "inadyn", "nginx", "apache"} <= seen


def test_a_start_command_must_use_its_own_pid_file_and_config() -> None:
    ok = Daemon("toyd", "toy", "/run/toyd.pid", "toyd -c {config} -p {pidfile}", "/etc/toy")
    assert ok.playbook() == {
        "name": "toyd",
        "component": "toy",
        "pid": "/run/toyd.pid",
        "start": "toyd -c /etc/toy -p /run/toyd.pid",
        "config": "/etc/toy",
        "own_unit": False,
        "leases": "",
    }
    with pytest.raises(ValueError, match=r"toyd: start command lacks \{pidfile\}"):
        Daemon("toyd", "toy", "/run/toyd.pid", "toyd -p /run/other.pid")
    with pytest.raises(ValueError, match=r"lacks \{config\}"):
        Daemon("toyd", "toy", "/run/toyd.pid", "toyd -p {pidfile}", "/etc/toy")


def test_daemon_table_is_the_targets_declaration() -> None:
    """posnet_state keeps no table of its own: a daemon a target declares (an extension
    target too) is checked, one with no declaration is not."""
    assert not hasattr(ps, "SERVICES")
    assert {"dnsmasq", "inadyn", "ddclient", "nginx", "apache"} <= set(DAEMONS)
    proxy = [{"dest": "/etc/nginx/conf.d/posnet-p1.conf", "component": "proxy", "server": "nginx"}]
    assert [f["detail"] for f in ps.service_findings(proxy, DAEMONS)] == [
        "nginx: not running (/run/nginx.pid)"
    ]
    toy = {"toy": {"name": "toyd", "component": "toy", "pid": "/run/toyd.pid", "config": "*"}}
    spec = [{"dest": "/etc/toy.conf", "component": "toy", "server": "toy"}]
    assert [f["detail"] for f in ps.service_findings(spec, toy)] == [
        "toyd: not running (/run/toyd.pid)"
    ]
    assert ps.service_findings(spec, {}) == []


def test_sysctl_required_and_optional() -> None:
    found = ps.sysctl_findings(
        {"net.ipv4.ip_forward": "7", "net.posnet.absent": "?0", "net.posnet.needed": "1"}
    )
    details = [f["detail"] for f in found]
    assert any(d.startswith("net.ipv4.ip_forward = ") and d.endswith("expected 7") for d in details)
    assert "net.posnet.needed: not available" in details
    assert not any("absent" in d for d in details)


# ---------------------------------------------------------------------------- verdicts


def _report(d: Path, host: str, drift: list[dict[str, str]], error: str = "") -> None:
    data = {"host": host, "site": host.removesuffix("-edge"), "drift": drift, "error": error}
    (d / f"{host}.json").write_text(json.dumps(data))


RECAP = """
PLAY RECAP *********************************************************************
a-edge                     : ok=2    changed=0    unreachable=0    failed=0    skipped=0
b-edge                     : ok=2    changed=0    unreachable=0    failed=0    skipped=0
c-edge                     : ok=0    changed=0    unreachable=1    failed=0    skipped=0
"""


def test_verdicts_and_exit_codes(tmp_path: Path) -> None:
    _report(tmp_path, "a-edge", [])
    _report(tmp_path, "b-edge", [{"what": "firewall", "detail": "chain input: extra rule #1 x"}])
    recap = parse_recap("\x1b[0;32m" + RECAP)
    states = collect(tmp_path, recap)
    assert [(s.host, s.verdict) for s in states] == [
        ("a-edge", "in sync"),
        ("b-edge", "drifted"),
        ("c-edge", "unreachable"),
    ]
    assert exit_code(states) == EXIT_DRIFT == 5
    assert exit_code([states[0], states[2]]) == EXIT_UNCHECKED == 4
    assert exit_code([states[0]]) == EXIT_IN_SYNC == 0
    assert exit_code([]) == EXIT_UNCHECKED
    md = render(states, "markdown")
    assert "| b | b-edge | drifted | firewall: chain input: extra rule #1 x |" in md
    js = json.loads(render(states, "json"))
    assert js["summary"] == {"in sync": 1, "drifted": 1, "unreachable": 1, "error": 0}
    text = render(states, "text")
    assert "posnet drift: 3 hosts: 1 in sync, 1 drifted, 1 unreachable, 0 error" in text


def test_drift_help_documents_exit_codes() -> None:
    res = CliRunner().invoke(drift, ["--help"])
    assert res.exit_code == 0
    for line in ("0  every host checked and in sync", "5  drift found", "4  no drift found"):
        assert line in res.output


def test_probe_needs_site_or_all(tree: Path) -> None:
    res = CliRunner().invoke(probe, [str(tree)])
    assert res.exit_code == 2 and "give --site ID or --all" in res.output


# ---------------------------------------------------------------------------- probe


def test_tcp_states_open_and_closed_on_loopback() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    assert tcp_state("127.0.0.1", port, 2)[0] == "open"  # the backlog answers the SYN
    srv.close()
    state, why = tcp_state("127.0.0.1", port, 2)
    assert state == "closed" and "RST" in why
    # On a default-drop edge a closed port is a failure: the packet got through.
    (r,) = probe_not_exposed("127.0.0.1", [(port, "blocked")], 2)
    assert not r.ok and r.detail.startswith("closed")
    (r2,) = probe_not_exposed("127.0.0.1", [(port, "blocked")], 2, default_drop=False)
    assert r2.ok


def test_a_stranger_reaching_an_exposure_fails_open_or_closed() -> None:
    """`--as stranger` promises that an exposure is filtered for anyone outside its
    allow-list: an open port and also a closed one (an RST: the packet got through the
    edge) fail; only silence passes. The audit found no test of the closed case."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    exposure = {"id": "x-api", "public_host": "127.0.0.1", "public_port": port}
    (opened,) = probe_exposure(exposure, "stranger", None, 2.0)
    srv.close()
    (closed,) = probe_exposure(exposure, "stranger", None, 2.0)
    assert not opened.ok and opened.detail.startswith("open"), opened
    assert not closed.ok and closed.detail.startswith("closed"), closed


def test_a_suite_that_hangs_is_stopped_with_everything_it_started(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """verify waited forever on a host that stopped answering mid-run (its ssh kept open
    by a ControlMaster): the suite now has a time limit, and its whole session goes."""
    from generator import runtime

    child = f"600.{os.getpid()}"  # a sleep of its own, to find it by
    script = f"import subprocess, time; subprocess.Popen(['sleep', '{child}']); time.sleep(60)"
    started = time.monotonic()
    rc = runtime._suite([sys.executable, "-c", script], dict(os.environ), 1.0)
    assert rc == 1 and time.monotonic() - started < 10
    assert "did not finish in 1 s" in capsys.readouterr().err
    time.sleep(0.2)
    for pattern in (re.escape(f"sleep {child}"), re.escape(script)):
        left = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        assert left.stdout.strip() == "", (pattern, left.stdout)


def test_under_systemd_only_posnets_own_units_are_held_to_its_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd runs inadyn and ddclient as the Debian services, with their own
    arguments: only the program is checked there. dnsmasq runs under posnet's own unit,
    whose ExecStart is posnet's command, so it is held to it everywhere."""
    conf = tmp_path / "conf"
    conf.write_text("x\n")
    os.utime(conf, (1, 1))
    real_isdir = os.path.isdir
    monkeypatch.setattr(ps.os.path, "isdir", lambda p: p == "/run/systemd/system" or real_isdir(p))
    proc = subprocess.Popen(["sleep", "31"])
    try:
        pidfile = tmp_path / "pid"
        pidfile.write_text(f"{proc.pid}\n")
        spec = [{"dest": str(conf), "component": "ddns", "server": "toy"}]
        for own_unit, drifted in ((False, False), (True, True)):
            daemon = {"name": "sleep", "component": "ddns", "pid": str(pidfile)}
            daemons = {"toy": {**daemon, "start": "sleep 30", "own_unit": own_unit}}
            assert bool(ps.service_findings(spec, daemons)) is drifted, own_unit
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------ proxy hosts (helper audit)


def test_secret_files_are_checked_for_presence_mode_owner_and_group(tmp_path: Path) -> None:
    """A proxy's key, certificate and htpasswd were not compared at all: a key at 0644,
    an htpasswd nginx's workers cannot read (500 on every route) passed verify."""
    key, pw, gone = tmp_path / "proxy.key", tmp_path / "htpasswd", tmp_path / "gone.crt"
    key.write_text("KEY\n")
    key.chmod(0o600)
    pw.write_text("deliverect:$2y$10$x\n")
    pw.chmod(0o640)
    specs = [
        {"dest": str(key), "owner": "root", "group": "root", "mode": "0600"},
        {"dest": str(pw), "owner": "root", "group": "root", "mode": "0640"},
    ]
    assert ps.secret_file_findings(specs) == []
    key.chmod(0o644)
    pw.write_text("@@POSNET_SECRET_1@@\n")
    specs[1]["group"] = "www-data"
    specs.append({"dest": str(gone), "owner": "root", "group": "root", "mode": "0644"})
    details = [f["detail"] for f in ps.secret_file_findings(specs)]
    assert details == [
        f"{key}: mode 644, expected 0600",
        f"{pw}: secret marker left unfilled",
        f"{pw}: group root, expected www-data",
        f"{gone}: missing",
    ]
    # An htpasswd built from the spec's users: a user added by hand is named, a
    # declared one missing too (hashes are not checked: verify holds no password).
    pw.write_text("deliverect:$2y$10$x\nattacker:$2y$10$y\n")
    users = {"dest": str(pw), "owner": "root", "group": "root", "mode": "0640",
             "users": [{"name": "deliverect", "password": "vault:a"},
                       {"name": "ops", "password": "vault:b"}]}  # fmt: skip
    assert [f["detail"] for f in ps.secret_file_findings([users])] == [
        f"{pw}: user attacker the spec does not declare",
        f"{pw}: lacks user ops",
    ]


NGINX_MAIN = """\
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{}}
http {{
  access_log off;
  include {d}/conf.d/*.conf;
}}
"""


def test_another_nginx_server_on_the_proxy_port_is_named(tmp_path: Path) -> None:
    """An extra server block with the store's name on posnet's port took the partner's
    requests without auth (nginx only warns "conflicting server name") and verify said
    in sync. Read from a real `nginx -T`."""
    nginx = require_tool("nginx")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "nginx.conf").write_text(NGINX_MAIN.format(d=tmp_path))
    own = tmp_path / "conf.d" / "posnet-deliverect-proxy.conf"
    own.write_text("server { listen 8443; server_name a.example.com; return 404; }\n")
    other = tmp_path / "conf.d" / "00-local.conf"
    other.write_text(
        "server {\n  # listen 9999;\n  listen 0.0.0.0:8443;\n  server_name a.example.com;\n"
        "  return 200;\n}\nserver { listen [::]:9000; }\n"
    )
    argv = [nginx, "-T", "-q", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)]
    dump = subprocess.run([*argv, "-e", str(tmp_path / "e.log")], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    loaded = ps.nginx_servers(dump.stdout)
    assert loaded[str(other)] == {8443, 9000} and loaded[str(own)] == {8443}
    found = ps.foreign_servers("nginx", loaded, {str(own)}, {8443})
    assert [f["detail"] for f in found] == [
        f"nginx: {other} also serves port 8443, posnet's proxy port"
    ]
    # A '#' in a quoted string starts no comment; a forged header naming posnet's file
    # does not make the lines after it posnet's.
    other.write_text(
        'server { add_header X-A "#"; listen 127.0.0.1:8443; return 200 "open"; }\n'
        f"# configuration file {own}:\n"
        "server { listen 8443; server_name b.example.com; return 200; }\n"
    )
    dump = subprocess.run([*argv, "-e", str(tmp_path / "e.log")], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    loaded = ps.nginx_servers(dump.stdout)
    assert loaded == {str(tmp_path / "nginx.conf"): set(), str(other): {8443}, str(own): {8443}}
    assert len(ps.foreign_servers("nginx", loaded, {str(own)}, {8443})) == 1
    other.unlink()  # and posnet's own file no longer included
    rest = ps.foreign_servers("nginx", {}, {str(own)}, {8443})
    assert [f["detail"] for f in rest] == [f"nginx: does not load {own}"]


APACHE_MAIN = """\
ServerRoot {d}
ServerName localhost
PidFile {d}/apache.pid
Mutex file:{d}
ErrorLog {d}/error.log
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
Listen 8443
IncludeOptional {d}/sites/*.conf
"""


def test_another_apache_virtual_host_on_the_proxy_port_is_named(tmp_path: Path) -> None:
    """The same bypass with Apache: a site sorting first becomes the port's default
    and wins the store's name. Read from a real `apache2 -S`."""
    apache = require_tool("apache2")
    (tmp_path / "sites").mkdir()
    (tmp_path / "apache2.conf").write_text(APACHE_MAIN.format(d=tmp_path))
    own = tmp_path / "sites" / "posnet-deliverect-proxy.conf"
    own.write_text(
        "<VirtualHost *:8443>\n ServerName unknown.invalid\n</VirtualHost>\n"
        "<VirtualHost *:8443>\n ServerName a.example.com\n</VirtualHost>\n"
    )
    other = tmp_path / "sites" / "000-local.conf"
    other.write_text("<VirtualHost *:8443>\n ServerName a.example.com\n</VirtualHost>\n")
    dump = subprocess.run(
        [apache, "-S", "-f", str(tmp_path / "apache2.conf")], capture_output=True, text=True
    )
    assert dump.returncode == 0, dump.stderr
    loaded = ps.apache_servers(dump.stdout + dump.stderr)
    assert loaded == {str(own): {8443}, str(other): {8443}}, dump.stdout
    found = ps.foreign_servers("apache", loaded, {str(own)}, {8443})
    assert [f["detail"] for f in found] == [
        f"apache: {other} also serves port 8443, posnet's proxy port"
    ]


def test_an_nginx_started_with_another_configuration_is_named(tmp_path: Path) -> None:
    """`nginx -c /root/evil.conf` served the POS without auth; only its program was
    checked. A master with a -c other than the default is named."""
    pid = tmp_path / "nginx.pid"
    title = f"nginx: master process nginx -c {tmp_path}/evil.conf"  # as nginx shows it
    proc = subprocess.Popen(["bash", "-c", f"exec -a '{title}' sleep 60"])
    try:
        pid.write_text(str(proc.pid))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the exec took place (bash's own -c first)
            if Path(f"/proc/{proc.pid}/cmdline").read_bytes().startswith(b"nginx:"):
                break
            time.sleep(0.05)
        assert ps._nginx_config_flag(str(pid)) == f"{tmp_path}/evil.conf"
    finally:
        proc.kill()
        proc.wait()
    assert ps._nginx_config_flag(str(tmp_path / "none.pid")) == ""


def test_apply_restarts_a_daemon_whose_config_changed_after_it_started(tmp_path: Path) -> None:
    """apply's shell test (targets.base.started_after) agrees with verify: a config
    put back under its old mtime after the daemon started counts as changed."""
    from generator.targets.base import runs_as_started, started_after

    conf, pid = tmp_path / "dnsmasq.conf", tmp_path / "pid"
    conf.write_text("port=0\n")
    daemon = subprocess.Popen(["sleep", "60"])
    try:
        pid.write_text(str(daemon.pid))

        def passes(test: str) -> bool:
            return subprocess.run(["sh", "-c", test], check=False).returncode == 0

        assert passes(started_after(str(pid), [str(conf)]))
        assert passes(runs_as_started(str(pid), "sleep", "sleep 60", [str(conf)]))
        time.sleep(1.5)
        os.utime(conf, (1, 1))  # `cp -p`: an old mtime, a new ctime
        assert not passes(started_after(str(pid), [str(conf)]))
        assert not passes(runs_as_started(str(pid), "sleep", "sleep 60", [str(conf)]))
        assert passes(runs_as_started(str(pid), "sleep", "sleep 60"))  # without configs
    finally:
        daemon.kill()
        daemon.wait()
    assert not passes(started_after(str(pid), [str(conf)]))  # not running


def test_a_kernel_setting_saved_for_the_next_boot_is_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ip_forward = 0 written into /etc/sysctl.d passed verify until the next boot (or
    `sysctl --system`) turned forwarding off. The files are read as the boot reads
    them: one name per folder order, then name order, /etc/sysctl.conf last."""
    etc, lib = tmp_path / "etc", tmp_path / "lib"
    etc.mkdir()
    lib.mkdir()
    (etc / "90-posnet.conf").write_text("net.ipv4.ip_forward = 1\n-net.bridge.x = 0\n")
    (lib / "99-later.conf").write_text("# a comment\nnet.ipv4.ip_forward=0\n")
    (lib / "90-posnet.conf").write_text("net.ipv4.ip_forward = 0\n")  # hidden by etc's
    main = tmp_path / "sysctl.conf"
    main.write_text("")
    found = ps.persisted_sysctl((str(etc), str(lib)), str(main))
    assert found["net.ipv4.ip_forward"] == ("0", str(lib / "99-later.conf"))
    assert found["net.bridge.x"] == ("0", str(etc / "90-posnet.conf"))
    (lib / "99-later.conf").unlink()
    main.write_text("net/ipv4/ip_forward = 0\n")  # sysctl.conf comes last, / for .
    assert ps.persisted_sysctl((str(etc), str(lib)), str(main))["net.ipv4.ip_forward"] == (
        "0",
        str(main),
    )
    # sysctl_findings names a saved value that differs from the one wanted (the live
    # value is this machine's: wanted here, so only the saved one can differ).
    live = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    saved = {"net.ipv4.ip_forward": ("1" if live == "0" else "0", str(etc / "90-posnet.conf"))}
    monkeypatch.setattr(ps, "persisted_sysctl", lambda: saved)
    assert ps.sysctl_findings({"net.ipv4.ip_forward": live}) == [
        {
            "what": "kernel",
            "detail": f"after a reboot net.ipv4.ip_forward = {saved['net.ipv4.ip_forward'][0]} "
            f"({etc / '90-posnet.conf'}), expected {live}",
        }
    ]
    monkeypatch.setattr(ps, "persisted_sysctl", lambda: {})
    assert ps.sysctl_findings({"net.ipv4.ip_forward": live}) == [
        {
            "what": "kernel",
            "detail": f"after a reboot net.ipv4.ip_forward not saved, expected {live}",
        }
    ]
    optional = ps.sysctl_findings({"net.bridge.bridge-nf-call-iptables": "?0"})
    assert not [f for f in optional if "after a reboot" in f["detail"]]  # only if present


RESERVED = [
    {"name": "pos1", "mac": "52:54:00:00:01:40", "ip": "198.51.100.140"},
    {"name": "pos2", "mac": "52:54:00:00:01:41", "ip": "198.51.100.141"},
]
LEASES = (
    "0 52:54:00:00:99:99 198.51.100.140 thief *\n"  # never expires: blocks pos1
    "1796682358 52:54:00:00:01:41 198.51.100.141 pos2 *\n"  # its own host
    "100 52:54:00:00:99:98 198.51.100.141 old *\n"  # expired long ago: dnsmasq drops it
    "1796682358 52:54:00:00:99:97 198.51.100.160 other *\n"  # a pool address
    "duid 00:01:00:01:2c:00:00:00:52:54:00:00:00:01\n"
)


def test_a_reserved_address_leased_to_another_mac_is_named_and_freed(tmp_path: Path) -> None:
    """verify (posnet_state) and apply (the dnsmasq target's shell) agree on which lease
    keeps a reserved address from its host, and apply drops exactly that one."""
    from generator.targets.dnsmasq import free_reserved, reserved_free

    leases = tmp_path / "dnsmasq.leases"
    leases.write_text(LEASES.replace("52:54:00:00:99:99", "52:54:00:00:99:9A"))
    daemons = {"dnsmasq": DAEMONS["dnsmasq"] | {"leases": str(leases)}}
    found = [f["detail"] for f in ps.lease_findings(daemons, RESERVED, now=1700000000)]
    assert found == [
        f"dnsmasq: 198.51.100.140, reserved for pos1 (52:54:00:00:01:40), is leased to "
        f"52:54:00:00:99:9A (thief) ({leases})"
    ]
    check = ["sh", "-c", reserved_free(str(leases), RESERVED)]
    assert subprocess.run(check, check=False).returncode != 0
    subprocess.run(["sh", "-c", free_reserved(str(leases), RESERVED)], check=True)
    # both leases of reserved addresses to other MACs go (the expired one too)
    kept = [line.split()[1] for line in leases.read_text().splitlines()]
    assert kept == [
        "52:54:00:00:01:41",
        "52:54:00:00:99:97",
        "00:01:00:01:2c:00:00:00:52:54:00:00:00:01",
    ]
    assert subprocess.run(check, check=False).returncode == 0
    assert ps.lease_findings(daemons, RESERVED) == []
    # No lease file yet (a first start): nothing taken, nothing to free.
    leases.unlink()
    assert subprocess.run(check, check=False).returncode == 0
    subprocess.run(["sh", "-c", free_reserved(str(leases), RESERVED)], check=True)
    assert not leases.exists()


def test_the_dnsmasq_daemon_declares_its_lease_file() -> None:
    assert DAEMONS["dnsmasq"]["leases"] == "/var/lib/misc/dnsmasq.leases"


def _proc_net(root: Path, table: str, rows: list[tuple[str, int, int]], state: str) -> None:
    """A /proc/net table: one row per (address, port, inode)."""

    def hex_addr(ip: str) -> str:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
        return "".join(packed[i : i + 4][::-1].hex().upper() for i in range(0, len(packed), 4))

    tail = "00000000:00000000 00:00000000 00000000     0        0"
    (root / "net").mkdir(exist_ok=True)
    (root / "net" / table).write_text(
        "  sl  local_address rem_address   st ... inode\n"
        + "".join(
            f"   {n}: {local}:{port:04X} {'0' * len(local)}:0000 {state} {tail} {inode}\n"
            for n, (local, port, inode) in enumerate((hex_addr(ip), p, i) for ip, p, i in rows)
        )
    )


def _proc_fds(root: Path, owners: dict[int, list[int]]) -> None:
    for pid, inodes in owners.items():
        fd = root / str(pid) / "fd"
        fd.mkdir(parents=True)
        for n, inode in enumerate(inodes):
            (fd / str(n)).symlink_to(f"socket:[{inode}]")


def test_another_process_on_a_port_posnets_daemon_serves_is_named(tmp_path: Path) -> None:
    """Sockets are read from /proc/net and matched to processes by inode; loopback
    listeners (a local resolver on 127.0.0.53) are no rival of a LAN server."""
    rows = [("0.0.0.0", 67, 111), ("0.0.0.0", 67, 222), ("127.0.0.53", 53, 333)]
    _proc_net(tmp_path, "udp", [*rows, ("10.51.100.129", 53, 444)], "07")
    _proc_fds(tmp_path, {10: [111, 444], 20: [222], 30: [333]})
    sockets = ps.listening_sockets(str(tmp_path), lambda: {})
    assert sockets == {
        10: {("udp", 67, "0.0.0.0", ""), ("udp", 53, "10.51.100.129", "")},
        20: {("udp", 67, "0.0.0.0", "")},
    }
    found = [f["detail"] for f in ps.rival_listeners("dnsmasq", [10], sockets)]
    assert len(found) == 1 and found[0].startswith("dnsmasq: pid 20 (")
    assert found[0].endswith(") also serves udp 67")
    assert ps._loopback("00000000000000000000000001000000")  # ::1
    assert ps._loopback("0000000000000000FFFF00000100007F")  # ::ffff:127.0.0.1
    assert not ps._loopback("00000000000000000000000000000000")  # ::


# posnet's dnsmasq (interface=br-lan, bind-interfaces): DNS on the LAN address, DHCP on
# 0.0.0.0:67 bound to br-lan. libvirt's (or LXD's) on virbr0 likewise on its own.
LAN_DNSMASQ = {
    ("udp", 67, "0.0.0.0", 111, "br-lan"),
    ("udp", 53, "198.51.100.1", 112, ""),
    ("tcp", 53, "198.51.100.1", 113, ""),
}
OTHER_BRIDGE = {
    ("udp", 67, "0.0.0.0", 221, "virbr0"),
    ("udp", 53, "192.168.122.1", 222, ""),
    ("tcp", 53, "192.168.122.1", 223, ""),
    ("udp", 53, "fe80::1", 224, "virbr0"),
}


def _fake_sockets(
    root: Path, owners: dict[int, set[tuple[str, int, str, int, str]]]
) -> dict[str, str]:
    """A fake /proc of these processes' sockets; the inode -> bound device map."""
    for table, proto, state in ps._NET_TABLES:
        six = table.endswith("6")
        rows = [
            (ip, port, inode)
            for socks in owners.values()
            for p, port, ip, inode, _ in socks
            if p == proto and (":" in ip) == six
        ]
        _proc_net(root, table, rows, state)
    _proc_fds(root, {pid: [s[3] for s in socks] for pid, socks in owners.items()})
    return {str(s[3]): s[4] for socks in owners.values() for s in socks if s[4]}


def test_a_dhcp_server_bound_to_another_bridge_is_no_rival(tmp_path: Path) -> None:
    """libvirt's or LXD's dnsmasq serves its own bridge: its DHCP socket is 0.0.0.0:67
    too, but bound to virbr0 (SO_BINDTODEVICE: `0.0.0.0%virbr0:67` in ss), and its DNS
    is on virbr0's address; it gets none of the LAN's packets. /proc/net shows no
    device, so it used to be named. A second server bound to br-lan, or unbound, or on
    every address, still is."""
    owners = {
        10: LAN_DNSMASQ,
        20: OTHER_BRIDGE,
        30: {("udp", 67, "0.0.0.0", 331, "br-lan")},
        40: {("udp", 67, "0.0.0.0", 441, ""), ("udp", 53, "::", 442, "")},
        50: {("tcp", 53, "198.51.100.1", 551, ""), ("udp", 53, "10.9.9.9", 552, "")},
    }
    bound = _fake_sockets(tmp_path, owners)
    sockets = ps.listening_sockets(str(tmp_path), lambda: bound)
    assert ("udp", 67, "0.0.0.0", "virbr0") in sockets[20]
    assert ("udp", 53, "fe80::1", "virbr0") in sockets[20]
    found = {
        f["detail"].split(" (")[0]: f["detail"]
        for f in ps.rival_listeners("dnsmasq", [10], sockets)
    }
    assert sorted(found) == ["dnsmasq: pid 30", "dnsmasq: pid 40", "dnsmasq: pid 50"]
    assert found["dnsmasq: pid 30"].endswith(") also serves udp 67")
    assert found["dnsmasq: pid 40"].endswith(") also serves udp 53, udp 67")
    assert found["dnsmasq: pid 50"].endswith(") also serves tcp 53")


def test_without_sock_diag_a_bound_socket_counts_and_the_finding_says_so(tmp_path: Path) -> None:
    """No answer from the kernel's sock_diag (no udp_diag module): the devices are
    unknown, every socket counts as unbound (what /proc/net alone shows), and the
    finding says why a dnsmasq on another bridge may be named."""
    _fake_sockets(tmp_path, {10: LAN_DNSMASQ, 20: OTHER_BRIDGE})
    sockets = ps.listening_sockets(str(tmp_path), lambda: None)
    assert ("udp", 67, "0.0.0.0", None) in sockets[20]
    (found,) = [f["detail"] for f in ps.rival_listeners("dnsmasq", [10], sockets)]
    assert found.endswith(
        "also serves udp 67 (bound device unknown: the kernel's sock_diag did not answer)"
    )


def test_the_compete_rule_address_and_device() -> None:
    lan = ("udp", 67, "0.0.0.0", "br-lan")
    assert ps.compete(("udp", 67, "0.0.0.0", ""), lan)
    assert ps.compete(("udp", 67, "0.0.0.0", None), lan)
    assert ps.compete(("udp", 67, "0.0.0.0", "br-lan"), lan)
    assert ps.compete(("udp", 67, "::", ""), lan)  # a dual-stack socket takes IPv4
    assert not ps.compete(("udp", 67, "0.0.0.0", "virbr0"), lan)
    assert not ps.compete(("tcp", 67, "0.0.0.0", ""), lan)
    dns = ("udp", 53, "198.51.100.1", "")
    assert ps.compete(("udp", 53, "198.51.100.1", ""), dns)
    assert ps.compete(("udp", 53, "0.0.0.0", ""), dns)
    assert not ps.compete(("udp", 53, "192.168.122.1", ""), dns)
    assert not ps.compete(("udp", 53, "fe80::1", ""), dns)
    assert ps.compete(("udp", 53, "::", "br-lan"), ("udp", 53, "2001:db8::1", ""))
    assert not ps.compete(("udp", 53, "0.0.0.0", ""), ("udp", 53, "2001:db8::1", ""))


# Run in a fresh network namespace with two bridges: this process is "posnet's dnsmasq"
# (DHCP on 0.0.0.0:6767 bound to lan0, DNS on lan0's address), one child another
# bridge's (bound to virt0, DNS on virt0's address), one a rival (0.0.0.0:6767 unbound).
KERNEL_SOCKETS = """
import importlib.util, json, os, socket, subprocess, sys

spec = importlib.util.spec_from_file_location("ps", sys.argv[1])
ps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ps)


def serve(device, address):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if device:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
    s.bind((address, 6767 if address == "0.0.0.0" else 5353))
    return s


if len(sys.argv) > 2:  # a child: serve, say so, wait for stdin to close
    held = [serve(*a.split("/")) for a in sys.argv[2:]]
    print("ready", flush=True)
    sys.stdin.read()
    sys.exit(0)
own = [serve("lan0", "0.0.0.0"), serve("", "10.1.0.1")]
kids = {
    name: subprocess.Popen(
        [sys.executable, sys.argv[0], sys.argv[1], *socks],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    for name, socks in (("other", ["virt0/0.0.0.0", "/10.2.0.1"]), ("rival", ["/0.0.0.0"]))
}
for kid in kids.values():
    assert kid.stdout.readline() == "ready\\n"
found = ps.rival_listeners("dnsmasq", [os.getpid()], ps.listening_sockets())
print(json.dumps({"pids": {n: k.pid for n, k in kids.items()}, "found": found}))
for kid in kids.values():
    kid.stdin.close()
    kid.wait()
"""
BRIDGES = (
    "ip link add lan0 type bridge && ip link add virt0 type bridge"
    " && ip addr add 10.1.0.1/24 dev lan0 && ip addr add 10.2.0.1/24 dev virt0"
    ' && ip link set lan0 up && ip link set virt0 up && exec "$@"'
)


@needs_root
def test_the_kernel_tells_a_socket_bound_to_another_bridge(tmp_path: Path) -> None:
    """The same rule on real sockets: sock_diag reports the device SO_BINDTODEVICE set
    (what /proc/net/udp leaves out), so the process on the other bridge is not named
    and the unbound one is."""
    require_tool("ip")
    script = tmp_path / "sockets.py"
    script.write_text(KERNEL_SOCKETS)
    module = str(ps.__file__)
    argv = ["unshare", "-n", "sh", "-c", BRIDGES, "sh", sys.executable, str(script), module]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    found = [f["detail"] for f in out["found"]]
    rival = rf"dnsmasq: pid {out['pids']['rival']} \(\S+\) also serves udp 6767"
    assert len(found) == 1 and re.fullmatch(rival, found[0]), found


def _diag_msg(index: int, inode: int) -> bytes:
    body = struct.pack("=BBBB", socket.AF_INET, 7, 0, 0) + bytes(36)
    body += struct.pack("=I", index) + bytes(8) + bytes(16) + struct.pack("=I", inode)
    return struct.pack("=IHHII", 16 + len(body), 20, 2, 1, 0) + body


def test_sock_diag_replies_are_read_to_the_bound_device_of_each_inode() -> None:
    done = struct.pack("=IHHII", 20, 3, 2, 1, 0) + bytes(4)
    assert ps.parse_sock_diag(_diag_msg(3, 555) + _diag_msg(0, 556)) == ({"555": 3}, False)
    assert ps.parse_sock_diag(_diag_msg(4, 9) + done) == ({"9": 4}, True)
    error = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -2) + bytes(16)
    with pytest.raises(OSError, match="sock_diag"):
        ps.parse_sock_diag(error)  # ENOENT: no udp_diag
    with pytest.raises(OSError, match="truncated"):
        ps.parse_sock_diag(_diag_msg(3, 555)[:-8])


def test_the_ipset_file_is_no_iptables_ruleset_and_other_tables_count_only_in_use() -> None:
    """An iptables edge's firewall files: rules.v4/v6 name their tables, the ipset file
    none (it is not compared as a ruleset). A table beside posnet's counts once it holds
    a rule or a policy other than ACCEPT."""
    fw = [
        {"dest": "/etc/iptables/ipsets", "text": "create dns_x hash:ip -exist\n"},
        {"dest": "/etc/iptables/rules.v4", "text": "*filter\n:INPUT DROP [0:0]\nCOMMIT\n"},
        {"dest": "/etc/iptables/rules.v6", "text": "*filter\n:INPUT DROP [0:0]\nCOMMIT\n"},
    ]
    assert sorted(ps._iptables_files(fw)) == ["v4", "v6"]
    saved = "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-mark 1\nCOMMIT\n"
    saved += "*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
    found = ps._tables_in_use("iptables", ps.parse_iptables_save(saved), "rules")
    assert [f["detail"] for f in found] == [
        "iptables table mangle: 1 rule(s) beside posnet's rules"
    ]


def test_a_unit_apply_enables_must_stay_enabled_under_systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`systemctl disable nftables` leaves the live ruleset perfect and the edge without
    a firewall after the next boot: under systemd it is drift; without systemd (no
    /run/systemd/system) there is nothing to ask."""
    states = {"nftables": "disabled", "posnet-dnsmasq": "enabled", "inadyn": "masked"}

    def fake(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        assert argv[:2] == ["systemctl", "is-enabled"]
        return subprocess.CompletedProcess(argv, 0, states[argv[2]] + "\n", "")

    monkeypatch.setattr(ps, "_run", fake)
    units = list(states)
    assert ps.boot_findings(units, str(tmp_path / "none")) == []
    found = [f["detail"] for f in ps.boot_findings(units, str(tmp_path))]
    assert found == [
        "inadyn: masked, not started at boot",
        "nftables: disabled, not started at boot",
    ]


@pytest.mark.parametrize(
    ("states", "detail"),
    [
        # `static` counted as started at boot: the unit lost its [Install] section (a
        # hand-written nftables.service), so `systemctl enable` did nothing and only a
        # unit that pulls it in starts it; posnet's units are pulled in by nothing.
        (
            {"nftables": "static"},
            "nftables: static (no [Install] section, so enabling it did nothing): started "
            "at boot only if another unit pulls it in",
        ),
        # `alias` counted as started whatever the unit it names: that one is asked.
        (
            {"nftables": "alias", "nftables-real.service": "disabled"},
            "nftables (alias of nftables-real.service): disabled, not started at boot",
        ),
        ({"nftables": "alias", "nftables-real.service": "enabled"}, None),
        (
            {"nftables": "enabled-runtime"},
            "nftables: enabled-runtime (enabled in /run only, until the next reboot), not "
            "started at boot",
        ),
        (
            {"nftables": "indirect"},
            "nftables: indirect (only the units its Also= names are enabled), not started at boot",
        ),
        (
            {"nftables": "generated"},
            "nftables: generated (a systemd generator, not apply, decides whether it starts)",
        ),
        ({"nftables": ""}, "nftables: unknown, not started at boot"),
    ],
)
def test_only_an_enabled_unit_counts_as_started_at_boot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, states: dict[str, str], detail: str | None
) -> None:
    """A fake systemctl: `is-enabled UNIT` prints its state, `show --property=Id --value`
    names an alias's unit."""

    def fake(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        if argv[:2] == ["systemctl", "show"]:
            assert argv[2:5] == ["--property=Id", "--value", "nftables"]
            return subprocess.CompletedProcess(argv, 0, "nftables-real.service\n", "")
        assert argv[:2] == ["systemctl", "is-enabled"]
        return subprocess.CompletedProcess(argv, 0, states[argv[2]] + "\n", "")

    monkeypatch.setattr(ps, "_run", fake)
    found = [f["detail"] for f in ps.boot_findings(["nftables"], str(tmp_path))]
    assert found == ([] if detail is None else [detail])
