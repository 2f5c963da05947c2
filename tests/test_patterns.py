"""Integration patterns are modules in a registry; catalog parameters are per pattern."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from generator.catalog import Partner
from generator.patterns import PatternError, builtin, pattern_of, patterns
from generator.pipeline import load_plans
from generator.spec.model import DirectIntegration, PatternName, TunnelIntegration
from tests.test_bad_input import errors, make_fleet, sub


def test_every_spec_pattern_has_exactly_one_module() -> None:
    assert set(patterns()) == set(get_args(PatternName)) == set(builtin())
    for name, pat in patterns().items():
        assert pat.name == name
        assert pat.model.model_fields["pattern"].annotation.__args__ == (name,)  # type: ignore[union-attr]
        assert pat.doc.strip(), f"pattern {name} has no docstring"
        assert pat.model.__module__ == f"generator.patterns.{name}", "model lives elsewhere"
        if pat.params is not None:
            assert pat.params.__module__ == f"generator.patterns.{name}"


def test_dispatch_refuses_a_model_of_another_pattern() -> None:
    wrong = TunnelIntegration.model_construct(pattern="direct", partner="x")
    with pytest.raises(PatternError, match="expects DirectIntegration, got TunnelIntegration"):
        pattern_of(wrong)
    unknown = DirectIntegration.model_construct(pattern="carrier_pigeon", partner="x")
    with pytest.raises(PatternError, match="no pattern module for 'carrier_pigeon'"):
        pattern_of(unknown)


def test_catalog_parameters_are_one_sub_model_per_pattern() -> None:
    per_pattern = {n for n, p in patterns().items() if p.params is not None}
    assert per_pattern <= set(Partner.model_fields)
    for name in per_pattern:
        assert Partner.model_fields[name].annotation is not None
    # No flat, pattern-specific field is left on the partner.
    for flat in ("tunnel_domain_suffix", "environments", "default_port", "auth_path"):
        assert flat not in Partner.model_fields


def test_fleet_override_merges_into_the_pattern_parameters(tmp_path: Path) -> None:
    root, _ = make_fleet(
        tmp_path,
        "fleet.yaml",
        sub(
            "partners:\n", "partners:\n  ppaas:\n    cloud_connector: {ssl_profile_name: OTHERCA}\n"
        ),
    )
    fleet, plans = load_plans(root)
    assert fleet.ok, fleet.diagnostics
    props = [dict(d.properties) for p in plans for d in p.devices if d.partner == "ppaas"]
    assert props and all(pr["ssl_profile_name"] == "OTHERCA" for pr in props)
    # the built-in environments survive the override (mappings merge)
    assert all(pr["ep_register_url"].startswith("wss://api.qa.ppaas.tech/") for pr in props)


def test_old_flat_partner_field_is_an_error(tmp_path: Path) -> None:
    root, _ = make_fleet(
        tmp_path, "fleet.yaml", sub("partners:\n", "partners:\n  ppaas:\n    ssl_profile_name: X\n")
    )
    errs = errors(root)
    assert errs and any("ssl_profile_name" in (e.message + e.expected) for e in errs), errs


def test_requires_trusted_certificate_is_gone(tmp_path: Path) -> None:
    """The field was read by nothing; the partner's note says it. Setting it is an error."""
    assert "requires_trusted_certificate" not in Partner.model_fields
    root, _ = make_fleet(
        tmp_path,
        "fleet.yaml",
        sub(
            "partners:\n",
            "partners:\n  swiftpos-netpos:\n"
            "    windows_https: {requires_trusted_certificate: true}\n",
        ),
    )
    assert errors(root)
