"""The firewall watchdog's hand-off, run as the real shell commands firewall.yml sends.

The bad states: the confirmation arrives after the deadline (the watchdog has already
rolled back), a second activation inside the first one's window, and a rollback by the
rescue tasks. In every order exactly one side acts and no watch file is left behind.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 2  # seconds: room for a loaded machine between arming and confirming


def tasks_by_name() -> dict[str, dict[str, Any]]:
    play = yaml.safe_load((ROOT / "playbooks" / "firewall.yml").read_text())[0]
    found: dict[str, dict[str, Any]] = {}
    for task in play["tasks"]:
        for inner in [task, *task.get("block", []), *task.get("rescue", [])]:
            found[inner["name"]] = inner
    return found


TASKS = tasks_by_name()


def render(text: str, watch: Path, restored: Path) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["quote"] = shlex.quote
    return env.from_string(text).render(
        posnet_fw_watch=str(watch),
        posnet_watchdog_seconds=WINDOW,
        posnet_fw={"restore_sh": f"echo x >> {restored}", "activate": [["true"]]},
    )


def arm(watch: Path, restored: Path) -> None:
    cmd = render(
        TASKS["Arm the watchdog and activate the ruleset"]["ansible.builtin.shell"], watch, restored
    )
    subprocess.run(["sh", "-c", cmd], check=True, timeout=10)


def disarm(watch: Path, restored: Path) -> subprocess.CompletedProcess[str]:
    cmd = render(TASKS["Disarm the watchdog"]["ansible.builtin.raw"], watch, restored)
    return subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=10)


def rescue_disarm(watch: Path, restored: Path) -> None:
    argv = TASKS["Disarm the watchdog after rollback"]["ansible.builtin.command"]["argv"]
    subprocess.run([render(a, watch, restored) for a in argv], capture_output=True, timeout=10)


def settle() -> None:
    time.sleep(WINDOW + 0.7)


@pytest.fixture
def state(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "watch-1", tmp_path / "restored"


def restores(restored: Path) -> int:
    return len(restored.read_text().splitlines()) if restored.exists() else 0


def test_confirmed_in_time_keeps_the_ruleset_and_leaves_nothing(
    state: tuple[Path, Path],
) -> None:
    watch, restored = state
    arm(watch, restored)
    assert disarm(watch, restored).returncode == 0
    settle()
    assert restores(restored) == 0
    assert list(watch.parent.glob("watch-*")) == []


def test_late_confirmation_fails_loudly_after_the_rollback_and_leaves_nothing(
    state: tuple[Path, Path],
) -> None:
    watch, restored = state
    arm(watch, restored)
    settle()
    deadline = time.monotonic() + 10  # a loaded machine may run the watchdog late
    while restores(restored) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    late = disarm(watch, restored)
    assert late.returncode == 1
    assert "the watchdog rolled this ruleset back before management was confirmed" in late.stdout
    assert restores(restored) == 1
    rescue_disarm(watch, restored)  # the rescue tasks run next: still nothing left
    assert list(watch.parent.glob("watch-*")) == []


def test_second_activation_is_not_rolled_back_by_the_first_watchdog(tmp_path: Path) -> None:
    restored = tmp_path / "restored"
    first, second = tmp_path / "watch-1", tmp_path / "watch-2"
    arm(first, restored)
    assert disarm(first, restored).returncode == 0
    arm(second, restored)  # inside the first one's window
    time.sleep(WINDOW / 2)
    assert disarm(second, restored).returncode == 0
    settle()
    assert restores(restored) == 0
    assert list(tmp_path.glob("watch-*")) == []


def test_rollback_by_the_rescue_keeps_the_watchdog_from_restoring_again(
    state: tuple[Path, Path],
) -> None:
    watch, restored = state
    arm(watch, restored)
    rescue_disarm(watch, restored)
    settle()
    assert restores(restored) == 0
    assert list(watch.parent.glob("watch-*")) == []
