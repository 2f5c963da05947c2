"""The partner catalog: what each POS partner needs, as data.

The built-in catalog ships with the package; a fleet's `partners:` block adds partners or
overrides fields of built-in ones (mappings merge, lists replace).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

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
    ports: list[Port] = Field(default_factory=lambda: [443])
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
    tunnel: TunnelParams | None = None
    cloud_connector: CloudConnectorParams | None = None
    windows_https: WindowsHttpsParams | None = None
    auth_websocket: AuthWebsocketParams | None = None
    notes: list[Note] = Field(default_factory=list)
    pattern_notes: dict[PatternName, list[Note]] = Field(
        default_factory=dict,
        description=(
            "Notes for the stores that use one pattern (after `notes`): a tunnel store "
            "exposes nothing, so it gets no allow-list advice"
        ),
    )


class Catalog(Model):
    partners: dict[Ident, Partner]
