"""The Ansible inventory written beside the rendered sites.

Hosts are grouped by site, fleet group and firewall kind. host_vars point into the tree
and carry expectations and secret *references*; values are resolved at apply time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from generator.plan import Plan

# site file -> (destination on the edge, mode, validate command, component tag)
EDGE_FILES: dict[str, tuple[str, str, str, str]] = {
    "firewall/nftables.nft": ("/etc/nftables.conf", "0644", "nft -c -f %s", "firewall"),
    "firewall/rules.v4": (
        "/etc/iptables/rules.v4",
        "0644",
        "iptables-restore --test %s",
        "firewall",
    ),
    "firewall/rules.v6": (
        "/etc/iptables/rules.v6",
        "0644",
        "ip6tables-restore --test %s",
        "firewall",
    ),
    "dhcp/dnsmasq.conf": ("/etc/posnet/dnsmasq.conf", "0644", "dnsmasq --test -C %s", "dhcp"),
    "ddns/inadyn.conf": ("/etc/inadyn.conf", "0600", "inadyn -n --check-config -f %s", "ddns"),
    "ddns/ddclient.conf": ("/etc/ddclient.conf", "0600", "", "ddns"),
}
STYLE_OF = {"ddns/inadyn.conf": "inadyn", "ddns/ddclient.conf": "ddclient"}


def host_name(plan: Plan) -> str:
    return f"{plan.site_id}-edge"


def _group(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def edge_file_names(plan: Plan) -> list[str]:
    """Site files the edge receives (the same rules the targets use to emit them)."""
    names = (
        ["firewall/nftables.nft"]
        if plan.firewall == "nftables"
        else [
            "firewall/rules.v4",
            "firewall/rules.v6",
        ]
    )
    if plan.lan.pool_start or plan.dhcp:
        names.append("dhcp/dnsmasq.conf")
    if plan.ddns is not None:
        names.append(f"ddns/{plan.ddns.client}.conf")
    return names


def host_vars(plan: Plan) -> dict[str, Any]:
    from generator.expectations import expectations
    from generator.targets import secret_style

    edge_files = []
    for rel in edge_file_names(plan):
        dest, mode, validate, tag = EDGE_FILES[rel]
        secrets = []
        if rel.startswith("ddns/") and plan.ddns is not None:
            s = plan.ddns.password
            secrets.append({"marker": s.marker, "ref": s.ref, "style": secret_style(STYLE_OF[rel])})
        edge_files.append(
            {
                "src": f"sites/{plan.site_id}/{rel}",
                "dest": dest,
                "mode": "0600" if secrets else mode,
                "validate": validate,
                "component": tag,
                "secrets": secrets,
            }
        )
    return {
        "ansible_host": plan.wan.public_ip or plan.wan.fqdn,
        "ansible_user": "root",
        "posnet_site": plan.site_id,
        "posnet_firewall": plan.firewall,
        "posnet_management_port": plan.management.port,
        "posnet_lan_interface": plan.lan.interface,
        "posnet_wan_interface": plan.wan.interface,
        "posnet_files": edge_files,
        "posnet_expectations": expectations(plan),
    }


def inventory(plans: Sequence[Plan]) -> dict[str, Any]:
    children: dict[str, Any] = {}
    edges: dict[str, Any] = {}
    for plan in sorted(plans, key=lambda p: p.site_id):
        h = host_name(plan)
        edges[h] = None
        for group in (
            f"site_{_group(plan.site_id)}",
            f"fleet_group_{_group(plan.group)}" if plan.group else "fleet_group_none",
            f"firewall_{plan.firewall}",
            "ddns" if plan.ddns else "",
        ):
            if group:
                children.setdefault(group, {"hosts": {}})["hosts"][h] = None
    return {
        "all": {"children": {"posnet_edges": {"hosts": edges}, **dict(sorted(children.items()))}}
    }
