"""Fleet rule messages name a handful of stores and count the rest (item 4 of issue 11):
one PN202 line per store of a 334-store group must not list all 334."""

from __future__ import annotations

import dataclasses

from generator import lint
from generator.lint.fleet_rules import SHOWN, few
from generator.plan import Plan, SecretNeed


def test_few_names_a_handful() -> None:
    assert few(["b", "a"]) == "a, b"
    many = [f"s-{i:03d}" for i in range(334)]
    assert few(many) == "s-000, s-001, s-002, s-003, s-004 and 329 more"


def test_shared_secret_message_is_short_for_hundreds_of_stores(
    demo_plans: dict[str, Plan],
) -> None:
    base = demo_plans["bruges-06"]
    secret = SecretNeed("vault:shared", "@@POSNET_SECRET_vault_shared@@", "outlet AuthSecret")
    plans = [dataclasses.replace(base, site_id=f"s-{i:03d}", secrets=(secret,)) for i in range(334)]
    found = [f for f in lint.run(plans) if f.rule.id == "PN202"]
    assert len(found) == 334  # every store still gets its finding
    for f in found:
        assert f.finding.message.count("s-") == SHOWN
        assert "334 stores" in f.finding.message and "and 329 more" in f.finding.message
        assert len(f.finding.message) < 200
