"""The committed JSON Schemas match the model, and they accept the demo files."""

from __future__ import annotations

import json

import pytest

from generator.schemas import schema_text
from generator.yamlload import load_file
from tests.conftest import DEMO, ROOT


@pytest.mark.parametrize("kind", ["site", "fleet", "group", "catalog"])
def test_committed_schema_is_current(kind: str) -> None:
    path = ROOT / "schema" / f"{kind}.schema.json"
    assert path.read_text() == schema_text(kind), (
        f"schema/{kind}.schema.json is stale: posnet schema {kind} > {path.relative_to(ROOT)}"
    )


def test_demo_files_carry_the_modeline() -> None:
    for p in sorted((DEMO / "sites").glob("*.yaml")):
        first = p.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), p
        target = (p.parent / first.split("$schema=", 1)[1]).resolve()
        assert target == (ROOT / "schema" / "site.schema.json").resolve(), p


def test_schema_validates_demo_with_jsonschema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    site_schema = json.loads((ROOT / "schema" / "site.schema.json").read_text())
    for p in sorted((DEMO / "sites").glob("*.yaml")):
        doc = load_file(p).data
        # Fleet/group defaults fill the rest; the site file alone must not break types.
        validator = jsonschema.Draft202012Validator(site_schema)
        errors = [e for e in validator.iter_errors(doc) if e.validator != "required"]
        assert not errors, (p, [e.message for e in errors])


def test_unknown_keys_forbidden_in_schema() -> None:
    doc = json.loads(schema_text("site"))
    assert doc["additionalProperties"] is False
    assert all(
        d.get("additionalProperties") is False for d in doc["$defs"].values() if "properties" in d
    )


def test_fleet_schema_offers_site_keys_under_defaults() -> None:
    doc = json.loads(schema_text("fleet"))
    assert "wan" in doc["properties"]["defaults"]["properties"]
