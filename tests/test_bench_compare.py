"""The side-by-side benchmark compares like with like (benchmarks/compare.py).

Aerleon gets one term for every filter rule posnet's firewall model holds (less what
Aerleon adds itself), and Ansible's template module renders exactly posnet's file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator.plan import Plan
from generator.targets.firewall import Accept, Drop, build

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import compare

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo-fleet"


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


def _result(**seconds: float) -> dict[str, object]:
    """A fleet_bench result with the figures the verdicts read."""
    secs = {"check": 2.0, "validate": 3.9, "one": 0.4, "cold": 10.0, **seconds}
    return {
        "stores": 10_000,
        "seconds": secs,
        "ms_per_store": {k: v * 1000 / 10_000 for k, v in secs.items()},
        "copy_tree_seconds": 5.0,
        "peak_rss_main_mib": 400,
        "peak_rss_workers_mib": 600,
        "tools": {
            "aerleon": {"stores": 300, "seconds": 1.5},  # 5 ms a policy: 5x of 1 ms
            "ansible": {"stores": 40, "seconds": 8.0},  # 200 ms a store: 200x of 1 ms
        },
    }


def test_bench_verdicts_follow_the_aims_at_their_bounds() -> None:
    """What `make bench` prints as met or NOT met (and the README copies): each aim at
    its exact bound, and just past it."""
    import fleet_bench

    at_bounds = dict(line.split(": ", 1) for line in fleet_bench.aims(_result()))
    assert at_bounds == {
        "- render --check (s)": "2.00 (aim 3): met",
        "- cold validate (s)": "3.90 (aim 4): met",
        "- one store changed (s)": "0.40 (aim 0.5): met",
        "- cold render / cp -r floor": "2.00 (aim 1.5): NOT met",
        "- peak RSS per process (MiB)": "600.00 (aim 600): met",
        "- Aerleon / posnet per store": "5.00 (aim 5): met",
        "- Ansible / posnet per store": "200.00 (aim 200): met",
    }
    past = _result(check=3.0, validate=4.0, one=0.5, cold=10.1)
    verdicts = [line.rsplit(": ", 1)[1] for line in fleet_bench.aims(past)]
    assert verdicts == ["NOT met"] * 4 + ["met", "NOT met", "NOT met"]


def test_bench_prints_the_floor_under_the_one_store_aim_when_measured() -> None:
    """The lone-store run is context, never a verdict: printed after the aims with its
    own figure, and absent when not measured."""
    import fleet_bench

    lines = list(fleet_bench.aims(_result(one_alone=0.71)))
    assert lines[-1] == (
        "- floor under the one-store aim: the same change in a fleet of that store alone "
        "takes 0.71 s"
    )
    assert not any("floor under" in line for line in fleet_bench.aims(_result()))
    walked = {**_result(one_alone=0.71), "walk_tree_seconds": 1.046}
    assert list(fleet_bench.aims(walked))[-1] == (
        "- floor under the one-store aim: the walk of the rendered tree that lets a render "
        "repair hand-edited and stray files (beside validation, in a forked child) takes "
        "1.05 s"
    )


def test_walk_tree_times_the_renders_own_walk_of_every_file(tmp_path: Path) -> None:
    """The walk floor is posnet's early scan over the whole tree (not a sample), and a
    tree a render would refuse fails the measurement instead of timing a refusal."""
    import fleet_bench

    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "generator", "render", str(DEMO), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "POSNET_CACHE_DIR": "off"},
    )
    assert done.returncode == 0, done.stderr
    run, files = fleet_bench.walk_tree(out)
    under = [p for top in ("sites", "inventory") for p in (out / top).rglob("*") if p.is_file()]
    assert files == len(under) > 0
    assert 0 < run.seconds < 60
    (out / "sites" / "stray-link").symlink_to("/etc/passwd")
    with pytest.raises(subprocess.CalledProcessError):
        fleet_bench.walk_tree(out)


def test_lone_fleet_holds_the_fleet_files_and_only_the_edited_store(tmp_path: Path) -> None:
    import fleet_bench

    fleet = fleet_bench.make_fleet(tmp_path / "big", 20, 1)
    lone = fleet_bench.lone_fleet(fleet, tmp_path / "lone")
    assert [p.name for p in (lone.root / "sites").iterdir()] == [fleet.changed.name]
    assert lone.changed.read_bytes() == fleet.changed.read_bytes()
    assert (lone.root / "fleet.yaml").read_bytes() == (fleet.root / "fleet.yaml").read_bytes()
    assert sorted(p.name for p in (lone.root / "groups").iterdir()) == sorted(
        p.name for p in (fleet.root / "groups").iterdir()
    )
    fleet_bench._edit(lone.changed, 0)  # the edit the measured runs make
    assert fleet.changed.read_bytes() != lone.changed.read_bytes()
    # a store the bench measures alone must be valid alone (no route to another store)
    done = subprocess.run(
        [sys.executable, "-m", "generator", "validate", str(lone.root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_fleet_wide_edit_changes_every_store_and_keeps_the_fleet_valid(
    tmp_path: Path,
) -> None:
    """The "every store changed" measurement re-renders what it claims: each turn's edit
    gives every store a new input key, and the fleet stays valid."""
    import fleet_bench

    fleet = fleet_bench.make_fleet(tmp_path / "fleet", 20, 1)
    out = tmp_path / "out"
    env = {**os.environ, "POSNET_CACHE_DIR": "off"}

    def render() -> dict[str, str]:
        done = subprocess.run(
            [sys.executable, "-m", "generator", "render", str(fleet.root), "-o", str(out)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        sites = json.loads((out / "manifest.json").read_text())["sites"]
        return {site_id: entry["input"] for site_id, entry in sites.items()}

    before = render()
    for turn in (0, 1):
        fleet_bench._edit_fleet(fleet.root, turn)
        after = render()
        assert after.keys() == before.keys() and len(after) == 20
        assert all(after[s] != before[s] for s in after), "a store kept its input key"
        before = after
