"""The Ansible inventory written beside the rendered sites.

Hosts are grouped by site, fleet group and firewall kind. host_vars point into the tree
and carry expectations and secret *references*; values are resolved at apply time.

Reverse-proxy hosts (group `posnet_proxies`) sit in the store LAN, so they are reached
through the store's edge (ssh ProxyJump) and their variables are written inline in
hosts.yml: the build writes one host_vars file per store, named after its edge.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from generator import netparse
from generator.plan import Plan, ProxyPlan

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


# ------------------------------------------------------------------ reverse proxies

# server -> where its posnet file goes (one file per proxy id, picked up by the stock
# Debian configuration: conf.d/*.conf inside http{}, sites-enabled/*.conf).
PROXY_DEST = {
    "nginx": "/etc/nginx/conf.d/posnet-{id}.conf",
    "apache": "/etc/apache2/sites-enabled/posnet-{id}.conf",
}
# Group of the server's worker processes: they open the htpasswd file on every request
# (the master/parent reads certificates and keys as root at start-up), so a root-only
# htpasswd would turn every request into a 500.
PROXY_READER_GROUP = "www-data"


def proxy_host_name(plan: Plan, host: str) -> str:
    return f"{plan.site_id}-{host}"


def _jump(plan: Plan) -> str | None:
    """The edge as an ssh jump host: LAN hosts are only reachable through it."""
    addr = plan.wan.public_ip or plan.wan.fqdn
    if not addr:
        return None
    if ":" in addr:
        addr = f"[{addr}]"
    port = plan.management.port
    return f"root@{addr}" + (f":{port}" if port != 22 else "")


def _proxy_secret_files(p: ProxyPlan) -> list[dict[str, str]]:
    """Whole-file secrets of one proxy: reference, destination, owner and mode."""
    files = [
        _secret_file(p.tls.cert_ref, p.tls.cert_path, f"{p.id} certificate chain", "0644"),
        _secret_file(p.tls.key_ref, p.tls.key_path, f"{p.id} private key", "0600"),
    ]
    if p.htpasswd_ref and p.htpasswd_path:
        files.append(
            _secret_file(
                p.htpasswd_ref,
                p.htpasswd_path,
                f"{p.id} htpasswd",
                "0640",
                PROXY_READER_GROUP,
            )
        )
    if p.client_ca_ref and p.client_ca_path:
        files.append(_secret_file(p.client_ca_ref, p.client_ca_path, f"{p.id} client CA", "0644"))
    return files


def _secret_file(
    ref: str, dest: str, purpose: str, mode: str, group: str = "root"
) -> dict[str, str]:
    return {
        "ref": ref,
        "dest": dest,
        "purpose": purpose,
        "owner": "root",
        "group": group,
        "mode": mode,
    }


def _is_ip(host: str) -> bool:
    return netparse.ip_address_or_none(host) is not None


def proxy_hosts(plan: Plan) -> dict[str, dict[str, Any]]:
    """Inventory host -> variables for every LAN host that runs a posnet proxy."""
    from generator.targets.apache import REQUIRED_MODULES

    by_host: dict[str, list[ProxyPlan]] = {}
    for p in plan.proxies:
        by_host.setdefault(p.host, []).append(p)
    out: dict[str, dict[str, Any]] = {}
    for host, proxies in sorted(by_host.items()):
        proxies.sort(key=lambda p: p.id)
        servers = sorted({p.software for p in proxies})
        secret_files: dict[str, dict[str, str]] = {}
        for p in proxies:
            for f in _proxy_secret_files(p):
                secret_files.setdefault(f["dest"], f)
        hv: dict[str, Any] = {
            "ansible_host": proxies[0].host_ip,
            "ansible_user": "root",
        }
        jump = _jump(plan)
        if jump:
            hv["ansible_ssh_common_args"] = f"-o ProxyJump={jump}"
        hv |= {
            "posnet_site": plan.site_id,
            "posnet_edge": host_name(plan),
            "posnet_proxy_servers": servers,
            "posnet_proxy_ports": sorted({p.listen_port for p in proxies}),
            "posnet_proxy_resolves_upstreams": any(
                not _is_ip(r.upstream_host) for p in proxies for r in p.routes
            ),
            "posnet_files": [
                {
                    "src": f"sites/{plan.site_id}/proxy/{p.id}.{p.software}.conf",
                    "dest": PROXY_DEST[p.software].format(id=p.id),
                    "mode": "0644",
                    "validate": "",
                    "component": "proxy",
                    "server": p.software,
                    "secrets": [],
                }
                for p in proxies
            ],
            "posnet_secret_files": list(secret_files.values()),
            "posnet_apache_modules": list(REQUIRED_MODULES) if "apache" in servers else [],
        }
        out[proxy_host_name(plan, host)] = hv
    return out


def inventory(plans: Sequence[Plan]) -> dict[str, Any]:
    children: dict[str, Any] = {}
    edges: dict[str, Any] = {}
    proxies: dict[str, Any] = {}

    def add(group: str, h: str) -> None:
        if group:
            children.setdefault(group, {"hosts": {}})["hosts"][h] = None

    for plan in sorted(plans, key=lambda p: p.site_id):
        h = host_name(plan)
        edges[h] = None
        site_group = f"site_{_group(plan.site_id)}"
        fleet_group = f"fleet_group_{_group(plan.group)}" if plan.group else "fleet_group_none"
        for group in (
            site_group,
            fleet_group,
            f"firewall_{plan.firewall}",
            "ddns" if plan.ddns else "",
        ):
            add(group, h)
        for ph, hv in proxy_hosts(plan).items():
            proxies[ph] = hv
            for server in hv["posnet_proxy_servers"]:
                add(f"proxy_{server}", ph)
            add(site_group, ph)
            add(fleet_group, ph)
    # posnet_proxies is always there (maybe empty) so proxy.yml's host pattern matches
    # in a fleet without proxies instead of warning on every apply.
    top = {"posnet_edges": {"hosts": edges}, "posnet_proxies": {"hosts": proxies}}
    return {"all": {"children": {**top, **dict(sorted(children.items()))}}}
