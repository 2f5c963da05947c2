"""The report's HTML pages. Every value from a spec goes through `escape`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markdown_it import MarkdownIt

from generator.plan import Plan
from generator.report import StoreStatus
from generator.report.svg import render_svg
from generator.targets import handover
from generator.topology import topology

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)
DIAGRAM_HEADING = "\n## Network diagram\n"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _page(title: str, body: str, prefix: str = "") -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n"
        f'<link rel="stylesheet" href="{prefix}report.css">\n'
        f'<script src="{prefix}report.js" defer></script>\n'
        f"</head>\n<body>\n{body}</body>\n</html>\n"
    )


def patterns(plan: Plan) -> list[str]:
    return sorted({b.pattern for b in plan.briefs})


def partners(plan: Plan) -> list[str]:
    return sorted({b.partner for b in plan.briefs})


def _badge(kind: str, text: str) -> str:
    return f'<span class="badge badge-{_e(kind)}">{_e(text)}</span>'


def _lint_badge(st: StoreStatus) -> str:
    if not st.findings:
        return _badge("ok", "ok")
    counts = {
        s: sum(1 for d in st.findings if d.severity == s) for s in ("error", "warning", "info")
    }
    return " ".join(_badge(s, f"{n} {s}") for s, n in counts.items() if n)


def _options(name: str, values: list[str]) -> str:
    opts = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
    head = f'<select id="{name}" aria-label="{name}"><option value="">any {name}</option>'
    return f"{head}{opts}</select>"


@dataclass(frozen=True)
class IndexRow:
    """A store's row of the index, made where its Plan is at hand (a worker)."""

    html: str
    patterns: list[str]
    partners: list[str]
    build: str


def index_row(p: Plan, st: StoreStatus) -> IndexRow:
    pats, parts = patterns(p), partners(p)
    exposures = ", ".join(f"{e.public_port}/{e.protocol}" for e in p.exposures) or "-"
    words = [
        p.site_id,
        p.site_name,
        p.group or "",
        *pats,
        *parts,
        p.wan.fqdn or "",
        p.wan.public_ip or "",
        st.lint,
        st.build,
    ]
    html = (
        f'<tr data-text="{_e(" ".join(words).lower())}" data-patterns="{_e(" ".join(pats))}" '
        f'data-partners="{_e(" ".join(parts))}" data-lint="{_e(st.lint)}">'
        f'<td><a href="stores/{_e(p.site_id)}.html">{_e(p.site_id)}</a></td>'
        f"<td>{_e(p.site_name)}</td><td>{_e(p.group or '-')}</td>"
        f"<td>{_e(', '.join(pats) or '-')}</td><td>{_e(', '.join(parts) or '-')}</td>"
        f"<td>{_e(exposures)}</td><td>{_lint_badge(st)}</td>"
        f"<td>{_badge(st.build, st.build)}</td></tr>"
    )
    return IndexRow(html, pats, parts, st.build)


def index_page(fleet: str, rows: list[IndexRow], notes: Sequence[str] = ()) -> str:
    """`notes`: what is wrong with the tree beyond any one store (report.tree_notes)."""
    all_patterns = sorted({x for r in rows for x in r.patterns})
    all_partners = sorted({x for r in rows for x in r.partners})
    stale = sum(1 for r in rows if r.build != "current")
    lint_levels = ["error", "warning", "info", "ok"]
    tree = "".join(f'<p class="tree-note">Build tree: {_e(n)}.</p>' for n in notes)
    body = (
        f"<header><h1>Fleet {_e(fleet)}</h1>"
        f"<p>{len(rows)} stores; {stale} not current in the build tree.</p>{tree}</header>\n"
        '<main>\n<div class="controls">'
        '<input id="q" type="search" placeholder="Search id, name, partner, address…" '
        'aria-label="search">'
        f"{_options('pattern', all_patterns)}{_options('partner', all_partners)}"
        f"{_options('lint', lint_levels)}"
        f'<span id="count">{len(rows)} of {len(rows)} stores</span></div>\n'
        '<table id="stores"><thead><tr><th>store</th><th>name</th><th>group</th>'
        "<th>patterns</th><th>partners</th><th>exposures</th><th>lint</th><th>build</th>"
        "</tr></thead>\n<tbody>\n"
        + "\n".join(r.html for r in rows)
        + "\n</tbody></table>\n</main>\n"
    )
    return _page(f"posnet fleet {fleet}", body)


_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


def _handover_html(plan: Plan) -> str:
    """The handover sheet as the tree holds it, minus its Mermaid section (the SVG above
    shows the same topology). Raw HTML in it is escaped, not rendered."""
    text = handover.render(plan)[handover.PATH]
    text = text.split(DIAGRAM_HEADING, 1)[0]
    if text.startswith("<!--"):  # the "generated, do not edit" line
        text = text.split("\n", 1)[1]
    html: str = _MD.render(text)
    return html


def _exposures(plan: Plan) -> str:
    if not plan.exposures:
        return "<p>No public port.</p>"
    rows = "".join(
        f"<tr><td>{_e(e.id)}</td><td>{_e(e.partner)}</td><td>{e.public_port}/{_e(e.protocol)}</td>"
        f"<td>{_e(e.target_host)} {_e(e.target_ip)}:{e.target_port}</td>"
        f"<td>{_e(', '.join(e.sources) or 'anyone')}</td></tr>"
        for e in plan.exposures
    )
    return (
        "<table><thead><tr><th>exposure</th><th>partner</th><th>port</th><th>target</th>"
        f"<th>sources</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _findings(st: StoreStatus) -> str:
    if not st.findings:
        return "<p>No lint findings.</p>"
    items = "".join(
        f"<li>{_badge(d.severity, d.severity)} <code>{_e(d.code)}</code> "
        f"<code>{_e(d.path)}</code> {_e(d.message)}</li>"
        for d in st.findings
    )
    return f'<ul class="findings">{items}</ul>'


def _files(st: StoreStatus) -> str:
    if not st.files:
        return "<p>Not in the build tree: run <code>posnet render</code>.</p>"
    rows = "".join(
        f"<tr><td><code>{_e(path)}</code></td><td><code>{_e(digest[:16])}</code></td></tr>"
        for path, digest in st.files
    )
    return (
        f"<table><thead><tr><th>file</th><th>sha256</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def store_page(plan: Plan, st: StoreStatus) -> str:
    public = plan.wan.fqdn or plan.wan.public_ip or "dynamic IP"
    svg = render_svg(topology(plan), f"{plan.site_id} network diagram")
    body = (
        f'<header><p><a href="../index.html">← fleet {_e(plan.fleet)}</a></p>'
        f"<h1>{_e(plan.site_id)}: {_e(plan.site_name)}</h1>"
        f"<p>{_lint_badge(st)} {_badge(st.build, 'build ' + st.build)}</p></header>\n<main>\n"
        '<table class="summary"><tbody>'
        f"<tr><th>group</th><td>{_e(plan.group or '-')}</td></tr>"
        f"<tr><th>public address</th><td>{_e(public)} ({_e(plan.wan.mode)})</td></tr>"
        f"<tr><th>firewall</th><td>{_e(plan.firewall)}, egress {_e(plan.egress_policy)}</td></tr>"
        f"<tr><th>patterns</th><td>{_e(', '.join(patterns(plan)) or '-')}</td></tr>"
        f"<tr><th>partners</th><td>{_e(', '.join(partners(plan)) or '-')}</td></tr>"
        "</tbody></table>\n"
        f'<h2>Network diagram</h2>\n<figure class="diagram">\n{svg}</figure>\n'
        f"<h2>Exposures</h2>\n{_exposures(plan)}\n"
        f"<h2>Lint findings</h2>\n{_findings(st)}\n"
        f'<h2>Handover</h2>\n<section class="handover">\n{_handover_html(plan)}</section>\n'
        f"<h2>Rendered files</h2>\n{_files(st)}\n</main>\n"
    )
    return _page(f"{plan.site_id} - posnet", body, prefix="../")
