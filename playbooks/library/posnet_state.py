#!/usr/bin/python3
# WANT_JSON
"""posnet_state: compare what runs on a posnet host with what the build intends.

Why a module of its own: "policy drop is there and the expected rules too" lets an extra
accept rule pass. This module loads the rendered ruleset into a scratch network namespace
(``unshare -n``) on the host itself, lists it the way the live one is listed (nft JSON;
``iptables-save`` for iptables), and compares the two rule by rule with handles and
counters ignored. It also checks installed files against the build's hashes, that the
services posnet manages run and were (re)started after their config was written, and the
kernel settings an edge needs. It never changes anything; apply and verify both call it.

Stdlib only (it runs on the managed host). Arguments (JSON): ``firewall`` (nftables,
iptables or empty), ``files`` (from the ``posnet_intended`` filter), ``sysctl``
(path -> value; a value prefixed with ``?`` is checked only when the path exists),
``only`` (``firewall`` to compare the ruleset alone, as apply does), ``daemons``
(target -> name, component, pid, config: the daemons the targets declare),
``secret_files`` (dest, owner, group, mode of the files filled from references),
``boot_units`` (systemd units apply enables: under systemd they must stay enabled),
``dhcp_reservations`` (mac, ip: no lease may give a reserved address to another MAC),
``proxy_servers`` and ``proxy_ports`` (nginx/apache on a proxy host and its ports: no
other server of theirs may serve those ports).
Result: ``drift``: list of findings, each ``{"what": area, "detail": text}``.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

TABLE = ("inet", "posnet")
MARKER = "@@POSNET_SECRET_"
Finding = dict[str, str]


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/status") as fh:
        return any(line.split()[1:2] == ["Z"] for line in fh if line.startswith("State:"))


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, input=stdin, check=False)


def _scratch(script: str, text: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with "$1" = a file holding ``text``, in a fresh network namespace."""
    with tempfile.NamedTemporaryFile("w", suffix=".posnet", delete=False) as fh:
        fh.write(text)
        path = fh.name
    try:
        return _run(["unshare", "-n", "sh", "-c", script, "sh", path])
    finally:
        os.unlink(path)


# ----------------------------------------------------------------------------- nftables


def normalise_nft(doc: dict[str, Any]) -> dict[str, Any]:
    """Sets, chains and rules of one nft JSON listing, without handles and counters."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k == "handle":
                    continue
                out[k] = None if k == "counter" and isinstance(v, dict) else clean(v)
            return out
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    sets: dict[str, Any] = {}
    chains: dict[str, dict[str, Any]] = {}
    rules: dict[str, list[dict[str, Any]]] = {}
    flags: list[str] = []
    for item in doc.get("nftables", []):
        if "table" in item:
            # `flags dormant` switches every chain of the table off: nothing is filtered
            found = item["table"].get("flags", [])
            flags = sorted([found] if isinstance(found, str) else found)
        elif "set" in item:
            s = clean(item["set"])
            sets[s["name"]] = s
        elif "chain" in item:
            c = clean(item["chain"])
            chains[c["name"]] = {k: c.get(k) for k in ("type", "hook", "prio", "policy")}
            rules.setdefault(c["name"], [])
        elif "rule" in item:
            r = clean(item["rule"])
            rules.setdefault(r["chain"], []).append(
                {"expr": r.get("expr", []), "comment": r.get("comment")}
            )
    return {"sets": sets, "chains": chains, "rules": rules, "flags": flags}


def _operand(v: Any) -> str:
    if isinstance(v, dict):
        if "payload" in v:
            p = v["payload"]
            return f"{p.get('protocol', '')} {p.get('field', '')}".strip()
        if "meta" in v:
            return str(v["meta"].get("key"))
        if "ct" in v:
            return f"ct {v['ct'].get('key')}"
        if "prefix" in v:
            return f"{v['prefix'].get('addr')}/{v['prefix'].get('len')}"
        if "set" in v:
            return "{" + ", ".join(_operand(x) for x in v["set"]) + "}"
    if isinstance(v, list):
        return ",".join(_operand(x) for x in v)
    return str(v)


def describe_nft_rule(rule: dict[str, Any]) -> str:
    """A short human form of a rule: its comment, else its matches and verdict."""
    if rule.get("comment"):
        return f'"{rule["comment"]}"'
    parts = []
    for e in rule.get("expr", []):
        if "match" in e:
            m = e["match"]
            op = "" if m.get("op") in ("==", "in") else f"{m.get('op')} "
            parts.append(f"{_operand(m.get('left'))} {op}{_operand(m.get('right'))}")
        elif "counter" in e:
            continue
        elif len(e) == 1:
            ((key, val),) = e.items()
            if isinstance(val, dict) and "addr" in val:
                port = f":{val['port']}" if "port" in val else ""
                parts.append(f"{key} to {_operand(val['addr'])}{port}")
            else:
                parts.append(key if val is None else f"{key} {json.dumps(val)[:40]}")
    return "rule without comment: " + (" ".join(parts) or "(empty)")


def _diff_lists(chain: str, live: list[Any], want: list[Any], describe: Any) -> list[Finding]:
    out: list[Finding] = []
    key = [json.dumps(r, sort_keys=True) for r in live]
    ref = [json.dumps(r, sort_keys=True) for r in want]
    sm = difflib.SequenceMatcher(a=ref, b=key, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op in ("delete", "replace"):
            for r in want[i1:i2]:
                out.append(
                    {"what": "firewall", "detail": f"chain {chain}: missing rule {describe(r)}"}
                )
        if op in ("insert", "replace"):
            for n, r in enumerate(live[j1:j2], start=j1 + 1):
                out.append(
                    {"what": "firewall", "detail": f"chain {chain}: extra rule #{n} {describe(r)}"}
                )
    return out


def filled_at_run_time(name: str, want: Any) -> bool:
    """A `dns_<flow>` set, rendered empty: the edge's dnsmasq adds the addresses it
    answers for the flow's domains (nftset=), so its members are not drift. Its
    declaration (type, flags, comment) still is, and every load empties it."""
    return name.startswith("dns_") and isinstance(want, dict) and "elem" not in want


def compare_nft(live: dict[str, Any] | None, want: dict[str, Any]) -> list[Finding]:
    if live is None:
        return [{"what": "firewall", "detail": "table inet posnet is not loaded"}]
    out: list[Finding] = []
    if live.get("flags", []) != want.get("flags", []):
        # nft 1.0.6 names the dormant flag wrongly in JSON ("ipv4_addr"): say what it does
        shown = " ".join(live.get("flags", [])) or "none"
        expected = " ".join(want.get("flags", [])) or "none"
        detail = f"table inet posnet: flags {shown}, expected {expected} (dormant: filters nothing)"
        out.append({"what": "firewall", "detail": detail})
    for name in sorted(set(want["sets"]) | set(live["sets"])):
        w, lv = want["sets"].get(name), live["sets"].get(name)
        if filled_at_run_time(name, w) and isinstance(lv, dict):
            lv = {k: v for k, v in lv.items() if k != "elem"}
        if w != lv:
            state = "missing" if lv is None else "extra" if w is None else "changed"
            out.append({"what": "firewall", "detail": f"set {name}: {state}"})
    for name in sorted(set(want["chains"]) | set(live["chains"])):
        w, lv = want["chains"].get(name), live["chains"].get(name)
        if lv is None:
            out.append({"what": "firewall", "detail": f"chain {name}: missing"})
            continue
        if w is None:
            out.append({"what": "firewall", "detail": f"chain {name}: extra chain"})
            continue
        for attr in ("type", "hook", "prio", "policy"):
            if w.get(attr) != lv.get(attr):
                out.append(
                    {
                        "what": "firewall",
                        "detail": f"chain {name}: {attr} {lv.get(attr)}, expected {w.get(attr)}",
                    }
                )
        out += _diff_lists(
            name, live["rules"].get(name, []), want["rules"].get(name, []), describe_nft_rule
        )
    return out


def foreign_tables(
    doc: dict[str, Any], own: frozenset[tuple[str, str]] = frozenset({TABLE})
) -> list[Finding]:
    """Tables beside posnet's (`own`: family, name) that hook into packet processing (a
    base chain): they see every packet too, and can drop, redirect or mark what
    posnet's rules judge. posnet never removes them (another tool may own them); they
    are drift to look at."""
    hooks: dict[tuple[str, str], list[str]] = {}
    for item in doc.get("nftables", []):
        chain = item.get("chain")
        if not isinstance(chain, dict) or not chain.get("hook"):
            continue
        table = (str(chain.get("family")), str(chain.get("table")))
        if table not in own:
            hooks.setdefault(table, []).append(f"{chain.get('name')} ({chain.get('hook')})")
    return [
        {
            "what": "firewall",
            "detail": f"table {family} {name} beside posnet's hooks {', '.join(sorted(chains))}",
        }
        for (family, name), chains in sorted(hooks.items())
    ]


def legacy_rules(beside: str = "nftables") -> list[Finding]:
    """iptables rules in the legacy (x_tables) backend run beside nftables, unseen by
    `nft list`: any rule or a policy other than ACCEPT is drift."""
    out: list[Finding] = []
    for tool in ("iptables-legacy-save", "ip6tables-legacy-save"):
        res = _run([tool]) if shutil.which(tool) else None
        if res is None or res.returncode != 0:
            continue
        out += _tables_in_use(tool.removesuffix("-save"), parse_iptables_save(res.stdout), beside)
    return out


def _tables_in_use(tool: str, tables: dict[str, Any], beside: str) -> list[Finding]:
    """A finding per table of an iptables listing that holds a rule or a policy other
    than ACCEPT (an empty table with ACCEPT policies filters nothing)."""
    out: list[Finding] = []
    for table, parsed in sorted(tables.items()):
        policies = [c for c, p in parsed["policy"].items() if p not in ("ACCEPT", "-")]
        rules = sum(len(r) for r in parsed["rules"].values())
        if rules or policies:
            out.append(
                {
                    "what": "firewall",
                    "detail": f"{tool} table {table}: {rules} rule(s) beside posnet's {beside}"
                    + (f", policy not ACCEPT in {', '.join(policies)}" if policies else ""),
                }
            )
    return out


def nft_findings(intended: str) -> list[Finding]:
    listing = "nft -j list table " + " ".join(TABLE)
    scratch = _scratch(f'nft -f "$1" && {listing}', intended)
    if scratch.returncode != 0:
        raise RuntimeError(f"the rendered ruleset does not load: {scratch.stderr.strip()}")
    want = normalise_nft(json.loads(scratch.stdout))
    res = _run(listing.split())
    live = normalise_nft(json.loads(res.stdout)) if res.returncode == 0 else None
    return compare_nft(live, want)


def beside_nft() -> list[Finding]:
    """What runs beside posnet's nftables table (not part of apply's decision: apply
    reloads only its own table, so these would make it reload on every run)."""
    everything = _run(["nft", "-j", "list", "ruleset"])
    others = foreign_tables(json.loads(everything.stdout)) if everything.returncode == 0 else []
    return others + legacy_rules()


# ----------------------------------------------------------------------------- iptables


def _rendered_tables(text: str) -> set[str]:
    return {line.strip()[1:] for line in text.splitlines() if line.strip().startswith("*")}


def beside_iptables(intended: dict[str, str]) -> list[Finding]:
    """What runs beside posnet's iptables rules, which iptables-restore replaces only in
    the tables it names: rules in the other tables of the same tool (mangle, raw, an
    IPv6 nat), nft tables with a hooked chain (with iptables-nft, those other than the
    ones it keeps posnet's rules in), and legacy (x_tables) rules beside iptables-nft.
    Not part of apply's decision (apply would reload on every run, removing nothing);
    named, and left to the admin like the nft tables beside an nftables edge."""
    out: list[Finding] = []
    own: set[tuple[str, str]] = set()
    nft_backend = "nf_tables" in _run(["iptables", "-V"]).stdout
    for family, text in sorted(intended.items()):
        tool, nft_family = ("iptables", "ip") if family == "v4" else ("ip6tables", "ip6")
        rendered = _rendered_tables(text)
        own |= {(nft_family, t) for t in rendered}
        live = _run([f"{tool}-save"])
        if live.returncode == 0:
            others = {
                t: p for t, p in parse_iptables_save(live.stdout).items() if t not in rendered
            }
            out += _tables_in_use(tool, others, "rules")
    if shutil.which("nft"):
        everything = _run(["nft", "-j", "list", "ruleset"])
        if everything.returncode == 0:
            mine = frozenset(own) if nft_backend else frozenset()
            out += foreign_tables(json.loads(everything.stdout), mine)
    if nft_backend:
        out += legacy_rules("iptables")
    return out


_COUNTERS = re.compile(r"\s*\[\d+:\d+\]$")
_COMMENT = re.compile(r'--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))')


def parse_iptables_save(text: str, tables: set[str] | None = None) -> dict[str, Any]:
    """{table: {"policy": {chain: policy}, "rules": {chain: [rule lines]}}}."""
    out: dict[str, Any] = {}
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            name = line[1:]
            current = (
                None
                if tables is not None and name not in tables
                else out.setdefault(name, {"policy": {}, "rules": {}})
            )
        elif current is None:
            continue
        elif line.startswith(":"):
            chain, policy = _COUNTERS.sub("", line[1:]).split()[:2]
            current["policy"][chain] = policy
            current["rules"].setdefault(chain, [])
        elif line.startswith("-A "):
            chain = line.split()[1]
            current["rules"].setdefault(chain, []).append(line)
    return out


def describe_ipt_rule(line: str) -> str:
    m = _COMMENT.search(line)
    if m:
        return f'"{m.group(1) or m.group(2)}"'
    return "rule without comment: " + line


def compare_iptables(live: dict[str, Any], want: dict[str, Any], family: str) -> list[Finding]:
    out: list[Finding] = []
    for table, w in sorted(want.items()):
        lv = live.get(table, {"policy": {}, "rules": {}})
        for chain in sorted(set(w["policy"]) | set(lv["policy"])):
            label = f"{family} {table} {chain}"
            if w["policy"].get(chain) != lv["policy"].get(chain):
                out.append(
                    {
                        "what": "firewall",
                        "detail": f"chain {label}: policy {lv['policy'].get(chain)}, "
                        f"expected {w['policy'].get(chain)}",
                    }
                )
            out += _diff_lists(
                label, lv["rules"].get(chain, []), w["rules"].get(chain, []), describe_ipt_rule
            )
    return out


def iptables_findings(intended: dict[str, str]) -> list[Finding]:
    out: list[Finding] = []
    for family, text in sorted(intended.items()):
        tool = "iptables" if family == "v4" else "ip6tables"
        scratch = _scratch(f'{tool}-restore "$1" && {tool}-save', text)
        if scratch.returncode != 0:
            raise RuntimeError(f"the rendered {tool} rules do not load: {scratch.stderr.strip()}")
        want = parse_iptables_save(scratch.stdout)
        live_run = _run([f"{tool}-save"])
        live = parse_iptables_save(live_run.stdout, set(want))
        out += compare_iptables(live, want, "ipv4" if family == "v4" else "ipv6")
    return out


# ----------------------------------------------------------------------------- files etc.


def file_findings(files: list[dict[str, Any]]) -> list[Finding]:
    out: list[Finding] = []
    for spec in files:
        dest = spec["dest"]
        try:
            st = os.stat(dest)
            with open(dest, "rb") as fh:
                data = fh.read()
        except OSError:
            out.append({"what": "file", "detail": f"{dest}: missing"})
            continue
        if spec.get("secret"):
            if MARKER.encode() in data:
                out.append({"what": "file", "detail": f"{dest}: secret marker left unfilled"})
            mode = "0600"
        else:
            if hashlib.sha256(data).hexdigest() != spec["sha256"]:
                out.append({"what": "file", "detail": f"{dest}: content differs from the build"})
            mode = spec["mode"]
        if (st.st_mode & 0o7777) != int(mode, 8):
            out.append(
                {
                    "what": "file",
                    "detail": f"{dest}: mode {oct(st.st_mode & 0o7777)[2:]}, expected {mode}",
                }
            )
        if st.st_uid != 0:
            out.append({"what": "file", "detail": f"{dest}: not owned by root"})
    return out


def _start_times() -> tuple[dict[int, tuple[int, float]], float]:
    """pid -> (ppid, start time in seconds since boot); and the boot time."""
    hz = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(entry)] = (int(fields[1]), int(fields[19]) / hz)
    # The boot moment to the hundredth: /proc/stat's btime is whole seconds, and a
    # config changed a second after the daemon started must not pass for older.
    with open("/proc/uptime") as fh:
        btime = time.time() - float(fh.read().split()[0])
    return procs, btime


def _daemon_of(spec: dict[str, Any], daemons: dict[str, dict[str, Any]]) -> str | None:
    """The target whose daemon reads this file: the file's `server` (the inventory names
    the target of every file that has a daemon), of the same component."""
    target = spec.get("server")
    if target in daemons and daemons[target]["component"] == spec.get("component"):
        return str(target)
    return None


def service_findings(
    files: list[dict[str, Any]], daemons: dict[str, dict[str, Any]]
) -> list[Finding]:
    """Each daemon a target declares (generator.targets, through the `posnet_kinds`
    lookup) runs, and (re)started after its config was written."""
    out: list[Finding] = []
    wanted: dict[str, tuple[str, str, str, list[str]]] = {}
    for spec in files:
        key = _daemon_of(spec, daemons)
        if key is not None:
            d = daemons[key]
            # the exact command where posnet's command starts it: no systemd (the
            # playbook runs it), or posnet's own unit; else the Debian service's
            exact = d.get("own_unit") or not os.path.isdir("/run/systemd/system")
            start = (d.get("start") or "") if exact else ""
            entry = wanted.setdefault(key, (d["name"], d["pid"], start, []))
            entry[3].append(spec["dest"])
    if not wanted:
        return out
    procs, btime = _start_times()
    sockets = listening_sockets()
    for name, pidfile, start, configs in wanted.values():
        try:
            with open(pidfile) as fh:
                pid = int(fh.read().split()[0])
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
            exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
            if _zombie(pid):  # killed, not yet reaped: it serves nothing
                raise ProcessLookupError(pid)
        except (OSError, ValueError, IndexError):
            out.append({"what": "service", "detail": f"{name}: not running ({pidfile})"})
            continue
        wrong = _not_as_started(name, argv, exe, start)
        if wrong:
            out.append({"what": "service", "detail": f"{name}: pid {pid} {wrong}"})
            continue
        family = [pid] + [p for p, (pp, _) in procs.items() if pp == pid]
        out += rival_listeners(name, family, sockets)
        started = btime + max(procs[p][1] for p in family if p in procs)
        for conf in configs:
            try:
                # ctime, not mtime: `cp -p` or `touch -d` restores an old mtime over a
                # file edited since the daemon read it, never an old ctime
                changed = os.stat(conf).st_ctime
            except OSError:
                continue
            if changed > started + 1:
                out.append(
                    {"what": "service", "detail": f"{name}: runs a configuration older than {conf}"}
                )
    return out


# /proc/net/*: the listening (TCP) or unconnected (UDP) sockets, by inode.
_NET_TABLES = (
    ("tcp", "tcp", "0A"),
    ("tcp6", "tcp", "0A"),
    ("udp", "udp", "07"),
    ("udp6", "udp", "07"),
)
#: A served socket: protocol, port, local address ("0.0.0.0" and "::" are wildcards),
#: the device it is bound to ("" for none: it takes packets from every interface; None
#: when the kernel did not say, which counts as none).
Socket = tuple[str, int, str, str | None]


def _address(hex_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address of /proc/net/{tcp,udp}[6] (host byte order per 32-bit word); an IPv4
    address mapped into IPv6 (``::ffff:a.b.c.d``) as the IPv4 address it is."""
    raw = b"".join(bytes.fromhex(hex_addr[i : i + 8])[::-1] for i in range(0, len(hex_addr), 8))
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw)
    six = ipaddress.IPv6Address(raw)
    return six.ipv4_mapped or six


def _loopback(hex_addr: str) -> bool:
    """An address of /proc/net/{tcp,udp}[6] that is loopback: 127.0.0.0/8, ::1, or
    ::ffff:127.x."""
    return _address(hex_addr).is_loopback


# sock_diag (netlink): what /proc/net does not show, the device a socket is bound to.
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x301
_NLMSG_ERROR, _NLMSG_DONE = 2, 3


def parse_sock_diag(data: bytes) -> tuple[dict[str, int], bool]:
    """The inode -> bound device index of each ``inet_diag_msg`` in a netlink reply
    (only sockets bound to a device), and whether the dump ended. An error message
    raises OSError (the kernel has no diag handler for the protocol: no udp_diag)."""
    out: dict[str, int] = {}
    off = 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16 or off + length > len(data):
            raise OSError("sock_diag: a truncated reply")
        if kind == _NLMSG_DONE:
            return out, True
        if kind == _NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, off + 16)
            raise OSError(-err, f"sock_diag: {os.strerror(-err)}")
        if kind == _SOCK_DIAG_BY_FAMILY and length >= 16 + 72:
            # inet_diag_msg: family, state, timer, retrans; the sockid (ports, src, dst,
            # then the bound interface at +40); expires, queues, uid, inode at +68.
            (index,) = struct.unpack_from("=I", data, off + 16 + 40)
            (inode,) = struct.unpack_from("=I", data, off + 16 + 68)
            if index:
                out[str(inode)] = index
        off += (length + 3) & ~3
    return out, False


def bound_devices() -> dict[str, str] | None:
    """inode -> the device each bound TCP/UDP socket is bound to (SO_BINDTODEVICE, as
    dnsmasq binds its DHCP socket when it serves exactly one interface, or a link-local
    address's scope): the ``%virbr0`` of ``ss -uln``. None when the kernel does not
    answer (no NETLINK_SOCK_DIAG, no udp_diag module)."""
    found: dict[str, int] = {}
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(5)
            seq = 0
            for proto in (socket.IPPROTO_TCP, socket.IPPROTO_UDP):
                for family in (socket.AF_INET, socket.AF_INET6):
                    seq += 1
                    # inet_diag_req_v2: family, protocol, ext, pad, states (TCP_LISTEN,
                    # TCP_CLOSE: an unconnected UDP socket), then a zero sockid
                    req = struct.pack("=BBBxI48x", family, proto, 0, 1 << 10 | 1 << 7)
                    head = struct.pack(
                        "=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, seq, 0
                    )
                    nl.send(head + req)
                    done = False
                    while not done:
                        data, _, flags, _ = nl.recvmsg(1 << 16)
                        if not data or flags & socket.MSG_TRUNC:
                            raise OSError("sock_diag: an empty or truncated reply")
                        more, done = parse_sock_diag(data)
                        found.update(more)
    except (OSError, AttributeError, ValueError, struct.error):
        return None
    names: dict[int, str] = {}
    for index in set(found.values()):
        try:
            names[index] = socket.if_indextoname(index)
        except OSError:  # gone since: still a device, not the LAN's
            names[index] = f"#{index}"
    return {inode: names[index] for inode, index in found.items()}


def listening_sockets(
    root: str = "/proc", devices: Callable[[], dict[str, str] | None] = bound_devices
) -> dict[int, set[Socket]]:
    """pid -> the sockets it serves on an address other than loopback, each with the
    device it is bound to (``devices``: inode -> name, None when unknown)."""
    bound = devices()
    by_inode: dict[str, Socket] = {}
    for table, proto, state in _NET_TABLES:
        try:
            with open(f"{root}/net/{table}") as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10 or f[3] != state:
                continue
            addr, _, port = f[1].partition(":")
            try:
                local = _address(addr)
            except ValueError:
                continue
            if not local.is_loopback:
                device = None if bound is None else bound.get(f[9], "")
                by_inode[f[9]] = (proto, int(port, 16), str(local), device)
    out: dict[int, set[Socket]] = {}
    for entry in os.listdir(root):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"{root}/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{root}/{entry}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in by_inode:
                out.setdefault(int(entry), set()).add(by_inode[target[8:-1]])
    return out


def compete(theirs: Socket, ours: Socket) -> bool:
    """Whether a packet for ``ours`` can reach ``theirs``: same protocol and port, an
    address in common (a wildcard covers its family; ``::`` may take IPv4 too), and a
    device in common (an unbound socket takes every interface's packets; one bound to
    another device, e.g. libvirt's dnsmasq on virbr0, never gets the LAN's)."""
    if theirs[:2] != ours[:2]:
        return False
    a, b = ipaddress.ip_address(theirs[2]), ipaddress.ip_address(ours[2])
    wild = (a == b) or any(
        x.is_unspecified and (x.version == 6 or y.version == 4) for x, y in ((a, b), (b, a))
    )
    return wild and (not theirs[3] or not ours[3] or theirs[3] == ours[3])


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def rival_listeners(name: str, family: list[int], sockets: dict[int, set[Socket]]) -> list[Finding]:
    """Another process serving what posnet's daemon serves (loopback aside): a second
    dnsmasq on the LAN's DHCP port gets every broadcast too and answers with its own
    router and DNS; nothing about posnet's own daemon, files or ruleset shows it. A
    socket bound to another device or to another address gets none of the LAN's
    packets (libvirt's or LXD's dnsmasq on its own bridge): no rival. Without the
    kernel's sock_diag the bound devices are unknown, and the finding says so."""
    own = set().union(*(sockets.get(p, set()) for p in family))
    out: list[Finding] = []
    for pid, used in sorted(sockets.items()):
        if pid in family:
            continue
        rivals = [s for s in used if any(compete(s, o) for o in own)]
        if rivals:
            ports = ", ".join(f"{proto} {port}" for proto, port in sorted({s[:2] for s in rivals}))
            detail = f"{name}: pid {pid} ({_comm(pid)}) also serves {ports}"
            if any(s[3] is None for s in rivals):
                detail += " (bound device unknown: the kernel's sock_diag did not answer)"
            out.append({"what": "service", "detail": detail})
    return out


def lease_findings(
    daemons: dict[str, dict[str, Any]], reservations: list[dict[str, Any]], now: float = 0
) -> list[Finding]:
    """No unexpired lease gives a reserved address to another MAC: dnsmasq then hands
    its host a pool address ("not using configured address ... because it is leased
    to ..."), and the partner's DNAT reaches nobody, or that other host."""
    want = {str(r["ip"]): str(r["mac"]).lower() for r in reservations if r.get("mac")}
    names = {
        str(r["ip"]): f"{r['name']} ({want[str(r['ip'])]})"
        for r in reservations
        if r.get("mac") and r.get("name")
    }
    now = now or time.time()
    out: list[Finding] = []
    for d in daemons.values():
        path = d.get("leases")
        if not path or not want:
            continue
        for line in (_read_text(path) or "").splitlines():
            f = line.split()
            if len(f) < 3 or f[2] not in want or f[1].lower() == want[f[2]]:
                continue
            if f[0].isdigit() and int(f[0]) != 0 and int(f[0]) <= now:
                continue
            holder = f[1] + (f" ({f[3]})" if len(f) > 3 and f[3] != "*" else "")
            detail = (
                f"{d['name']}: {f[2]}, reserved for {names.get(f[2], want[f[2]])}, "
                f"is leased to {holder} ({path})"
            )
            out.append({"what": "service", "detail": detail})
    return out


def _not_as_started(name: str, argv: list[str], exe: str, start: str) -> str:
    """Why the process is not the daemon posnet starts, or "": its program must be
    `name` (a process renamed with `exec -a` is not) and, when posnet gives the command,
    its arguments exactly those (options added on a restart by hand are drift)."""
    if os.path.basename(exe) != name:
        return f"is not {name} (it runs {exe})"
    want = shlex.split(start)
    if want and (not argv or argv[1:] != want[1:] or os.path.basename(argv[0]) != want[0]):
        return f"runs `{' '.join(argv)}`, not posnet's `{start}`"
    return ""


# Where sysctl --system (and systemd-sysctl) read settings at boot: a file name in an
# earlier folder hides the same name in a later one; files apply in name order, and
# /etc/sysctl.conf last.
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d")


def persisted_sysctl(
    dirs: tuple[str, ...] = SYSCTL_DIRS, last: str = "/etc/sysctl.conf"
) -> dict[str, tuple[str, str]]:
    """key -> (value, file) as the next boot will set them."""
    chosen: dict[str, str] = {}
    for folder in dirs:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf"):
                chosen.setdefault(name, os.path.join(folder, name))
    files = [chosen[n] for n in sorted(chosen)] + [last]
    out: dict[str, tuple[str, str]] = {}
    for path in files:
        for raw in (_read_text(path) or "").splitlines():
            line = raw.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, _, value = line.lstrip("-").partition("=")
            out[key.strip().replace("/", ".")] = (value.strip(), path)
    return out


def sysctl_findings(expected: dict[str, str]) -> list[Finding]:
    out: list[Finding] = []
    persisted = persisted_sysctl() if expected else {}
    for key, raw in sorted(expected.items()):
        optional = raw.startswith("?")
        value = raw.lstrip("?")
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path) as fh:
                live = fh.read().strip()
        except OSError:
            if not optional:
                out.append({"what": "kernel", "detail": f"{key}: not available"})
            continue
        if live != value:
            out.append({"what": "kernel", "detail": f"{key} = {live}, expected {value}"})
        saved, where = persisted.get(key, ("", ""))
        if not optional and saved != value:
            shown = f"{key} = {saved} ({where})" if where else f"{key} not saved"
            out.append({"what": "kernel", "detail": f"after a reboot {shown}, expected {value}"})
    return out


# Why a unit apply enabled (each has an [Install] section) in a `systemctl is-enabled`
# state other than `enabled` does not come back by itself at the next boot.
_NOT_AT_BOOT = {
    "static": "static (no [Install] section, so enabling it did nothing): started at boot "
    "only if another unit pulls it in",
    "indirect": "indirect (only the units its Also= names are enabled), not started at boot",
    "enabled-runtime": "enabled-runtime (enabled in /run only, until the next reboot), "
    "not started at boot",
    "generated": "generated (a systemd generator, not apply, decides whether it starts)",
}


def _boot_state(unit: str) -> tuple[str, str]:
    """`systemctl is-enabled` of a unit, and the unit it names: an alias's state says
    nothing of its target's, so the target is asked (one level, as systemd allows)."""
    state = _run(["systemctl", "is-enabled", unit]).stdout.strip() or "unknown"
    if state != "alias":
        return state, unit
    target = _run(["systemctl", "show", "--property=Id", "--value", unit]).stdout.strip()
    if not target or target in (unit, f"{unit}.service"):
        return state, unit
    return _run(["systemctl", "is-enabled", target]).stdout.strip() or "unknown", target


def boot_findings(units: list[str], systemd: str = "/run/systemd/system") -> list[Finding]:
    """Under systemd, the units apply enables (the firewall's boot loader, posnet's
    dnsmasq, the DDNS client) still start at the next boot: a disabled nftables unit
    leaves the edge with no firewall after a reboot while the live state is perfect.
    Only `enabled` says so: `static` (the unit file lost its [Install] section) starts
    only as another unit's dependency, `enabled-runtime` is gone at the reboot, and an
    alias is as enabled as the unit it names.
    Without systemd the playbooks say what the host's init must run; nothing to read."""
    if not units or not os.path.isdir(systemd):
        return []
    out: list[Finding] = []
    for unit in sorted(set(units)):
        state, named = _boot_state(unit)
        if state == "enabled":
            continue
        shown = unit if named == unit else f"{unit} (alias of {named})"
        why = _NOT_AT_BOOT.get(state, f"{state}, not started at boot")
        out.append({"what": "service", "detail": f"{shown}: {why}"})
    return out


def secret_file_findings(specs: list[dict[str, Any]]) -> list[Finding]:
    """The files apply fills from secret references (a proxy's certificate, key,
    htpasswd): there, regular, no marker left, with the owner, group and mode apply
    gave them (a key at 0644, an htpasswd nginx's workers cannot read)."""
    import grp
    import pwd

    out: list[Finding] = []
    for spec in specs:
        dest = str(spec["dest"])
        try:
            st = os.lstat(dest)
            if not stat.S_ISREG(st.st_mode):
                out.append({"what": "file", "detail": f"{dest}: not a regular file"})
                continue
            with open(dest, "rb") as fh:
                data = fh.read()
            if MARKER.encode() in data:
                out.append({"what": "file", "detail": f"{dest}: secret marker left unfilled"})
            if spec.get("users") is not None:
                out += _htpasswd_users(dest, data, [str(u["name"]) for u in spec["users"]])
        except OSError:
            out.append({"what": "file", "detail": f"{dest}: missing"})
            continue
        mode = str(spec.get("mode") or "0600")
        if (st.st_mode & 0o7777) != int(mode, 8):
            shown = oct(st.st_mode & 0o7777)[2:]
            out.append({"what": "file", "detail": f"{dest}: mode {shown}, expected {mode}"})
        for what, want, have, name_of in (
            ("owner", spec.get("owner"), st.st_uid, lambda i: pwd.getpwuid(i).pw_name),
            ("group", spec.get("group"), st.st_gid, lambda i: grp.getgrgid(i).gr_name),
        ):
            try:
                name = name_of(have)
            except KeyError:
                name = str(have)
            if want and name != want:
                out.append({"what": "file", "detail": f"{dest}: {what} {name}, expected {want}"})
    return out


def _htpasswd_users(dest: str, data: bytes, declared: list[str]) -> list[Finding]:
    """An htpasswd posnet builds from the spec's users holds those users and no other
    (a line added by hand is a password nobody reviewed). Their hashes are not checked:
    verify holds no password."""
    found = [
        line.split(":", 1)[0]
        for line in data.decode(errors="replace").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    out: list[Finding] = []
    for user in sorted(set(found) - set(declared)):
        out.append({"what": "file", "detail": f"{dest}: user {user} the spec does not declare"})
    for user in sorted(set(declared) - set(found)):
        out.append({"what": "file", "detail": f"{dest}: lacks user {user}"})
    return out


# `nginx -T` prints every file it loaded after this header.
_NGINX_FILE = re.compile(r"^# configuration file (.+):$", re.M)
_LISTEN = re.compile(r"\blisten\s+([^;]+);")
# `apache2ctl -S`: a virtual host, its port and the file that defines it.
_APACHE_VHOST = re.compile(r"(?:\*|[\d.]+|\[[0-9a-fA-F:]+\]):(\d+)\s.*?\((/[^:()]+):\d+\)")
_APACHE_NAMED = re.compile(r"port (\d+) namevhost \S+ \((/[^:()]+):\d+\)")


def _listen_port(value: str) -> int | None:
    words = value.split(maxsplit=1)
    first = words[0] if words else ""
    port = first if first.isdigit() else first.rsplit(":", 1)[-1]
    return int(port) if port.isdigit() else None


def _nginx_code(text: str) -> str:
    """`text` without comments: a `#` starts one only outside quotes (`add_header X
    "#";` is no comment, and what follows it on the line still counts)."""
    out: list[str] = []
    quote, escaped, comment = "", False, False
    for ch in text:
        if comment:
            if ch == "\n":
                comment = False
                out.append(ch)
            continue
        if quote:
            escaped = not escaped and ch == "\\"
            if ch == quote and not escaped:
                quote = ""
            out.append(ch)
            continue
        if ch == "#":
            comment = True
            continue
        if ch in "\"'":
            quote = ch
        out.append(ch)
    return "".join(out)


def _real_heads(dump: str, read: Any) -> list[re.Match[str]]:
    """nginx's own file headers: one a file's comment forges (naming posnet's file) is
    followed by something else than that file's bytes, and is part of its file."""
    heads = []
    for head in _NGINX_FILE.finditer(dump):
        content = read(head.group(1))
        if content is not None and dump.startswith(content, head.end() + 1):
            heads.append(head)
    return heads


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def nginx_servers(dump: str, read: Any = _read_text) -> dict[str, set[int]]:
    """File -> the ports its server blocks listen on, from `nginx -T` (`read`: a
    file's text on this host, to tell nginx's headers from forged ones)."""
    out: dict[str, set[int]] = {}
    heads = _real_heads(dump, read)
    for k, head in enumerate(heads):
        body = dump[head.end() : heads[k + 1].start() if k + 1 < len(heads) else len(dump)]
        code = _nginx_code(body)
        ports = {p for m in _LISTEN.finditer(code) if (p := _listen_port(m.group(1)))}
        out.setdefault(head.group(1), set()).update(ports)
    return out


def apache_servers(dump: str) -> dict[str, set[int]]:
    """File -> the ports its virtual hosts serve, from `apache2ctl -S`."""
    out: dict[str, set[int]] = {}
    for rx in (_APACHE_VHOST, _APACHE_NAMED):
        for m in rx.finditer(dump):
            out.setdefault(m.group(2), set()).add(int(m.group(1)))
    return out


def foreign_servers(
    software: str, loaded: dict[str, set[int]], own: set[str], ports: set[int]
) -> list[Finding]:
    """Another server on a port posnet's proxy serves (it can answer the store's names
    with no auth: nginx only warns of a "conflicting server name"), and posnet's own
    files not loaded at all."""
    out: list[Finding] = []
    real = os.path.realpath  # a site enabled by a link is the file it links to
    loaded_real: dict[str, set[int]] = {}
    for path, used in loaded.items():
        loaded_real.setdefault(real(path), set()).update(used)
    loaded, own = loaded_real, {real(p) for p in own}
    for path in sorted(own - set(loaded)):
        out.append({"what": "proxy", "detail": f"{software}: does not load {path}"})
    for path, used in sorted(loaded.items()):
        shared = sorted(used & ports)
        if path not in own and shared:
            shown = ", ".join(map(str, shared))
            out.append(
                {
                    "what": "proxy",
                    "detail": f"{software}: {path} also serves port {shown}, posnet's proxy port",
                }
            )
    return out


def _nginx_config_flag(pidfile: str) -> str:
    """The -c of the running nginx master, "" for the default configuration."""
    try:
        with open(pidfile) as fh:
            pid = int(fh.read().split()[0])
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except (OSError, ValueError, IndexError):
        return ""
    words = " ".join(argv).split()
    if "-c" in words[:-1]:
        path = words[words.index("-c") + 1]
        return "" if path == "/etc/nginx/nginx.conf" else path
    return ""


def proxy_findings(args: dict[str, Any], files: list[dict[str, Any]]) -> list[Finding]:
    out: list[Finding] = []
    ports = {int(p) for p in args.get("proxy_ports") or []}
    for software in args.get("proxy_servers") or []:
        own = {str(f["dest"]) for f in files if f.get("server") == software}
        if software == "nginx":
            daemons = args.get("daemons") or {}
            pid = next((d["pid"] for d in daemons.values() if d.get("name") == "nginx"), "")
            other = _nginx_config_flag(str(pid or "/run/nginx.pid"))
            if other:
                out.append(
                    {"what": "proxy", "detail": f"nginx: runs another configuration ({other})"}
                )
            argv = ["nginx", "-T", "-q"]
            parse = nginx_servers
        else:
            argv = ["apache2ctl", "-S"]
            parse = apache_servers
        if shutil.which(argv[0]) is None:
            continue  # the service check says it is missing
        proc = _run(argv)
        if proc.returncode != 0:
            out.append({"what": "proxy", "detail": f"{software}: its configuration does not load"})
            continue
        out += foreign_servers(software, parse(proc.stdout + proc.stderr), own, ports)
    return out


def _iptables_files(fw: list[dict[str, Any]]) -> dict[str, str]:
    """v4/v6 -> the rendered iptables-restore text (the ipset file is not one)."""
    out: dict[str, str] = {}
    for f in fw:
        if _rendered_tables(f["text"]):
            out["v6" if f["dest"].endswith("6") else "v4"] = f["text"]
    return out


def check(args: dict[str, Any]) -> list[Finding]:
    files: list[dict[str, Any]] = args.get("files") or []
    kind = args.get("firewall") or ""
    findings: list[Finding] = []
    fw = [f for f in files if f.get("component") == "firewall"]
    if kind == "nftables" and fw:
        findings += nft_findings(fw[0]["text"])
    elif kind == "iptables" and fw:
        findings += iptables_findings(_iptables_files(fw))
    if args.get("only") == "firewall":
        return findings
    if kind == "nftables" and fw:
        findings += beside_nft()
    elif kind == "iptables" and fw:
        findings += beside_iptables(_iptables_files(fw))
    findings += file_findings(files)
    findings += secret_file_findings(args.get("secret_files") or [])
    findings += proxy_findings(args, files)
    findings += service_findings(files, args.get("daemons") or {})
    daemons = args.get("daemons") or {}
    used = {key for f in files if (key := _daemon_of(f, daemons)) is not None}
    findings += lease_findings(
        {k: d for k, d in daemons.items() if k in used}, args.get("dhcp_reservations") or []
    )
    findings += boot_findings([str(u) for u in args.get("boot_units") or []])
    findings += sysctl_findings(args.get("sysctl") or {})
    return findings


def main() -> None:
    with open(sys.argv[1]) as fh:
        args = json.load(fh)
    try:
        drift = check(args)
    except (RuntimeError, OSError, ValueError) as exc:
        msg = f"posnet_state: {exc}"
        print(json.dumps({"failed": True, "msg": msg, "error": msg}))
        return
    summary = "; ".join(f"{d['what']}: {d['detail']}" for d in drift)
    print(json.dumps({"changed": False, "drift": drift, "msg": summary or "in sync"}))


if __name__ == "__main__":
    main()
