"""The side-by-side benchmark compares like with like (benchmarks/compare.py).

Aerleon gets one term for every filter rule posnet's firewall model holds (less what
Aerleon adds itself), and Ansible's template module renders exactly posnet's file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generator.plan import Plan
from generator.targets.firewall import Accept, Drop, build

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import compare


def _expected_terms(plan: Plan, chain: str) -> int:
    rules = build(plan).chain(chain).rules  # type: ignore[arg-type]
    return sum(1 for r in rules if not r.match.ct_state and isinstance(r.action, Accept | Drop))


def test_aerleon_policy_holds_every_filter_rule(demo_plans: dict[str, Plan]) -> None:
    sample = compare.aerleon_sample(list(demo_plans.values()))
    for site_id, plan in demo_plans.items():
        filters = sample.policies[site_id]["filters"]
        assert isinstance(filters, list)
        assert len(filters) == len(compare.AERLEON_TARGETS)
        for f, chain in zip(filters, compare.AERLEON_TARGETS, strict=True):
            terms = f["terms"]
            assert len(terms) == _expected_terms(plan, chain) > 0, (site_id, chain)
            names = [t["name"] for t in terms]
            assert len(set(names)) == len(names)
            assert all(len(n) <= 24 for n in names)  # iptables' cap
            for t in terms:  # every token it names is defined
                for key in ("source-address", "destination-address"):
                    if key in t:
                        assert t[key] in sample.networks
                for svc in str(t.get("destination-port", "")).split():
                    assert svc in sample.services


def test_aerleon_policy_keeps_partner_sources(demo_plans: dict[str, Plan]) -> None:
    """An exposure's partner sources reach Aerleon's definitions unchanged."""
    plan = demo_plans["gent-01"]
    sample = compare.aerleon_sample([plan])
    addresses = {v["address"] for net in sample.networks.values() for v in net["values"]}  # type: ignore[attr-defined]
    for e in plan.exposures:
        for src in e.sources:
            assert any(a.startswith(src.split("/")[0]) for a in addresses), src


def test_ansible_template_module_renders_posnets_file(
    demo_plans: dict[str, Plan], tmp_path: Path
) -> None:
    plans = [demo_plans["gent-01"], demo_plans["antwerp-02"]]
    base, expected = compare.write_ansible(plans, tmp_path / "ansible")
    out = tmp_path / "out"
    out.mkdir()
    cmd, env = compare.ansible_command(base, out, 2)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    compare.check_ansible_output(out, expected)
    assert sorted(p.name for p in out.iterdir()) == ["antwerp-02.nft", "gent-01.nft"]


def test_ansible_check_catches_a_different_file(
    demo_plans: dict[str, Plan], tmp_path: Path
) -> None:
    plan = demo_plans["gent-01"]
    _, expected = compare.write_ansible([plan], tmp_path / "ansible")
    (tmp_path / "gent-01.nft").write_text(expected["gent-01"].replace("accept", "drop", 1))
    with pytest.raises(SystemExit, match="differs"):
        compare.check_ansible_output(tmp_path, expected)
