"""What loading gives: the fleet and group file models, each valid store with the
layers it came from (for locating diagnostics), and the Fleet holding them all."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field as PField

from generator.catalog import Catalog
from generator.errors import Diagnostic
from generator.patterns.direct import DirectIntegration
from generator.spec.locate import Layer, locate, merged_input
from generator.spec.model import LintConfig, Model, Site
from generator.spec.types import Ident, Text
from generator.yamlload import YamlPath

if TYPE_CHECKING:
    from generator.spec.cache import SiteCache


class FleetFile(Model):
    """fleet.yaml: fleet-wide defaults, partner catalog additions and lint settings."""

    fleet: Ident
    description: Text | None = None
    partners: dict[str, Any] = PField(default_factory=dict)
    defaults: dict[str, Any] = PField(default_factory=dict)
    lint: LintConfig = LintConfig()
    tunnel_rollout_limit: int = PField(5, ge=1, description="PN104: tunnels above this count")


class GroupFile(Model):
    """groups/<name>.yaml: defaults shared by a group of stores."""

    group: Ident
    description: Text | None = None
    defaults: dict[str, Any] = PField(default_factory=dict)


@dataclass(frozen=True)
class SiteFacts:
    """What the checks across stores read of a site: cheap to cache and to restore."""

    id: str
    fqdn: str | None
    public_ip: str | None
    lint_disable: tuple[str, ...]
    # (integration index, route index, target site, target service) of remote routes
    routes: tuple[tuple[int, int, str, str | None], ...]
    services: frozenset[tuple[str, str]]  # (host, service)
    # what a route from another store reads: (host/service, the port partners reach it
    # on: a direct integration's public port, else its own; whether it speaks TLS)
    reach: tuple[tuple[str, int, bool], ...]
    udp: frozenset[str] = frozenset()  # host/service of its UDP services: no proxy reaches them

    def reached_at(self, ref: str) -> tuple[int, bool]:
        """Port and TLS of service `ref` (host/service) for a route from another store."""
        return next((port, tls) for r, port, tls in self.reach if r == ref)

    @classmethod
    def of(cls, site: Site) -> SiteFacts:
        public: dict[str, int] = {}
        for integ in site.integrations:
            if isinstance(integ, DirectIntegration):
                public.setdefault(integ.service, integ.public_port)
        refs = [(f"{h.name}/{s.name}", s) for h in site.hosts for s in h.services]
        return cls(
            site.id,
            site.wan.fqdn,
            site.wan.public_ip,
            tuple(site.lint.disable),
            tuple(
                (i, j, route.site, route.site_service)
                for i, integ in enumerate(site.integrations)
                for j, route in enumerate(getattr(integ, "routes", []))
                if route.site is not None
            ),
            frozenset((h.name, s.name) for h in site.hosts for s in h.services),
            tuple((ref, public.get(ref, s.port), s.tls) for ref, s in refs),
            frozenset(ref for ref, s in refs if s.protocol == "udp"),
        )


class LoadedSite:
    """A valid site: its model, file, merged-input digest and the layers it came from.

    The layers (where every value was written) only serve to place diagnostics, and the
    model is read again only to resolve a Plan: a site restored from the cache decodes
    either on first use. A record that holds its store's final Plan keeps no model at
    all (site=None): the model is then validated again from the layers, exactly as the
    loader made it, in the rare run that asks (a route to this store changed). Every
    lookup of a position is remembered (and cached).
    """

    __slots__ = ("_layers", "_restore", "_site", "_site_blob", "digest", "facts", "file", "found")

    def __init__(
        self,
        site: Site | bytes | None,  # bytes: the pickled model; None: rebuild it
        file: str,
        layers: tuple[Layer, ...] | Callable[[], tuple[Layer, ...]],
        digest: str,  # of the merged input: drives incremental rendering
        found: dict[tuple[YamlPath, bool], tuple[Any, str]] | None = None,
        facts: SiteFacts | None = None,
    ) -> None:
        self._site = site if isinstance(site, Site) else None
        self._site_blob = site if isinstance(site, bytes) else b""
        self.file = file
        self.digest = digest
        self._layers = layers if isinstance(layers, tuple) else None
        self._restore = None if isinstance(layers, tuple) else layers
        self.found = {} if found is None else found
        if facts is None:
            assert self._site is not None
            facts = SiteFacts.of(self._site)
        self.facts = facts

    @property
    def id(self) -> str:
        return self.facts.id

    @property
    def site(self) -> Site:
        if self._site is None:
            if self._site_blob:
                site = pickle.loads(self._site_blob)  # noqa: S301 - see SiteCache.open()
                assert isinstance(site, Site)
            else:  # valid when loaded, from the same layers: validation cannot fail
                site = Site.model_validate(merged_input(self.layers))
            self._site, self._site_blob = site, b""
        return self._site

    @property
    def layers(self) -> tuple[Layer, ...]:
        if self._layers is None:
            assert self._restore is not None
            self._layers, self._restore = self._restore(), None
        return self._layers

    def locate(self, path: YamlPath, prefer_key: bool = False) -> tuple[Any, str]:
        key = (tuple(path), prefer_key)
        hit = self.found.get(key)
        if hit is None:
            hit = self.found[key] = locate(self.layers, path, prefer_key)
        return hit

    def with_digest(self, digest: str) -> LoadedSite:
        site = self._site if self._site is not None else self._site_blob or None
        other = LoadedSite(site, self.file, (), digest, self.found, self.facts)
        other._layers, other._restore = self._layers, self._restore
        return other


@dataclass
class Fleet:
    name: str
    root: Path | None
    catalog: Catalog
    settings: FleetFile
    sites: list[LoadedSite] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    catalog_digest: str = ""
    cache: SiteCache | None = None
    # fleet.yaml as written (None for a lone site file): places a problem of its own
    # settings, such as an unknown id in its lint.disable, at the line that wrote it.
    layer: Layer | None = None
    checked: int = 0  # site files read, valid or not (`sites` holds the valid ones)

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def site_layers(
    site_layer: Layer, groups: dict[str, Layer], fleet_layer: Layer | None
) -> list[Layer]:
    """Most specific first: the site, the group it selects (if known), fleet defaults."""
    layers = [site_layer]
    group = site_layer.data.get("group")
    if isinstance(group, str) and group in groups:
        layers.append(groups[group])
    if fleet_layer is not None:
        layers.append(fleet_layer)
    return layers
