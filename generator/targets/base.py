"""What a target is: one self-describing unit that the registry finds.

A target says which host its files land on, when it applies to a Plan, how it renders,
and what each rendered file becomes on that host (destination, mode, validate command,
component, secret style). The inventory, the expectations, the verify suite and the
playbooks' activation tables are all read from these declarations, so nothing else
keeps a second list of vendors.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol, runtime_checkable

from generator.plan import Plan

# Where a target's files go: the store edge (applied by Ansible), a LAN host running a
# reverse proxy (applied by Ansible through the edge), or people (installed by hand:
# Windows scripts, device files, the handover).
Host = Literal["edge", "lan", "manual"]


@dataclass(frozen=True)
class SecretSlot:
    """A secret *reference* whose value the playbook fills in at a marker at apply time."""

    marker: str
    ref: str


@dataclass(frozen=True)
class Artifact:
    """One rendered file as it is installed.

    `host` is "edge" or the LAN host's name; `unit` orders several files of one host
    (the proxy id); `server` names the service a LAN file belongs to.
    """

    source: str
    destination: str
    component: str
    mode: str = "0644"
    validate: str = ""
    secret_style: str = "raw"  # noqa: S105 - a style name, not a secret
    secrets: tuple[SecretSlot, ...] = ()
    host: str = "edge"
    unit: str = ""
    server: str | None = None


@runtime_checkable
class Target(Protocol):
    """The protocol every target implements (built-in or from `posnet.targets`)."""

    @property
    def name(self) -> str: ...

    @property
    def host(self) -> Host: ...

    @property
    def secret_style(self) -> str: ...

    def applies_to(self, plan: Plan) -> bool: ...

    def render(self, plan: Plan) -> dict[str, str]: ...

    def artifacts(self, plan: Plan) -> tuple[Artifact, ...]: ...

    @property
    def activation(self) -> Activation:
        """The recipe the playbook runs to activate this target's files (None: the
        component's playbook needs no per-vendor recipe)."""
        ...

    @property
    def daemon(self) -> Daemon | None:
        """The process its files configure (None: nothing runs them), started by the
        playbooks and checked by verify; its files are those whose `server` is this
        target (the inventory sets it)."""
        ...


def _no_artifacts(plan: Plan) -> tuple[Artifact, ...]:
    return ()


@dataclass(frozen=True)
class Daemon:
    """The long-running process a target's files configure. The verify suite checks that
    it runs, and runs a configuration no older than the target's files; without systemd
    the playbook runs `start`, a template whose `{pidfile}` and `{config}` are this
    daemon's own, so the command cannot name another pid file than the one checked."""

    name: str  # the process name (and the Debian service)
    component: str
    pidfile: str
    start: str = ""
    config: str = ""
    # posnet's own systemd unit runs `start` too (else systemd runs the Debian service,
    # with its own arguments, and only the program is checked on such a host)
    own_unit: bool = False
    # the DHCP lease file it keeps ("" none): verify and apply read it for leases of
    # the store's reserved addresses held by other hosts (playbooks/dhcp.yml)
    leases: str = ""

    def __post_init__(self) -> None:
        wanted = ["{pidfile}"] + (["{config}"] if self.config else [])
        missing = [w for w in wanted if self.start and w not in self.start]
        if missing:
            raise ValueError(f"daemon {self.name}: start command lacks {', '.join(missing)}")

    def command(self) -> str:
        return self.start.format(pidfile=self.pidfile, config=self.config)

    def playbook(self) -> dict[str, object]:
        table = asdict(self) | {"start": self.command()}
        table["pid"] = table.pop("pidfile")
        return table


@dataclass(frozen=True)
class Declared:
    """A target assembled from plain functions: what every built-in module exports."""

    name: str
    host: Host
    applies: Callable[[Plan], bool]
    renderer: Callable[[Plan], dict[str, str]]
    files: Callable[[Plan], tuple[Artifact, ...]] = _no_artifacts
    secret_style: str = "raw"  # noqa: S105 - a style name, not a secret
    activation: Activation = None
    daemon: Daemon | None = None

    def applies_to(self, plan: Plan) -> bool:
        return self.applies(plan)

    def render(self, plan: Plan) -> dict[str, str]:
        return self.renderer(plan) if self.applies(plan) else {}

    def artifacts(self, plan: Plan) -> tuple[Artifact, ...]:
        return self.files(plan) if self.applies(plan) else ()


# ------------------------------------------------------------------ firewall back-ends

# Parts of the neutral firewall model (generator.targets.firewall) a back-end may or may
# not be able to express. A back-end lists what it supports; a rule using anything else
# is an error naming the rule and the back-end, never silently dropped.
Feature = Literal[
    "ipv6",
    "named-sets",
    "conntrack",
    "ct-dnat",
    "rate-limit",
    "icmp",
    "log",
    "dnat",
    "masquerade",
    "interfaces",
    "dns-sets",  # destination sets the edge's resolver fills (dnsmasq nftset/ipset)
]
ALL_FEATURES: frozenset[Feature] = frozenset(Feature.__args__)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class FirewallActivation:
    """How the firewall playbook snapshots, loads, checks and restores one back-end.

    `table` is what the expectations call the back-end's ruleset; `live` lists the
    active ruleset, which must contain `expect` once activated; `drop_policies` are
    regular expressions the verify suite finds in `live_all`'s output on a good edge.
    """

    table: str
    snapshot: str
    live: tuple[str, ...]
    activate: tuple[tuple[str, ...], ...]
    restore: tuple[tuple[str, ...], ...]
    restore_sh: str
    expect: str
    live_all: str
    drop_policies: tuple[str, ...]
    unit: str  # the distribution's boot service that loads the saved rules (systemd)

    def playbook(self) -> dict[str, object]:
        return {
            "snapshot": self.snapshot,
            "live": list(self.live),
            "activate": [list(a) for a in self.activate],
            "restore": [list(r) for r in self.restore],
            "restore_sh": self.restore_sh,
            "expect": self.expect,
            "unit": self.unit,
        }


@dataclass(frozen=True)
class FirewallBackend:
    """What a firewall target adds: its activation recipe and the features it supports."""

    activation: FirewallActivation
    supports: frozenset[Feature] = field(default_factory=lambda: ALL_FEATURES)


def runs_as_started(pidfile: str, name: str, command: str, configs: Sequence[str] = ()) -> str:
    """Shell test: the pid file names a running `name` started with exactly `command`
    (its program's name and every argument): a process renamed with `exec -a`, or the
    daemon restarted by hand with options of its own, is not posnet's, and apply starts
    posnet's again (verify names both: posnet_state.py). With `configs`, it must also
    have started after each one last changed (`started_after`)."""
    pid = f'"$(cat {pidfile})"'
    want = shlex.quote(" ".join(shlex.split(command)) + " ")
    test = (
        f"{alive(pidfile)} && "
        f"test \"$(tr '\\000' ' ' < /proc/{pid}/cmdline)\" = {want} && "
        f'test "$(basename "$(readlink /proc/{pid}/exe)")" = {shlex.quote(name)}'
    )
    return f"{test} && {started_after(pidfile, configs)}" if configs else test


def started_after(pidfile: str, configs: Sequence[str]) -> str:
    """Shell test: the process in the pid file started (within a second) after each
    config's change time. The ctime, not the mtime: a file edited, the daemon restarted
    on it, then the file put back with `cp -p` keeps an old mtime, never an old ctime;
    verify compares the same way (posnet_state.service_findings)."""
    pid = f'"$(cat {pidfile})"'
    # Fractions of a second count (btime and %Z are whole seconds): the boot moment is
    # now minus the uptime, the start that plus the process's clock ticks.
    facts = (
        f'-v now="$(date +%s.%N)" -v up="$(cut -d" " -f1 /proc/uptime)" '
        f"-v t=\"$(sed 's/.*) //' /proc/{pid}/stat | cut -d' ' -f20)\" "
        '-v hz="$(getconf CLK_TCK)"'
    )
    tests = [
        f'awk {facts} -v c="$(stat -c %.9Z {shlex.quote(c)})" '
        "'BEGIN { exit !(t != \"\" && c <= now - up + t / hz + 1) }'"
        for c in configs
    ]
    return " && ".join([f"test -s {pidfile}", *tests])


def alive(pidfile: str) -> str:
    """Shell test: the pid file names a process that runs. `kill -0` is not enough: a
    zombie (killed, not yet reaped by a lax init) still answers it."""
    status = f'"/proc/$(cat {pidfile})/status"'
    return f"test -s {pidfile} && awk '/^State:/ {{exit $2 == \"Z\"}}' {status} 2>/dev/null"


@dataclass(frozen=True)
class ProxyActivation:
    """Shell snippets the proxy playbook runs for one server (see playbooks/proxy.yml)."""

    binary: str
    service: str
    env: str
    check: str
    pidfile: str
    running: str
    start: str
    reload: str
    modules: tuple[str, ...] = ()  # server modules the rendered files need enabled

    def playbook(self) -> dict[str, object]:
        return {
            "binary": self.binary,
            "service": self.service,
            "env": self.env,
            "check": self.check,
            "pidfile": self.pidfile,
            "running": self.running,
            "start": self.start,
            "reload": self.reload,
        }


Activation = FirewallBackend | ProxyActivation | None


def proxy_server(
    name: str,
    destination: str,
    renderer: Callable[[Plan], dict[str, str]],
    activation: ProxyActivation,
    secret_style: str = "raw",  # noqa: S107 - a style name, not a secret
    pidfile: str = "",
) -> Declared:
    """A reverse-proxy server target: one file per proxy of that software, installed on
    the proxy's LAN host at `destination` (formatted with the proxy id). Its daemon is
    the activation's binary with the activation's pid file, unless that is a shell
    expression (Apache's "$APACHE_PID_FILE"): then `pidfile` is its literal value."""

    def files(plan: Plan) -> tuple[Artifact, ...]:
        return tuple(
            Artifact(
                f"proxy/{p.id}.{name}.conf",
                destination.format(id=p.id),
                "proxy",
                host=p.host,
                unit=p.id,
                server=name,
            )
            for p in plan.proxies
            if p.software == name
        )

    return Declared(
        name=name,
        host="lan",
        applies=lambda plan: any(p.software == name for p in plan.proxies),
        renderer=renderer,
        files=files,
        secret_style=secret_style,
        activation=activation,
        daemon=Daemon(activation.binary, "proxy", pidfile or activation.pidfile),
    )


def ddns_client(
    name: str,
    source: str,
    destination: str,
    validate: str,
    renderer: Callable[[Plan], dict[str, str]],
    secret_style: str,
    daemon: Daemon,
) -> Declared:
    """A DDNS client target: one root-only file with the provider password filled in at
    apply time (the Plan's `ddns.client` picks the client)."""

    def applies(plan: Plan) -> bool:
        return plan.ddns is not None and plan.ddns.client == name

    def files(plan: Plan) -> tuple[Artifact, ...]:
        assert plan.ddns is not None
        pw = plan.ddns.password
        slot = SecretSlot(pw.marker, pw.ref)
        return (
            Artifact(
                source,
                destination,
                "ddns",
                mode="0600",
                validate=validate,
                secret_style=secret_style,
                secrets=(slot,),
            ),
        )

    return Declared(name, "edge", applies, renderer, files, secret_style, daemon=daemon)
