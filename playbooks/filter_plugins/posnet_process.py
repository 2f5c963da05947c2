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


def posnet_runs_as_started(
    pidfile: str, name: str, command: str, configs: list[str] | None = None
) -> str:
    """`pidfile | posnet_runs_as_started(name, command[, configs])`: alive, that very
    daemon, and (with configs) started after each config last changed."""
    try:
        from generator.targets.base import runs_as_started
    except ImportError as exc:
        raise AnsibleFilterError(
            "posnet_runs_as_started: posnet is not importable here; run the playbooks with "
            "`posnet apply`"
        ) from exc
    return runs_as_started(str(pidfile), str(name), str(command), [str(c) for c in configs or []])


def posnet_started_after(pidfile: str, configs: list[str]) -> str:
    """`pidfile | posnet_started_after(configs)`: the daemon started after each config
    last changed (a systemd service apply did not restart for a changed file)."""
    try:
        from generator.targets.base import started_after
    except ImportError as exc:
        raise AnsibleFilterError(
            "posnet_started_after: posnet is not importable here; run the playbooks with "
            "`posnet apply`"
        ) from exc
    return started_after(str(pidfile), [str(c) for c in configs])


def _dnsmasq() -> Any:
    try:
        from generator.targets import dnsmasq
    except ImportError as exc:
        raise AnsibleFilterError(
            "posnet: posnet is not importable here; run the playbooks with `posnet apply`"
        ) from exc
    return dnsmasq


def posnet_reserved_free(leases: str, reservations: list[dict[str, Any]]) -> str:
    """`leases | posnet_reserved_free(reservations)`: the shell test that no lease gives
    a reserved address to another MAC."""
    return str(_dnsmasq().reserved_free(str(leases), list(reservations or [])))


def posnet_free_reserved(leases: str, reservations: list[dict[str, Any]]) -> str:
    """`leases | posnet_free_reserved(reservations)`: the shell that drops such leases
    (dnsmasq stopped)."""
    return str(_dnsmasq().free_reserved(str(leases), list(reservations or [])))


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "posnet_alive": posnet_alive,
            "posnet_runs_as_started": posnet_runs_as_started,
            "posnet_started_after": posnet_started_after,
            "posnet_reserved_free": posnet_reserved_free,
            "posnet_free_reserved": posnet_free_reserved,
        }
