"""One apply at a time on a store, whichever controller runs it, in the lab.

Two clones of the fleet (two build trees: their own tree locks do not meet) apply the
same edge at once: the first holds the edge's lock (/var/lib/posnet/apply.lock), the
second is refused within seconds naming the holder and since when, while the first
runs on to the rendered state and `posnet verify` passes. A run killed with SIGKILL
(controller crash: nothing released) leaves its lock; the next apply is refused naming
the dead run until its lease ends, and an apply with --wait takes it over then, says so,
and leaves the edge applied and in sync. A run that fails mid-way (its host dropped from
site.yml's later plays, the releasing one included) gives its lock back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .e2e_support import posnet, render_demo, running_lab, tampered_copy, write_overlay
from .netns import Lab

pytestmark = pytest.mark.lab
HOST = "gent-01-edge"
LOCK = "/var/lib/posnet/apply.lock"
LEASE = 60  # the shortest lease lock.yml allows over a 30 s watchdog


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab() as the_lab:
        yield the_lab


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("lock")
    return render_demo(base / "clone-a" / "build"), render_demo(base / "clone-b" / "build")


@pytest.fixture(scope="module")
def overlay(lab: Lab) -> Path:
    extra = {
        "posnet_watchdog_seconds": 30,
        "posnet_confirm_timeout": 10,
        "posnet_lock_seconds": LEASE,
    }
    return write_overlay(lab, [HOST], extra)


def start_apply(lab: Lab, tree: Path, overlay: Path, log: Path) -> subprocess.Popen[bytes]:
    """`posnet apply` in the background, in a session of its own (to kill it whole)."""
    env = lab.ansible_env()
    env.pop("ANSIBLE_INVENTORY", None)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    argv = [sys.executable, "-m", "generator", "apply", str(tree), "-i", str(overlay)]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*argv, "--limit", HOST],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def lock_on_edge(lab: Lab) -> dict[str, object] | None:
    res = lab.edge_exec(f"cat {LOCK}")
    return json.loads(res.stdout) if res.returncode == 0 else None


def wait_for_lock(lab: Lab, proc: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        held = lock_on_edge(lab)
        if held is not None:
            return held
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError("the first apply never took the edge's lock\n" + log.read_text()[-3000:])


def flat(res: subprocess.CompletedProcess[str]) -> str:
    return " ".join((res.stdout + res.stderr).split())


def in_sync(lab: Lab, tree: Path, overlay: Path) -> None:
    ok = posnet(lab, "verify", str(tree), "-i", str(overlay), "--limit", HOST)
    assert ok.returncode == 0, ok.stdout[-4000:] + ok.stderr[-2000:]
    assert f"ok   live state {HOST}: in sync" in ok.stdout


def test_of_two_concurrent_applies_one_proceeds_and_the_other_is_refused(
    lab: Lab, trees: tuple[Path, Path], overlay: Path, tmp_path: Path
) -> None:
    tree_a, tree_b = trees
    log = tmp_path / "a.log"
    first = start_apply(lab, tree_a, overlay, log)
    try:
        held = wait_for_lock(lab, first, log)
        assert f"posnet apply pid {first.pid}" in str(held["owner"])
        t0 = time.monotonic()
        second = posnet(lab, "apply", str(tree_b), "-i", str(overlay), "--limit", HOST)
        refused_in = time.monotonic() - t0
        assert first.poll() is None, "the first apply ended before the second was refused"
        assert second.returncode == 1, second.stdout[-3000:] + second.stderr[-2000:]
        text = flat(second)
        assert f"posnet: {HOST} is being applied by another run: {held['owner']} (run " in text
        assert "since " in text and " UTC, lease until " in text
        assert "posnet apply --wait SECONDS" in text
        assert "Apply the posnet edge firewall" not in second.stdout  # it wrote nothing
        assert refused_in < 60
        assert first.wait(timeout=300) == 0, log.read_text()[-4000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    out = log.read_text()
    assert "is being applied by another run" not in out
    assert lock_on_edge(lab) is None  # released at the end of the first run
    in_sync(lab, tree_a, overlay)


def test_a_killed_runs_lock_holds_until_its_lease_ends_then_is_taken_over(
    lab: Lab, trees: tuple[Path, Path], overlay: Path, tmp_path: Path
) -> None:
    tree_a, tree_b = trees
    # Something for the last apply to put right: the edge forwards nothing.
    assert lab.edge_exec("echo 0 > /proc/sys/net/ipv4/ip_forward").returncode == 0
    log = tmp_path / "killed.log"
    doomed = start_apply(lab, tree_a, overlay, log)
    held = wait_for_lock(lab, doomed, log)
    time.sleep(3)  # into the firewall play
    os.killpg(doomed.pid, signal.SIGKILL)  # a controller crash: nothing is released
    doomed.wait()
    killed_at = time.monotonic()
    assert lock_on_edge(lab) is not None
    refused = posnet(lab, "apply", str(tree_b), "-i", str(overlay), "--limit", HOST)
    assert refused.returncode == 1, refused.stdout[-3000:]
    assert f"is being applied by another run: {held['owner']}" in flat(refused)
    # --wait: waits for the dead run's lease, takes the lock over and applies.
    done = posnet(
        lab, "apply", str(tree_b), "-i", str(overlay), "--limit", HOST, "--wait", "150",
        timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    waited = time.monotonic() - killed_at
    text = flat(done)
    assert f"took over the lock of a run whose lease ended: {held['owner']}" in text
    assert waited > LEASE - 15  # not before the lease ended (renewed after it was taken)
    assert lock_on_edge(lab) is None
    assert lab.edge_exec("cat /proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    in_sync(lab, tree_b, overlay)


def test_a_run_that_fails_mid_way_gives_the_lock_back(
    lab: Lab, trees: tuple[Path, Path], overlay: Path, tmp_path: Path
) -> None:
    """dnsmasq rejects the DHCP file (a renderer bug): the dhcp play fails the edge, so
    site.yml's last play never runs for it; posnet apply releases its lock after the
    run, and the next apply is not refused."""
    tree_a, _ = trees
    broken = tampered_copy(
        tree_a, tmp_path / "broken", "gent-01", "dhcp/dnsmasq.conf",
        lambda text: text + "no-such-dnsmasq-option=1\n",
    )  # fmt: skip
    failed = posnet(lab, "apply", str(broken), "-i", str(overlay), "--limit", HOST)
    assert failed.returncode == 1, failed.stdout[-3000:]
    assert "PLAY [Apply posnet DHCP reservations]" in failed.stdout
    assert "Release the lock" not in failed.stdout  # site.yml's last play skipped the edge
    assert lock_on_edge(lab) is None
    again = posnet(lab, "apply", str(tree_a), "-i", str(overlay), "--limit", HOST)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]
    in_sync(lab, tree_a, overlay)
