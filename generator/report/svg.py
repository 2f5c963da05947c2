"""A store's topology as a deterministic SVG: partners left, the edge in the middle, LAN
hosts right; arrows for inbound, outbound, tunnel and LAN flows.

Styling is done with presentation attributes only (no <style>, no script), so the
drawing works inline under the report's strict Content-Security-Policy and as a file.
"""

from __future__ import annotations

from html import escape

from generator.topology import KIND_TEXT, Node, Topology

ROW = 64
BOX_W, BOX_H = 220, 44
X = {"partner": 20, "edge": 400, "host": 780}
TOP = 44
WIDTH = 1120  # room right of the hosts for LAN arcs
COLOUR = {"inbound": "#1f6feb", "outbound": "#1a7f37", "tunnel": "#8250df", "lan": "#6e7781"}
DASH = {"inbound": "", "outbound": "6 4", "tunnel": "2 4", "lan": "1 3"}
OFFSET = {"inbound": -7, "outbound": 7, "tunnel": 14, "lan": 0}
MAX_LABEL = 26


def _a(value: object) -> str:
    return escape(str(value), quote=True)


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _box(node: Node, x: int, y: float, fill: str) -> list[str]:
    cy = y + BOX_H / 2
    return [
        f'<g class="node" id="node-{node.id}">',
        f"<title>{_a(node.label)}: {_a(node.detail)}</title>",
        f'<rect x="{x}" y="{y:g}" width="{BOX_W}" height="{BOX_H}" rx="8" '
        f'fill="{fill}" stroke="#57606a"/>',
        f'<text x="{x + 10}" y="{cy - 4:g}" font-size="14" font-weight="600" '
        f'fill="#24292f">{_a(_short(node.label))}</text>',
        f'<text x="{x + 10}" y="{cy + 13:g}" font-size="11" fill="#57606a">'
        f"{_a(_short(node.detail))}</text>",
        "</g>",
    ]


def render_svg(topo: Topology, title: str) -> str:
    n = max(len(topo.partners), len(topo.hosts), 1)
    height = TOP + n * ROW + 70
    pos: dict[str, tuple[str, float]] = {}

    def column(nodes: tuple[Node, ...], col: str) -> None:
        start = TOP + (n - len(nodes)) * ROW / 2
        for i, node in enumerate(nodes):
            pos[node.id] = (col, start + i * ROW)

    column(topo.partners, "partner")
    column((topo.edge,), "edge")
    column(topo.hosts, "host")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="topology" role="img" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'font-family="system-ui, sans-serif">',
        f"<title>{_a(title)}</title>",
        "<defs>",
    ]
    for kind, colour in COLOUR.items():
        out.append(
            f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="10" refY="5" '
            f'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
            f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    out.append(f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>')
    for col, label in (("partner", "partners"), ("edge", "store edge"), ("host", "store LAN")):
        out.append(
            f'<text x="{X[col]}" y="24" font-size="13" font-weight="600" '
            f'fill="#57606a">{label}</text>'
        )
    arcs = 0
    lx: float
    ly: float
    for link in topo.links:
        (c1, y1), (c2, y2) = pos[link.src], pos[link.dst]
        dy = OFFSET[link.kind]
        a_y, b_y = y1 + BOX_H / 2 + dy, y2 + BOX_H / 2 + dy
        if c1 == c2:  # LAN: an arc right of the hosts column
            arcs += 1
            x0 = X[c1] + BOX_W
            bend = x0 + 30 + 16 * (arcs % 5)
            d = f"M {x0} {a_y:g} C {bend} {a_y:g}, {bend} {b_y:g}, {x0} {b_y:g}"
            lx, ly = bend - 4, (a_y + b_y) / 2 + 4
        else:
            left = X[c1] < X[c2]
            x0 = X[c1] + BOX_W if left else X[c1]
            x1 = X[c2] if left else X[c2] + BOX_W
            if {c1, c2} == {"partner", "host"}:  # around the edge box, above it
                peak = min(pos["edge"][1] - 14, a_y, b_y)  # clear of the edge box
                control = 2 * peak - (a_y + b_y) / 2  # a quadratic peaks halfway
                mid = (x0 + x1) / 2
                d = f"M {x0} {a_y:g} Q {mid:g} {control:g}, {x1} {b_y:g}"
                lx, ly = mid, peak - 4
            else:
                d = f"M {x0} {a_y:g} L {x1} {b_y:g}"
                lx, ly = (x0 + x1) / 2, (a_y + b_y) / 2 - 4
        dash = f' stroke-dasharray="{DASH[link.kind]}"' if DASH[link.kind] else ""
        text = f"{link.kind}: {link.label}"
        out += [
            f'<g class="link link-{link.kind}">',
            f"<title>{_a(text)}</title>",
            f'<path d="{d}" fill="none" stroke="{COLOUR[link.kind]}" stroke-width="2"{dash} '
            f'marker-end="url(#arrow-{link.kind})"/>',
            f'<text x="{lx:g}" y="{ly:g}" font-size="11" text-anchor="middle" '
            f'fill="{COLOUR[link.kind]}" stroke="#ffffff" stroke-width="3" '
            f'paint-order="stroke">{_a(_short(link.label))}</text>',
            "</g>",
        ]
    for node in topo.partners:
        out += _box(node, X["partner"], pos[node.id][1], "#fff8c5")
    out += _box(topo.edge, X["edge"], pos["edge"][1], "#ddf4ff")
    for node in topo.hosts:
        out += _box(node, X["host"], pos[node.id][1], "#f6f8fa")
    ly = height - 30
    for i, (kind, text) in enumerate(KIND_TEXT.items()):
        lx = 20 + i * 260
        dash = f' stroke-dasharray="{DASH[kind]}"' if DASH[kind] else ""
        out += [
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 30}" y2="{ly}" stroke="{COLOUR[kind]}" '
            f'stroke-width="2"{dash}/>',
            f'<text x="{lx + 36}" y="{ly + 4}" font-size="11" fill="#24292f">{_a(text)}</text>',
        ]
    out.append("</svg>")
    return "\n".join(out) + "\n"
