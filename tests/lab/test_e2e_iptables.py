"""The iptables path on a real edge: antwerp-02 (iptables, dynamic WAN) applied to a
fresh lab edge. Its LAN differs from the lab's, so this proves loading, management,
idempotence and rollback for iptables, not partner traffic (test_e2e.py does that)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import require_lab
from .netns import EDGE_WAN_IP, Lab, cleanup_stale
from .test_e2e import posnet, recap

pytestmark = pytest.mark.lab
HOST = "antwerp-02-edge"
SITE = "antwerp-02"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    require_lab()
    cleanup_stale()
    the_lab = Lab(servers=False)
    the_lab.up()
    try:
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from generator import build
    from generator.analyze import analyze
    from tests.conftest import DEMO

    out = tmp_path_factory.mktemp("e2e-ipt") / "build"
    a = analyze(DEMO)
    build.render_tree(out, a.fleet.name, a.plans, a.digests)
    return out


@pytest.fixture(scope="module")
def overlay(lab: Lab) -> Path:
    cfg = lab.dir / "posnet_ssh_config"
    cfg.write_text(
        lab.ssh_config_path.read_text().replace("Host edge", f"Host edge {EDGE_WAN_IP}", 1)
    )
    inv = lab.dir / "posnet-lab.yml"
    inv.write_text(
        json.dumps(
            {
                "posnet_edges": {
                    "vars": {
                        "ansible_ssh_common_args": f"-F {cfg}",
                        "ansible_python_interpreter": "/usr/bin/python3",
                        "ansible_host": EDGE_WAN_IP,
                    },
                    "hosts": {HOST: None},
                }
            }
        )
    )
    return inv


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
    import hashlib

    before = saved(lab)
    bad = tmp_path / "bad"
    shutil.copytree(tree, bad)
    p = bad / f"sites/{SITE}/firewall/rules.v4"
    p.write_text(p.read_text().replace(":FORWARD DROP", ":FORWARD ACCEPT"))
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["sites"][SITE]["files"]["firewall/rules.v4"] = hashlib.sha256(
        p.read_bytes()
    ).hexdigest()
    (bad / "manifest.json").write_text(json.dumps(manifest))
    res = run_apply(lab, bad, overlay)
    assert res.returncode != 0 and "previous ruleset is active again" in res.stdout
    assert saved(lab).replace("[0:0]", "").count(":FORWARD DROP") == 1
    assert _strip_counters(saved(lab)) == _strip_counters(before)


def _strip_counters(text: str) -> str:
    import re

    return re.sub(r"\[\d+:\d+\]", "", text)
