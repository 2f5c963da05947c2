"""One topology, two drawings: the Mermaid block in HANDOVER.md and the report's SVG."""

from __future__ import annotations

import dataclasses
import re

from generator.plan import Plan
from generator.report.svg import render_svg
from generator.targets import handover
from generator.topology import mermaid, topology


def test_every_link_is_drawn_in_both(demo_plans: dict[str, Plan]) -> None:
    for plan in demo_plans.values():
        topo = topology(plan)
        text = mermaid(topo)
        svg = render_svg(topo, plan.site_id)
        assert svg.count('<g class="link ') == len(topo.links), plan.site_id
        for link in topo.links:
            assert re.search(rf"\n    {link.src} [-.]+>\|\"[^\"]*\"\| {link.dst}\n", text), link
        for node in (*topo.partners, topo.edge, *topo.hosts):
            assert f'id="node-{node.id}"' in svg


def test_ostend_flows(demo_plans: dict[str, Plan]) -> None:
    """Tunnel, outbound and LAN flows of the outbound-only store are all there."""
    kinds = {link.kind for link in topology(demo_plans["ostend-05"]).links}
    assert kinds == {"outbound", "tunnel", "lan"}
    kinds = {link.kind for link in topology(demo_plans["gent-01"]).links}
    assert kinds == {"inbound"}


def test_labels_cannot_break_out(demo_plans: dict[str, Plan]) -> None:
    plan = demo_plans["gent-01"]
    evil = 'x"] --> y ``` | `z` <b>'
    brief = dataclasses.replace(plan.briefs[0], title=evil)
    text = handover.render(dataclasses.replace(plan, briefs=(brief,)))[handover.PATH]
    block = text.split("```mermaid\n", 1)[1]
    body, rest = block.split("```\n", 1)
    assert rest == ""  # the fence closes once, at the end
    assert '"x#quot;] --#gt; y #96;#96;#96; #124; #96;z#96; #lt;b#gt;"' in body
    svg = render_svg(topology(dataclasses.replace(plan, briefs=(brief,))), "t")
    assert "<b>" not in svg and "&lt;b&gt;" in svg


def test_handover_ends_with_the_diagram(demo_plans: dict[str, Plan]) -> None:
    for plan in demo_plans.values():
        text = handover.render(plan)[handover.PATH]
        assert text.endswith("```\n")
        assert "\n## Network diagram\n" in text and "```mermaid\nflowchart LR\n" in text
