"""End to end: the demo store gent-01 applied to the lab edge with `posnet apply`, checked
with `posnet verify` and with `posnet probe` from the partner's and the stranger's
namespaces. Tests run in file order and share one lab (one store's life).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .e2e_support import (
    posnet,
    render_demo,
    running_lab,
    tampered_copy,
    write_overlay,
)
from .e2e_support import recap as support_recap
from .netns import CLOUD_IP, EDGE_WAN_IP, POS1_IP, POS2_IP, Lab

pytestmark = pytest.mark.lab
SITE = "gent-01"
HOST = "gent-01-edge"
PUBLIC = f"https://{EDGE_WAN_IP}:18443/"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab() as the_lab:
        yield the_lab


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_demo(tmp_path_factory.mktemp("e2e") / "build")


@pytest.fixture(scope="module")
def overlay(lab: Lab, tree: Path) -> Path:
    return write_overlay(
        lab,
        [HOST, "antwerp-02-edge"],
        {"posnet_watchdog_seconds": 8, "posnet_confirm_timeout": 6},
    )


def apply(
    lab: Lab, tree: Path, overlay: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return posnet(lab, "apply", str(tree), "-i", str(overlay), "--limit", HOST, *extra, env=env)


def recap(out: str, host: str = HOST) -> dict[str, int]:
    return support_recap(out, host)


def probe(lab: Lab, tree: Path, role: str) -> subprocess.CompletedProcess[str]:
    return lab.run(
        role,
        sys.executable,
        "-m",
        "generator",
        "probe",
        str(tree),
        "--site",
        SITE,
        "--as",
        role,
        "--timeout",
        "2",
        "--json",
        timeout=60,
    )


def live_ruleset(lab: Lab) -> str:
    return lab.run("edge", "nft", "-s", "list", "table", "inet", "posnet", timeout=10).stdout


def edge_file(lab: Lab, path: str) -> str:
    return lab.edge_exec(["cat", path], timeout=10).stdout


def broken_copy(tree: Path, dest: Path, edit: Callable[[str], str]) -> Path:
    return tampered_copy(tree, dest, SITE, "firewall/nftables.nft", edit)


# ---------------------------------------------------------------------------- the story


def test_before_apply_stranger_reaches_nothing_and_partner_neither(lab: Lab) -> None:
    """No port forward yet: the public port does not lead to the POS."""
    assert lab.curl("partner", PUBLIC, 2).http_code == 0


def test_apply_succeeds(lab: Lab, tree: Path, overlay: Path) -> None:
    res = apply(lab, tree, overlay)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    r = recap(res.stdout)
    assert r["failed"] == 0 and r["unreachable"] == 0 and r["changed"] > 0
    rules = live_ruleset(lab)
    assert "policy drop" in rules and f"{POS1_IP}:8443" in rules
    assert (
        edge_file(lab, "/etc/nftables.conf")
        == (tree / f"sites/{SITE}/firewall/nftables.nft").read_text()
    )
    # The machine's own /etc is untouched: the edge writes into its overlay.
    assert not Path("/etc/posnet/dnsmasq.conf").exists()


def test_partner_reaches_pos_through_public_port(lab: Lab) -> None:
    res = lab.curl("partner", PUBLIC, 3)
    assert res.http_code == 200 and "pos1" in res.body, res


def test_stranger_is_blocked(lab: Lab) -> None:
    res = lab.curl("stranger", PUBLIC, 2)
    assert res.http_code == 0, res


def test_probe_as_partner_and_stranger(lab: Lab, tree: Path) -> None:
    ok = probe(lab, tree, "partner")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    checks = {r["check"]: r for r in json.loads(ok.stdout)}
    assert checks["deliverect-pos1-api tcp"]["ok"]
    assert (
        checks["deliverect-pos1-api tls"]["ok"]
        and "TLSv1" in checks["deliverect-pos1-api tls"]["detail"]
    )
    assert checks["deliverect-pos1-api http"]["detail"].startswith("HTTP/1")
    # Not an exposure for the partner either: dropped (filtered), not refused (closed).
    assert checks["port 8443 filtered (blocked)"]["ok"]
    assert checks["port 22 filtered (management)"]["detail"].startswith("filtered")
    blocked = probe(lab, tree, "stranger")
    assert blocked.returncode == 0, blocked.stdout + blocked.stderr
    assert all(r["ok"] for r in json.loads(blocked.stdout))


def test_probe_fails_when_expectation_is_wrong(lab: Lab, tree: Path) -> None:
    """The probe can fail: the stranger's expectation run from the partner's seat."""
    res = lab.run(
        "partner",
        sys.executable,
        "-m",
        "generator",
        "probe",
        str(tree),
        "--site",
        SITE,
        "--as",
        "stranger",
        "--timeout",
        "2",
        timeout=60,
    )
    assert res.returncode == 1 and "FAIL" in res.stdout


def test_pos_keeps_lan_and_outbound(lab: Lab) -> None:
    lan = lab.curl("pos1", f"https://{POS2_IP}:8443/", 3)
    assert lan.http_code == 200 and "pos2" in lan.body
    out = lab.curl("pos1", f"https://{CLOUD_IP}:443/", 3)
    assert out.http_code == 200, out


def test_verify_passes(lab: Lab, tree: Path, overlay: Path, tmp_path: Path) -> None:
    junit = tmp_path / "verify.xml"
    report = tmp_path / "verify.json"
    res = posnet(
        lab,
        "verify",
        str(tree),
        "-i",
        str(overlay),
        "--limit",
        HOST,
        "--junit",
        str(junit),
        "--json",
        str(report),
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    results = json.loads(report.read_text())
    assert len(results) >= 5 and all(r["status"] in ("passed", "skipped") for r in results)
    assert any(
        r["check"].startswith("test_each_exposure_forwarded") and r["status"] == "passed"
        for r in results
    ), results


def test_second_apply_changes_nothing(lab: Lab, tree: Path, overlay: Path) -> None:
    res = apply(lab, tree, overlay)
    assert res.returncode == 0, res.stdout[-3000:]
    assert recap(res.stdout)["changed"] == 0, res.stdout[-3000:]


def test_check_diff_changes_nothing(lab: Lab, tree: Path, overlay: Path) -> None:
    before = live_ruleset(lab)
    res = apply(lab, tree, overlay, "--check", "--diff")
    assert res.returncode == 0, res.stdout[-3000:]
    assert recap(res.stdout)["changed"] == 0
    assert live_ruleset(lab) == before


def test_broken_ruleset_rejected_previous_stays(
    lab: Lab, tree: Path, overlay: Path, tmp_path: Path
) -> None:
    before = live_ruleset(lab)
    bad = broken_copy(tree, tmp_path / "bad", lambda t: t.replace("policy drop", "policy dorp", 1))
    res = apply(lab, bad, overlay)
    assert res.returncode != 0
    assert "rejected" in res.stdout or "failed" in res.stdout.lower()
    assert live_ruleset(lab) == before
    assert (
        edge_file(lab, "/etc/nftables.conf")
        == (tree / f"sites/{SITE}/firewall/nftables.nft").read_text()
    )
    assert lab.curl("partner", PUBLIC, 3).http_code == 200


def test_ruleset_failing_postcheck_is_rolled_back(
    lab: Lab, tree: Path, overlay: Path, tmp_path: Path
) -> None:
    """Valid syntax, wrong content (default accept): activated, caught, rolled back."""
    before = live_ruleset(lab)
    bad = broken_copy(tree, tmp_path / "open", lambda t: t.replace("policy drop", "policy accept"))
    res = apply(lab, bad, overlay)
    assert res.returncode != 0
    assert "previous ruleset is active again" in res.stdout
    assert live_ruleset(lab) == before
    assert (
        edge_file(lab, "/etc/nftables.conf")
        == (tree / f"sites/{SITE}/firewall/nftables.nft").read_text()
    )
    assert lab.curl("stranger", PUBLIC, 2).http_code == 0
    assert lab.curl("partner", PUBLIC, 3).http_code == 200


def test_management_cutting_ruleset_is_undone_by_watchdog(
    lab: Lab, tree: Path, overlay: Path, tmp_path: Path
) -> None:
    before = live_ruleset(lab)

    def cut(text: str) -> str:
        return re.sub(r"(tcp dport )22\b", r"\g<1>2222", text)

    bad = broken_copy(tree, tmp_path / "cut", cut)
    assert "2222" in (bad / f"sites/{SITE}/firewall/nftables.nft").read_text()
    res = apply(lab, bad, overlay)
    assert res.returncode != 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and live_ruleset(lab) != before:
        time.sleep(0.5)
    assert live_ruleset(lab) == before, "watchdog did not restore the previous ruleset"
    assert lab.ssh("true", timeout=15).returncode == 0
    assert lab.curl("partner", PUBLIC, 3).http_code == 200


def test_two_applies_inside_one_watchdog_window_keep_the_newer_ruleset(
    lab: Lab, tree: Path, overlay: Path, tmp_path: Path
) -> None:
    """The bad state: a second apply activates its ruleset while the first apply's
    watchdog still sleeps. Each watchdog waits for its own confirmation, so neither
    rolls back the other's good ruleset, and each removes its own file when done."""
    window = 40
    fast = ["--tags", "firewall", "-e", f"posnet_watchdog_seconds={window}"]
    other = broken_copy(tree, tmp_path / "other", lambda t: t.replace("18443", "18444"))
    first = apply(lab, other, overlay, *fast)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "18444" in live_ruleset(lab)
    second = apply(lab, tree, overlay, *fast)
    assert second.returncode == 0, second.stdout[-3000:]
    wanted = live_ruleset(lab)
    assert "18443" in wanted and "18444" not in wanted
    time.sleep(window + 5)  # past both watchdogs' deadlines
    assert live_ruleset(lab) == wanted, "a watchdog rolled back the newer ruleset"
    left = lab.edge_exec(["sh", "-c", "ls /var/lib/posnet | grep watch- || true"], timeout=10)
    assert left.stdout.strip() == "", left.stdout
    assert lab.curl("partner", PUBLIC, 3).http_code == 200


def apply_ddns(
    lab: Lab, tree: Path, overlay: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """antwerp-02's DDNS component, applied to the lab edge (its only reachable edge)."""
    pin = json.dumps({"ansible_host": EDGE_WAN_IP})
    args = ["apply", str(tree), "-i", str(overlay), "--limit", "antwerp-02-edge"]
    return posnet(lab, *args, "--tags", "ddns", "-e", pin, *extra, env=env)


def test_ddns_secret_resolved_at_apply_and_never_logged(
    lab: Lab, tree: Path, overlay: Path
) -> None:
    hostile = "pa\"ss\\w0rd$(id);`x` 'q' %s {}"
    res = apply_ddns(lab, tree, overlay, "--diff", "-vvv", env={"POSNET_DDNS_ANTWERP": hostile})
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert hostile not in res.stdout and hostile not in res.stderr
    assert 'pa"ss' not in res.stdout and "w0rd" not in res.stdout + res.stderr
    mode = lab.edge_exec(["stat", "-c", "%a %U", "/etc/inadyn.conf"], timeout=10).stdout.split()
    assert mode == ["600", "root"]
    content = edge_file(lab, "/etc/inadyn.conf")
    assert "@@POSNET_SECRET_" not in content
    assert 'pa\\"ss\\\\w0rd$(id);`x`' in content
    check = lab.edge_exec(["inadyn", "-n", "--check-config", "-f", "/etc/inadyn.conf"], timeout=10)
    assert check.returncode == 0, check.stdout + check.stderr
    # No systemd in the lab: apply started inadyn itself and says what to run at boot.
    boot = "has no systemd; make its init run `inadyn -f /etc/inadyn.conf -P /run/inadyn.pid`"
    assert boot in " ".join(res.stdout.split()), res.stdout[-3000:]
    pid = edge_file(lab, "/run/inadyn.pid").strip()
    assert "inadyn" in edge_file(lab, f"/proc/{pid}/cmdline")
    for p in tree.rglob("*"):
        if p.is_file():
            assert "w0rd" not in p.read_text()


def test_missing_secret_fails_clearly(lab: Lab, tree: Path, overlay: Path) -> None:
    res = apply_ddns(lab, tree, overlay)
    assert res.returncode == 1
    assert "posnet secret env:POSNET_DDNS_ANTWERP: environment variable not set" in res.stdout


def test_nothing_left_behind(tmp_path: Path) -> None:
    lab2 = Lab(servers=False, sshd=True)
    lab2.up()
    names = set(lab2.ns.values())
    lab2.down()
    listed = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert not any(n in listed for n in names)
