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
from dataclasses import replace
from typing import Any

from generator import netparse
from generator.plan import Plan, ProxyPlan
from generator.targets.base import Artifact


def edge_name(site_id: str) -> str:
    """A store's edge as the inventory names it."""
    return f"{site_id}-edge"


def host_name(plan: Plan) -> str:
    return edge_name(plan.site_id)


def _group(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def artifacts(plan: Plan, host: str) -> list[Artifact]:
    """Files of `host` ("edge" or a LAN host), as the registered targets declare them. A
    file of a target with a daemon names that target as its `server`: the one rule by
    which the playbooks and verify find the daemon that reads a file."""
    from generator.targets import targets

    return [
        replace(a, server=t.name) if a.server is None and t.daemon is not None else a
        for t in targets()
        if t.host != "manual" and t.applies_to(plan)
        for a in t.artifacts(plan)
        if a.host == host
    ]


def edge_file_names(plan: Plan) -> list[str]:
    """Site files the edge receives."""
    return [a.source for a in artifacts(plan, "edge")]


def file_spec(plan: Plan, a: Artifact) -> dict[str, Any]:
    """One entry of `posnet_files`: what the playbooks install and the suite checks."""
    spec: dict[str, Any] = {
        "src": f"sites/{plan.site_id}/{a.source}",
        "dest": a.destination,
        "mode": "0600" if a.secrets else a.mode,
        "validate": a.validate,
        "component": a.component,
    }
    if a.server is not None:
        spec["server"] = a.server
    spec["secrets"] = [
        {"marker": s.marker, "ref": s.ref, "style": a.secret_style} for s in a.secrets
    ]
    return spec


def host_vars(plan: Plan) -> dict[str, Any]:
    from generator.expectations import expectations
    from generator.targets import firewall_backend

    firewall_backend(plan.firewall)  # an unknown back-end is an error, never another vendor's files
    from generator.targets.devices import collected

    edge_files = [file_spec(plan, a) for a in artifacts(plan, "edge")]
    devices = {"posnet_device_files": collected(plan)} if plan.devices else {}
    # A store nobody connects in to may have no public address (carrier NAT): then
    # Ansible uses the inventory name, which the operator's ssh config or DNS resolves.
    addr = plan.wan.public_ip or plan.wan.fqdn
    return {
        **({"ansible_host": addr} if addr else {}),
        "ansible_user": "root",
        "posnet_site": plan.site_id,
        "posnet_firewall": plan.firewall,
        "posnet_management_port": plan.management.port,
        "posnet_lan_interface": plan.lan.interface,
        "posnet_wan_interface": plan.wan.interface,
        "posnet_files": edge_files,
        **devices,
        "posnet_expectations": expectations(plan),
    }


# ------------------------------------------------------------------ reverse proxies

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


def _proxy_secret_files(p: ProxyPlan) -> list[dict[str, Any]]:
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
    if p.basic_users and p.htpasswd_path:
        files.append(_htpasswd_from_users(p, p.htpasswd_path))
    if p.client_ca_ref and p.client_ca_path:
        files.append(_secret_file(p.client_ca_ref, p.client_ca_path, f"{p.id} client CA", "0644"))
    for r in p.routes:
        if r.trust_ref and r.trust_path:
            files.append(
                _secret_file(r.trust_ref, r.trust_path, f"{p.id} trust for {r.label}", "0644")
            )
    return files


def _htpasswd_from_users(p: ProxyPlan, dest: str) -> dict[str, Any]:
    """An htpasswd file the playbook builds on the controller from each user's password
    reference (bcrypt; a hash already installed is kept while it verifies)."""
    return {
        "users": [{"name": name, "password": ref} for name, ref in p.basic_users],
        "dest": dest,
        "purpose": f"{p.id} htpasswd",
        "owner": "root",
        "group": PROXY_READER_GROUP,
        "mode": "0640",
    }


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
    from generator.targets import by_name
    from generator.targets.base import ProxyActivation

    by_host: dict[str, list[ProxyPlan]] = {}
    for p in plan.proxies:
        by_host.setdefault(p.host, []).append(p)
    out: dict[str, dict[str, Any]] = {}
    for host, proxies in sorted(by_host.items()):
        proxies.sort(key=lambda p: p.id)
        servers = sorted({p.software for p in proxies})
        secret_files: dict[str, dict[str, Any]] = {}
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
                file_spec(plan, a)
                for a in sorted(artifacts(plan, host), key=lambda a: (a.unit, a.source))
            ],
            "posnet_secret_files": list(secret_files.values()),
            "posnet_apache_modules": [
                m
                for server in servers
                if isinstance(act := by_name()[server].activation, ProxyActivation)
                for m in act.modules
            ],
        }
        out[proxy_host_name(plan, host)] = hv
    return out


def inventory(plans: Sequence[Plan]) -> dict[str, Any]:
    """hosts.yml's model, from each store's view (fleet_view.py): no Plan is decoded."""
    from generator.plan_list import views_of

    children: dict[str, Any] = {}
    edges: dict[str, Any] = {}
    proxies: dict[str, Any] = {}

    def add(group: str, h: str) -> None:
        if group:
            children.setdefault(group, {"hosts": {}})["hosts"][h] = None

    for view in sorted(views_of(plans), key=lambda v: v.site_id):
        h = edge_name(view.site_id)
        edges[h] = None
        site_group = f"site_{_group(view.site_id)}"
        fleet_group = f"fleet_group_{_group(view.group)}" if view.group else "fleet_group_none"
        for group in (
            site_group,
            fleet_group,
            f"firewall_{view.firewall}",
            "ddns" if view.ddns else "",
        ):
            add(group, h)
        for ph, hv in view.proxy_hosts.items():
            proxies[ph] = hv
            for server in hv["posnet_proxy_servers"]:
                add(f"proxy_{server}", ph)
            add(site_group, ph)
            add(fleet_group, ph)
    # posnet_proxies and ddns are always there (maybe empty) so the host patterns of
    # proxy.yml, ddns.yml and the lock plays match in a fleet without proxies or DDNS
    # instead of warning on every apply.
    top = {"posnet_edges": {"hosts": edges}, "posnet_proxies": {"hosts": proxies}}
    children.setdefault("ddns", {"hosts": {}})
    return {"all": {"children": {**top, **dict(sorted(children.items()))}}}
