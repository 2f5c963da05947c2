"""posnet's playbooks and plugins ship as the Ansible collection posnet.fleet: it builds
from this repository, installs from a requirements.yml into a private collections path,
and its playbooks resolve posnet's own module and filters from there. `--syntax-check`
resolves modules but not Jinja filters or lookups (they are looked up only when a task
runs), so the plugins the playbooks name are resolved through Ansible's loader too;
both checks are shown to fail when a plugin folder is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from generator import build
from generator.analyze import analyze
from tests.collection_support import BIN, install_collection
from tests.conftest import DEMO

# Resolve every posnet_* filter and lookup the installed playbooks use, the way
# ansible-playbook does for a collection playbook (its folder's plugin dirs added).
RESOLVE = """
import pathlib, re, sys
from ansible.plugins.loader import add_all_plugin_dirs, filter_loader, init_plugin_loader
from ansible.plugins.loader import lookup_loader
init_plugin_loader([sys.argv[1]])
pb = pathlib.Path(sys.argv[1]) / "ansible_collections/posnet/fleet/playbooks"
add_all_plugin_dirs(str(pb))
text = "".join(p.read_text() for p in sorted(pb.rglob("*.yml")))
filters = sorted(set(re.findall(r"[|]\\s*(posnet_\\w+)", text)))
lookups = sorted(set(re.findall(r"(?:lookup|query)[(]\\s*'(posnet_\\w+)'", text)))
print("used", *filters, *lookups)
for kind, loader, names in (("filter", filter_loader, filters), ("lookup", lookup_loader, lookups)):
    for name in names:
        if loader.get(name) is None:
            print("missing", kind, name)
"""


def syntax_check(tree: Path, cols: Path, env: dict[str, str], playbook: str) -> str:
    """Empty when ansible-playbook --syntax-check accepts the installed playbook."""
    res = subprocess.run(
        [BIN / "ansible-playbook", "-i", tree / "inventory", playbook, "--syntax-check"],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "ANSIBLE_COLLECTIONS_PATH": str(cols)},
    )
    return "" if res.returncode == 0 else playbook + res.stdout + res.stderr


# The plugins the playbooks use, as the resolver lists them (filters sorted, then lookups).
FILTERS = (
    "alive",
    "fill",
    "free_reserved",
    "htpasswd",
    "intended",
    "reserved_free",
    "runs_as_started",
    "started_after",
)
LOOKUPS = ("kinds", "secret")


def unresolved(cols: Path, env: dict[str, str]) -> list[str]:
    res = subprocess.run(
        [sys.executable, "-c", RESOLVE, cols],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "ANSIBLE_COLLECTIONS_PATH": str(cols)},
    )
    lines = res.stdout.splitlines()
    used = "used " + " ".join(f"posnet_{name}" for name in (*FILTERS, *LOOKUPS))
    assert lines[0] == used, res.stdout
    return lines[1:]


def test_collection_builds_installs_and_parses(tmp_path: Path) -> None:
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "home"), "ANSIBLE_NOCOLOR": "1"}
    cols = install_collection(tmp_path, env)
    installed = cols / "ansible_collections" / "posnet" / "fleet"
    assert (installed / "playbooks" / "library" / "posnet_state.py").exists()
    assert not (installed / "generator").exists() and not (installed / "tests").exists()
    a = analyze(DEMO)
    tree = tmp_path / "build"
    build.render_tree(tree, a.fleet.name, a.plans, a.digests)
    for playbook in ("posnet.fleet.site", "posnet.fleet.state"):
        assert syntax_check(tree, cols, env, playbook) == ""
    assert unresolved(cols, env) == []
    # Adversarial: the same checks with a plugin folder missing from the collection.
    playbooks = installed / "playbooks"
    shutil.move(playbooks / "library", tmp_path / "library")
    assert "couldn't resolve module/action 'posnet_" in syntax_check(
        tree, cols, env, "posnet.fleet.site"
    )
    shutil.move(tmp_path / "library", playbooks / "library")
    shutil.move(playbooks / "filter_plugins", tmp_path / "filter_plugins")
    assert syntax_check(tree, cols, env, "posnet.fleet.site") == ""  # blind to filters
    assert unresolved(cols, env) == [f"missing filter posnet_{f}" for f in FILTERS]
    shutil.move(tmp_path / "filter_plugins", playbooks / "filter_plugins")
    shutil.move(playbooks / "lookup_plugins", tmp_path / "lookup_plugins")
    assert unresolved(cols, env) == [f"missing lookup posnet_{f}" for f in LOOKUPS]
