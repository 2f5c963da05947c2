"""`apply` holds the inventory to the manifest, like the stores' files.

Ansible reads the tree's inventory on the machine that runs `posnet apply`: host
addresses, users, the list of files to copy and where. A hand-edited host_vars file
(`ansible_host` pointing elsewhere would send completed secrets to another machine),
an edited hosts.yml, or a file posnet never wrote (inventory/group_vars/all.yml, read by
Ansible for every host) must stop apply before Ansible starts. The manifest's inventory
hashes must also stay true across partial re-renders, where most inventory files are
not made again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from generator import build
from tests.treeutil import copy_demo, posnet

SITE = "gent-01"


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[Path, Path]:
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "build"
    assert posnet("render", fleet, "-o", out).returncode == 0
    return fleet, out


def disk_inventory(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "inventory").rglob("*"))
        if p.is_file()
    }


def manifest(out: Path) -> dict[str, object]:
    doc = json.loads((out / build.MANIFEST).read_text())
    assert isinstance(doc, dict)
    return doc


def refused(out: Path, offending: Path, why: str) -> None:
    res = posnet("apply", out)
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr
    assert f"{offending}: {why}" in res.stderr, res.stderr
    assert "differs from its manifest; re-render before applying" in res.stderr
    assert "PLAY" not in res.stdout  # Ansible never started


def test_manifest_hashes_every_inventory_file(rendered: tuple[Path, Path]) -> None:
    _, out = rendered
    assert manifest(out)["inventory"] == disk_inventory(out)


def test_an_edited_host_vars_file_stops_apply(rendered: tuple[Path, Path]) -> None:
    fleet, out = rendered
    host_vars = out / "inventory" / "host_vars" / f"{SITE}-edge.yml"
    text = host_vars.read_text()
    assert 'ansible_host: "' in text
    host_vars.write_text(text.replace('ansible_host: "', 'ansible_host: "203.0.113.66.', 1))
    refused(out, host_vars, "edited by hand")
    check = posnet("render", fleet, "-o", out, "--check")
    assert check.returncode == 1 and f"{host_vars}: stale" in check.stdout


def test_an_edited_hosts_file_stops_apply(rendered: tuple[Path, Path]) -> None:
    _, out = rendered
    hosts = out / build.HOSTS
    hosts.write_text(hosts.read_text() + "# harmless-looking\n")
    refused(out, hosts, "edited by hand")


@pytest.mark.parametrize(
    "rel", ["inventory/group_vars/all.yml", "inventory/host_vars/other-edge.yml"]
)
def test_an_inventory_file_posnet_did_not_write_stops_apply(
    rendered: tuple[Path, Path], rel: str
) -> None:
    _, out = rendered
    stray = out / rel
    stray.parent.mkdir(exist_ok=True)
    stray.write_text("ansible_host: 203.0.113.66\n")
    refused(out, stray, "not rendered by posnet")


def test_a_missing_host_vars_file_stops_apply(rendered: tuple[Path, Path]) -> None:
    _, out = rendered
    gone = out / "inventory" / "host_vars" / f"{SITE}-edge.yml"
    gone.unlink()
    refused(out, gone, "missing")


def test_a_manifest_without_inventory_hashes_is_refused_until_rendered(
    rendered: tuple[Path, Path],
) -> None:
    """A tree from a posnet that did not hash the inventory: apply cannot vouch for it."""
    fleet, out = rendered
    doc = manifest(out)
    del doc["inventory"]
    (out / build.MANIFEST).write_text(json.dumps(doc))
    res = posnet("apply", out)
    assert res.returncode == 1
    assert "without the inventory's hashes" in res.stderr and "render" in res.stderr
    assert posnet("render", fleet, "-o", out).returncode == 0
    assert manifest(out)["inventory"] == disk_inventory(out)


def test_hashes_stay_true_across_partial_renders(rendered: tuple[Path, Path]) -> None:
    """One store changed, one store rendered with --site, a host_vars file repaired: the
    manifest's hashes are of the files on disk each time (most carried over, not made)."""
    fleet, out = rendered
    site = fleet / "sites" / f"{SITE}.yaml"
    site.write_text(site.read_text().replace('"203.0.113.10"', '"203.0.113.11"', 1))
    assert "203.0.113.11" in site.read_text()
    assert posnet("render", fleet, "-o", out).returncode == 0
    assert manifest(out)["inventory"] == disk_inventory(out)
    site.write_text(site.read_text().replace('"203.0.113.11"', '"203.0.113.12"', 1))
    assert posnet("render", fleet, "-o", out, "--site", SITE).returncode == 0
    assert "203.0.113.12" in (out / "inventory" / "host_vars" / f"{SITE}-edge.yml").read_text()
    assert manifest(out)["inventory"] == disk_inventory(out)
    host_vars = out / "inventory" / "host_vars" / "antwerp-02-edge.yml"
    host_vars.write_text(host_vars.read_text() + "# edited\n")
    assert posnet("render", fleet, "-o", out).returncode == 0
    assert "# edited" not in host_vars.read_text()
    assert manifest(out)["inventory"] == disk_inventory(out)
    assert posnet("render", fleet, "-o", out, "--check").returncode == 0
    assert posnet("render", fleet, "-o", out, "--check", "--full").returncode == 0


def test_a_stray_name_is_printed_escaped(rendered: tuple[Path, Path]) -> None:
    """A stray file's name is anyone's text: a terminal escape in it is shown, not sent."""
    _, out = rendered
    (out / "inventory" / "host_vars" / "\x1b]0;owned\x07x.yml").write_text("a: 1\n")
    res = posnet("apply", out)
    assert res.returncode == 1
    assert "\x1b" not in res.stderr and "\\x1b]0;owned\\x07x.yml: not rendered by posnet" in (
        res.stderr
    )
