"""Cloud connector under restricted egress: the hosts handed out at run time.

Seed 001, steps 3 and 8: after registering, PPaaS returns the URL a device connects to,
and after a session claim the URL the POS connects to; the guide publishes neither's
host. Under `edge.egress: restricted` posnet let the devices and the POS out only to
`api_host` and `auth_host`, and said nothing. Now the handover tells the engineer to
confirm those hosts with the partner (lint PN116 warns too) until the fleet gives them as
the environment's `session_hosts`, which the egress flow then admits.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import DEMO

from generator.lint import site_findings
from generator.pipeline import load_plans
from generator.plan import Plan
from generator.targets import handover, squid

QA = "qa: {api_host: api.qa.ppaas.tech, auth_host: auth.qa.ppaas.tech"


def bruges(tmp_path: Path, egress: str, session_hosts: str = "") -> Plan:
    fleet = tmp_path / "fleet"
    shutil.copytree(DEMO, fleet)
    site = fleet / "sites" / "bruges-06.yaml"
    lan = 'lan:\n  subnet: "198.51.100.64/26"\n'
    site.write_text(site.read_text().replace(lan, f"edge: {{egress: {egress}}}\n{lan}"))
    if session_hosts:
        f = fleet / "fleet.yaml"
        envs = f"partners:\n  ppaas:\n    cloud_connector:\n      environments:\n        {QA}"
        f.write_text(
            f.read_text().replace("partners:\n", f"{envs}, session_hosts: {session_hosts}}}\n")
        )
    loaded, plans = load_plans(fleet)
    assert loaded.ok, loaded.diagnostics
    return next(p for p in plans if p.site_id == "bruges-06")


def ppaas_notes(plan: Plan) -> str:
    sheet = handover.render(plan)["HANDOVER.md"]
    section = sheet.split("### PPaaS Cloud Connector (cloud_connector)", 1)[1]
    return " ".join(section.split("\n### ", 1)[0].split())


def pn116(plan: Plan) -> list[str]:
    return [msg for rid, _, msg in site_findings(plan) if rid == "PN116"]


def test_restricted_egress_without_session_hosts_says_to_confirm_them(tmp_path: Path) -> None:
    plan = bruges(tmp_path, "restricted")
    notes = ppaas_notes(plan)
    assert (
        "PPaaS Cloud Connector returns the devices' connection URL and the POS's session URL"
        " at run time and does not publish their hosts; under restricted egress posnet lets"
        " the devices and the POS reach only api.qa.ppaas.tech and auth.qa.ppaas.tech on"
        " port 443, so confirm those hosts with the partner" in notes
    )
    assert "set partners.ppaas.cloud_connector.environments.qa.session_hosts in" in notes
    (flow,) = [f for f in plan.egress if f.partner == "ppaas"]
    assert flow.domains == ("api.qa.ppaas.tech", "auth.qa.ppaas.tech")
    (msg,) = pn116(plan)
    assert "connection URL (devices) and session URL (POS)" in msg


def test_open_egress_needs_no_such_note(tmp_path: Path) -> None:
    plan = bruges(tmp_path, "open")
    assert "does not publish their hosts" not in ppaas_notes(plan)
    assert pn116(plan) == []


def test_given_session_hosts_are_admitted_and_the_note_goes(tmp_path: Path) -> None:
    plan = bruges(tmp_path, "restricted", "[sessions.ppaas.example, '*.cc.ppaas.example']")
    assert "does not publish their hosts" not in ppaas_notes(plan)
    assert pn116(plan) == []
    (flow,) = [f for f in plan.egress if f.partner == "ppaas"]
    assert flow.domains == (
        "*.cc.ppaas.example",
        "api.qa.ppaas.tech",
        "auth.qa.ppaas.tech",
        "sessions.ppaas.example",
    )
    snippet = squid.render(plan)["allowlist/squid-posnet.conf"]
    assert "dstdomain sessions.ppaas.example\n" in snippet
    assert "dstdomain .cc.ppaas.example\n" in snippet


def test_the_catalog_listing_shows_the_session_hosts(tmp_path: Path) -> None:
    from generator.catalog.listing import describe, domains, text

    bruges(tmp_path, "restricted", "[sessions.ppaas.example]")
    loaded, _ = load_plans(tmp_path / "fleet")
    p = loaded.catalog.partners["ppaas"]
    assert "sessions.ppaas.example" in domains(p)
    shown = text([describe(loaded.catalog, "ppaas", "fleet.yaml")])
    assert "qa (api.qa.ppaas.tech, auth.qa.ppaas.tech, sessions.ppaas.example)" in shown
