"""expectations.json: each port is probed for one outcome, never two.

The management port was also listed in blocked_ports when a LAN service used the same
number, so `posnet probe` checked it twice (once as "blocked", once as "management");
an exposed public port could be "blocked" too.
"""

from __future__ import annotations

from pathlib import Path

from generator.expectations import expectations
from generator.pipeline import load_plans
from tests.test_bad_input import make_fleet, sub


def test_no_port_is_both_blocked_and_management_or_exposed(tmp_path: Path) -> None:
    root, _ = make_fleet(
        tmp_path,
        "sites/antwerp-02.yaml",
        sub(
            "      - {name: api, port: 8080, tls: false}\n",
            "      - {name: api, port: 8080, tls: false}\n      - {name: ssh, port: 22}\n"
            "      - {name: rdp, port: 3389}\n",
        ),
    )
    fleet, plans = load_plans(root)
    assert fleet.ok, fleet.diagnostics
    plan = next(p for p in plans if p.site_id == "antwerp-02")
    exp = expectations(plan)
    mgmt = exp["firewall"]["management_port"]
    assert mgmt == 22
    exposed = {e["public_port"] for e in exp["exposures"]}
    assert mgmt not in exp["blocked_ports"]
    assert not exposed & set(exp["blocked_ports"])
    assert {3389, 445, 23, 8080} <= set(exp["blocked_ports"])
