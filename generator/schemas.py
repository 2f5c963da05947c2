"""JSON Schemas for editors (yaml-language-server) and for CI linters."""

from __future__ import annotations

import json
from typing import Any

from generator.catalog import Catalog
from generator.spec.load import FleetFile, GroupFile
from generator.spec.model import Site

KINDS: dict[str, Any] = {"site": Site, "fleet": FleetFile, "group": GroupFile, "catalog": Catalog}


def schema(kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = KINDS[kind].model_json_schema(mode="validation")
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["$id"] = f"posnet:{kind}.schema.json"
    if kind in ("fleet", "group"):
        # Defaults are a partial site: offer the site's properties for completion.
        site = Site.model_json_schema(mode="validation")
        doc.setdefault("$defs", {}).update(site.get("$defs", {}))
        doc["properties"]["defaults"] = {
            "type": "object",
            "description": "Values every store inherits (a partial site).",
            "properties": site["properties"],
            "additionalProperties": False,
        }
    return doc


def schema_text(kind: str) -> str:
    return json.dumps(schema(kind), indent=2, sort_keys=True) + "\n"
