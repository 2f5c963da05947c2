"""Load a fleet folder (or one site file) into validated Sites, with located diagnostics.

All problems of a run are collected and reported together; nothing raises past here
except PosnetError carrying diagnostics.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from generator.catalog import BUILTIN, Catalog
from generator.errors import Diagnostic, Location, PosnetError, unique_sorted
from generator.snippet import remember_lines, remember_source
from generator.spec.cache import (
    Planner,
    SiteCache,
    Stat,
    _Record,
    from_record,
    now_ns,
    stat_of,
    to_record,
)
from generator.spec.checks import check_site
from generator.spec.diagnose import (
    data_path,
    defaults_diagnostics,
    problem_diagnostics,
    salvaged_problems,
    site_validation_diagnostics,
    validation_diagnostics,
)
from generator.spec.fleet import Fleet, FleetFile, GroupFile, LoadedSite, SiteFacts, site_layers
from generator.spec.fleet_checks import check_fleet
from generator.spec.locate import Layer, deep_merge, format_path, holds, locate, merged_input
from generator.spec.model import Site
from generator.spec.types import HOSTNAME_RE
from generator.yamlload import Document, Positions, load_bytes, load_file, read_file

if TYPE_CHECKING:
    from generator.spec.parallel_load import Loading, Outcome


def _doc_diag(doc: Document, message: str, expected: str) -> Diagnostic:
    loc = doc.positions.value(()) or doc.positions.nearest(())
    assert loc is not None
    if doc.data is None:
        message = "the file is empty; " + message
    return Diagnostic(loc, "E100", message, expected=expected)


SHARED_VALUES = 500  # values under one shared `defaults:` (fleet.yaml, a group file)


def _count_values(data: Any) -> int:
    if isinstance(data, dict):
        return sum(1 + _count_values(v) for v in data.values())
    if isinstance(data, list):
        return sum(1 + _count_values(v) for v in data)
    return 0


def _too_many_defaults(defaults: Any, doc: Document) -> Diagnostic | None:
    """Every store of a fleet or group merges and validates its shared defaults, so
    their size is charged once per store: 4 MiB of bad defaults in one group file would
    cost hours across thousands of stores. A store's own file has the whole YAML value
    budget; shared defaults have SHARED_VALUES."""
    count = _count_values(defaults)
    if count <= SHARED_VALUES:
        return None
    loc = doc.positions.key(("defaults",)) or doc.positions.nearest(("defaults",))
    assert loc is not None
    return Diagnostic(
        loc,
        "E100",
        f"defaults hold {count} values; every store they apply to merges and validates "
        "each of them",
        path="defaults",
        expected=f"at most {SHARED_VALUES} values under defaults (keep what only some "
        "stores need in their own files)",
    )


# Keys a store names in its own file only: as a shared default each would be shown
# (handover, inventory) or checked against the file name while never meaning anything.
_OWN_KEYS = {
    "group": (
        "a group cannot be a default: each store names its group in its own file",
        "group: <name> in the site files of the group's stores",
    ),
    "id": (
        "a store id cannot be a default: each store's id is its file name, written in its own file",
        "id: <file name> in each site file",
    ),
}


def _without_own_keys(
    defaults: dict[str, Any], doc: Document, diags: list[Diagnostic]
) -> dict[str, Any]:
    """Shared defaults less a `group` or an `id`, which are reported: a store's layers
    are chosen by the group its own file names, so a default group would be shown in
    the handover and the inventory while its settings never applied; a default id was
    silently overridden by every store's own (or, for a store that left it out, named
    a store other than its file)."""
    found = [key for key in _OWN_KEYS if key in defaults]
    for key in found:
        path = ("defaults", key)
        loc = doc.positions.key(path) or doc.positions.nearest(path)
        assert loc is not None
        message, expected = _OWN_KEYS[key]
        diags.append(Diagnostic(loc, "E100", message, path=f"defaults.{key}", expected=expected))
    return {k: v for k, v in defaults.items() if k not in found} if found else defaults


def _not_a_fleet_part(path: Path) -> None:
    """A fleet's own files given as a site file would only get "unknown key" errors:
    say what they are and what to pass instead."""
    folder = path.parent
    if path.name in ("fleet.yaml", "fleet.yml"):
        what, fleet = "the fleet's settings", folder
    elif folder.name == "groups" and (folder.parent / "fleet.yaml").is_file():
        what, fleet = "a group's defaults", folder.parent
    else:
        return
    raise PosnetError(
        [
            Diagnostic(
                _loc(str(path)),
                "E003",
                f"{path.name} holds {what}, not a store",
                expected=f"the fleet folder ({fleet}) or one of its sites/*.yaml",
            )
        ]
    )


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


def load_fleet(path: Path, cached: bool = False, jobs: int = 0) -> Fleet:
    """PATH is a fleet folder (fleet.yaml, groups/, sites/) or a single site file.

    With `cached`, sites whose file (and fleet, groups, posnet) did not change since an
    earlier run come from the user's cache instead of being parsed and validated again.
    `jobs`: worker processes for a cold load of many sites (0: one per core).
    """
    diags: list[Diagnostic] = []
    groups_problem: Diagnostic | None = None  # groups/ present but unusable
    if path.exists() and not path.is_dir():  # a site file (or a FIFO, a device: refused)
        _not_a_fleet_part(path)
        root = None
        fleet_doc = None
        site_files = [str(path)]
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
        sites_problem = _folder_problem(path, "sites")
        groups_problem = _folder_problem(path, "groups")
        diags.extend(d for d in (sites_problem, groups_problem) if d)
        site_files, notes = ([], []) if sites_problem else _site_files(path / "sites")
        diags.extend(notes)
        group_dir = None if groups_problem else path / "groups"
        if not site_files and sites_problem is None:
            diags.append(
                Diagnostic(
                    _loc(_rel(path / "sites", root)),
                    "E002",
                    "no site files in sites/",
                    expected="sites/<store-id>.yaml",
                )
            )
    else:
        raise PosnetError(
            [
                Diagnostic(
                    _loc(str(path)),
                    "E002",
                    "no such file or folder",
                    expected="a fleet folder (fleet.yaml, sites/*.yaml) or a site file",
                )
            ]
        )

    settings = FleetFile(fleet="fleet")
    fleet_layer: Layer | None = None
    settings_layer: Layer | None = None
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
        too_many = _too_many_defaults(settings.defaults, fleet_doc)
        if too_many is not None:
            raise PosnetError([too_many])
        shared = _without_own_keys(settings.defaults, fleet_doc, diags)
        fleet_layer = Layer(shared, fleet_doc.positions, ("defaults",), fleet_doc.file)
        diags.extend(defaults_diagnostics(fleet_layer))
        settings_layer = flayers[0]
    catalog, catalog_digest = _load_catalog(fleet_doc, fleet_data)
    fleet = Fleet(
        settings.fleet, root, catalog, settings, catalog_digest=catalog_digest, layer=settings_layer
    )

    groups, broken, gdiags = _load_groups(group_dir, root)
    if groups_problem is not None:
        broken = EVERY_GROUP  # its error is the folder's: no "unknown group" per store
    diags.extend(gdiags)

    failed: set[str] = {_stem(p) for p in site_files if _suffix(p) == ".dup"}
    fleet.checked = len({_stem(p) for p in site_files})
    cache_inputs = None
    if cached and root is not None and fleet_doc is not None:
        group_files = _group_files(group_dir) if group_dir and group_dir.is_dir() else []
        cache_inputs = [root / "fleet.yaml", *group_files]
    stores = [p for p in site_files if _suffix(p) != ".dup"]
    fleet.cache, inputs, hits = _open_sites(stores, root, cache_inputs, groups, fleet_layer)
    load_one = partial(
        _load_site,
        root=root,
        fleet_layer=fleet_layer,
        groups=groups,
        broken=broken,
        catalog=catalog,
        catalog_digest=catalog_digest,
    )
    # Sites neither cached nor few: loaded in worker processes (see parallel_load).
    from generator.spec.parallel_load import Loading, load_in_workers

    misses = [(Path(p), raw) for p, raw in inputs if hits[p] is None]
    planner = None
    if fleet.cache is not None:
        planner = Planner(catalog, fleet.name, tuple(settings.lint.disable))
    fresh: dict[str, Outcome] = {}
    loading = Loading()
    if root is not None:
        fresh, loading = load_in_workers(misses, load_one, groups, fleet_layer, planner, jobs)
    with loading:
        _gather(fleet, inputs, hits, fresh, load_one, diags, failed)
        diags.extend(check_fleet(fleet, failed))
        fleet.sites = _with_route_digests(fleet.sites)
        _routers_resolved(fleet, loading)
    fleet.diagnostics = unique_sorted(diags)
    return fleet


Hit = tuple[LoadedSite | None, list[Diagnostic]] | None


def _open_sites(
    files: Sequence[str],
    root: Path | None,
    cache_inputs: Sequence[Path] | None,
    groups: dict[str, Layer],
    fleet_layer: Layer | None,
) -> tuple[SiteCache | None, list[tuple[str, bytes | None]], dict[str, Hit]]:
    """The site cache (when `cache_inputs` are given), each site file with its bytes
    (None: cached, or unreadable: load_file says why) and its cached outcome. A file
    whose lstat() is the one the cache kept is neither read nor hashed (a tenth of a
    warm load of 10,000 stores): the cache is opened while the files are stat'ed, then
    only the others are read."""
    cache = None
    stats: dict[str, Stat | None] = {}
    with ThreadPoolExecutor(1) as opener:
        stamp = now_ns()  # before any stat: see SiteCache.known
        opening = None
        if cache_inputs is not None and root is not None:
            opening = opener.submit(SiteCache.open, root, cache_inputs)
            stats = {p: stat_of(p) for p in files}
        cache = opening.result() if opening is not None else None
    if cache is not None:
        cache.stamp = stamp
    inputs: list[tuple[str, bytes | None]] = []
    hits: dict[str, Hit] = {}
    for display in files:
        hit = None
        if cache is not None:
            sha = cache.known(display, stats[display])
            hit = cache.site(display, sha, groups, fleet_layer)
            lines = cache.known_lines(display, sha) if hit is not None and sha else None
            if lines is not None:
                remember_lines(display, lines)
        raw = None
        if hit is None:
            raw = _read(Path(display), follow=root is None)
            if raw is not None:
                remember_source(display, raw)
                if cache is not None:
                    hit = cache.site(display, hashlib.sha256(raw).hexdigest(), groups, fleet_layer)
        inputs.append((display, raw))
        hits[display] = hit
    return cache, inputs, hits


def _gather(
    fleet: Fleet,
    inputs: Sequence[tuple[str, bytes | None]],
    hits: Mapping[str, tuple[LoadedSite | None, list[Diagnostic]] | None],
    fresh: Mapping[str, Outcome],
    load_one: Callable[[Path, bytes | None], tuple[LoadedSite | None, list[Diagnostic]]],
    diags: list[Diagnostic],
    failed: set[str],
) -> None:
    """Each site file's outcome in file order (cached, from a worker, or loaded here),
    its diagnostics reported and its record kept for the cache."""
    for display, raw in inputs:
        hit = hits[display]
        got = fresh.get(display)
        try:
            if isinstance(got, PosnetError):
                raise got
            loaded, sdiags = hit or (got[0] if got else None) or load_one(Path(display), raw)
        except PosnetError as exc:
            diags.extend(exc.diagnostics)
            failed.add(_stem(display))
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
            failed.add(_stem(display))


def _routers_resolved(fleet: Fleet, loading: Loading) -> None:
    """Cache the Plans of the stores that route to others, resolved by the workers that
    loaded them now that every store's facts (and each one's final digest) are known;
    pipeline.plans() resolves whatever is left (none of its targets loaded, a warm
    store)."""
    if fleet.cache is None:
        return
    needed = {target for ls in fleet.sites for _, _, target, _ in ls.facts.routes}
    if not needed:
        return
    targets = {ls.id: ls.facts for ls in fleet.sites if ls.id in needed}
    by_file = {ls.file: ls for ls in fleet.sites}
    for display, made in loading.resolve_routers(targets):
        ls = by_file.get(display)
        if ls is not None:
            fleet.cache.remember_plan(ls, fleet.name, made)


class _EveryGroup(frozenset[str]):
    """The broken groups when groups/ itself cannot be used (a file, a link, unreadable):
    every group a store names, so its stores get no follow-up 'unknown group' or
    'missing key' errors; the one error is the folder's."""

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str)


EVERY_GROUP = _EveryGroup()


def _load_groups(
    group_dir: Path | None, root: Path | None
) -> tuple[dict[str, Layer], frozenset[str], list[Diagnostic]]:
    """Group name -> its defaults layer, the groups whose file has errors, and those
    errors. A broken group stays known (with what defaults it has), so its stores get
    no follow-up "unknown group": its error is reported once, at its own file."""
    groups: dict[str, Layer] = {}
    broken: set[str] = set()
    diags: list[Diagnostic] = []
    if group_dir is None or not group_dir.is_dir():
        return groups, frozenset(), diags
    first: dict[str, Path] = {}
    for gpath in _group_files(group_dir):
        if gpath.stem in first:  # coast.yaml and coast.yml: neither may silently win
            both = f"{_rel(first[gpath.stem], root)} and {_rel(gpath, root)}"
            diags.append(
                Diagnostic(
                    _loc(_rel(gpath, root)),
                    "E002",
                    f"group '{gpath.stem}' is defined twice: {both}",
                    expected="one file per group: delete or rename one of them",
                )
            )
            broken.add(gpath.stem)
            continue
        first[gpath.stem] = gpath
        try:
            gdoc = load_file(gpath, _rel(gpath, root), follow=False)
        except PosnetError as exc:
            diags.extend(exc.diagnostics)
            broken.add(gpath.stem)
            groups[gpath.stem] = Layer({}, Positions(), ("defaults",), _rel(gpath, root))
            continue
        glayers = [Layer(gdoc.data, gdoc.positions, (), gdoc.file)]
        if not isinstance(gdoc.data, dict):
            diags.append(_doc_diag(gdoc, "a group file must be a mapping", "group: <name>"))
            broken.add(gpath.stem)
            groups[gpath.stem] = Layer({}, gdoc.positions, ("defaults",), gdoc.file)
            continue
        try:
            g = GroupFile.model_validate(gdoc.data)
        except ValidationError as exc:
            diags.extend(validation_diagnostics(exc, gdoc.data, glayers, GroupFile))
            broken.add(gpath.stem)
            defaults = gdoc.data.get("defaults")
            defaults = defaults if isinstance(defaults, dict) else {}
            too_many = _too_many_defaults(defaults, gdoc)
            if too_many is not None:
                diags.append(too_many)
                defaults = {}
            groups[gpath.stem] = Layer(defaults, gdoc.positions, ("defaults",), gdoc.file)
            continue
        too_many = _too_many_defaults(g.defaults, gdoc)
        if too_many is not None:
            diags.append(too_many)
            broken.add(gpath.stem)
            groups[gpath.stem] = Layer({}, gdoc.positions, ("defaults",), gdoc.file)
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
        shared = _without_own_keys(g.defaults, gdoc, diags)
        groups[g.group] = Layer(shared, gdoc.positions, ("defaults",), gdoc.file)
        diags.extend(defaults_diagnostics(groups[g.group]))
    return groups, frozenset(broken), diags


def _with_route_digests(sites: list[LoadedSite]) -> list[LoadedSite]:
    """A central proxy renders other stores' addresses and ports: fold their input into
    its digest, or changing one of them would leave the proxy's files stale."""
    own = {ls.id: ls.digest for ls in sites}
    out = []
    for ls in sites:
        routes = ls.facts.routes
        if not routes:  # most stores: nothing to fold, no set nor string to build
            out.append(ls)
            continue
        targets = sorted({target for _, _, target, _ in routes})
        mix = ls.digest + "".join(f"|{t}={own.get(t, '')}" for t in targets)
        out.append(ls.with_digest(hashlib.sha256(mix.encode()).hexdigest()))
    return out


def _loc(file: str) -> Location:
    return Location(file)


def _read(spath: Path, follow: bool) -> bytes | None:
    """The file's bytes; None lets load_file report why it cannot be read."""
    try:
        return read_file(spath, str(spath), follow)
    except PosnetError:
        return None


STORE_SUFFIXES = (".yaml", ".yml")


def ignored_name(name: str) -> bool:
    """Hidden files and what editors leave next to a file (`.#x.yaml`, `x.yaml~`,
    `#x.yaml#`, `.x.yaml.swp`): never a store, often a stale copy of one."""
    return name.startswith((".", "#")) or name.endswith(("~", "#", ".swp", ".swo", ".bak"))


def _folder_problem(root: Path, name: str) -> Diagnostic | None:
    """sites/ or groups/ that exists but cannot be read as a folder: said as such, not
    as "no site files" or "unknown group", which would send the reader looking elsewhere."""
    folder = root / name
    try:
        if not os.path.lexists(folder):
            return None
        if os.path.islink(folder):
            what = (
                "is a symbolic link: posnet follows no link inside a fleet folder (its "
                "target is not reviewed with the repository)"
            )
            return _folder_diag(root, name, what)
        with os.scandir(folder):
            return None
    except NotADirectoryError:
        what = "is not a folder"
    except OSError as exc:
        what = f"cannot be read: {exc.strerror or type(exc).__name__}"
    return _folder_diag(root, name, what)


def _folder_diag(root: Path, name: str, what: str) -> Diagnostic:
    folder = root / name
    return Diagnostic(
        _loc(_rel(folder, root)),
        "E002",
        f"{name}/ {what}",
        expected=f"a folder {name}/ holding <{'store-id' if name == 'sites' else 'group'}>"
        ".yaml files",
    )


def _group_files(folder: Path) -> list[Path]:
    """groups/*.yaml and *.yml (as for stores), without hidden and editor files (an
    editor's `.#coast.yaml`); .yaml first for a name written both ways."""
    found = [p for s in STORE_SUFFIXES for p in folder.glob(f"*{s}") if not ignored_name(p.name)]
    return sorted(found, key=lambda p: (p.stem, p.suffix != ".yaml"))


def utf8_name(name: str) -> bool:
    """Whether a name read from disk was UTF-8 (else it holds PEP 383 surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def not_utf8(display: str) -> Diagnostic:
    """A store file whose name is not UTF-8: refused (also by `diff`), never loaded."""
    return Diagnostic(
        _loc(display),
        "E002",
        "the file name is not valid UTF-8 (shown with \\x escapes): the store id is "
        "its name, which every output and the build tree must hold",
        expected="sites/<store-id>.yaml: rename the file",
    )


def _suffix(display: str) -> str:
    """Path(display).suffix, without building a Path: store paths stay strings on the
    per-store path of a warm load (pathlib was a tenth of a one-store run)."""
    name = display.rpartition("/")[2]
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def _stem(display: str) -> str:
    """Path(display).stem, as _suffix() gives its suffix."""
    name = display.rpartition("/")[2]
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def _site_files(folder: Path) -> tuple[list[str], list[Diagnostic]]:
    """Store files in sites/: *.yaml and *.yml, in name order (.yaml first), as the
    str(Path) of each (a string: see _suffix).

    Anything else is ignored with a note, and a store id written twice (`x.yaml` and
    `x.yml`) is an error naming both: neither may silently win. A `.dup` path stands
    for such an id (it is reported here, and not loaded)."""
    notes: list[Diagnostic] = []
    try:
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it)
    except OSError:
        return [], notes
    prefix = os.path.join(str(folder), "")  # + a directory entry's name: str(folder / name)
    by_stem: dict[str, list[str]] = {}
    for name in names:
        if ignored_name(name):
            notes.append(
                Diagnostic(
                    _loc(prefix + name),
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
                    _loc(prefix + name),
                    "E003",
                    "ignored: not a store file",
                    severity="info",
                    expected="sites/<store-id>.yaml (or .yml)",
                )
            )
            continue
        if not utf8_name(name):
            notes.append(not_utf8(prefix + name))
            continue
        by_stem.setdefault(stem, []).append(name)
    files: list[str] = []
    for stem, found in by_stem.items():
        if len(found) > 1:
            both = " and ".join(prefix + n for n in sorted(found))
            notes.append(
                Diagnostic(
                    _loc(prefix + sorted(found)[0]),
                    "E002",
                    f"store '{stem}' is defined twice: {both}",
                    expected="one file per store: delete or rename one of them",
                )
            )
            files.append(f"{stem}.dup")
        else:
            files.append(found[0])
    # Path order within one folder is name order (.yaml first): every name has a stem.
    files.sort(key=lambda name: (not name.endswith(".yaml"), name))
    return [prefix + name for name in files], notes


def _load_site(
    spath: Path,
    raw: bytes | None,
    *,
    root: Path | None,
    fleet_layer: Layer | None,
    groups: dict[str, Layer],
    catalog: Catalog,
    catalog_digest: str,
    broken: frozenset[str] = frozenset(),
) -> tuple[LoadedSite | None, list[Diagnostic]]:
    display = str(spath)  # as _rel() gives it: spath is under root (or root is None)
    follow = root is None  # a file named on the command line; none inside a fleet
    doc = load_file(spath, display, follow) if raw is None else load_bytes(raw, display)
    if not isinstance(doc.data, dict):
        return None, [_doc_diag(doc, "a site file must be a mapping", "id: <store-id> ...")]
    site_layer = Layer(doc.data, doc.positions, (), doc.file)
    layers = site_layers(site_layer, groups, fleet_layer)
    diags: list[Diagnostic] = []
    group = doc.data.get("group")
    # a group that is not a name (a list, a mapping) is the model's type error, never a
    # key to look up: it is unhashable
    in_broken = isinstance(group, str) and group in broken
    if group is not None and not in_broken and not (isinstance(group, str) and group in groups):
        loc, shown = locate([site_layer], ("group",))
        known = ", ".join(sorted(groups)) or "none (no groups/ folder)"
        # A group that is not even a name is reported by the model; echo only names.
        if isinstance(group, str) and HOSTNAME_RE.fullmatch(group.replace("_", "-")):
            msg = f"unknown group '{group}'"
            diags.append(Diagnostic(loc, "E101", msg, path=shown, expected=f"one of: {known}"))
    merged = merged_input(layers)
    # The id labels diagnostics before it is validated: never echo an arbitrary string.
    raw_id = doc.data.get("id")
    site_id = raw_id if isinstance(raw_id, str) and HOSTNAME_RE.fullmatch(raw_id) else spath.stem
    try:
        site = Site.model_validate(merged)
    except ValidationError as exc:
        diags.extend(site_validation_diagnostics(exc, merged, layers, site_id, in_broken))
        diags.extend(salvaged_problems(merged, layers, catalog, site_id))
        return None, diags
    if site.id != spath.stem and root is not None:
        loc, shown = locate(layers, ("id",))
        if site.id == spath.stem.lower():
            # ids are DNS labels, read in lower case: this file name can match no id
            message = f"site id '{site.id}' is lower case, its file name {spath.name} is not"
            expected = f"the file renamed to {site.id}{spath.suffix}"
        else:
            message = f"site id '{site.id}' differs from its file name"
            expected = f"id: {spath.stem}"
        diags.append(Diagnostic(loc, "E101", message, path=shown, expected=expected, site=site.id))
    diags.extend(problem_diagnostics(check_site(site, catalog), layers, site.id))
    if any(d.severity == "error" for d in diags) or in_broken:
        return None, diags  # a broken group's error is reported at its own file
    digest = hashlib.sha256(
        (json.dumps(merged, sort_keys=True) + catalog_digest).encode()
    ).hexdigest()
    return LoadedSite(site, doc.file, tuple(layers), digest), diags


# Re-exported: what other modules have always imported from here.
__all__ = [
    "Fleet",
    "FleetFile",
    "GroupFile",
    "LoadedSite",
    "SiteCache",
    "SiteFacts",
    "_Record",
    "data_path",
    "format_path",
    "from_record",
    "holds",
    "load_fleet",
    "to_record",
]
