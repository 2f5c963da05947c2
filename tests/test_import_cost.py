"""What `posnet validate` and `posnet render` import: every CLI run pays for its imports
(about 0.6 s of pydantic models, dataclasses and libraries), so modules that these
commands never use are imported only by the commands that do. A run in a fresh
interpreter lists its modules: an eager import added back fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from generator import cli
from tests.treeutil import posnet_process

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo-fleet"

# Modules of other commands: apply, verify, probe, drift (runtime) and diff, init, report.
OTHER_COMMANDS = {
    "generator.runtime",
    "generator.verify.state",
    "generator.diff.command",
    "generator.report",
    "generator.report.command",
    "generator.scaffold",
    "generator.scaffold.command",
}

_RUN = """
import json, sys
import generator.cli as cli
try:
    cli.main(sys.argv[2:])
except SystemExit:
    pass
with open(sys.argv[1], "w") as fh:
    json.dump(sorted(sys.modules), fh)
"""


def _fresh(tmp_path: Path, script: str, *args: str) -> Any:
    """What `script` wrote (as JSON) once `posnet ARGS` ran in a fresh interpreter."""
    written = tmp_path / "written.json"
    env = {**os.environ, "POSNET_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(written), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return json.loads(written.read_text())


def _modules_after(tmp_path: Path, *args: str) -> set[str]:
    """The modules a fresh interpreter holds once `posnet ARGS` has ended."""
    return set(_fresh(tmp_path, _RUN, *args))


@pytest.mark.parametrize("runs", [1, 2], ids=["cold", "cached"])
def test_validate_imports_no_other_command(tmp_path: Path, runs: int) -> None:
    for _ in range(runs):
        loaded = _modules_after(tmp_path, "validate", str(DEMO))
    assert "generator.analyze" in loaded  # it did run
    assert not loaded & OTHER_COMMANDS
    # it renders nothing: its cache key reads the templates' folder, not jinja2
    assert not loaded & {"jinja2", "generator.templating"}


def test_render_imports_no_other_command(tmp_path: Path) -> None:
    loaded = _modules_after(tmp_path, "render", str(DEMO), "-o", str(tmp_path / "out"))
    assert (tmp_path / "out" / "manifest.json").is_file()  # it did render
    assert not loaded & OTHER_COMMANDS


def test_every_command_is_found_by_its_name() -> None:
    """The names registered on first use are the names the commands have: a command
    renamed (or moved) without its entry in cli._LATER fails here, not as "No such
    command" for users."""
    ctx = click.Context(cli.cli)
    names = cli.cli.list_commands(ctx)
    assert set(cli._LATER) <= set(names)
    for name in names:
        command = cli.cli.get_command(ctx, name)
        assert command is not None and command.name == name
    assert {c.name for load in set(cli._LATER.values()) for c in load()} == set(cli._LATER)


def test_help_lists_the_commands_imported_later() -> None:
    shown = posnet_process("--help")  # fresh: nothing registered yet
    assert shown.returncode == 0, shown.stderr
    listed = {
        line.split()[0] for line in shown.stdout.split("Commands:", 1)[1].splitlines() if line
    }
    assert set(cli._LATER) <= listed


def test_a_mistyped_command_is_told_its_likely_name() -> None:
    """An unknown name loads every command first, so the suggestion can name one that is
    imported later."""
    shown = posnet_process("aply")
    assert shown.returncode == 2
    assert "No such command 'aply'" in shown.stderr
    assert "apply" in shown.stderr.replace("'aply'", "")


_EARLY = """
import json, os, sys
import generator.tree_scan as tree_scan
import generator.cli as cli
tree_scan.EARLY_SCAN_BYTES = 0  # the demo's tree is small: walk it early all the same
os.cpu_count = lambda: 2  # and in a forked child, on a 1-core runner too
real = tree_scan.early_scan
seen = {}
def spy(out, jobs=0):
    scan = real(out, jobs)
    seen.update(modules=sorted(sys.modules), forked=scan.pid > 0)
    return scan
tree_scan.early_scan = spy
try:
    cli.main(sys.argv[2:])
except SystemExit:
    pass
with open(sys.argv[1], "w") as fh:
    json.dump(seen, fh)
"""


def test_the_tree_walk_starts_before_the_loader_is_imported(tmp_path: Path) -> None:
    """The walk of a big build tree (about 1 s of kernel time at 10,000 stores) runs
    beside validation in a forked child: forked before the models and the loader are
    imported (about 0.25 s), it is done by the time a one-store render needs it."""
    args = ["render", str(DEMO), "-o", str(tmp_path / "out")]
    first = posnet_process(*args, env={"POSNET_CACHE_DIR": str(tmp_path / "cache")})
    assert first.returncode == 0, first.stderr
    seen = _fresh(tmp_path, _EARLY, *args)
    assert seen["forked"], "the walk did not run in a forked child"
    early = set(seen["modules"])
    assert "generator.tree_scan" in early
    loader = {"pydantic", "generator.analyze", "generator.spec.load", "generator.build"}
    assert not early & loader, sorted(early & loader)
