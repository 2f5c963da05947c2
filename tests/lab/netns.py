"""A throwaway store network in Linux network namespaces, for end-to-end tests.

Why namespaces: posnet's promise is "what should be reachable is, what should
not be is not". That can only be shown with real packets through a real
kernel firewall, and namespaces give us a partner, a stranger, a store edge and
POS hosts on one machine in about a tenth of a second, with nothing to install.

Safety rules this module keeps (see DESIGN.md, "The lab"):

* Only documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24),
  and only inside the lab's own namespaces. The machine's root namespace is
  itself on 192.0.2.2/24 with a default route off the machine, so nothing here
  adds an address, a route or a link there, and nothing sends a packet from
  it: veth pairs are created directly inside their namespaces, and the ssh
  config reaches the edge through a relay started in ``ctl``.
* ``inet`` has no default route: a packet the lab cannot deliver dies there.
* Names are unique per run (``pn<4 hex>-<role>``) so parallel runs and
  leftovers never collide; everything a lab starts is found again by
  namespace (``ip netns pids``) and killed on teardown, which runs from the
  fixture finalizer and from atexit. :func:`cleanup_stale` removes what a
  crashed run left behind, but never a lab whose owner process still lives.

Topology (roles; addresses are the constants below)::

    partner 198.51.100.2/28 ──┐
    stranger 198.51.100.18/28 ┤
    ctl 192.0.2.66/28 ────────┼── inet (router, no route out)
    cloud 192.0.2.130/28 ─────┤
    edge wan0 203.0.113.10/24 ┘
    edge br-lan 198.51.100.129/26 ── pos1 .140, pos2 .141 (, proxy .130)

The edge is a real ssh/Ansible/testinfra host: sshd runs in the edge's network
namespace inside a private mount namespace with overlays on /etc, /root and
/var and private tmpfs on /run and /tmp, so whatever Ansible writes "on the
edge" lands in the lab's temp dir and the machine's own files stay untouched.

``Lab(proxy=True)`` adds a reverse-proxy host on the LAN bridge, an ssh host
built the same way. Like a real store's LAN host it is reached through the
edge (``ProxyJump``), never directly from ctl.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

# --------------------------------------------------------------------------
# Addresses. Every one is in a documentation range (RFC 5737).

PARTNER_NET = "198.51.100.0/28"
INET_PARTNER_IP = "198.51.100.1"
PARTNER_IP = "198.51.100.2"

STRANGER_NET = "198.51.100.16/28"
INET_STRANGER_IP = "198.51.100.17"
STRANGER_IP = "198.51.100.18"

WAN_NET = "203.0.113.0/24"
INET_WAN_IP = "203.0.113.1"
EDGE_WAN_IP = "203.0.113.10"
EDGE_WAN_IFACE = "wan0"
EDGE_MGMT_IP = EDGE_WAN_IP  # sshd listens here; ctl reaches it through inet

CTL_NET = "192.0.2.64/28"
INET_CTL_IP = "192.0.2.65"
CTL_IP = "192.0.2.66"

CLOUD_NET = "192.0.2.128/28"
INET_CLOUD_IP = "192.0.2.129"
CLOUD_IP = "192.0.2.130"

LAN_NET = "198.51.100.128/26"
EDGE_LAN_IP = "198.51.100.129"
EDGE_LAN_IFACE = "br-lan"
POS1_IP = "198.51.100.140"
POS2_IP = "198.51.100.141"
PROXY_IP = "198.51.100.130"

SSH_PORT = 22
POS_HTTPS_PORT = 8443
POS_HTTP_PORT = 8080
CLOUD_HTTPS_PORT = 443

#: Every namespace role, routers first.
ROLES: tuple[str, ...] = ("inet", "edge", "partner", "stranger", "ctl", "cloud", "pos1", "pos2")
#: Roles a lab adds only on request (``Lab(proxy=True)``).
OPTIONAL_ROLES: tuple[str, ...] = ("proxy",)
#: Roles that run their own sshd (with overlays) when the lab has them.
SSH_HOSTS: Mapping[str, str] = {"edge": EDGE_MGMT_IP, "proxy": PROXY_IP}

#: The address other hosts use to reach each role (the edge: its WAN address).
ADDRESSES: Mapping[str, str] = {
    "inet": INET_WAN_IP,
    "edge": EDGE_WAN_IP,
    "partner": PARTNER_IP,
    "stranger": STRANGER_IP,
    "ctl": CTL_IP,
    "cloud": CLOUD_IP,
    "pos1": POS1_IP,
    "pos2": POS2_IP,
    "proxy": PROXY_IP,
}

#: Default gateway of each host role (inet has none on purpose).
GATEWAYS: Mapping[str, str] = {
    "edge": INET_WAN_IP,
    "partner": INET_PARTNER_IP,
    "stranger": INET_STRANGER_IP,
    "ctl": INET_CTL_IP,
    "cloud": INET_CLOUD_IP,
    "pos1": EDGE_LAN_IP,
    "pos2": EDGE_LAN_IP,
    "proxy": EDGE_LAN_IP,
}

#: TLS name a lab server's certificate carries, e.g. ``pos1.lab.invalid``.
TLS_DOMAIN = "lab.invalid"

SERVERS_PY = Path(__file__).with_name("servers.py")
NS_RE = re.compile(r"^pn([0-9a-f]{4})-[a-z0-9]+$")
SSHD = "/usr/sbin/sshd"
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
_TOOLS = ("ip", "unshare", "nsenter", "ss", "sysctl", "curl", "openssl", "ssh", "ssh-keygen")


@dataclass(frozen=True)
class _Link:
    """One veth pair: the router side and the host side, with addresses."""

    router: str
    router_if: str
    router_cidr: str
    host: str
    host_if: str
    host_cidr: str


_INET_LINKS: tuple[_Link, ...] = (
    _Link("inet", "partner0", f"{INET_PARTNER_IP}/28", "partner", "eth0", f"{PARTNER_IP}/28"),
    _Link("inet", "stranger0", f"{INET_STRANGER_IP}/28", "stranger", "eth0", f"{STRANGER_IP}/28"),
    _Link("inet", "edge0", f"{INET_WAN_IP}/24", "edge", EDGE_WAN_IFACE, f"{EDGE_WAN_IP}/24"),
    _Link("inet", "ctl0", f"{INET_CTL_IP}/28", "ctl", "eth0", f"{CTL_IP}/28"),
    _Link("inet", "cloud0", f"{INET_CLOUD_IP}/28", "cloud", "eth0", f"{CLOUD_IP}/28"),
)
_LAN_HOSTS: tuple[tuple[str, str], ...] = (
    ("pos1", POS1_IP),
    ("pos2", POS2_IP),
    ("proxy", PROXY_IP),
)


class LabError(RuntimeError):
    """The lab could not be brought up (the message says which step failed)."""


class CurlResult(NamedTuple):
    """What :meth:`Lab.curl` saw: curl's exit code, the HTTP status, the body."""

    exit_code: int
    http_code: int
    body: str


@dataclass
class Server:
    """A server process the lab started (see :meth:`Lab.start_server`)."""

    ns: str
    port: int
    tls: bool
    name: str
    process: subprocess.Popen[bytes] = field(repr=False)


# --------------------------------------------------------------------------
# Capabilities and stale-lab cleanup (module level: usable without a Lab).


def missing_capabilities() -> list[str]:
    """What this machine lacks to run the lab; empty when it can.

    The fixture turns a non-empty answer into a skip on a developer machine
    and into a failure under CI, where a silently skipped lab would hide that
    the end-to-end tests never ran.
    """
    missing: list[str] = []
    if os.geteuid() != 0:
        missing.append("not root (network namespaces and mounts need root)")
    else:
        caps = _effective_caps()
        for bit, name in ((12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN")):
            if caps is not None and not caps & (1 << bit):
                missing.append(f"no {name}")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing += [f"`{t}` not found" for t in _TOOLS if shutil.which(t, path=path) is None]
    if not os.access(SSHD, os.X_OK):
        missing.append(f"{SSHD} not found (openssh-server)")
    try:
        if "overlay" not in Path("/proc/filesystems").read_text():
            missing.append("no overlayfs in this kernel")
    except OSError:
        missing.append("/proc/filesystems unreadable")
    return missing


def _effective_caps() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return None


def _base_dir() -> Path:
    """Where lab dirs live: the temp dir, unless the edge would overlay it.

    A lab dir under /etc, /root, /var or /run would be shadowed by the edge's
    own overlays, so sshd would read (and Ansible write) the wrong copy.
    """
    base = Path(tempfile.gettempdir()).resolve()
    for shadowed in ("/etc", "/root", "/var", "/run"):
        if base == Path(shadowed) or Path(shadowed) in base.parents:
            return Path("/tmp")
    return base


def _checkout() -> list[Path]:
    """This repository and the Python prefix running the tests (its venv), outermost
    first and neither inside the other."""
    repo = Path(__file__).resolve().parents[2]
    prefix = Path(sys.prefix).resolve()
    return [repo] if repo == prefix or repo in prefix.parents else [repo, prefix]


def _lab_dir(lab_id: str) -> Path:
    return _base_dir() / f"posnet-lab-{lab_id}"


def _proc_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may contain spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(lab_id: str) -> bool:
    try:
        pid_s, start = (_lab_dir(lab_id) / "owner").read_text().split()
    except (OSError, ValueError):
        return False
    return _proc_start_time(int(pid_s)) == start


def _netns_list() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def _netns_pids(names: Iterable[str]) -> set[int]:
    pids: set[int] = set()
    for name in names:
        out = subprocess.run(
            ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
        )
        pids.update(int(p) for p in out.stdout.split() if p.isdigit())
    pids.discard(os.getpid())
    return pids


def _kill_namespaces(names: Sequence[str], grace: float = 2.0) -> None:
    """SIGTERM every process in the namespaces, then SIGKILL what is left.

    Two rounds, because a dying sshd or ssh master may still spawn a child.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _netns_pids(names)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _netns_pids(names):
            time.sleep(0.02)


def _delete_namespaces(names: Sequence[str]) -> None:
    if names:
        batch = "".join(f"netns del {n}\n" for n in names)
        subprocess.run(
            ["ip", "-force", "-batch", "-"],
            input=batch,
            capture_output=True,
            text=True,
            check=False,
        )
    for name in names:
        shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)
    # /etc/netns did not exist before the first lab on most machines.
    with contextlib.suppress(OSError):
        Path("/etc/netns").rmdir()


def cleanup_stale(force: bool = False) -> list[str]:
    """Remove what crashed lab runs left: ``pn<hex>-*`` namespaces, their
    processes, their ``/etc/netns`` entries and their temp dirs.

    A lab whose owner process is still alive is left alone (another pytest
    run, or an xdist worker, may be using it) unless ``force`` is true.
    Returns the namespaces removed.
    """
    by_id: dict[str, list[str]] = {}
    for name in _netns_list():
        m = NS_RE.match(name)
        if m:
            by_id.setdefault(m[1], []).append(name)
    etc_netns = Path("/etc/netns")
    if etc_netns.is_dir():
        for entry in etc_netns.iterdir():
            m = NS_RE.match(entry.name)
            if m:
                by_id.setdefault(m[1], [])
    base = _base_dir()
    for entry in base.glob("posnet-lab-*"):
        suffix = entry.name.removeprefix("posnet-lab-")
        if re.fullmatch(r"[0-9a-f]{4}", suffix):
            by_id.setdefault(suffix, [])
    removed: list[str] = []
    for lab_id, names in sorted(by_id.items()):
        if not force and _owner_alive(lab_id):
            continue
        _kill_namespaces(names)
        _delete_namespaces(names)
        if etc_netns.is_dir():
            for entry in etc_netns.glob(f"pn{lab_id}-*"):
                shutil.rmtree(entry, ignore_errors=True)
        shutil.rmtree(_lab_dir(lab_id), ignore_errors=True)
        removed += names
    with contextlib.suppress(OSError):
        etc_netns.rmdir()
    return removed


def _keygen(path: Path, comment: str) -> None:
    argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]
    subprocess.run(argv, check=True, capture_output=True)


def _clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for lab commands, without proxy settings.

    A proxy variable inherited from the machine would make curl or ansible
    aim at the proxy's address instead of the lab host being probed.
    """
    base = dict(os.environ if env is None else env)
    for var in _PROXY_VARS:
        base.pop(var, None)
        base.pop(var.upper(), None)
    return base


# --------------------------------------------------------------------------


class Lab:
    """A store network in network namespaces; ``up()`` builds it, ``down()`` removes it.

    Use as a context manager or call :meth:`up` / :meth:`down`. Roles
    (``"inet"``, ``"edge"``, ``"pos1"``...) are accepted wherever a namespace
    is expected; :attr:`ns` maps them to this run's namespace names.
    """

    #: Same as the module-level :func:`cleanup_stale`.
    cleanup_stale = staticmethod(cleanup_stale)

    def __init__(self, *, servers: bool = True, sshd: bool = True, proxy: bool = False) -> None:
        """Pick a unique id; nothing is created before :meth:`up`.

        ``servers``: start the HTTP(S) servers of the topology (pos1/pos2 on
        8443 TLS and 8080, cloud on 443 TLS). ``sshd``: run the edge's sshd
        (and the proxy's). ``proxy``: add the ``proxy`` host on the LAN.
        """
        self.with_servers = servers
        self.with_sshd = sshd
        self.with_proxy = proxy
        self.roles: tuple[str, ...] = ROLES + (OPTIONAL_ROLES if proxy else ())
        self.id = ""
        self.prefix = ""
        self.ns: dict[str, str] = {}
        self.dir = Path()
        self.servers: list[Server] = []
        self.edge_pid: int | None = None
        #: Role -> pid of the process that holds the host's mount namespace (its sshd).
        self.host_pids: dict[str, int] = {}
        self._procs: list[subprocess.Popen[bytes]] = []
        self._state = "new"
        self.up_seconds = 0.0
        self.down_seconds = 0.0

    # -- paths -----------------------------------------------------------

    @property
    def ssh_dir(self) -> Path:
        return self.dir / "ssh"

    @property
    def ssh_config_path(self) -> Path:
        """ssh_config with ``Host edge`` (also matching the edge's address) and, in a
        lab with a proxy, ``Host proxy`` (ProxyJump edge); works from ctl and from the
        root namespace alike, because the edge's ProxyCommand opens the TCP connection
        inside ctl."""
        return self.ssh_dir / "ssh_config"

    @property
    def ssh_key_path(self) -> Path:
        """Private key authorized for root on the edge."""
        return self.ssh_dir / "id_ed25519"

    @property
    def inventory_path(self) -> Path:
        """An Ansible INI inventory with the host ``edge`` (and ``proxy``)."""
        return self.dir / "inventory.ini"

    def overlay_upper(self, top: str = "/etc", role: str = "edge") -> Path:
        """Upper dir of an ssh host's overlay on ``/etc``, ``/root`` or ``/var``:
        exactly the files created or changed on that host since :meth:`up`."""
        return self.dir / role / top.strip("/") / "upper"

    def cert_path(self, name: str) -> Path:
        """Self-signed certificate made for server ``name`` (key: ``.key``)."""
        return self.dir / "tls" / f"{name}.crt"

    def ns_name(self, ns: str) -> str:
        """Namespace name for a role (or a namespace name of this lab)."""
        if ns in self.ns:
            return self.ns[ns]
        if ns in self.ns.values():
            return ns
        raise KeyError(
            f"{ns!r} is neither a lab role {self.roles} nor one of this lab's namespaces"
        )

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Lab:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> Lab:
        """Build namespaces, links, addresses, routes, sshd and servers.

        On any failure everything already created is torn down before the
        exception propagates, so a half-built lab never lingers.
        """
        if self._state != "new":
            raise LabError(f"a Lab can be brought up once (state: {self._state})")
        missing = missing_capabilities()
        if missing:
            raise LabError("lab unavailable: " + "; ".join(missing))
        t0 = time.monotonic()
        self._claim_id()
        self._state = "up"
        atexit.register(self.down)
        try:
            self._build_network()
            self._write_netns_etc()
            if self.with_sshd:
                self._start_sshd()
                if self.with_proxy:
                    self._start_host_sshd("proxy")
            if self.with_servers:
                self._start_topology_servers()
        except BaseException:
            self.down()
            raise
        self.up_seconds = time.monotonic() - t0
        return self

    def down(self) -> None:
        """Kill every process in the lab's namespaces, delete them, remove the
        temp dir. Idempotent; safe after a partial :meth:`up`."""
        if self._state != "up":
            return
        self._state = "down"
        t0 = time.monotonic()
        atexit.unregister(self.down)
        names = list(self.ns.values())
        if self.with_sshd and (self.ssh_dir / "ssh_config").exists():
            # A ControlMaster started from the root namespace (testinfra in
            # the pytest process) is not in any lab namespace: ask it to exit.
            for host in [r for r in SSH_HOSTS if r in self.roles]:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(
                        ["ssh", "-F", str(self.ssh_config_path), "-O", "exit", host],
                        capture_output=True,
                        timeout=5,
                        check=False,
                    )
        _kill_namespaces(names)
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        _delete_namespaces(names)
        if self.id and self.dir.name == f"posnet-lab-{self.id}":
            shutil.rmtree(self.dir, ignore_errors=True)
        self.down_seconds = time.monotonic() - t0

    @property
    def is_up(self) -> bool:
        return self._state == "up"

    def _claim_id(self) -> None:
        existing = set(_netns_list())
        base = _base_dir()
        base.mkdir(parents=True, exist_ok=True)
        for _ in range(64):
            lab_id = secrets.token_hex(2)
            prefix = f"pn{lab_id}-"
            if any(n.startswith(prefix) for n in existing):
                continue
            try:
                _lab_dir(lab_id).mkdir(mode=0o700)
            except FileExistsError:
                continue
            self.id, self.prefix, self.dir = lab_id, prefix, _lab_dir(lab_id)
            self.ns = {role: f"{prefix}{role}" for role in self.roles}
            start = _proc_start_time(os.getpid())
            (self.dir / "owner").write_text(f"{os.getpid()} {start}\n")
            return
        raise LabError("no free lab id (too many stale labs? run cleanup_stale())")

    # -- network -----------------------------------------------------------

    def _ip_batch(self, ns: str | None, lines: Sequence[str]) -> None:
        argv = ["ip"] + (["-n", ns] if ns else []) + ["-batch", "-"]
        out = subprocess.run(
            argv, input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
        )
        if out.returncode:
            raise LabError(f"{' '.join(argv)} failed: {out.stderr.strip()}\n" + "\n".join(lines))

    def _build_network(self) -> None:
        ns = self.ns
        lan_hosts = [(h, ip) for h, ip in _LAN_HOSTS if h in ns]
        self._ip_batch(None, [f"netns add {ns[r]}" for r in self.roles])
        # veth pairs are born inside their namespaces: no name ever appears
        # in the root namespace, so nothing can clash with (or leak into) it.
        self._ip_batch(
            ns["inet"],
            [
                f"link add {ln.router_if} type veth peer name {ln.host_if} netns {ns[ln.host]}"
                for ln in _INET_LINKS
            ],
        )
        self._ip_batch(
            ns["edge"],
            [f"link add {EDGE_LAN_IFACE} type bridge"]
            + [f"link add lan-{h} type veth peer name eth0 netns {ns[h]}" for h, _ in lan_hosts],
        )
        # sysctls before addresses: the bridge must not hand LAN frames to
        # iptables/nftables (br_netfilter is on in every new namespace here).
        self._sysctl("inet", {"net.ipv4.ip_forward": "1"})
        self._sysctl(
            "edge",
            {
                "net.ipv4.ip_forward": "1",
                "net.bridge.bridge-nf-call-iptables": "0",
                "net.bridge.bridge-nf-call-ip6tables": "0",
                "net.bridge.bridge-nf-call-arptables": "0",
            },
        )
        per_ns: dict[str, list[str]] = {ns[r]: ["link set lo up"] for r in self.roles}
        for ln in _INET_LINKS:
            per_ns[ns[ln.router]] += [
                f"addr add {ln.router_cidr} dev {ln.router_if}",
                f"link set {ln.router_if} up",
            ]
            per_ns[ns[ln.host]] += [
                f"addr add {ln.host_cidr} dev {ln.host_if}",
                f"link set {ln.host_if} up",
            ]
        per_ns[ns["edge"]] += [
            f"addr add {EDGE_LAN_IP}/26 dev {EDGE_LAN_IFACE}",
            f"link set {EDGE_LAN_IFACE} up",
        ]
        for host, ip in lan_hosts:
            per_ns[ns["edge"]] += [
                f"link set lan-{host} master {EDGE_LAN_IFACE}",
                f"link set lan-{host} up",
            ]
            per_ns[ns[host]] += [f"addr add {ip}/26 dev eth0", "link set eth0 up"]
        for role, gw in GATEWAYS.items():
            if role in ns:
                per_ns[ns[role]].append(f"route add default via {gw}")
        for name, lines in per_ns.items():
            self._ip_batch(name, lines)

    def _sysctl(self, role: str, values: Mapping[str, str]) -> None:
        argv = ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in values.items())]
        self.run(role, *argv, timeout=10, check=True)

    def _hosts_file(self) -> str:
        lines = ["127.0.0.1 localhost"]
        lines += [f"{ip} {role} {role}.{TLS_DOMAIN}" for role, ip in ADDRESSES.items()]
        return "\n".join(lines) + "\n"

    def _write_netns_etc(self) -> None:
        """Per-namespace resolv.conf and hosts (``ip netns exec`` binds them).

        ``nameserver 127.0.0.1`` makes every stray lookup fail at once in the
        namespace instead of stalling (or heading for the machine's resolver,
        which the lab cannot and must not reach); the hosts file gives the
        roles names.
        """
        for name in self.ns.values():
            d = Path("/etc/netns") / name
            d.mkdir(parents=True, exist_ok=True)
            (d / "resolv.conf").write_text("nameserver 127.0.0.1\n")
            (d / "hosts").write_text(self._hosts_file())

    # -- ssh hosts (edge, proxy) ---------------------------------------------

    def _ssh_client_block(self, patterns: str, host_name: str, route: str) -> list[str]:
        sd = self.ssh_dir
        return [
            f"Host {patterns}",
            f"    HostName {host_name}",
            f"    Port {SSH_PORT}",
            "    User root",
            f"    IdentityFile {self.ssh_key_path}",
            "    IdentitiesOnly yes",
            "    StrictHostKeyChecking no",
            "    UserKnownHostsFile /dev/null",
            "    LogLevel ERROR",
            "    BatchMode yes",
            "    ConnectTimeout 5",
            "    ControlMaster auto",
            f"    ControlPath {sd}/cm-%C",
            "    ControlPersist 60",
            route,
        ]

    def _start_sshd(self) -> None:
        """Client key, ssh_config and inventory for the lab's ssh hosts; the edge's sshd."""
        sd = self.ssh_dir
        sd.mkdir(mode=0o700)
        _keygen(self.ssh_key_path, "posnet-lab")
        # The edge also answers to its address, so a ProxyJump written as
        # root@<edge address> (what posnet's inventory says) takes the relay too.
        lines = self._ssh_client_block(
            f"edge {EDGE_MGMT_IP}",
            EDGE_MGMT_IP,
            # The TCP connection is always opened from ctl, whichever
            # namespace this ssh runs in: never from the root one.
            f"    ProxyCommand ip netns exec {self.ns['ctl']} "
            f"{sys.executable} -I {SERVERS_PY} relay %h %p",
        )
        inventory = [
            "[edge]",
            "edge ansible_host=edge ansible_user=root"
            " ansible_python_interpreter=/usr/bin/python3"
            f" ansible_ssh_common_args='-F {self.ssh_config_path}'",
        ]
        if self.with_proxy:
            # A LAN host: reached through the edge, as in a real store.
            lines += self._ssh_client_block("proxy", PROXY_IP, "    ProxyJump edge")
            inventory += [
                "[proxy]",
                "proxy ansible_host=proxy ansible_user=root"
                " ansible_python_interpreter=/usr/bin/python3"
                f" ansible_ssh_common_args='-F {self.ssh_config_path}'",
            ]
        self.ssh_config_path.write_text("\n".join(lines) + "\n")
        self.inventory_path.write_text("\n".join(inventory) + "\n")
        self._start_host_sshd("edge")

    def _start_host_sshd(self, role: str) -> None:
        """sshd for ``role`` in its own mount namespace: overlays on /etc, /root, /var,
        private tmpfs on /run and /tmp; the host's files land in the lab dir."""
        sd = self.ssh_dir
        host_dir = self.dir / role
        # The edge keeps its historical file names (tests and docs refer to them).
        suffix = "" if role == "edge" else f"_{role}"
        host_key = sd / f"ssh_host_ed25519_key{suffix}"
        _keygen(host_key, f"posnet-lab-{role}")
        uppers: dict[str, Path] = {}
        for top in ("etc", "root", "var"):
            for sub in ("upper", "work"):
                (host_dir / top / sub).mkdir(parents=True, mode=0o755)
            uppers[top] = self.overlay_upper(top, role)
        # Seed the overlays: these files shadow the machine's in this host only.
        (uppers["etc"] / "hostname").write_text(f"{role}\n")
        (uppers["etc"] / "hosts").write_text(self._hosts_file())
        (uppers["etc"] / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        dot_ssh = uppers["root"] / ".ssh"
        dot_ssh.mkdir(mode=0o700)
        auth = dot_ssh / "authorized_keys"
        auth.write_text(Path(f"{self.ssh_key_path}.pub").read_text())
        auth.chmod(0o600)

        sshd_config = sd / f"sshd_config{suffix}"
        sshd_config.write_text(
            "\n".join(
                [
                    f"ListenAddress {SSH_HOSTS[role]}:{SSH_PORT}",
                    f"HostKey {host_key}",
                    "PidFile none",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "AuthorizedKeysFile .ssh/authorized_keys",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    # No PAM: its session modules expect systemd/logind.
                    "UsePAM no",
                    "UseDNS no",
                    "PrintMotd no",
                    "AcceptEnv LANG LC_*",
                    # Ansible with forks and ControlPersist opens many sessions.
                    "MaxSessions 64",
                    "MaxStartups 64:30:128",
                    "Subsystem sftp internal-sftp",
                    "LogLevel INFO",
                ]
            )
            + "\n"
        )

        mounts = [
            f"mount -t overlay overlay -o lowerdir=/{top},upperdir={uppers[top]},"
            f"workdir={host_dir / top / 'work'} /{top}"
            for top in ("etc", "root", "var")
        ]
        mounts.append("mount -t tmpfs -o mode=0755,size=64m lab-run /run")
        if Path("/tmp") in self.dir.parents:
            # A private /tmp too, so nothing the host writes there reaches the
            # machine's /tmp; the lab dir (sshd config, keys, overlays' upper
            # dirs) is carried over it with a bind mount moved into place, and so
            # are this checkout and its venv when they live under /tmp (a clone
            # there: the edge runs the venv's ansible-pull).
            carried = [self.dir, *(p for p in _checkout() if Path("/tmp") in p.parents)]
            for n, path in enumerate(carried):
                mounts.append(
                    f"mkdir /run/.lab{n} && mount --bind {shlex.quote(str(path))} /run/.lab{n}"
                )
            mounts.append("mount -t tmpfs -o mode=1777,size=256m lab-tmp /tmp")
            for n, path in enumerate(carried):
                where = shlex.quote(str(path))
                mounts.append(
                    f"mkdir -p {where} && mount --move /run/.lab{n} {where} && rmdir /run/.lab{n}"
                )
        script = " && ".join(
            [
                *mounts,
                # What a booted Debian has in /run (tmpfiles.d): sshd's privsep dir,
                # and /run/lock, which /var/lock points to (Apache's lock dir).
                "mkdir -p /run/sshd && mkdir -m 1777 /run/lock",
                f"hostname {role}",
                f"exec {SSHD} -D -e -f {shlex.quote(str(sshd_config))}",
            ]
        )
        if "," in str(self.dir) or ":" in str(self.dir):
            raise LabError(f"lab dir {self.dir} contains ',' or ':' (overlay options)")
        log_path = host_dir / "sshd.log"
        log = log_path.open("wb")
        # --propagation private: the overlays never show up in the machine's
        # mount table, and vanish with the last process of the namespace.
        proc = self.popen(
            role,
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.host_pids[role] = proc.pid
        if role == "edge":
            self.edge_pid = proc.pid
        self.wait_listening(role, SSH_PORT, process=proc, log=log_path)

    def edge_exec(
        self,
        cmd: str | Sequence[str],
        *,
        timeout: float = 30.0,
        check: bool = False,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command as the edge host sees the world: its network, its
        hostname, and its overlaid /etc, /root, /var (``nsenter`` into sshd).

        A string runs under ``sh -c``. Unlike ``run("edge", ...)``, which only
        enters the network namespace, this sees the files Ansible wrote.
        """
        if self.edge_pid is None:
            raise LabError("edge_exec needs the edge sshd (Lab(sshd=True))")
        return self.host_exec("edge", cmd, timeout=timeout, check=check, input=input)

    def host_exec(
        self,
        role: str,
        cmd: str | Sequence[str],
        *,
        timeout: float = 30.0,
        check: bool = False,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """:meth:`edge_exec` for any ssh host of the lab (``"edge"``, ``"proxy"``)."""
        pid = self.host_pids.get(role)
        if pid is None:
            raise LabError(f"host_exec: no sshd-managed host {role!r} in this lab")
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return subprocess.run(
            ["nsenter", "-t", str(pid), "-m", "-u", "-n", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            input=input,
            env=_clean_env(),
        )

    def ssh(
        self, command: str, *, timeout: float = 30.0, check: bool = False, host: str = "edge"
    ) -> subprocess.CompletedProcess[str]:
        """``ssh HOST COMMAND`` run from the ctl namespace, as Ansible does (the
        proxy through the edge)."""
        return self.run(
            "ctl",
            "ssh",
            "-F",
            str(self.ssh_config_path),
            host,
            "--",
            command,
            timeout=timeout,
            check=check,
        )

    def ansible_env(self) -> dict[str, str]:
        """Environment for ansible run in ctl: lab inventory, temp dirs in the lab."""
        env = _clean_env()
        env.update(
            {
                "ANSIBLE_INVENTORY": str(self.inventory_path),
                "ANSIBLE_HOST_KEY_CHECKING": "False",
                "ANSIBLE_LOCAL_TEMP": str(self.dir / "ansible" / "tmp"),
                "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.dir / "ansible" / "cp"),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "False",
            }
        )
        return env

    # -- commands ------------------------------------------------------------

    def run(
        self,
        ns: str,
        *argv: str,
        timeout: float = 30.0,
        check: bool = False,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in a namespace (``ip netns exec``), capture text output.

        Only the network namespace is entered; for the edge's own files use
        :meth:`edge_exec`.
        """
        return subprocess.run(
            ["ip", "netns", "exec", self.ns_name(ns), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            input=input,
            env=_clean_env(env),
        )

    def popen(self, ns: str, *argv: str, **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a long-running process in a namespace; :meth:`down` kills it."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("env", _clean_env())
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", self.ns_name(ns), *argv], **kwargs
        )
        self._procs.append(proc)
        return proc

    def pids(self) -> set[int]:
        """Every process currently in one of the lab's namespaces."""
        return _netns_pids(self.ns.values())

    def curl(self, ns: str, url: str, timeout: float = 3, *extra: str) -> CurlResult:
        """``curl -sk`` from a namespace: (exit code, HTTP status, body).

        HTTP status is 0 when no response came back (refused, timed out...).
        """
        out = self.run(
            ns,
            "curl",
            "-sk",
            "--noproxy",
            "*",
            "--max-time",
            str(timeout),
            "-w",
            "\n%{http_code}",
            *extra,
            url,
            timeout=timeout + 10,
        )
        body, _, code = out.stdout.rpartition("\n")
        return CurlResult(out.returncode, int(code) if code.isdigit() else 0, body)

    def can_connect(self, ns: str, host: str, port: int, timeout: float = 2.0) -> bool:
        """Whether a TCP connection from ``ns`` to host:port is accepted."""
        code = (
            "import socket,sys\n"
            "try:\n"
            f"    socket.create_connection(({host!r}, {int(port)}), timeout={float(timeout)})\n"
            "except OSError:\n"
            "    sys.exit(1)\n"
        )
        return self.run(ns, sys.executable, "-I", "-c", code, timeout=timeout + 10).returncode == 0

    def listening(self, ns: str, port: int, proto: str = "tcp") -> bool:
        """Whether something listens on ``port`` in ``ns`` (``ss -l``)."""
        flag = "-Hltn" if proto == "tcp" else "-Hlun"
        out = self.run(ns, "ss", flag, f"sport = :{port}", timeout=10)
        return bool(out.stdout.strip())

    def wait_listening(
        self,
        ns: str,
        port: int,
        *,
        timeout: float = 10.0,
        process: subprocess.Popen[bytes] | None = None,
        log: Path | None = None,
    ) -> None:
        """Poll ``ss -ltn`` in ``ns`` until ``port`` listens; bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            if self.listening(ns, port):
                return
            died = process is not None and process.poll() is not None
            if died or time.monotonic() > deadline:
                what = "exited" if died else f"not listening after {timeout:.0f}s"
                detail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
                raise LabError(f"{ns}:{port} {what}\n{detail}")
            time.sleep(0.02)

    # -- servers -------------------------------------------------------------

    def make_cert(self, name: str) -> tuple[Path, Path]:
        """Self-signed P-256 cert for ``<name>.lab.invalid`` (and its lab IP)."""
        crt = self.cert_path(name)
        key = crt.with_suffix(".key")
        if crt.exists():
            return crt, key
        crt.parent.mkdir(exist_ok=True)
        fqdn = f"{name}.{TLS_DOMAIN}"
        san = f"DNS:{fqdn},DNS:{name}"
        if name in ADDRESSES:
            san += f",IP:{ADDRESSES[name]}"
        argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        argv += ["-nodes", "-days", "2", "-subj", f"/CN={fqdn}", "-addext", f"subjectAltName={san}"]
        argv += ["-keyout", str(key), "-out", str(crt)]
        subprocess.run(argv, check=True, capture_output=True)
        return crt, key

    def start_server(
        self, ns: str, port: int, tls: bool, name: str, *, wait: bool = True
    ) -> Server:
        """Start the lab HTTP(S) server in ``ns``; returns once it listens."""
        argv = [sys.executable, "-I", str(SERVERS_PY), "http", "--port", str(port)]
        argv += ["--name", name]
        if tls:
            crt, key = self.make_cert(name)
            argv += ["--cert", str(crt), "--key", str(key)]
        logdir = self.dir / "logs"
        logdir.mkdir(exist_ok=True)
        log_path = logdir / f"{self.ns_name(ns)}-{port}.log"
        with log_path.open("wb") as log:
            proc = self.popen(ns, *argv, stdout=log, stderr=subprocess.STDOUT)
        server = Server(self.ns_name(ns), port, tls, name, proc)
        self.servers.append(server)
        if wait:
            self.wait_listening(ns, port, process=proc, log=log_path)
        return server

    def _start_topology_servers(self) -> None:
        specs = [
            ("pos1", POS_HTTPS_PORT, True),
            ("pos1", POS_HTTP_PORT, False),
            ("pos2", POS_HTTPS_PORT, True),
            ("pos2", POS_HTTP_PORT, False),
            ("cloud", CLOUD_HTTPS_PORT, True),
        ]
        # Start all, then wait: the interpreters boot in parallel.
        started = [self.start_server(r, p, tls, r, wait=False) for r, p, tls in specs]
        for s in started:
            log = self.dir / "logs" / f"{s.ns}-{s.port}.log"
            self.wait_listening(s.ns, s.port, process=s.process, log=log)
