"""A store as a small graph: partners, the edge, LAN hosts and the flows between them.

One model for both drawings of a store, the Mermaid diagram in HANDOVER.md and the SVG
in the fleet report, so that they always show the same thing. Node and link order is
fixed (partners and hosts sorted, links in Plan order, merged by endpoints and kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from generator import netparse
from generator.plan import Plan, host_at

LinkKind = Literal["inbound", "outbound", "tunnel", "lan"]
KIND_TEXT: dict[str, str] = {
    "inbound": "inbound (port forward / proxy)",
    "outbound": "outbound (egress allow-list)",
    "tunnel": "tunnel (outbound, no open port)",
    "lan": "inside the LAN",
}


@dataclass(frozen=True)
class Node:
    id: str  # p0.., edge, h0..: safe in Mermaid, SVG ids and CSS
    label: str
    detail: str


@dataclass(frozen=True)
class Link:
    src: str
    dst: str
    kind: LinkKind
    label: str


@dataclass(frozen=True)
class Topology:
    partners: tuple[Node, ...]
    edge: Node
    hosts: tuple[Node, ...]
    links: tuple[Link, ...]


def _partners(plan: Plan) -> list[str]:
    names = {e.partner for e in plan.exposures} | {f.partner for f in plan.egress}
    names |= {t.partner for t in plan.tunnels}
    return sorted(names)


def _host_of(plan: Plan, cidr: str) -> str | None:
    net = netparse.ip_network(cidr)
    if net.num_addresses != 1:
        return None
    host = host_at(plan, str(net.network_address))
    return host.name if host else None


def topology(plan: Plan) -> Topology:
    titles = {b.partner: b.title for b in plan.briefs}
    pnames = _partners(plan)
    partners = tuple(Node(f"p{i}", titles.get(p, p), "partner") for i, p in enumerate(pnames))
    pid = {p: f"p{i}" for i, p in enumerate(pnames)}
    hosts = tuple(Node(f"h{i}", h.name, f"{h.role} {h.ip}") for i, h in enumerate(plan.hosts))
    hid = {h.name: f"h{i}" for i, h in enumerate(plan.hosts)}
    public = plan.wan.fqdn or plan.wan.public_ip or "dynamic IP"
    edge = Node("edge", "edge", f"{plan.firewall} {public}")
    merged: dict[tuple[str, str, LinkKind], list[str]] = {}

    def add(src: str, dst: str, kind: LinkKind, label: str) -> None:
        labels = merged.setdefault((src, dst, kind), [])
        if label not in labels:
            labels.append(label)

    for e in plan.exposures:
        add(pid[e.partner], "edge", "inbound", f"{e.public_port}/{e.protocol}")
        if e.target_host in hid:
            add("edge", hid[e.target_host], "inbound", f"{e.target_port}")
    for f in plan.egress:
        ports = ",".join(str(p) for p in f.ports)
        for src in f.sources:
            host = _host_of(plan, src)
            if host is not None:
                add(hid[host], "edge", "outbound", ports)
        add("edge", pid[f.partner], "outbound", ports)
    for t in plan.tunnels:
        if t.host in hid:
            add(hid[t.host], pid[t.partner], "tunnel", f"{t.local_port}")
    for lf in plan.lan_flows:
        dst = _host_of(plan, f"{lf.dest_ip}/32")
        for src_cidr in lf.sources:
            origin = _host_of(plan, src_cidr)
            if origin is not None and dst is not None and origin != dst:
                add(hid[origin], hid[dst], "lan", f"{lf.port}/{lf.protocol}")
    links = tuple(Link(s, d, k, " ".join(v)) for (s, d, k), v in merged.items())
    return Topology(partners, edge, hosts, links)


# --------------------------------------------------------------------------- Mermaid

_MERMAID_ESCAPES = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "|": "#124;", "`": "#96;"}


def _m(text: str) -> str:
    """A Mermaid label: one line, no quote, bracket, pipe or backtick of its own."""
    out = " ".join(text.split())
    for ch, entity in _MERMAID_ESCAPES.items():
        out = out.replace(ch, entity)
    return out


MERMAID_LEGEND = (
    "Solid arrows: traffic into the store (port forwards, proxies) and inside the LAN; "
    "dotted arrows: traffic out of the store (egress allow-list, tunnel)."
)
_ARROW = {"inbound": "-->", "outbound": "-.->", "tunnel": "-.->", "lan": "-->"}


def mermaid(topo: Topology) -> str:
    """A `flowchart LR` (rendered by GitHub and GitLab in Markdown)."""
    lines = ["flowchart LR"]
    for n in topo.partners:
        lines.append(f'    {n.id}(["{_m(n.label)}"])')
    lines.append(f'    edge{{"{_m(n_text(topo.edge))}"}}')
    if topo.hosts:
        lines.append('    subgraph lan["store LAN"]')
        for n in topo.hosts:
            lines.append(f'        {n.id}["{_m(n_text(n))}"]')
        lines.append("    end")
    for link in topo.links:
        label = _m(link.label if link.kind == "inbound" else f"{link.kind} {link.label}")
        lines.append(f'    {link.src} {_ARROW[link.kind]}|"{label}"| {link.dst}')
    return "\n".join(lines) + "\n"


def n_text(node: Node) -> str:
    return f"{node.label}: {node.detail}"
