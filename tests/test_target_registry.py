"""Targets describe themselves; inventory, expectations, suite and playbooks read that.

Each test creates the state a hand-kept vendor list would get wrong (an unknown back-end,
a feature a back-end lacks, a declaration that drifts from what is rendered) and shows
the registry-derived code catches it.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest

from generator import expectations, inventory
from generator.plan import Plan
from generator.targets import (
    TargetError,
    by_name,
    firewall_backend,
    playbook_kinds,
    render_site,
    targets,
)
from generator.targets.base import FirewallBackend, ProxyActivation, Target
from generator.targets.firewall import (
    UnsupportedFeature,
    build,
    check_supported,
    features_of,
)
from tests.conftest import load_playbook_plugin

ROOT = Path(__file__).resolve().parent.parent


def test_every_target_is_a_target_with_a_unique_name() -> None:
    names = [t.name for t in targets()]
    assert len(names) == len(set(names))
    for t in targets():
        assert isinstance(t, Target), t
        assert t.host in ("edge", "lan", "manual"), t.name


def test_declared_artifacts_are_exactly_the_rendered_deployable_files(
    demo_plans: dict[str, Plan],
) -> None:
    """A target's artifacts name files it renders; an edge/LAN target deploys all of them."""
    for plan in demo_plans.values():
        for t in targets():
            rendered = set(t.render(plan))
            declared = {a.source for a in t.artifacts(plan)}
            assert declared <= rendered, (plan.site_id, t.name, declared - rendered)
            if t.host != "manual":
                assert declared == rendered, (plan.site_id, t.name)
            assert bool(rendered) == t.applies_to(plan) or t.name == "handover"


def test_inventory_files_come_from_the_artifacts(demo_plans: dict[str, Plan]) -> None:
    for plan in demo_plans.values():
        hv = inventory.host_vars(plan)
        want = [
            f"sites/{plan.site_id}/{a.source}"
            for t in targets()
            if t.host == "edge"
            for a in t.artifacts(plan)
        ]
        assert [f["src"] for f in hv["posnet_files"]] == want
        assert set(render_site(plan)) >= {s.removeprefix(f"sites/{plan.site_id}/") for s in want}


def test_unknown_firewall_kind_is_an_error_not_iptables(demo_plans: dict[str, Plan]) -> None:
    plan = dataclasses.replace(demo_plans["gent-01"], firewall="pf")  # type: ignore[arg-type]
    with pytest.raises(
        TargetError, match=r"no firewall back-end 'pf' \(known: iptables, nftables\)"
    ):
        inventory.host_vars(plan)
    with pytest.raises(TargetError, match="no firewall back-end 'pf'"):
        expectations.expectations(plan)
    assert not any(p.startswith("firewall/") for t in targets() for p in t.render(plan))


def test_expectations_table_and_file_come_from_the_backend(demo_plans: dict[str, Plan]) -> None:
    for plan in demo_plans.values():
        target, backend = firewall_backend(plan.firewall)
        fw = expectations.expectations(plan)["firewall"]
        assert fw["table"] == backend.activation.table
        assert fw["file"] == target.artifacts(plan)[0].destination


def test_verify_drop_policies_match_a_rendered_ruleset(demo_plans: dict[str, Plan]) -> None:
    """The suite's policy patterns find the drop policies in what the back-end renders,
    and miss them once the policy is accept (so they check something)."""
    for kind in ("nftables", "iptables"):
        plan = next(p for p in demo_plans.values() if p.firewall == kind)
        text = "\n".join(by_name()[kind].render(plan).values())
        policies = firewall_backend(kind)[1].activation.drop_policies
        for pat in policies:
            assert re.search(pat, text, re.S), (kind, pat)
        opened = text.replace("policy drop", "policy accept").replace(" DROP", " ACCEPT")
        assert not all(re.search(pat, opened, re.S) for pat in policies), kind


def test_playbooks_hold_no_vendor_tables() -> None:
    fw = (ROOT / "playbooks" / "firewall.yml").read_text()
    px = (ROOT / "playbooks" / "proxy.yml").read_text()
    assert "posnet_fw: \"{{ (query('posnet_kinds', 'firewall') | first)[posnet_firewall] }}\"" in fw
    assert "posnet_proxy_kinds: \"{{ query('posnet_kinds', 'proxy') | first }}\"" in px
    # read once per host as a fact, never as a play var re-evaluated by every task
    for text in (fw, px):
        play_vars = text.split("  tasks:\n", 1)[0]
        assert "posnet_kinds" not in play_vars
    code = "\n".join(line for line in (fw + px).splitlines() if not line.strip().startswith("#"))
    for word in ("iptables-restore", "nft -f", "nginx -t", "apache2 -t", "envvars &&"):
        assert word not in code, word


def test_lookup_plugin_returns_the_registry_tables() -> None:
    mod = load_playbook_plugin("lookup_plugins", "posnet_kinds")
    got = mod.LookupModule().run(["firewall", "proxy"])
    assert got == [playbook_kinds("firewall"), playbook_kinds("proxy")]
    assert (
        set(got[0])
        == {t.name for t in targets() if isinstance(t.activation, FirewallBackend)}
        == {"nftables", "iptables"}
    )
    assert set(got[1]) == {t.name for t in targets() if isinstance(t.activation, ProxyActivation)}
    from ansible.errors import AnsibleError

    with pytest.raises(AnsibleError, match="no activation tables for component 'dhcp'"):
        mod.LookupModule().run(["dhcp"])


def test_builtin_backends_support_every_feature_the_demo_uses(
    demo_plans: dict[str, Plan],
) -> None:
    used = {
        f
        for p in demo_plans.values()
        for c in build(p).chains
        for r in c.rules
        for f in features_of(r)
    }
    for kind in ("nftables", "iptables"):
        assert used <= firewall_backend(kind)[1].supports


def test_unsupported_feature_names_rule_and_backend(demo_plans: dict[str, Plan]) -> None:
    fw = build(demo_plans["gent-01"])
    everything = firewall_backend("nftables")[1].supports
    with pytest.raises(UnsupportedFeature, match=r"back-end toyfw cannot express log .*rule '"):
        check_supported(fw, "toyfw", everything - {"log"})
    check_supported(fw, "toyfw", everything)  # all supported: no error


def test_registered_backend_without_a_feature_is_an_error(demo_plans: dict[str, Plan]) -> None:
    """A back-end added from outside that cannot log: rendering a store whose rules log
    fails, naming the back-end and the rule, instead of writing a ruleset without it."""
    from generator import targets as registry
    from generator.targets.base import Declared, FirewallBackend

    nft = firewall_backend("nftables")[1]
    toy = Declared(
        "toyfw",
        "edge",
        lambda plan: True,
        lambda plan: {"firewall/toy.rules": "# toy\n"},
        activation=FirewallBackend(nft.activation, nft.supports - {"log"}),
    )
    registry.register(toy)
    try:
        with pytest.raises(UnsupportedFeature, match=r"back-end toyfw cannot express log"):
            render_site(demo_plans["gent-01"])
    finally:
        registry.unregister("toyfw")
    assert "toyfw" not in by_name()


def test_lookup_plugin_without_posnet_says_how_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ansible-playbook from another Python gets a clear error, not a traceback."""
    mod = load_playbook_plugin("lookup_plugins", "posnet_kinds")
    monkeypatch.setitem(sys.modules, "generator.targets", None)
    from ansible.errors import AnsibleError

    with pytest.raises(AnsibleError, match="posnet is not importable here; run the playbooks"):
        mod.LookupModule().run(["firewall"])
