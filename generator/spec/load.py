"""Load a fleet folder (or one site file) into validated Sites, with located diagnostics.

All problems of a run are collected and reported together; nothing raises past here
except PosnetError carrying diagnostics.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import pickle
import sys
import types
import typing
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic import Field as PField

from generator.catalog import BUILTIN, Catalog
from generator.errors import Diagnostic, Location, PosnetError, unique_sorted
from generator.plan import Plan
from generator.spec.checks import check_site
from generator.spec.locate import Layer, deep_merge, format_path, holds, key_text, locate
from generator.spec.model import LintConfig, Model, ServiceRef, Site
from generator.spec.types import (
    HOSTNAME_RE,
    Guid,
    Ident,
    InterfaceName,
    Note,
    ProfileName,
    Text,
    Thumbprint,
    UrlPath,
)
from generator.yamlload import (
    Document,
    Positions,
    YamlPath,
    load_bytes,
    load_file,
    read_file,
)


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

    @classmethod
    def of(cls, site: Site) -> SiteFacts:
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
        )


class LoadedSite:
    """A valid site: its model, file, merged-input digest and the layers it came from.

    The layers (where every value was written) only serve to place diagnostics, and the
    model is read again only to resolve a Plan: a site restored from the cache decodes
    either on first use. Every lookup of a position is remembered (and cached).
    """

    __slots__ = ("_layers", "_restore", "_site", "_site_blob", "digest", "facts", "file", "found")

    def __init__(
        self,
        site: Site | bytes,  # bytes: the pickled model, from the cache
        file: str,
        layers: tuple[Layer, ...] | Callable[[], tuple[Layer, ...]],
        digest: str,  # of the merged input: drives incremental rendering
        found: dict[tuple[YamlPath, bool], tuple[Any, str]] | None = None,
        facts: SiteFacts | None = None,
    ) -> None:
        self._site = None if isinstance(site, bytes) else site
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
            site = pickle.loads(self._site_blob)  # noqa: S301 - see SiteCache.open()
            assert isinstance(site, Site)
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
        site = self._site if self._site is not None else self._site_blob
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

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


# ----------------------------------------------------------------- pydantic -> diagnostics

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "float_type": "a number",
}


def _unwrap(tp: Any) -> list[Any]:
    """All concrete classes an annotation may hold (through Optional, list, Annotated)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [c for a in typing.get_args(tp) for c in _unwrap(a)]
    if origin in (list, tuple, dict):
        return [c for a in typing.get_args(tp) for c in _unwrap(a)]
    return [tp]


def _is_dict(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _is_dict(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_dict(a) for a in typing.get_args(tp))
    return origin is dict


def _model_at(root: type[BaseModel], data: Any, path: YamlPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path` (for 'did you mean')."""
    cls: type[BaseModel] | None = root
    cur = data
    in_dict = False  # the next part is a key of a dict[str, Model] (e.g. a partner name)
    for part in path:
        if cls is None:
            return None
        if isinstance(part, int) or in_dict:
            cur = cur[part] if holds(cur, (part,)) else None
            in_dict = False
            continue
        f = cls.model_fields.get(part)
        cur = cur.get(part) if isinstance(cur, dict) else None
        if f is None:
            return None
        in_dict = _is_dict(f.annotation)
        candidates = [c for c in _unwrap(f.annotation) if isinstance(c, type)]
        models = [c for c in candidates if issubclass(c, BaseModel)]
        cls = None
        if len(models) == 1:
            cls = models[0]
        elif models:
            pick = cur[0] if isinstance(cur, list) and cur else cur
            pattern = pick.get("pattern") if isinstance(pick, dict) else None
            for m in models:
                pf = m.model_fields.get("pattern")
                if pf is not None and pattern in typing.get_args(pf.annotation):
                    cls = m
    return cls


def data_path(data: Any, loc: Sequence[str | int]) -> YamlPath:
    """Pydantic's loc with union tags (e.g. 'direct') removed, so it walks the data."""
    out: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        if holds(cur, (part,)):
            out.append(part)
            cur = cur[part]
        elif i == len(loc) - 1 or not isinstance(part, str):
            out.append(part)
            cur = None
        # else: a discriminator tag inserted by pydantic; skip it
    return tuple(out)


def _clean(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def validation_diagnostics(
    exc: ValidationError,
    data: Any,
    layers: Sequence[Layer],
    model: type[BaseModel],
    site_id: str = "",
) -> list[Diagnostic]:
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        path = data_path(data, err["loc"])
        etype = err["type"]
        msg = _clean(err["msg"])
        ctx = err.get("ctx", {})
        expected = _EXPECTED.get(etype, "")
        prefer_key = False
        if etype == "int_type" and str(_value_at(data, path)).isdigit():
            expected = "an integer without quotes"
        elif etype == "extra_forbidden":
            key = str(path[-1])
            cls = _model_at(model, data, path[:-1])
            allowed = sorted(cls.model_fields) if cls else []
            close = difflib.get_close_matches(key, allowed, n=1)
            shown_key = key_text(key)
            shown_key = shown_key if shown_key.startswith('"') else f"'{shown_key}'"
            msg = f"unknown key {shown_key}" + (f"; did you mean '{close[0]}'?" if close else "")
            expected = "one of: " + ", ".join(allowed) if allowed else ""
            prefer_key = True
        elif etype == "missing":
            msg = f"missing required key '{path[-1]}'"
            expected = f"{path[-1]}: ..."
        elif etype == "literal_error":
            exp = err.get("ctx", {}).get("expected", "")
            msg, expected = "value is not allowed", f"one of {exp}"
        elif etype == "union_tag_invalid":
            exp = err.get("ctx", {}).get("expected_tags", "")
            msg, expected = "unknown pattern", f"one of {exp}"
            path = (*path, "pattern")
        elif etype == "union_tag_not_found":
            msg, expected = (
                "missing required key 'pattern'",
                "pattern: direct | reverse_proxy | ...",
            )
        elif etype == "string_pattern_mismatch":
            msg = "contains characters or a form that is not allowed here"
            expected = _PATTERN_HINTS.get(str(ctx.get("pattern", ""))) or _pattern_hint(path)
        elif etype == "posnet_value":
            expected = str(ctx.get("expected", ""))
        elif etype in ("too_long", "string_too_long"):
            unit = _unit(data, path, ctx.get("max_length"))
            msg = f"is too long (at most {ctx.get('max_length')} {unit})"
            expected = f"at most {ctx.get('max_length')} {unit}"
        elif etype in ("too_short", "string_too_short"):
            unit = _unit(data, path, ctx.get("min_length"))
            msg = f"is too short (at least {ctx.get('min_length')} {unit})"
            expected = f"at least {ctx.get('min_length')} {unit}"
        elif etype in _BOUNDS:
            bound = next(iter(ctx.values()), "")
            expected = f"a number {_BOUNDS[etype]} {bound}"
        loc, shown = locate(layers, path, prefer_key=prefer_key)
        out.append(Diagnostic(loc, "E100", msg, path=shown, expected=expected, site=site_id))
    return out


_BOUNDS = {
    "greater_than_equal": ">=",
    "less_than_equal": "<=",
    "greater_than": ">",
    "less_than": "<",
}


def _pattern_of(tp: Any) -> str:
    for meta in typing.get_args(tp)[1:]:
        pattern = getattr(meta, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    return ""


_TEXT_HINT = "one line of letters, digits, spaces and . , : ( ) / ' + @ # -"
_PATTERN_HINTS = {
    _pattern_of(Text): _TEXT_HINT,
    _pattern_of(Note): _TEXT_HINT.replace(" #", " # ;"),
    _pattern_of(Ident): "lowercase letters, digits, '-' and '_' (e.g. an id)",
    _pattern_of(InterfaceName): "an interface name (up to 15 of A-Z a-z 0-9 _ . -)",
    _pattern_of(UrlPath): "a URL path like /pos1/",
    _pattern_of(Guid): "a GUID like 77ba29fd-9f7a-45b0-8d7e-1ee5d879951b",
    _pattern_of(Thumbprint): "40 hex digits (the certificate's SHA-1 thumbprint)",
    _pattern_of(ProfileName): "up to 64 of A-Z a-z 0-9 _ -",
    _pattern_of(ServiceRef): "host/service, e.g. pos1/api",
    _pattern_of(typing.get_args(LintConfig.model_fields["disable"].annotation)[0]): (
        "a rule id like PN101"
    ),
}


def _unit(data: Any, path: YamlPath, count: object) -> str:
    unit = "character" if isinstance(_value_at(data, path), str) else "item"
    return unit if count == 1 else unit + "s"


def _value_at(data: Any, path: YamlPath) -> Any:
    if not holds(data, path):
        return None
    for part in path:
        data = data[part]
    return data


def _pattern_hint(path: YamlPath) -> str:
    last = str(path[-1]) if path else ""
    hints = {
        "name": "one line of letters, digits, spaces and . , : ( ) / ' + @ # -",
        "service": "host/service, e.g. pos1/api",
        "websocket_service": "host/service",
        "auth_service": "host/service",
        "site_service": "host/service",
        "path": "a URL path like /pos1/",
        "health_path": "a URL path like /health",
        "thumbprint": "40 hex digits (the certificate's SHA-1 thumbprint)",
        "appid": "a GUID like 77ba29fd-9f7a-45b0-8d7e-1ee5d879951b",
        "interface": "an interface name (up to 15 of A-Z a-z 0-9 _ . -)",
        "ssl_profile_crt": "an absolute path like /HOST/INGETRUST.pem",
    }
    if last in hints:
        return hints[last]
    if isinstance(path[-1] if path else None, int) and len(path) > 1:
        return hints.get(str(path[-2]), "")
    return "lowercase letters, digits, '-' and '_' (e.g. an id)"


# ----------------------------------------------------------------------------- loading


def _doc_diag(doc: Document, message: str, expected: str = "") -> Diagnostic:
    loc = doc.positions.values.get(()) or doc.positions.nearest(())
    assert loc is not None
    if doc.data is None:
        message = "the file is empty; " + message
    return Diagnostic(loc, "E100", message, expected=expected)


def _rel(path: Path, root: Path | None) -> str:
    """The path as the user would type it: under the folder they named, not resolved."""
    if root is None:
        return str(path)
    try:
        return str(root / path.relative_to(root))
    except ValueError:
        return str(path)


def _load_catalog(fleet_doc: Document | None, fleet_data: dict[str, Any]) -> tuple[Catalog, str]:
    builtin = load_file(BUILTIN, "<builtin catalog>")
    merged = deep_merge(builtin.data, {"partners": fleet_data.get("partners", {})})
    layers = [Layer(builtin.data, builtin.positions, (), builtin.file)]
    if fleet_doc is not None:
        layers.insert(
            0,
            Layer(
                {"partners": fleet_data.get("partners", {})},
                fleet_doc.positions,
                (),
                fleet_doc.file,
            ),
        )
    try:
        catalog = Catalog.model_validate(merged)
    except ValidationError as exc:
        raise PosnetError(validation_diagnostics(exc, merged, layers, Catalog)) from None
    digest = hashlib.sha256(json.dumps(merged, sort_keys=True).encode()).hexdigest()
    return catalog, digest


def load_fleet(path: Path, cached: bool = False) -> Fleet:
    """PATH is a fleet folder (fleet.yaml, groups/, sites/) or a single site file.

    With `cached`, sites whose file (and fleet, groups, posnet) did not change since an
    earlier run come from the user's cache instead of being parsed and validated again.
    """
    diags: list[Diagnostic] = []
    if path.exists() and not path.is_dir():  # a site file (or a FIFO, a device: refused)
        root = None
        fleet_doc = None
        site_files = [path]
        group_dir = None
    elif path.is_dir():
        root = path
        fleet_path = path / "fleet.yaml"
        if not fleet_path.exists():
            raise PosnetError(
                [
                    Diagnostic(
                        _loc(str(path)),
                        "E002",
                        "no fleet.yaml in this folder",
                        expected="a fleet folder (fleet.yaml, sites/*.yaml) or a site file",
                    )
                ]
            )
        fleet_doc = load_file(fleet_path, _rel(fleet_path, root), follow=False)
        site_files, notes = _site_files(path / "sites")
        diags.extend(notes)
        group_dir = path / "groups"
        if not site_files:
            diags.append(
                Diagnostic(
                    _loc(_rel(path / "sites", root)),
                    "E002",
                    "no site files in sites/",
                    expected="sites/<store-id>.yaml",
                )
            )
    else:
        raise PosnetError([Diagnostic(_loc(str(path)), "E002", "no such file or folder")])

    settings = FleetFile(fleet="fleet")
    fleet_layer: Layer | None = None
    fleet_data: dict[str, Any] = {}
    if fleet_doc is not None:
        if not isinstance(fleet_doc.data, dict):
            raise PosnetError(
                [_doc_diag(fleet_doc, "fleet.yaml must be a mapping", "fleet: <name>")]
            )
        fleet_data = fleet_doc.data
        flayers = [Layer(fleet_data, fleet_doc.positions, (), fleet_doc.file)]
        try:
            settings = FleetFile.model_validate(fleet_data)
        except ValidationError as exc:
            raise PosnetError(validation_diagnostics(exc, fleet_data, flayers, FleetFile)) from None
        fleet_layer = Layer(settings.defaults, fleet_doc.positions, ("defaults",), fleet_doc.file)
    catalog, catalog_digest = _load_catalog(fleet_doc, fleet_data)
    fleet = Fleet(settings.fleet, root, catalog, settings, catalog_digest=catalog_digest)

    groups: dict[str, Layer] = {}
    if group_dir is not None and group_dir.is_dir():
        for gpath in _group_files(group_dir):
            try:
                gdoc = load_file(gpath, _rel(gpath, root), follow=False)
            except PosnetError as exc:
                diags.extend(exc.diagnostics)
                continue
            glayers = [Layer(gdoc.data, gdoc.positions, (), gdoc.file)]
            if not isinstance(gdoc.data, dict):
                diags.append(_doc_diag(gdoc, "a group file must be a mapping", "group: <name>"))
                continue
            try:
                g = GroupFile.model_validate(gdoc.data)
            except ValidationError as exc:
                diags.extend(validation_diagnostics(exc, gdoc.data, glayers, GroupFile))
                continue
            if g.group != gpath.stem:
                loc, shown = locate(glayers, ("group",))
                diags.append(
                    Diagnostic(
                        loc,
                        "E101",
                        f"group '{g.group}' is in a file named {gpath.name}",
                        path=shown,
                        expected=f"group: {gpath.stem}",
                    )
                )
            groups[g.group] = Layer(g.defaults, gdoc.positions, ("defaults",), gdoc.file)

    if cached and root is not None and fleet_doc is not None:
        group_files = _group_files(group_dir) if group_dir and group_dir.is_dir() else []
        fleet.cache = SiteCache.open(root, [root / "fleet.yaml", *group_files])
    failed: set[str] = {p.stem for p in site_files if p.suffix == ".dup"}
    inputs = [(p, _read(p, follow=root is None)) for p in site_files if p.suffix != ".dup"]
    hits = {
        str(p): fleet.cache.site(str(p), raw, groups, fleet_layer) if fleet.cache else None
        for p, raw in inputs
    }
    load_one = partial(
        _load_site,
        root=root,
        fleet_layer=fleet_layer,
        groups=groups,
        catalog=catalog,
        catalog_digest=catalog_digest,
    )
    # Sites neither cached nor few: loaded in worker processes (see parallel_load).
    from generator.spec.parallel_load import load_in_workers

    misses = [(p, raw) for p, raw in inputs if hits[str(p)] is None]
    fresh = load_in_workers(misses, load_one, groups, fleet_layer) if root is not None else {}
    for spath, raw in inputs:
        display = str(spath)  # what _rel() gives for a file globbed under root
        hit = hits[display]
        got = fresh.get(display)
        try:
            if isinstance(got, PosnetError):
                raise got
            loaded, sdiags = hit or (got[0] if got else None) or load_one(spath, raw)
        except PosnetError as exc:
            diags.extend(exc.diagnostics)
            failed.add(spath.stem)
            continue
        if fleet.cache is not None and hit is None and raw is not None:
            if got:
                fleet.cache.adopt(display, got[1])
            else:
                fleet.cache.remember(display, raw, loaded, sdiags)
        diags.extend(sdiags)
        if loaded is not None:
            fleet.sites.append(loaded)
        else:
            failed.add(spath.stem)
    diags.extend(_check_fleet(fleet, failed))
    fleet.sites = _with_route_digests(fleet.sites)
    fleet.diagnostics = unique_sorted(diags)
    return fleet


def _with_route_digests(sites: list[LoadedSite]) -> list[LoadedSite]:
    """A central proxy renders other stores' addresses and ports: fold their input into
    its digest, or changing one of them would leave the proxy's files stale."""
    own = {ls.id: ls.digest for ls in sites}
    out = []
    for ls in sites:
        targets = sorted({target for _, _, target, _ in ls.facts.routes})
        mix = ls.digest + "".join(f"|{t}={own.get(t, '')}" for t in targets)
        out.append(ls.with_digest(hashlib.sha256(mix.encode()).hexdigest()) if targets else ls)
    return out


def _loc(file: str) -> Location:
    return Location(file)


def _name(path: Path) -> str:
    return path.name


def _read(spath: Path, follow: bool) -> bytes | None:
    """The file's bytes; None lets load_file report why it cannot be read."""
    try:
        return read_file(spath, str(spath), follow)
    except PosnetError:
        return None


STORE_SUFFIXES = (".yaml", ".yml")


def _ignored(name: str) -> bool:
    """Hidden files and what editors leave next to a file (`.#x.yaml`, `x.yaml~`,
    `#x.yaml#`, `.x.yaml.swp`): never a store, often a stale copy of one."""
    return name.startswith((".", "#")) or name.endswith(("~", "#", ".swp", ".swo", ".bak"))


def _group_files(folder: Path) -> list[Path]:
    """groups/*.yaml, without hidden and editor files (an editor's `.#coast.yaml`)."""
    return sorted(p for p in folder.glob("*.yaml") if not _ignored(p.name))


def _site_files(folder: Path) -> tuple[list[Path], list[Diagnostic]]:
    """Store files in sites/: *.yaml and *.yml, in name order (.yaml first).

    Anything else is ignored with a note, and a store id written twice (`x.yaml` and
    `x.yml`) is an error naming both: neither may silently win. A `.dup` path stands
    for such an id (it is reported here, and not loaded)."""
    notes: list[Diagnostic] = []
    try:
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it)
    except OSError:
        return [], notes
    by_stem: dict[str, list[str]] = {}
    for name in names:
        display = str(folder / name)
        if _ignored(name):
            notes.append(
                Diagnostic(
                    _loc(display),
                    "E003",
                    "ignored: a hidden or editor backup file, not a store",
                    severity="info",
                )
            )
            continue
        stem, dot, suffix = name.rpartition(".")
        if not dot or f".{suffix}" not in STORE_SUFFIXES:
            notes.append(
                Diagnostic(
                    _loc(display),
                    "E003",
                    "ignored: not a store file",
                    severity="info",
                    expected="sites/<store-id>.yaml (or .yml)",
                )
            )
            continue
        by_stem.setdefault(stem, []).append(name)
    files: list[Path] = []
    for stem, found in by_stem.items():
        if len(found) > 1:
            both = " and ".join(str(folder / n) for n in sorted(found))
            notes.append(
                Diagnostic(
                    _loc(str(folder / sorted(found)[0])),
                    "E002",
                    f"store '{stem}' is defined twice: {both}",
                    expected="one file per store: delete or rename one of them",
                )
            )
            files.append(folder / f"{stem}.dup")
        else:
            files.append(folder / found[0])
    # Path order within one folder is name order: sorting names skips pathlib's
    # comparisons (a tenth of a warm load of 10,000 stores).
    files.sort(key=lambda p: (p.suffix != ".yaml", p.name))
    return files, notes


def _layers_of(
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


def _load_site(
    spath: Path,
    raw: bytes | None,
    *,
    root: Path | None,
    fleet_layer: Layer | None,
    groups: dict[str, Layer],
    catalog: Catalog,
    catalog_digest: str,
) -> tuple[LoadedSite | None, list[Diagnostic]]:
    display = str(spath)  # as _rel() gives it: spath is under root (or root is None)
    follow = root is None  # a file named on the command line; none inside a fleet
    doc = load_file(spath, display, follow) if raw is None else load_bytes(raw, display)
    if not isinstance(doc.data, dict):
        return None, [_doc_diag(doc, "a site file must be a mapping", "id: <store-id> ...")]
    site_layer = Layer(doc.data, doc.positions, (), doc.file)
    layers = _layers_of(site_layer, groups, fleet_layer)
    diags: list[Diagnostic] = []
    group = doc.data.get("group")
    if group is not None and not (isinstance(group, str) and group in groups):
        loc, shown = locate([site_layer], ("group",))
        known = ", ".join(sorted(groups)) or "none (no groups/ folder)"
        # A group that is not even a name is reported by the model; echo only names.
        if isinstance(group, str) and HOSTNAME_RE.fullmatch(group.replace("_", "-")):
            msg = f"unknown group '{group}'"
            diags.append(Diagnostic(loc, "E101", msg, path=shown, expected=f"one of: {known}"))
    merged: Any = {}
    for layer in reversed(layers):
        merged = deep_merge(merged, layer.data)
    # The id labels diagnostics before it is validated: never echo an arbitrary string.
    raw_id = doc.data.get("id")
    site_id = raw_id if isinstance(raw_id, str) and HOSTNAME_RE.fullmatch(raw_id) else spath.stem
    try:
        site = Site.model_validate(merged)
    except ValidationError as exc:
        diags.extend(validation_diagnostics(exc, merged, layers, Site, site_id))
        return None, diags
    if site.id != spath.stem and root is not None:
        loc, shown = locate(layers, ("id",))
        diags.append(
            Diagnostic(
                loc,
                "E101",
                f"site id '{site.id}' differs from its file name",
                path=shown,
                expected=f"id: {spath.stem}",
                site=site.id,
            )
        )
    for prob in check_site(site, catalog):
        loc, shown = locate(layers, prob.path, prefer_key=prob.at_key)
        diags.append(
            Diagnostic(loc, "E200", prob.message, path=shown, expected=prob.expected, site=site.id)
        )
    if any(d.severity == "error" for d in diags):
        return None, diags
    digest = hashlib.sha256(
        (json.dumps(merged, sort_keys=True) + catalog_digest).encode()
    ).hexdigest()
    return LoadedSite(site, doc.file, tuple(layers), digest), diags


def _check_fleet(fleet: Fleet, failed: set[str]) -> list[Diagnostic]:
    """Across stores: unique public names and addresses, remote proxy routes resolve.

    A store whose remote routes do not resolve is dropped from fleet.sites (the resolver
    needs every route target); dropping one can break another's routes, so repeat.
    """
    out = _check_unique(fleet)
    while True:
        broken = _check_routes(fleet, failed)
        if not broken:
            return out
        out.extend(broken)
        bad = {d.site for d in broken}
        failed |= bad
        fleet.sites = [ls for ls in fleet.sites if ls.id not in bad]


def _check_unique(fleet: Fleet) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen_fqdn: dict[str, str] = {}
    seen_ip: dict[str, str] = {}
    for ls in fleet.sites:
        for key, value, table in (
            ("fqdn", ls.facts.fqdn, seen_fqdn),
            ("public_ip", ls.facts.public_ip, seen_ip),
        ):
            if value is None:
                continue
            if value in table and table[value] != ls.id:
                loc, shown = ls.locate(("wan", key))
                out.append(
                    Diagnostic(
                        loc,
                        "E300",
                        f"wan.{key} is also used by site '{table[value]}'",
                        path=shown,
                        site=ls.id,
                    )
                )
            table.setdefault(value, ls.id)
    return out


def _check_routes(fleet: Fleet, failed: set[str]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    by_id = {ls.id: ls for ls in fleet.sites}
    for ls in fleet.sites:
        for i, j, target, service in ls.facts.routes:
            if service is None:
                continue
            path: YamlPath = ("integrations", i, "routes", j, "site")
            other = by_id.get(target)
            if other is None:
                loc, shown = ls.locate(path)
                msg = (
                    f"site '{target}' has errors, so this route cannot be resolved"
                    if target in failed
                    else f"site '{target}' is not in this fleet"
                )
                out.append(Diagnostic(loc, "E300", msg, path=shown, site=ls.id))
                continue
            if other.facts.fqdn is None and other.facts.public_ip is None:
                loc, shown = ls.locate(path)
                msg = f"site '{target}' has no public address (wan.fqdn or wan.public_ip)"
                out.append(Diagnostic(loc, "E300", msg, path=shown, site=ls.id))
                continue
            host, _, svc = service.partition("/")
            if (host, svc) not in other.facts.services:
                loc, shown = ls.locate((*path[:-1], "site_service"))
                out.append(
                    Diagnostic(
                        loc,
                        "E300",
                        f"site '{target}' has no service {service}",
                        path=shown,
                        site=ls.id,
                    )
                )
    return out


def layers_of(positions: Positions, data: Any, file: str) -> list[Layer]:
    return [Layer(data, positions, (), file)]


# ------------------------------------------------------------------------- the cache

CACHE_FORMAT = "posnet-site-cache-4"
CACHE_KEEP = 32  # fleets per cache folder; the least recently used go first
BUCKETS = 64  # sites are pickled in buckets: one change re-pickles 1/64 of the fleet
_OFF = ("", "0", "off", "none", "no")


@dataclass
class _Record:
    """What loading one site file gave, and its Plan once resolved."""

    sha: str  # of the file's bytes
    site: bytes  # the pickled Site, unpickled only to resolve; b"": it has errors
    facts: SiteFacts | None
    diags: list[Diagnostic]
    digest: str
    layer: bytes  # the site file's own data and positions, unpickled only to locate
    found: dict[tuple[YamlPath, bool], tuple[Any, str]]  # LoadedSite.locate() memo
    plan_key: str = ""
    plan: Plan | None = None
    lint: list[tuple[str, YamlPath, str]] | None = None  # site-rule findings for the plan


def to_record(raw: bytes, loaded: LoadedSite | None, diags: list[Diagnostic]) -> _Record:
    """What loading a site file gave, as the cache keeps it (and workers return it)."""
    sha = hashlib.sha256(raw).hexdigest()
    if loaded is None:
        return _Record(sha, b"", None, diags, "", b"", {})
    own = loaded.layers[0]
    layer = (
        own.data,
        [(p, loc.line, loc.col) for p, loc in own.positions.values.items()],
        [(p, loc.line, loc.col) for p, loc in own.positions.keys.items()],
    )
    site = _dumps(loaded.site)
    return _Record(sha, site, loaded.facts, diags, loaded.digest, _dumps(layer), loaded.found)


def from_record(
    rec: _Record, display: str, groups: dict[str, Layer], fleet_layer: Layer | None
) -> tuple[LoadedSite | None, list[Diagnostic]]:
    """The loaded site of a record: its model and layers decoded on first use."""
    if rec.facts is None:
        return None, rec.diags
    blob = rec.layer

    def restore() -> tuple[Layer, ...]:
        data, values, keys = pickle.loads(blob)  # noqa: S301 - see SiteCache.open()
        positions = Positions(
            {path: Location(display, line, col) for path, line, col in values},
            {path: Location(display, line, col) for path, line, col in keys},
        )
        return tuple(_layers_of(Layer(data, positions, (), display), groups, fleet_layer))

    site = LoadedSite(rec.site, display, restore, rec.digest, rec.found, rec.facts)
    return site, rec.diags


def cache_dir() -> Path | None:
    """POSNET_CACHE_DIR (`off` disables the cache), else the user's cache folder."""
    env = os.environ.get("POSNET_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env)
    try:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    except RuntimeError:  # no home folder
        return None
    return Path(base) / "posnet"


def _private(folder: Path) -> bool:
    """Only a folder of this user that nobody else can write: its pickles are trusted."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _context(root: Path, inputs: Sequence[Path]) -> str:
    """Everything besides the site file that a cached site depends on."""
    import pydantic
    import pydantic_core
    import ruamel.yaml

    from generator.build import generator_digest
    from generator.yamlload import fast_parser

    h = hashlib.sha256()
    parts = [CACHE_FORMAT, str(root), generator_digest(), sys.version, fast_parser()]
    parts += [pydantic.VERSION, pydantic_core.__version__, ruamel.yaml.__version__]
    for part in parts:
        h.update(part.encode() + b"\0")
    for p in inputs:
        h.update(p.name.encode() + b"\0" + read_file(p, str(p), follow=False) + b"\0")
    return h.hexdigest()


def _dumps(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _bucket(display: str) -> int:
    return int(hashlib.sha256(display.encode()).hexdigest()[:8], 16) % BUCKETS


class SiteCache:
    """Per-site results of earlier runs: loaded site, diagnostics, located paths, plan.

    A record is used only when the site file's bytes, fleet.yaml, every group file,
    posnet's own code and templates, and the parsing libraries are all unchanged (and the
    Plan only for the same merged input, route targets and fleet name), so a hit is
    exactly what loading again would give. Any unreadable cache is ignored.
    """

    def __init__(
        self, file: Path, context: str, index: dict[str, str], blobs: dict[int, bytes]
    ) -> None:
        self.file = file
        self.context = context
        self.index = index  # site file -> sha256 of its bytes, as cached
        self.blobs = blobs  # bucket -> pickled {site file: _Record}
        self.decoded: dict[int, dict[str, _Record]] = {}
        self.records: dict[str, _Record] = {}  # this run's sites
        self.found_size: dict[str, int] = {}
        self.dirty: set[int] = set()

    @classmethod
    def open(cls, root: Path, inputs: Sequence[Path]) -> SiteCache | None:
        folder = cache_dir()
        if folder is None or not _private(folder):
            return None
        try:
            context = _context(root, inputs)
        except (OSError, PosnetError):  # an unreadable input is reported by the load
            return None
        name = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32]
        file = folder / f"fleet-{name}.pickle"
        try:
            with open(file, "rb") as fh:
                doc = pickle.load(fh)  # noqa: S301 - our own file in a private folder
            if doc["format"] == CACHE_FORMAT and doc["context"] == context:
                return cls(file, context, dict(doc["index"]), dict(doc["blobs"]))
        except (OSError, pickle.PickleError, EOFError, AttributeError, KeyError, TypeError):
            pass
        return cls(file, context, {}, {})

    def _record(self, display: str) -> _Record | None:
        b = _bucket(display)
        if b not in self.decoded:
            try:
                self.decoded[b] = pickle.loads(self.blobs[b])  # noqa: S301 - see open()
            except (pickle.PickleError, EOFError, AttributeError, KeyError, TypeError):
                self.decoded[b] = {}
        return self.decoded[b].get(display)

    def site(
        self,
        display: str,
        raw: bytes | None,
        groups: dict[str, Layer],
        fleet_layer: Layer | None,
    ) -> tuple[LoadedSite | None, list[Diagnostic]] | None:
        if raw is None or self.index.get(display) != hashlib.sha256(raw).hexdigest():
            return None
        rec = self._record(display)
        if rec is None:
            return None
        self.records[display] = rec
        self.found_size[display] = len(rec.found)
        return from_record(rec, display, groups, fleet_layer)

    def remember(
        self, display: str, raw: bytes, loaded: LoadedSite | None, diags: list[Diagnostic]
    ) -> None:
        self.adopt(display, to_record(raw, loaded, diags))

    def adopt(self, display: str, rec: _Record) -> None:
        """Keep a record made already (by a loading worker) for this run's sites."""
        self.dirty.add(_bucket(display))
        self.records[display] = rec
        self.found_size[display] = len(rec.found)

    @staticmethod
    def plan_key(ls: LoadedSite, fleet_name: str) -> str:
        return hashlib.sha256(f"{ls.digest}\0{fleet_name}".encode()).hexdigest()

    def plan(self, ls: LoadedSite, fleet_name: str) -> Plan | None:
        rec = self.records.get(ls.file)
        if rec is None or rec.plan is None or rec.plan_key != self.plan_key(ls, fleet_name):
            return None
        return rec.plan

    def remember_plan(self, ls: LoadedSite, fleet_name: str, plan: Plan) -> None:
        rec = self.records.get(ls.file)
        if rec is not None:
            rec.plan_key, rec.plan, rec.lint = self.plan_key(ls, fleet_name), plan, None
            self.dirty.add(_bucket(ls.file))

    def lint(self, ls: LoadedSite) -> list[tuple[str, YamlPath, str]] | None:
        """Site-rule findings (rule id, path, message) of the Plan cached with them."""
        rec = self.records.get(ls.file)
        return None if rec is None else rec.lint

    def remember_lint(self, ls: LoadedSite, found: list[tuple[str, YamlPath, str]]) -> None:
        rec = self.records.get(ls.file)
        if rec is not None and rec.plan is not None:
            rec.lint = found
            self.dirty.add(_bucket(ls.file))

    def save(self, sites: Sequence[LoadedSite]) -> None:
        """Write this run's records (removed files drop out); never fail a command."""
        for ls in sites:
            rec = self.records.get(ls.file)
            if rec is not None and len(ls.found) != self.found_size.get(ls.file):
                rec.found = ls.found
                self.dirty.add(_bucket(ls.file))
        index = {d: rec.sha for d, rec in self.records.items()}
        self.dirty |= {_bucket(d) for d in set(self.index) - set(index)}
        if not self.dirty and index == self.index:
            return
        members: dict[int, dict[str, _Record]] = {}
        for d, rec in sorted(self.records.items()):
            members.setdefault(_bucket(d), {})[d] = rec
        blobs = {
            b: self.blobs[b] if b not in self.dirty and b in self.blobs else _dumps(recs)
            for b, recs in members.items()
        }
        doc = {"format": CACHE_FORMAT, "context": self.context, "index": index, "blobs": blobs}
        tmp = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(doc, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.file)
            _prune(self.file.parent)
        except OSError:
            tmp.unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    caches = []
    for p in folder.glob("fleet-*.pickle"):
        with suppress(OSError):
            caches.append((p.stat().st_mtime, p))
    for _, p in sorted(caches, reverse=True)[CACHE_KEEP:]:
        p.unlink(missing_ok=True)


__all__ = ["Fleet", "LoadedSite", "SiteFacts", "data_path", "format_path", "holds", "load_fleet"]
