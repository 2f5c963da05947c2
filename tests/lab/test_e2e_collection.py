"""posnet as an Ansible citizen, in the lab: the collection installed from a
requirements.yml into a temporary collections path applies a store with
`ansible-playbook posnet.fleet.site`, and an edge applies itself with ansible-pull from a
bare Git fleet repo (file://, reachable inside the lab) over a local connection, as the
README's recipes say."""

from __future__ import annotations

import base64
import io
import os
import shlex
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collection_support import BIN, install_collection

from .e2e_support import posnet, recap, render_demo, running_lab, write_overlay
from .netns import Lab

pytestmark = pytest.mark.lab
HOST = "gent-01-edge"
# The fleet repo's playbook for ansible-pull (README, "ansible-pull"): a file in the
# repo that imports the collection's site playbook.
PULL_PLAYBOOK = "- name: posnet site\n  ansible.builtin.import_playbook: posnet.fleet.site\n"
REQUIREMENTS = "collections:\n  - name: {}\n    type: file\n"
PULL = "/root/posnet-pull"  # on the edge (its own /root overlay, gone with the lab)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with running_lab() as the_lab:
        yield the_lab


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_demo(tmp_path_factory.mktemp("collection") / "build")


@pytest.fixture(scope="module")
def cols(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("galaxy")
    return install_collection(home, {**os.environ, "ANSIBLE_HOME": str(home / "home")})


def verify_in_sync(lab: Lab, tree: Path) -> None:
    overlay = write_overlay(lab, [HOST], {}, pipelining=False)
    ok = posnet(lab, "verify", str(tree), "-i", str(overlay), "--limit", HOST)
    assert ok.returncode == 0, ok.stdout[-4000:] + ok.stderr[-2000:]
    assert f"ok   live state {HOST}: in sync" in ok.stdout


def test_installed_collection_applies_a_lab_store(lab: Lab, tree: Path, cols: Path) -> None:
    overlay = write_overlay(lab, [HOST], {"posnet_watchdog_seconds": 30}, pipelining=False)
    env = {**lab.ansible_env(), "ANSIBLE_COLLECTIONS_PATH": str(cols)}
    env.pop("ANSIBLE_INVENTORY", None)
    argv = [BIN / "ansible-playbook", "-i", tree / "inventory", "-i", overlay]
    res = subprocess.run(
        [*argv, "posnet.fleet.site", "--limit", HOST],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert recap(res.stdout, HOST)["changed"] > 0
    assert "ansible_collections/posnet/fleet/playbooks" not in res.stderr  # no warnings
    verify_in_sync(lab, tree)


def packed(tree: Path, tarball: Path) -> str:
    """The fleet repo's files (build tree, pull.yml, collections/requirements.yml) and
    the collection tarball, as base64 text for the edge (its /tmp is its own)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tree, arcname="fleet/build")
        tar.add(tarball, arcname=tarball.name)
        for name, text in (
            ("fleet/pull.yml", PULL_PLAYBOOK),
            ("fleet/collections/requirements.yml", REQUIREMENTS.format(f"{PULL}/{tarball.name}")),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buf.getvalue()).decode()


def test_ansible_pull_applies_the_edge_from_a_bare_repo(lab: Lab, tree: Path, cols: Path) -> None:
    """Everything happens on the edge, as on a real store: the fleet repo is a bare Git
    repo there (file://), the collection is installed from the repo's requirements.yml,
    ansible-pull checks the repo out and applies it over a local connection."""
    (tarball,) = (cols.parent / "dist").glob("posnet-fleet-*.tar.gz")
    # Something to put back: forwarding switched off by hand on the edge.
    assert lab.edge_exec("echo 0 > /proc/sys/net/ipv4/ip_forward").returncode == 0
    env = {
        "PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "ANSIBLE_HOME": f"{PULL}/home",
        "ANSIBLE_COLLECTIONS_PATH": f"{PULL}/collections",
        "ANSIBLE_NOCOLOR": "1",
    }
    git = "git -c user.name=posnet -c user.email=posnet@example.invalid"
    pull = [
        "ansible-pull",
        *("-U", f"file://{PULL}/fleet.git", "-C", "main", "-d", f"{PULL}/checkout"),
        *("-i", "build/inventory", "--limit", HOST, "-e", "posnet_watchdog_seconds=30"),
        "pull.yml",
    ]
    script = f"""set -e
rm -rf {PULL}; mkdir -p {PULL}; cd {PULL}
base64 -d | tar -xz
cd fleet; git init -q -b main; git add -A; {git} commit -q -m fleet; cd ..
git clone -q --bare fleet fleet.git
ansible-galaxy collection install -r fleet/collections/requirements.yml -p {PULL}/collections
{shlex.join(pull)}
"""
    cmd = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    res = lab.edge_exec(
        f"env -i {cmd} sh -c {shlex.quote(script)}", input=packed(tree, tarball), timeout=400
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert recap(res.stdout, HOST)["failed"] == 0
    assert lab.edge_exec("cat /proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    verify_in_sync(lab, tree)
