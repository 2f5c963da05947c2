"""JSON Schemas for editors (yaml-language-server) and for CI linters.

They must accept every file posnet accepts. Files merge fleet defaults -> group
defaults -> site, mapping by mapping, so any key of a mapping can come from a less
specific file: in defaults and in site files, mappings are *partial* (no `required`),
while list items (a host, an integration) are replaced whole and keep theirs. A site
file must still name its `id`. Unknown keys stay errors everywhere.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.catalog import Catalog, Partner
from generator.schema_docs import DOCS
from generator.spec.load import FleetFile, GroupFile
from generator.spec.model import Site

if TYPE_CHECKING:
    from generator.outdir import OutDir

KINDS: dict[str, Any] = {"site": Site, "fleet": FleetFile, "group": GroupFile, "catalog": Catalog}
PARTIAL = "Partial"  # suffix of a def with no required keys


def _describe(node: dict[str, Any], model: str, used: set[str]) -> None:
    for key, prop in node.get("properties", {}).items():
        if "description" in prop:
            continue
        for entry in (f"{model}.{key}", f"*.{key}"):
            if entry in DOCS:
                prop["description"] = DOCS[entry]
                used.add(entry)
                break


def _model_schema(model: Any, used: set[str]) -> dict[str, Any]:
    doc: dict[str, Any] = model.model_json_schema(mode="validation")
    _describe(doc, model.__name__, used)
    for name, node in doc.get("$defs", {}).items():
        _describe(node, name, used)
    return doc


def _partial(node: Any, defs: dict[str, Any]) -> Any:
    """The same schema without `required` in any mapping reached through mappings;
    a `$ref` to such a mapping points to its partial twin (added to defs)."""
    if isinstance(node, list):
        return [_partial(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "required":
            continue
        if key in ("items", "prefixItems"):  # list entries are replaced whole
            out[key] = value
        elif key == "$ref" and value.startswith("#/$defs/"):
            name = value.rsplit("/", 1)[1]
            twin = name + PARTIAL
            if twin not in defs:
                defs[twin] = {}  # placeholder: breaks cycles
                defs[twin] = _partial(defs[name], defs)
            out[key] = f"#/$defs/{twin}"
        else:
            out[key] = _partial(value, defs)
    return out


def _partial_site(used: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(properties, defs) of a site in which every mapping is partial."""
    site = _model_schema(Site, used)
    defs = dict(site.get("$defs", {}))
    props = _partial(site["properties"], defs)
    return props, defs


def schema(kind: str, used: set[str] | None = None) -> dict[str, Any]:
    used = set() if used is None else used
    doc = _model_schema(KINDS[kind], used)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["$id"] = f"posnet:{kind}.schema.json"
    if kind == "site":
        defs = doc.setdefault("$defs", {})
        doc["properties"] = _partial(doc["properties"], defs)
        doc["required"] = ["id"]
    if kind in ("fleet", "group"):
        props, defs = _partial_site(used)
        for key in ("group", "id"):  # a store names both in its own file (load.py)
            props.pop(key, None)
        doc.setdefault("$defs", {}).update(defs)
        described = doc["properties"]["defaults"]["description"]
        doc["properties"]["defaults"] = {
            "type": "object",
            "description": described,
            "properties": props,
            "additionalProperties": False,
        }
    if kind == "fleet":
        partner = _model_schema(Partner, used)
        defs = doc.setdefault("$defs", {})
        defs.update(copy.deepcopy(partner.pop("$defs", {})))
        defs["Partner"] = partner
        doc["properties"]["partners"] = {
            "type": "object",
            "description": doc["properties"]["partners"]["description"],
            "additionalProperties": _partial({"$ref": "#/$defs/Partner"}, defs),
        }
    return _prune(doc)


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(n) for n in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
    return found.union(*(_refs(v) for k, v in node.items() if k != "$defs"))


def _prune(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop defs nothing refers to (the full twins of mappings made partial)."""
    defs = doc.get("$defs", {})
    keep: set[str] = set()
    todo = _refs(doc)
    while todo:
        name = todo.pop()
        if name not in keep and name in defs:
            keep.add(name)
            todo |= _refs(defs[name])
    doc["$defs"] = {k: v for k, v in defs.items() if k in keep}
    if not doc["$defs"]:
        del doc["$defs"]
    return doc


def schema_text(kind: str) -> str:
    return json.dumps(schema(kind), indent=2, sort_keys=True) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    """Every schema as <folder>/<kind>.schema.json (what the modelines point at); never
    through a link or into a special file (generator/outdir.py)."""
    from generator.outdir import OutDir

    with OutDir(folder, "posnet schema --write", "pass a real folder to --write") as out:
        return write_schema_files(out)


def write_schema_files(out: OutDir, under: str = "", exclusive: bool = False) -> list[Path]:
    """Every schema into folder `under` of `out`, each path checked before any is written."""
    rels = {kind: f"{under}{kind}.schema.json" for kind in KINDS}
    out.check(under.rstrip("/"), "folder")
    for rel in rels.values():
        out.check(rel)
    for kind, rel in rels.items():
        out.write(rel, schema_text(kind), exclusive)
    return [out.path / rel for rel in rels.values()]
