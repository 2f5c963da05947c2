"""The partner catalog: what each POS partner needs, as data.

The built-in catalog ships with the package; a fleet's `partners:` block adds partners or
overrides fields of built-in ones (mappings merge, lists replace).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from generator.patterns.auth_websocket import AuthWebsocketParams
from generator.patterns.cloud_connector import CloudConnectorParams
from generator.patterns.tunnel import TunnelParams
from generator.patterns.windows_https import WindowsHttpsParams
from generator.spec.model import Model, PatternName
from generator.spec.types import DomainPattern, Ident, Note, Port, Source, Text

BUILTIN = Path(__file__).with_name("builtin.yaml")


class Egress(Model):
    purpose: Text
    domains: list[DomainPattern] = Field(min_length=1)
    # no default: the ports are the partner's, as its guide lists them
    ports: list[Port] = Field(min_length=1)
    protocol: Literal["tcp", "udp"] = "tcp"
    ssl_inspection_exempt: bool = False


class Partner(Model):
    """A partner: its patterns, sources, egress, and per-pattern parameters.

    Parameters that belong to one pattern sit under that pattern's name
    (`cloud_connector: {environments: ...}`), each a model owned by the pattern module.
    """

    title: Text
    patterns: list[PatternName] = Field(min_length=1)
    sources: list[Source] = Field(
        default_factory=list, description="Partner source IPs (from fleet config)"
    )
    egress: list[Egress] = Field(default_factory=list)
    # validate_default: a partner that uses a pattern but leaves out its block is checked
    tunnel: TunnelParams | None = Field(None, validate_default=True)
    cloud_connector: CloudConnectorParams | None = Field(None, validate_default=True)
    windows_https: WindowsHttpsParams | None = Field(None, validate_default=True)
    auth_websocket: AuthWebsocketParams | None = Field(None, validate_default=True)
    notes: list[Note] = Field(default_factory=list)
    pattern_notes: dict[PatternName, list[Note]] = Field(
        default_factory=dict,
        description=(
            "Notes for the stores that use one pattern (after `notes`): a tunnel store "
            "exposes nothing, so it gets no allow-list advice"
        ),
    )

    @field_validator("tunnel", "cloud_connector", "windows_https", "auth_websocket")
    @classmethod
    def _block_of_a_used_pattern(cls, value: Any, info: ValidationInfo) -> Any:
        """A pattern whose parameters have no default (the partner's own ports, paths,
        domains) needs its block: posnet does not make those values up."""
        name = info.field_name
        if value is not None or name is None or name not in info.data.get("patterns", ()):
            return value
        required = _required(cls.model_fields[name].annotation)
        if required:
            what = "; ".join(f"{key}: {doc}" if doc else key for key, doc in required)
            raise PydanticCustomError(
                "posnet_value",
                "the partner uses the {name} pattern but has no {name}: block, and posnet "
                "has no default for what it must declare ({what})",
                {
                    "name": name,
                    "what": what,
                    "expected": f"{name}: {{"
                    + ", ".join(f"{key}: ..." for key, _ in required)
                    + "} as the partner documents them",
                },
            )
        return value


def _required(annotation: Any) -> list[tuple[str, str]]:
    """The keys of a pattern's parameter block that have no default, each with what it
    means (`tunnel: TunnelParams | None` -> TunnelParams's required fields)."""
    from generator.schema_docs import DOCS

    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return [
                (key, f.description or DOCS.get(f"{arg.__name__}.{key}", ""))
                for key, f in arg.model_fields.items()
                if f.is_required()
            ]
    return []


class Catalog(Model):
    partners: dict[Ident, Partner]
