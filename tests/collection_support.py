"""Build posnet.fleet from this repository and install it from a requirements.yml into
a private collections path, the way a fleet repo or AWX project does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def install_collection(tmp_path: Path, env: dict[str, str]) -> Path:
    """The collections path holding the freshly built posnet.fleet."""
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
    return cols
