"""The iptables path on a real edge: antwerp-02 (iptables, dynamic WAN) applied to a
fresh lab edge. Its LAN differs from the lab's, so this proves loading, management,
idempotence and rollback for iptables, not partner traffic (test_e2e.py does that)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .e2e_support import posnet, recap, render_demo, running_lab, tampered_copy, write_overlay
from .netns import EDGE_WAN_IP, Lab

pytestmark = pytest.mark.lab
HOST = "antwerp-02-edge"
SITE = "antwerp-02"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab(servers=False) as the_lab:
        yield the_lab


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_demo(tmp_path_factory.mktemp("e2e-ipt") / "build")


@pytest.fixture(scope="module")
def overlay(lab: Lab) -> Path:
    return write_overlay(lab, [HOST], {"ansible_host": EDGE_WAN_IP})


def run_apply(lab: Lab, tree: Path, overlay: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return posnet(
        lab,
        "apply",
        str(tree),
        "-i",
        str(overlay),
        "--limit",
        HOST,
        "--tags",
        "firewall",
        "-e",
        json.dumps({"ansible_host": EDGE_WAN_IP}),
        *extra,
    )


def saved(lab: Lab) -> str:
    out = lab.run("edge", "iptables-save", timeout=10).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith("#"))


def test_iptables_apply_idempotent_and_management_kept(lab: Lab, tree: Path, overlay: Path) -> None:
    first = run_apply(lab, tree, overlay)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-1000:]
    assert recap(first.stdout, HOST)["changed"] > 0
    rules = saved(lab)
    assert ":INPUT DROP" in rules and ":FORWARD DROP" in rules
    assert "--to-destination 198.51.100.10:8080" in rules
    assert lab.ssh("true", timeout=15).returncode == 0
    second = run_apply(lab, tree, overlay)
    assert second.returncode == 0 and recap(second.stdout, HOST)["changed"] == 0
    assert lab.edge_exec(["stat", "-c", "%a", "/etc/iptables/rules.v4"]).stdout.strip() == "644"


def test_iptables_bad_rules_rolled_back(
    lab: Lab, tree: Path, overlay: Path, tmp_path: Path
) -> None:
    before = saved(lab)
    bad = tampered_copy(
        tree,
        tmp_path / "bad",
        SITE,
        "firewall/rules.v4",
        lambda t: t.replace(":FORWARD DROP", ":FORWARD ACCEPT"),
    )
    res = run_apply(lab, bad, overlay)
    assert res.returncode != 0 and "previous ruleset is active again" in res.stdout
    assert _strip_counters(saved(lab)) == _strip_counters(before)


def _strip_counters(text: str) -> str:
    return re.sub(r"\[\d+:\d+\]", "", text)


def test_rules_beside_posnets_iptables_are_named(lab: Lab, tree: Path, overlay: Path) -> None:
    """On an iptables edge, what runs beside posnet's tables was never looked at: an nft
    table with a hooked chain (here a DNAT of the SSH port to a LAN host, ahead of
    posnet's nat), a rule in a table posnet does not render (mangle), and legacy
    (x_tables) rules beside iptables-nft. drift named none of them; now each is named,
    and apply leaves them to the admin (another tool may own them)."""
    tamper = (
        "nft add table ip evil && nft add chain ip evil pre "
        "'{ type nat hook prerouting priority -110; policy accept; }' && "
        "nft add rule ip evil pre tcp dport 2222 dnat to 198.51.100.140:22 && "
        "iptables -t mangle -A PREROUTING -i wan0 -j MARK --set-mark 1 && "
        "iptables-legacy -I FORWARD -j ACCEPT"
    )
    named = [
        "table ip evil beside posnet's hooks pre (prerouting)",
        "iptables table mangle: 1 rule(s) beside posnet's rules",
        "iptables-legacy table filter: 1 rule(s) beside posnet's iptables",
    ]

    # drift takes no -e: pin the lab edge in host_vars beside the overlay, which outrank
    # the build's own (test_e2e_tamper.two_edges)
    (overlay.parent / "host_vars").mkdir(exist_ok=True)
    (overlay.parent / "host_vars" / f"{HOST}.yml").write_text(
        json.dumps({"ansible_host": EDGE_WAN_IP})
    )

    def drift_text() -> str:
        d = posnet(lab, "drift", str(tree), "-i", str(overlay), "--limit", HOST)
        assert d.returncode in (0, 5), d.stdout + d.stderr
        return d.stdout

    before = drift_text()
    assert not any(text in before for text in named), before
    assert lab.edge_exec(tamper, timeout=10).returncode == 0
    try:
        after = drift_text()
        for text in named:
            assert text in after, (text, after)
        # Apply judges only posnet's own tables: nothing to reload, nothing rolled back.
        again = run_apply(lab, tree, overlay)
        assert again.returncode == 0 and recap(again.stdout, HOST)["changed"] == 0
    finally:
        undo = (
            "nft delete table ip evil; iptables -t mangle -D PREROUTING -i wan0 -j MARK"
            " --set-mark 1; iptables-legacy -D FORWARD -j ACCEPT"
        )
        lab.edge_exec(undo, timeout=10)
    assert not any(text in drift_text() for text in named)
