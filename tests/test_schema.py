"""The committed JSON Schemas match the model, and they accept the demo files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from generator.schema_docs import DOCS
from generator.schemas import schema, schema_text
from generator.spec.load import load_fleet
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


def _validator(kind: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads((ROOT / "schema" / f"{kind}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def _fleet_errors(root: Path) -> list[str]:
    """Every schema error (`required` included) of a fleet's fleet, group and site files."""
    files = [("fleet", root / "fleet.yaml")]
    files += [("group", p) for p in sorted((root / "groups").glob("*.yaml"))]
    files += [("site", p) for p in sorted((root / "sites").glob("*.yaml"))]
    out = []
    for kind, path in files:
        for e in _validator(kind).iter_errors(load_file(path).data):
            out.append(f"{path.name}: {e.json_path}: {e.message}")
    return out


def test_schema_validates_demo_with_jsonschema() -> None:
    assert _fleet_errors(DEMO) == []


SCRATCH = {
    "fleet.yaml": """\
fleet: scratch
defaults:
  edge:
    management: {allow_from: ["192.0.2.64/28"]}
  wan: {isp: Proximus}
partners:
  deliverect: {sources: ["198.51.100.0/28"]}
""",
    "groups/north.yaml": """\
group: north
defaults:
  edge: {kind: iptables}
  lan: {interface: br0}
""",
    # Leaves to the defaults: edge (all of it), wan.isp, lan.interface.
    "sites/north-01.yaml": """\
id: north-01
name: North 01
group: north
wan: {ip_mode: static, public_ip: "203.0.113.50", fqdn: north-01.pos.example.com}
lan: {subnet: "198.51.100.192/26", gateway: "198.51.100.193"}
hosts:
  - {name: pos1, role: pos, ip: "198.51.100.200", services: [{name: api, port: 8443, tls: true}]}
integrations:
  - {partner: deliverect, pattern: direct, service: pos1/api, public_port: 18443}
""",
}


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_fleet_from_scratch_is_valid_for_posnet_and_for_the_schemas(tmp_path: Path) -> None:
    root = _write(tmp_path, SCRATCH)
    fleet = load_fleet(root)
    assert fleet.ok, fleet.diagnostics
    assert _fleet_errors(root) == []


@pytest.mark.parametrize(
    ("rel", "old", "new", "expected"),
    [
        ("sites/north-01.yaml", "ip_mode:", "ipmode:", "'ipmode' was unexpected"),
        ("fleet.yaml", "management:", "managment:", "'managment' was unexpected"),
        ("groups/north.yaml", "kind: iptables", "kind: pf", "'pf' is not one of"),
        # A list entry is replaced whole: a host without its address is still incomplete.
        ("sites/north-01.yaml", 'ip: "198.51.100.200", ', "", "'ip' is a required property"),
        ("sites/north-01.yaml", "id: north-01\n", "", "'id' is a required property"),
        ("fleet.yaml", "{sources:", "{source:", "'source' was unexpected"),
    ],
)
def test_schemas_still_flag_mistakes(
    tmp_path: Path, rel: str, old: str, new: str, expected: str
) -> None:
    files = dict(SCRATCH)
    assert old in files[rel]
    files[rel] = files[rel].replace(old, new, 1)
    errors = _fleet_errors(_write(tmp_path, files))
    assert any(expected in e for e in errors), errors


def _properties(node: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        for key, prop in node.get("properties", {}).items():
            out.append((f"{where}.{key}", prop))
        for key, value in node.items():
            out += _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _properties(value, f"{where}[{i}]")
    return out


@pytest.mark.parametrize("kind", ["site", "fleet", "group", "catalog"])
def test_every_property_has_a_description(kind: str) -> None:
    missing = [w for w, p in _properties(schema(kind), kind) if not p.get("description")]
    assert missing == []


def test_every_description_entry_names_a_property() -> None:
    used: set[str] = set()
    for kind in ("site", "fleet", "group", "catalog"):
        schema(kind, used)
    assert sorted(set(DOCS) - used) == []


def test_schema_write_folder(tmp_path: Path) -> None:
    from generator.cli import cli

    result = CliRunner().invoke(cli, ["schema", "--write", str(tmp_path / "schema")])
    assert result.exit_code == 0, result.output
    for kind in ("site", "fleet", "group", "catalog"):
        assert (tmp_path / "schema" / f"{kind}.schema.json").read_text() == schema_text(kind)


def test_unknown_keys_forbidden_in_schema() -> None:
    doc = json.loads(schema_text("site"))
    assert doc["additionalProperties"] is False
    assert all(
        d.get("additionalProperties") is False for d in doc["$defs"].values() if "properties" in d
    )


def test_fleet_schema_offers_site_keys_under_defaults() -> None:
    doc = json.loads(schema_text("fleet"))
    assert "wan" in doc["properties"]["defaults"]["properties"]


def _wrong_values(value: Any) -> list[Any]:
    """Values of another JSON type than `value` (what a typo or a YAML surprise gives)."""
    out: list[Any] = [None, "x", 5, True, [], {"unknown_key": 1}]
    return [v for v in out if type(v) is not type(value)]


def _leaf_paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += _leaf_paths(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _leaf_paths(value, (*path, i))
    return out


def _value(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


# Every value under the scratch fleet's shared defaults, and each shared file's
# `defaults:` given a mapping a store overrides, a list entry and a group no store names.
_SHARED = {
    "fleet.yaml": SCRATCH["fleet.yaml"].replace(
        "  wan: {isp: Proximus}\n",
        "  wan: {isp: Proximus, interface: wan0}\n  lan: {interface: br0}\n"
        '  hosts: [{name: pos1, role: pos, ip: "198.51.100.200"}]\n',
    ),
    "groups/north.yaml": SCRATCH["groups/north.yaml"],
    "groups/idle.yaml": "group: idle\ndefaults:\n  wan: {isp: Telenet}\n  lan: {interface: br1}\n",
}
_DEFAULT_CASES = [
    (rel, path, new)
    for rel, text in _SHARED.items()
    for path in _leaf_paths(yaml.safe_load(text)["defaults"])
    for new in _wrong_values(_value(yaml.safe_load(text)["defaults"], path))
]


@pytest.mark.parametrize(("rel", "path", "new"), _DEFAULT_CASES, ids=repr)
def test_schema_rejects_a_default_so_posnet_does(
    tmp_path: Path, rel: str, path: tuple[Any, ...], new: Any
) -> None:
    """What the schema rejects in shared defaults, posnet rejects at that file and line,
    even where every store overrides it (a store's own `lan:` beside `defaults: {lan:
    5}`) or no store uses it (a group no store names): never accepted silently."""
    files = {**SCRATCH, **_SHARED}
    data = yaml.safe_load(files[rel])
    target = data["defaults"]
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    files[rel] = json.dumps(data)
    root = _write(tmp_path, files)
    kind = "fleet" if rel == "fleet.yaml" else "group"
    if not list(_validator(kind).iter_errors(load_file(root / rel).data)):
        return  # the schema accepts it (e.g. null for an optional key)
    fleet = load_fleet(root)
    errors = [d for d in fleet.diagnostics if d.severity == "error"]
    assert any(d.location.file == str(root / rel) for d in errors), (rel, path, new)
    assert all(d.location.line >= 1 for d in errors), errors
