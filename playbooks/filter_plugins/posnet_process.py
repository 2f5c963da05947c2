"""`pidfile | posnet_alive`: the shell test that the pid file names a running process.

The same test the proxy recipes use (generator.targets.base.alive): a zombie counts as
stopped, so a daemon killed on a host whose init reaps late is started again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError


def posnet_alive(pidfile: str) -> str:
    try:
        from generator.targets.base import alive
    except ImportError as exc:
        raise AnsibleFilterError(
            "posnet_alive: posnet is not importable here; run the playbooks with `posnet apply`"
        ) from exc
    return alive(str(pidfile))


def posnet_runs_as_started(pidfile: str, name: str, command: str) -> str:
    """`pidfile | posnet_runs_as_started(name, command)`: alive, and that very daemon."""
    try:
        from generator.targets.base import runs_as_started
    except ImportError as exc:
        raise AnsibleFilterError(
            "posnet_runs_as_started: posnet is not importable here; run the playbooks with "
            "`posnet apply`"
        ) from exc
    return runs_as_started(str(pidfile), str(name), str(command))


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"posnet_alive": posnet_alive, "posnet_runs_as_started": posnet_runs_as_started}
