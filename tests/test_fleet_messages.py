"""Fleet rule messages name a handful of stores and count the rest (item 4 of issue 11):
one PN202 line per store of a 334-store group must not list all 334."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from generator import lint
from generator.errors import SHOWN, few
from generator.plan import Plan, SecretNeed


def test_few_names_a_handful() -> None:
    assert few(["b", "a"]) == "a, b"
    many = [f"s-{i:03d}" for i in range(334)]
    assert few(many) == "s-000, s-001, s-002, s-003, s-004 and 329 more"


def test_shared_secret_message_is_short_for_hundreds_of_stores(
    demo_plans: dict[str, Plan],
) -> None:
    base = demo_plans["bruges-06"]
    secret = SecretNeed(
        "vault:shared", "@@POSNET_SECRET_vault_shared@@", "outlet AuthSecret", kind="auth-secret"
    )
    plans = [dataclasses.replace(base, site_id=f"s-{i:03d}", secrets=(secret,)) for i in range(334)]
    found = [f for f in lint.run(plans) if f.rule.id == "PN202"]
    assert len(found) == 334  # every store still gets its finding
    for f in found:
        assert f.finding.message.count("s-") == SHOWN
        assert "334 stores" in f.finding.message and "and 329 more" in f.finding.message
        assert len(f.finding.message) < 200


def test_gitlab_code_quality_report(tmp_path: Path) -> None:
    import json
    import shutil

    from tests.conftest import DEMO
    from tests.test_diff import edit, posnet

    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    edit(root / "sites" / "brussels-03.yaml", "public_port: 38443", "public_port: 0")
    proc = posnet("validate", str(root), "--format", "gitlab")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert {d["severity"] for d in doc} >= {"critical", "major", "info"}
    for d in doc:
        assert set(d) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert d["location"]["lines"]["begin"] >= 1
        assert d["location"]["path"].endswith(".yaml")
    assert len({d["fingerprint"] for d in doc}) == len(doc)
    again = json.loads(posnet("validate", str(root), "--format", "gitlab").stdout)
    assert [d["fingerprint"] for d in again] == [d["fingerprint"] for d in doc]
    assert any(d["check_name"].startswith("E") for d in doc)
