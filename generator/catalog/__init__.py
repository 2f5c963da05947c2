"""The partner catalog: what each POS partner needs, as data.

The built-in catalog ships with the package; a fleet's `partners:` block adds partners or
overrides fields of built-in ones (mappings merge, lists replace).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from generator.spec.model import Model, PatternName
from generator.spec.types import (
    DomainPattern,
    Fqdn,
    Guid,
    Ident,
    Note,
    Port,
    ProfileName,
    Source,
    Text,
    UrlPath,
)

BUILTIN = Path(__file__).with_name("builtin.yaml")


class Egress(Model):
    purpose: Text
    domains: list[DomainPattern] = Field(min_length=1)
    ports: list[Port] = Field(default_factory=lambda: [443])
    protocol: Literal["tcp", "udp"] = "tcp"
    ssl_inspection_exempt: bool = False


class Environment(Model):
    api_host: Fqdn
    auth_host: Fqdn


class Partner(Model):
    title: Text
    patterns: list[PatternName] = Field(min_length=1)
    sources: list[Source] = Field(
        default_factory=list, description="Partner source IPs (from fleet config)"
    )
    egress: list[Egress] = Field(default_factory=list)
    default_port: Port | None = None
    appid: Guid | None = None
    auth_path: UrlPath | None = None
    token_query_param: Ident | None = None
    tunnel_domain_suffix: Fqdn | None = None
    tunnel_ui_port: Port | None = None
    environments: dict[Ident, Environment] = Field(default_factory=dict)
    device_listener_path: UrlPath | None = None
    pos_listener_path: UrlPath | None = None
    token_path_template: UrlPath | None = None
    ssl_profile_name: ProfileName | None = None
    requires_trusted_certificate: bool = False
    notes: list[Note] = Field(default_factory=list)


class Catalog(Model):
    partners: dict[Ident, Partner]
