"""Ctrl-C and SIGTERM end posnet with 130 and 143 and a line saying so, wherever they
land, never a traceback, never death by the signal, never lost.

Each case puts the signal where Python itself mishandles one (found by interrupting
cold validates at random moments, 1 run in 40 went wrong): while the CLI is imported
(a traceback, or death by SIGTERM), inside code run by exec(), where Python swallows
exceptions (an after-fork hook, a weakref callback: printed as "Exception ignored" and
lost, the command running on), inside a library that wraps the KeyboardInterrupt in
its own exception (pydantic's SchemaError, reported as a posnet bug), in a worker just
forked (a Ctrl-C reaches the whole process group), and after the command has ended.
The signal is sent by the code itself, at that exact place, so each case is
deterministic; the script runs posnet's real entry point. One failure of those random
runs has no deterministic case here: posnet handled the Ctrl-C, printed its line, and
CPython still ended the process by SIGINT at exit (-2); the entry point now ends the
process itself once the exit code is decided, and tests/test_tree_processes.py
interrupts cold validates at many moments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

DEMO = ROOT / "examples" / "demo-fleet"

_PRELUDE = """
import os, signal, sys, time
sys.argv = ["posnet", "validate", {fleet!r}]
SIG = signal.{sig}

def send():
    os.kill(os.getpid(), SIG)
    time.sleep(0.05)  # the handler runs here, inside the place under test
"""

_RUN = """
from generator.entry import main
main()
"""

# Where the signal lands: code run before main(), patching what the command calls.
WEAKREF = """
import weakref
import generator.analyze as analyze
class Thing:
    pass
def analyzed(*args, **kwargs):
    thing = Thing()
    ref = weakref.ref(thing, lambda _: send())
    del thing
    time.sleep(1)
analyze.analyze = analyzed
"""

CASES = {
    "while the CLI is imported": """
import builtins
real_import = builtins.__import__
def hooked(name, *args, **kwargs):
    if name == "generator.cli":
        send()
    return real_import(name, *args, **kwargs)
builtins.__import__ = hooked
""",
    "inside exec()": """
import generator.analyze as analyze
def analyzed(*args, **kwargs):
    exec("send()", {"send": send})
analyze.analyze = analyzed
""",
    "in an after-fork hook": """
import generator.analyze as analyze
from generator.workers import Forked
def analyzed(*args, **kwargs):
    os.register_at_fork(after_in_parent=send)
    Forked(lambda: None, fork=True).result()
    time.sleep(1)
analyze.analyze = analyzed
""",
    "in a weakref callback": WEAKREF,
    "in a weakref callback, on a loaded machine": """
import threading
real_start = threading.Thread.start
def slow_start(self):
    real_start(self)
    time.sleep(0.3)  # the redelivery thread runs while the hook has not returned yet
threading.Thread.start = slow_start
"""
    + WEAKREF,
    "wrapped by a library": """
import generator.analyze as analyze
def analyzed(*args, **kwargs):
    try:
        send()
    except KeyboardInterrupt as exc:
        raise RuntimeError("SchemaError: ... KeyboardInterrupt") from exc
analyze.analyze = analyzed
""",
}


def _run(script: str, cache: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, POSNET_CACHE_DIR=cache)
    argv = [sys.executable, "-c", script]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("where", list(CASES))
@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_anywhere_exits_cleanly(where: str, sig: str, code: int) -> None:
    script = _PRELUDE.format(fleet=str(DEMO), sig=sig) + textwrap.dedent(CASES[where]) + _RUN
    res = _run(script, "off")
    assert res.returncode == code, res.stderr
    assert "Traceback" not in res.stderr and "Exception ignored" not in res.stderr
    word = "interrupted" if sig == "SIGINT" else "terminated"
    assert f"posnet: {word}" in res.stderr


def test_a_signal_after_the_command_ended_changes_nothing() -> None:
    """Once the exit code is decided, a signal neither changes it nor prints anything."""
    script = (
        _PRELUDE.format(fleet=str(DEMO), sig="SIGINT")
        + textwrap.dedent(
            """
        import generator.entry as entry
        real_exit_code = entry.exit_code
        def ending(exc):
            send()  # the command has ended: its SystemExit is being read
            return real_exit_code(exc)
        entry.exit_code = ending
        """
        )
        + _RUN
    )
    res = _run(script, "off")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "interrupted" not in res.stderr


@pytest.mark.parametrize("command", ["validate", "render"])
def test_a_ctrl_c_reaching_a_worker_as_it_is_forked_is_ignored_there(
    tmp_path: Path, command: str
) -> None:
    """A terminal's Ctrl-C goes to every process of the group, workers included. A
    worker is forked with the signals held until it ignores SIGINT (die_with_parent):
    otherwise it would raise KeyboardInterrupt in its copy of posnet and run posnet's
    own clean-up and messages there. Here the signal reaches each worker before it
    ignores SIGINT: the loading workers and the cache writer of a cold validate, and in
    a render also the fleet-level child and the render pool's workers."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fleet_bench import make_fleet

    make_fleet(tmp_path / "fleet", 210, 1)
    out = tmp_path / "build"
    argv = ["posnet", "render", str(tmp_path / "fleet"), "-o", str(out), "--jobs", "2"]
    script = (
        _PRELUDE.format(fleet=str(tmp_path / "fleet"), sig="SIGINT")
        + (f"sys.argv = {argv!r}\n" if command == "render" else "")
        + textwrap.dedent(
            """
        import generator.workers as workers
        real_die_with_parent = workers.die_with_parent
        def die_with_parent(parent):
            send()  # this worker, just forked
            real_die_with_parent(parent)
        workers.die_with_parent = die_with_parent
        """
        )
        + _RUN
    )
    res = _run(script, str(tmp_path / "cache"))
    assert res.returncode == 0, res.stderr
    assert "interrupted" not in res.stderr and "Traceback" not in res.stderr
    if command == "validate":
        assert "210 store(s) valid" in res.stderr
    else:
        manifest = json.loads((out / "manifest.json").read_text())
        assert len(manifest["sites"]) == 210
