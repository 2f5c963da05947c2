"""posnet's playbooks and plugins ship as the Ansible collection posnet.fleet: it builds
from this repository, installs from a requirements.yml into a private collections path,
and its playbooks resolve posnet's own module and filters from there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from generator import build
from generator.analyze import analyze
from tests.conftest import DEMO, ROOT

BIN = Path(sys.executable).parent


def test_collection_builds_installs_and_parses(tmp_path: Path) -> None:
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "home"), "ANSIBLE_NOCOLOR": "1"}
    built = subprocess.run(
        [BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path / "dist", ROOT],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (tarball,) = (tmp_path / "dist").glob("posnet-fleet-*.tar.gz")
    req = tmp_path / "requirements.yml"
    req.write_text(f"collections:\n  - name: {tarball}\n    type: file\n")
    cols = tmp_path / "collections"
    inst = subprocess.run(
        [BIN / "ansible-galaxy", "collection", "install", "-r", req, "-p", cols],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert inst.returncode == 0, inst.stdout + inst.stderr
    installed = cols / "ansible_collections" / "posnet" / "fleet"
    assert (installed / "playbooks" / "library" / "posnet_state.py").exists()
    assert not (installed / "generator").exists() and not (installed / "tests").exists()
    a = analyze(DEMO)
    tree = tmp_path / "build"
    build.render_tree(tree, a.fleet.name, a.plans, a.digests)
    for playbook in ("posnet.fleet.site", "posnet.fleet.state"):
        res = subprocess.run(
            [BIN / "ansible-playbook", "-i", tree / "inventory", playbook, "--syntax-check"],
            capture_output=True,
            text=True,
            check=False,
            env={**env, "ANSIBLE_COLLECTIONS_PATH": str(cols)},
        )
        assert res.returncode == 0, playbook + res.stdout + res.stderr
