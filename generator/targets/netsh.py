"""Windows batch scripts that switch a back-office service to HTTPS (seed 002).

Why scripts and not Ansible modules: the store's Windows back office is usually run by
the store's IT, in a maintenance window, with manual steps around the commands (tray
icon, terminals). The scripts encode the commands exactly once, correctly:

- one port for urlacl, sslcert and the firewall rule (the seed reserves 10101 but binds
  the certificate on 8000 in its example; copying that breaks HTTPS);
- an SDDL instead of `user=EVERYONE`, which fails on non-English Windows;
- delete-then-add, so running the script twice leaves one reservation, one binding and
  one firewall rule;
- CRLF line endings, because cmd.exe mis-parses labels and `goto` in LF-only files.

Windows cannot run here: `generator.verify.netsh_check` validates the output instead.
"""

from __future__ import annotations

from generator import netparse
from generator.plan import HostPlan, Plan, WindowsBinding
from generator.targets.base import Declared

NAME = "netsh"
# No secret reaches these scripts (the thumbprint and appid are public identifiers).
# Were one ever added, it would sit in a bare netsh argument: only "raw" values are safe.
SECRET_STYLE = "raw"  # noqa: S105 - a style name, not a password

# Characters cmd.exe interprets in a plain line (expansion, pipes, redirection, escape).
_CMD_SPECIAL = frozenset('%&|^<>"!\r\n')

SWIFTPOS = "swiftpos-netpos"
# One source for the scripts' exit codes and the handover sheet that documents them.
EXIT_CODES = {
    "not_elevated": 1,
    "no_cert": 2,
    "fail_urlacl": 3,
    "fail_sslcert": 4,
    "fail_firewall": 5,
}


def _cmd_safe(text: str) -> str:
    """Refuse text that cmd.exe would interpret: an echo line must stay an echo line."""
    bad = sorted(set(text) & _CMD_SPECIAL)
    if bad:
        raise ValueError(f"text for a Windows batch line holds {bad!r}: {text!r}")
    return text


def remote_ips(sources: tuple[str, ...]) -> str:
    """netsh remoteip list: single hosts without /32, networks kept as CIDR."""
    out = []
    for src in sources:
        net = netparse.ipv4_network(src)
        out.append(str(net.network_address) if net.prefixlen == 32 else str(net))
    return ",".join(out)


def _clients(plan: Plan, b: WindowsBinding) -> list[str]:
    """Client terminals by name and address, for the operator's checklist."""
    by_ip: dict[str, HostPlan] = {h.ip: h for h in plan.hosts}
    names = []
    for src in b.client_sources:
        net = netparse.ipv4_network(src)
        ip = str(net.network_address)
        host = by_ip.get(ip) if net.prefixlen == 32 else None
        names.append(f"{host.name} {ip}" if host else str(net))
    return names


def _title(plan: Plan, partner: str) -> str:
    return next((b.title for b in plan.briefs if b.partner == partner), partner)


def manual_steps(plan: Plan, b: WindowsBinding) -> dict[str, list[str]]:
    """Operator steps around the netsh commands, from the partner's document.

    The scripts do not pause for them: they must also run unattended (re-apply).
    """
    clients = ", ".join(_clients(plan, b))
    if b.partner == SWIFTPOS:
        steps = {
            "before": [
                "Done before this script? NetPOS.Net stopped (right-click the tray icon, Stop),",
                "and Use SSL ticked (tray icon, General Settings, tick Use SSL, Save and Close).",
            ],
            "after": [
                "Now start NetPOS.Net (right-click the tray icon, Start).",
                f"On each SwiftPOS Touch terminal ({clients}): open the settings form, Customers,",
                "tick Secured, click Refresh Interface List, then OK; verify with a member lookup.",
            ],
            "undo_after": [
                "Stop NetPOS.Net, untick Use SSL in General Settings, then start it again.",
                f"On each SwiftPOS Touch terminal ({clients}): untick Secured,",
                "then click Refresh Interface List.",
            ],
        }
    else:
        title = _title(plan, b.partner)
        steps = {
            "before": [
                f"Done before this script? {title} stopped and switched to HTTPS in its settings.",
            ],
            "after": [
                f"Now start {title} again.",
                f"Switch each client ({clients}) to HTTPS and test it.",
            ],
            "undo_after": [
                f"Switch {title} and each client ({clients}) back to HTTP, then restart it.",
            ],
        }
    return {k: [_cmd_safe(line) for line in v] for k, v in steps.items()}


def script_names(b: WindowsBinding) -> tuple[str, str]:
    return f"windows/{b.id}-enable-https.cmd", f"windows/{b.id}-undo.cmd"


def crlf(text: str) -> str:
    """Windows batch files need CRLF; templates are written with LF."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _context(plan: Plan, b: WindowsBinding) -> dict[str, object]:
    enable, undo = script_names(b)
    return {
        **manual_steps(plan, b),
        "site_id": plan.site_id,
        "b": b,
        "title": _cmd_safe(_title(plan, b.partner)),
        "window": _cmd_safe(b.maintenance_window),
        "remoteip": remote_ips(b.client_sources),
        "rule_name": f"posnet {b.id}",
        "appid_braced": "{" + b.appid + "}",
        "exit": EXIT_CODES,
        "enable_name": enable,
        "undo_name": undo,
    }


def render(plan: Plan) -> dict[str, str]:
    from generator.templating import render as render_template

    files: dict[str, str] = {}
    for b in plan.windows:
        ctx = _context(plan, b)
        enable, undo = script_names(b)
        files[enable] = crlf(render_template("netsh/enable-https.cmd.j2", **ctx))
        files[undo] = crlf(render_template("netsh/undo.cmd.j2", **ctx))
    return files


TARGET = Declared(
    NAME, "manual", lambda plan: bool(plan.windows), render, secret_style=SECRET_STYLE
)
