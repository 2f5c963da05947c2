"""Shared pieces of the end-to-end lab tests: a running lab, a rendered demo tree, the
lab-only inventory overlay, and running posnet the way an operator would."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generator import build
from generator.analyze import analyze
from tests.conftest import DEMO

from .conftest import require_lab
from .netns import EDGE_WAN_IP, Lab, cleanup_stale


@contextmanager
def running_lab(**kwargs: bool) -> Iterator[Lab]:
    require_lab()
    cleanup_stale()
    the_lab = Lab(**kwargs)
    the_lab.up()
    try:
        yield the_lab
    finally:
        the_lab.down()


def render_demo(out: Path) -> Path:
    a = analyze(DEMO)
    assert not a.failed()
    build.render_tree(out, a.fleet.name, a.plans, a.digests)
    return out


def write_overlay(
    lab: Lab, hosts: list[str], extra_vars: dict[str, Any], pipelining: bool = True
) -> Path:
    """Lab-only inventory: reach the edge by ssh through the ctl namespace.

    Pipelining (one ssh round trip per task instead of three), as an operator with many
    stores sets it, halves an apply; test_e2e_collection runs without it, so Ansible's
    default transport stays tested too."""
    cfg = lab.dir / "posnet_ssh_config"
    text = lab.ssh_config_path.read_text().replace("Host edge", f"Host edge {EDGE_WAN_IP}", 1)
    cfg.write_text(text)
    inv = lab.dir / "posnet-lab.yml"
    variables = {
        "ansible_ssh_common_args": f"-F {cfg}",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_pipelining": pipelining,
        **extra_vars,
    }
    inv.write_text(json.dumps({"posnet_edges": {"vars": variables, "hosts": dict.fromkeys(hosts)}}))
    return inv


def posnet(
    lab: Lab, *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    full = lab.ansible_env()
    full.pop("ANSIBLE_INVENTORY", None)
    full["PATH"] = f"{Path(sys.executable).parent}:{full.get('PATH', '/usr/bin:/bin')}"
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
        check=False,
    )


def recap(out: str, host: str) -> dict[str, int]:
    m = re.search(rf"^{re.escape(host)}\s*:\s*(.*)$", out, re.M)
    assert m, out[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def tampered_copy(tree: Path, dest: Path, site: str, rel: str, edit: Callable[[str], str]) -> Path:
    """A tree with one file changed and a manifest that agrees (a renderer bug)."""
    shutil.copytree(tree, dest)
    p = dest / "sites" / site / rel
    p.write_text(edit(p.read_text()))
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["sites"][site]["files"][rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest
