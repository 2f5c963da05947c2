"""The site cache: per-site results of earlier runs (loaded site, diagnostics, located
paths, plan, site-rule findings) and the last fleet-wide results made from them (see
SiteCache.recall), kept in the user's cache folder."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from generator.catalog import Catalog
from generator.errors import Diagnostic, PosnetError
from generator.fleet_view import FleetView, packed
from generator.spec.fleet import LoadedSite, SiteFacts, site_layers
from generator.spec.locate import Layer
from generator.user_cache import private_folder
from generator.workers import SMALL, later
from generator.yamlload import Positions, YamlPath, read_file

if TYPE_CHECKING:
    from generator.spec.model import Site

CACHE_FORMAT = "posnet-site-cache-11"
CACHE_KEEP = 32  # fleets per cache folder; the least recently used go first
BUCKETS = 64  # sites are pickled in buckets: one change re-pickles 1/64 of the fleet
# Each bucket is a file of its own, named by its SHA-256 and listed with it in the main
# file: a one-store run writes one bucket and a small main file, not the whole fleet's
# 90 MB (0.2 s of CPU at 10,000 stores), and unpickling the main file copies no bucket.
BUCKET_SUFFIX = ".bucket"

# What lstat() says of a site file: size, mtime_ns, ctime_ns, inode, device, mode. Any
# write, rename over it, chmod or `touch -d` changes one of them (ctime cannot be set).
Stat = tuple[int, int, int, int, int, int]
# A stat is trusted for the next run only when the file's mtime and ctime are this much
# older than the moment before it was taken (git's "racy clean" rule): on a file system
# with coarse timestamps (FAT: 2 s, ext3 and some NFS: 1 s; the kernel's clock for them
# lags time_ns() by a few ms) a write just after the stat could leave all of it as it was.
RACY_NS = 2_000_000_000


@dataclass
class _Record:
    """What loading one site file gave, and its Plan once resolved."""

    sha: str  # of the file's bytes
    # the pickled Site, unpickled only to resolve; b"": it has errors (facts None), or
    # the record holds its final Plan and LoadedSite.site validates the layers again
    site: bytes
    facts: SiteFacts | None
    diags: list[Diagnostic]
    digest: str
    layer: bytes  # the site file's own data and positions, unpickled only to locate
    found: dict[tuple[YamlPath, bool], tuple[Any, str]]  # LoadedSite.locate() memo
    plan_key: str = ""
    plan: bytes = b""  # the pickled Plan, decoded only when a command reads it
    # the pickled FleetView: what fleet rules and hosts.yml read of the Plan, decoded only
    # when a fleet-wide result is not in the memo (decoding 10,000 took 0.13 s)
    view: bytes | None = None
    lint: list[tuple[str, YamlPath, str]] | None = None  # site-rule findings for the plan


# A store's Plan as the site cache keeps it: pickled, its view pickled, its site-rule
# findings.
Finding = tuple[str, YamlPath, str]
PlanRecord = tuple[bytes, bytes, list[Finding]]


def plan_record(
    site: Site,
    catalog: Catalog,
    targets: Mapping[str, SiteFacts],
    fleet_name: str,
    lint_off: Sequence[str],
) -> PlanRecord:
    """Resolve a store where its model is at hand (a loading or resolving worker) and
    give its Plan as the cache keeps it: the main process never decodes it."""
    from generator.lint import site_findings
    from generator.resolve import resolve

    plan = resolve(site, catalog, targets, fleet_name)
    return _dumps(plan), packed(FleetView.of(plan)), site_findings(plan, lint_off)


@dataclass(frozen=True)
class Planner:
    """Fills a record's Plan, view and site-rule findings where the site was loaded: a
    loading worker holds the model the main process would decode again, and ships the
    Plan pickled, never to be decoded by a validate. At once only for a store that
    routes to no other store: its Plan needs no other site and its digest is final
    (load_fleet folds route targets into the others'). Such a record keeps no pickled
    model (a seventh of a cold load's worker time); the others keep theirs (a later run
    re-resolves them when a target changes), and their worker resolves them in a second
    step (`resolve`, parallel_load) once every store's facts are known."""

    catalog: Catalog
    fleet_name: str
    lint_off: tuple[str, ...]

    def __call__(self, ls: LoadedSite, rec: _Record) -> None:
        if ls.facts.routes:
            rec.site = _dumps(ls.site)
            return
        made = self.resolve(ls, {})
        keep_plan(rec, SiteCache.plan_key(ls, self.fleet_name), *made)
        for _, path, _ in made[2]:  # placed here, where the layers are at hand
            ls.locate(path)

    def resolve(self, ls: LoadedSite, targets: Mapping[str, SiteFacts]) -> PlanRecord:
        return plan_record(ls.site, self.catalog, targets, self.fleet_name, self.lint_off)


def to_record(
    raw: bytes, loaded: LoadedSite | None, diags: list[Diagnostic], model: bool = True
) -> _Record:
    """What loading a site file gave, as the cache keeps it (and workers return it);
    `model=False` leaves the pickled model to a Planner."""
    sha = hashlib.sha256(raw).hexdigest()
    if loaded is None:
        return _Record(sha, b"", None, diags, "", b"", {})
    own = loaded.layers[0]
    layer = (own.data, own.positions.values, own.positions.keys)
    site = _dumps(loaded.site) if model else b""
    return _Record(sha, site, loaded.facts, diags, loaded.digest, _dumps(layer), loaded.found)


def keep_plan(rec: _Record, key: str, plan: bytes, view: bytes, found: list[Finding]) -> None:
    """Keep a store's Plan in its record, as plan_record() gives it."""
    rec.plan_key, rec.plan, rec.view, rec.lint = key, plan, view, found


def from_record(
    rec: _Record, display: str, groups: dict[str, Layer], fleet_layer: Layer | None
) -> tuple[LoadedSite | None, list[Diagnostic]]:
    """The loaded site of a record: its model and layers decoded on first use."""
    if rec.facts is None:
        return None, rec.diags
    blob = rec.layer

    def restore() -> tuple[Layer, ...]:
        data, values, keys = pickle.loads(blob)  # noqa: S301 - see SiteCache.open()
        positions = Positions(display, values, keys)
        return tuple(site_layers(Layer(data, positions, (), display), groups, fleet_layer))

    site = LoadedSite(rec.site, display, restore, rec.digest, rec.found, rec.facts)
    return site, rec.diags


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
        h.update(os.fsencode(part) + b"\0")  # a folder name need not be UTF-8
    for p in inputs:
        h.update(os.fsencode(p.name) + b"\0" + read_file(p, str(p), follow=False) + b"\0")
    return h.hexdigest()


def _dumps(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _unpickle(blob: bytes | memoryview) -> object:
    """A pickle of this cache, or None: unpickling damaged bytes raises nearly anything
    (ValueError, UnicodeDecodeError, ImportError, IndexError, MemoryError...)."""
    try:
        return pickle.loads(blob)  # noqa: S301 - our own file in a private folder
    except Exception:  # any damage means "no cache", never a crash
        return None


def _read(file: Path) -> object:
    """The cache file's document, or None when it is absent, truncated or altered: it
    starts with the SHA-256 of the rest, so damaged bytes are never unpickled."""
    try:
        with open(file, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    view = memoryview(raw)  # slices of a view copy nothing: the file can be 100 MB
    digest, payload = view[:32], view[32:]
    if len(digest) < 32 or hashlib.sha256(payload).digest() != digest:
        return None
    return _unpickle(payload)


def _bucket_file(main: Path, b: int, digest: str) -> Path:
    """Where bucket B with these bytes is kept: named by its digest, so a file once
    written never changes, and a reader holding an older main file finds its own."""
    return main.with_name(f"{main.stem}.{b:02d}-{digest[:32]}{BUCKET_SUFFIX}")


def _read_buckets(main: Path, digests: dict[int, str]) -> dict[int, bytes]:
    """Each listed bucket's bytes whose SHA-256 is the one the main file gives; one
    missing, truncated or altered is left out (its stores load again)."""
    blobs = {}
    for b, digest in digests.items():
        try:
            with open(_bucket_file(main, b, digest), "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        if hashlib.sha256(raw).hexdigest() == digest:
            blobs[b] = raw
    return blobs


def _write_private(file: Path, data: Callable[[BinaryIO], object]) -> None:
    """FILE written whole or not at all: a private temporary file renamed over it."""
    tmp = file.with_name(f"{file.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            data(fh)
        os.replace(tmp, file)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


class _Hashing:
    """A file that hashes what is written to it: the cache is pickled straight to disk
    (building the pickle in memory first held the whole fleet twice more)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self.sha.update(data)
        return self.fh.write(data)


def _table(doc: object, name: str, entry: Callable[[Any], bool]) -> dict[str, Any]:
    """The cache document's table NAME (file or memo name -> entry) when every entry
    has its shape, else none: a damaged table is dropped whole, never trusted."""
    table = doc.get(name) if isinstance(doc, dict) else None
    if not isinstance(table, dict):
        return {}
    ok = all(isinstance(k, str) and isinstance(v, tuple) and entry(v) for k, v in table.items())
    return table if ok else {}


def _digest_entry(b: object, digest: object) -> bool:  # bucket -> SHA-256 of its file
    hexed = isinstance(digest, str) and _HEX(digest) is not None  # a file name's part
    return type(b) is int and 0 <= b < BUCKETS and hexed


_HEX = re.compile("[0-9a-f]{64}").fullmatch


def _memo_entry(entry: tuple[Any, ...]) -> bool:  # (key, pickled result)
    return len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], bytes)


def _stat_entry(entry: tuple[Any, ...]) -> bool:  # (Stat, SHA-256)
    if len(entry) != 2 or not isinstance(entry[1], str) or not isinstance(entry[0], tuple):
        return False
    return len(entry[0]) == 6 and all(type(v) is int for v in entry[0])


def _lines_entry(entry: tuple[Any, ...]) -> bool:  # (SHA-256, {line: text})
    if len(entry) != 2 or not isinstance(entry[0], str) or not isinstance(entry[1], dict):
        return False
    return all(type(k) is int and isinstance(v, str) for k, v in entry[1].items())


def stat_of(file: str) -> Stat | None:
    """The stat a site file is known by (None: lstat failed, the loader says why)."""
    try:
        st = os.lstat(file)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev, st.st_mode)


def now_ns() -> int:
    """The clock stats are judged against (a function: tests move it)."""
    return time.time_ns()


@cache
def _bucket(display: str) -> int:
    return int(hashlib.sha256(os.fsencode(display)).hexdigest()[:8], 16) % BUCKETS


class SiteCache:
    """Per-site results of earlier runs: loaded site, diagnostics, located paths, plan.

    A record is used only when the site file's bytes, fleet.yaml, every group file,
    posnet's own code and templates, and the parsing libraries are all unchanged (and the
    Plan only for the same merged input, route targets and fleet name), so a hit is
    exactly what loading again would give. Any unreadable cache is ignored.

    A site file whose lstat() is the one kept with its SHA-256 by an earlier run (and
    was not racy then: see RACY_NS) is not read nor hashed again (`known`); the source
    lines its diagnostics pointed at are kept for its snippets (`keep_lines`).
    """

    def __init__(
        self,
        file: Path,
        context: str,
        index: dict[str, str],
        blobs: dict[int, bytes],
        memo: dict[str, tuple[str, bytes]] | None = None,
        stats: dict[str, tuple[Stat, str]] | None = None,
        lines: dict[str, tuple[str, dict[int, str]]] | None = None,
        digests: dict[int, str] | None = None,
    ) -> None:
        self.file = file
        self.context = context
        self.index = index  # site file -> sha256 of its bytes, as cached
        self.blobs = blobs  # bucket -> pickled {site file: _Record}
        self.digests = digests or {}  # bucket -> SHA-256 of its file, as read
        self.memo = memo or {}  # name -> (key, pickled result): see recall()
        self.memo_changed = False
        self.decoded: dict[int, dict[str, _Record]] = {}
        self.records: dict[str, _Record] = {}  # this run's sites
        self.found_size: dict[str, int] = {}
        self.dirty: set[int] = set()
        self.stats = stats or {}  # site file -> its trusted stat and the SHA-256 it had
        self.seen: dict[str, Stat] = {}  # this run's trusted stats
        self.stamp = now_ns()  # taken before any site file is looked at
        self.lines = lines or {}  # site file -> (SHA-256, {line: text}) under its diagnostics

    @classmethod
    def open(cls, root: Path, inputs: Sequence[Path]) -> SiteCache | None:
        folder = private_folder()
        if folder is None:
            return None
        try:
            context = _context(root, inputs)
        except (OSError, PosnetError):  # an unreadable input is reported by the load
            return None
        name = hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:32]
        file = folder / f"fleet-{name}.pickle"
        doc = _read(file)
        if (
            isinstance(doc, dict)
            and doc.get("format") == CACHE_FORMAT
            and doc.get("context") == context
            and isinstance(index := doc.get("index"), dict)
            and isinstance(digests := doc.get("buckets"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in index.items())
            and all(_digest_entry(k, v) for k, v in digests.items())
        ):
            blobs = _read_buckets(file, digests)
            memo = _table(doc, "memo", _memo_entry)
            stats = _table(doc, "stats", _stat_entry)
            lines = _table(doc, "lines", _lines_entry)
            read = {b: digests[b] for b in blobs}
            return cls(file, context, index, blobs, memo, stats, lines, read)
        return cls(file, context, {}, {})

    def _record(self, display: str) -> _Record | None:
        b = _bucket(display)
        if b not in self.decoded:
            recs = _unpickle(self.blobs.get(b, b""))
            ok = isinstance(recs, dict) and all(isinstance(r, _Record) for r in recs.values())
            self.decoded[b] = recs if isinstance(recs, dict) and ok else {}  # else: damaged
        return self.decoded[b].get(display)

    def known(self, display: str, st: Stat | None) -> str | None:
        """The SHA-256 of the site file's bytes when its stat says it is unchanged since
        an earlier run kept it (None: read and hash it). `st` was taken after
        self.stamp, and is kept for the next run when it is not racy."""
        if st is None:
            return None
        if max(st[1], st[2]) < self.stamp - RACY_NS:
            self.seen[display] = st
        kept = self.stats.get(display)
        return kept[1] if kept is not None and kept[0] == st else None

    def site(
        self,
        display: str,
        sha: str | None,
        groups: dict[str, Layer],
        fleet_layer: Layer | None,
    ) -> tuple[LoadedSite | None, list[Diagnostic]] | None:
        """The cached outcome of a site file whose bytes have SHA-256 `sha`, if any."""
        if sha is None or self.index.get(display) != sha:
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

    def plan(self, ls: LoadedSite, fleet_name: str) -> tuple[bytes, bytes] | None:
        """The store's Plan and its fleet view, both pickled, when cached for this input."""
        rec = self.records.get(ls.file)
        if rec is None or rec.view is None or rec.plan_key != self.plan_key(ls, fleet_name):
            return None
        return rec.plan, rec.view

    def remember_plan(self, ls: LoadedSite, fleet_name: str, made: PlanRecord) -> None:
        rec = self.records.get(ls.file)
        if rec is not None:
            keep_plan(rec, self.plan_key(ls, fleet_name), *made)
            self.dirty.add(_bucket(ls.file))

    def lint(self, ls: LoadedSite) -> list[tuple[str, YamlPath, str]] | None:
        """Site-rule findings (rule id, path, message) of the Plan cached with them."""
        rec = self.records.get(ls.file)
        return None if rec is None else rec.lint

    def remember_lint(self, ls: LoadedSite, found: list[tuple[str, YamlPath, str]]) -> None:
        rec = self.records.get(ls.file)
        if rec is not None and rec.view is not None:
            rec.lint = found
            self.dirty.add(_bucket(ls.file))

    def recall(self, name: str, key: str) -> object:
        """The fleet-wide result kept as NAME for KEY, else None. KEY is a digest of
        everything the result follows from besides posnet itself (which the cache's
        context holds): the same key, the same result, so a warm run that changed no
        store's view neither decodes 10,000 views nor runs the fleet rules again. One
        result per name: a fleet keeps only its latest."""
        entry = self.memo.get(name)
        return _unpickle(entry[1]) if entry is not None and entry[0] == key else None

    def keep(self, name: str, key: str, value: object) -> None:
        self.memo[name] = (key, _dumps(value))
        self.memo_changed = True

    def known_lines(self, display: str, sha: str) -> dict[int, str] | None:
        """Source lines of a site file with these bytes, as the last run kept them."""
        entry = self.lines.get(display)
        return entry[1] if entry is not None and entry[0] == sha else None

    def keep_lines(self, diags: Sequence[Diagnostic]) -> None:
        """Keep the source lines under this run's diagnostics in site files, so that the
        next run's snippets need not read the files its stats found unchanged."""
        from generator.snippet import source_line

        records = self.records
        wanted: dict[str, set[int]] = {}
        for d in diags:
            loc = d.location
            if loc.line and loc.file in records:
                wanted.setdefault(loc.file, set()).add(loc.line)
        sources: dict[str, list[str] | None] = {}
        lines = {}
        for display, numbers in wanted.items():
            kept = self.lines.get(display)
            if kept is not None and kept[0] == records[display].sha and kept[1].keys() == numbers:
                lines[display] = kept  # the same lines of the same bytes: most files
                continue
            found = {}
            for n in sorted(numbers):
                text = source_line(display, n, sources)
                if text is not None:
                    found[n] = text
            lines[display] = (self.records[display].sha, found)
        if lines != self.lines:
            self.lines = lines
            self.memo_changed = True

    def save(self, sites: Sequence[LoadedSite]) -> None:
        """Write this run's records (removed files drop out); never fail a command. Many
        changed buckets are pickled and written in a forked child (workers.later)."""
        for ls in sites:
            rec = self.records.get(ls.file)
            if rec is not None and len(ls.found) != self.found_size.get(ls.file):
                rec.found = ls.found
                self.dirty.add(_bucket(ls.file))
        index = {d: rec.sha for d, rec in self.records.items()}
        self.dirty |= {_bucket(d) for d in set(self.index) - set(index)}
        stats = {d: (st, rec.sha) for d, st in self.seen.items() if (rec := self.records.get(d))}
        unchanged = index == self.index and stats == self.stats
        if unchanged and not self.dirty and not self.memo_changed:
            return
        self.stats = stats
        # Only the changed buckets are pickled again; the others keep their files.
        members: dict[int, dict[str, _Record]] = {b: {} for b in self.dirty}
        for d in sorted(self.records):
            recs = members.get(_bucket(d))
            if recs is not None:
                recs[d] = self.records[d]
        big = sum(map(len, members.values())) >= SMALL
        later(partial(self._write, index, members), big=big)

    def _write(self, index: dict[str, str], members: dict[int, dict[str, _Record]]) -> None:
        """The changed buckets' files, then the main file naming every bucket's (so a
        reader never meets a main file whose buckets are not written yet)."""
        digests = {b: d for b, d in self.digests.items() if b not in self.dirty}
        doc = {
            "format": CACHE_FORMAT,
            "context": self.context,
            "index": index,
            "buckets": digests,
            "memo": self.memo,
            "stats": self.stats,
            "lines": self.lines,
        }
        try:
            for b, recs in sorted(members.items()):
                if recs:  # a bucket left empty is dropped
                    digests[b] = _write_bucket(self.file, b, _dumps(recs))
            _write_private(self.file, partial(_dump_sealed, doc))
        except OSError:
            return
        _drop_buckets(self.file, digests)
        _prune(self.file.parent)


def _write_bucket(main: Path, b: int, blob: bytes) -> str:
    """Write bucket B's pickle (even when a file of that name exists: it may be
    damaged) and give its SHA-256."""
    digest = hashlib.sha256(blob).hexdigest()
    _write_private(_bucket_file(main, b, digest), lambda fh: fh.write(blob))
    return digest


def _dump_sealed(doc: object, fh: BinaryIO) -> None:
    """The main file: the SHA-256 of the pickle, then the pickle (see _read)."""
    fh.write(bytes(32))  # the digest's place, filled in once it is known
    out = _Hashing(fh)
    pickle.dump(doc, out, protocol=pickle.HIGHEST_PROTOCOL)
    fh.seek(0)
    fh.write(out.sha.digest())


def _drop_buckets(main: Path, digests: Mapping[int, str]) -> None:
    """Remove this fleet's bucket files that its main file no longer names (a reader
    still holding the older main file then loads those stores again: slower, never
    wrong)."""
    keep = {_bucket_file(main, b, d).name for b, d in digests.items()}
    for p in main.parent.glob(f"{main.stem}.*{BUCKET_SUFFIX}"):
        if p.name not in keep:
            with suppress(OSError):
                p.unlink()


STALE_TMP = 600  # seconds: a cache write takes about one; older ones were killed midway


def _prune(folder: Path) -> None:
    """Keep the CACHE_KEEP most recent caches; drop what a killed write left behind."""
    now = time.time()
    for p in folder.glob("fleet-*.tmp"):
        with suppress(OSError):
            if now - p.stat().st_mtime > STALE_TMP:
                p.unlink()
    caches = []
    for p in folder.glob("fleet-*.pickle"):
        with suppress(OSError):
            caches.append((p.stat().st_mtime, p))
    ordered = [p for _, p in sorted(caches, reverse=True)]
    for p in ordered[CACHE_KEEP:]:
        p.unlink(missing_ok=True)
    dropped = {p.stem for p in ordered[CACHE_KEEP:]}
    kept = {p.stem for p in ordered[:CACHE_KEEP]}
    for p in folder.glob(f"fleet-*{BUCKET_SUFFIX}"):
        fleet = p.name.split(".")[0]
        with suppress(OSError):
            # a fleet's first buckets are written before its main file: wait for that
            if fleet in dropped or (fleet not in kept and now - p.stat().st_mtime > STALE_TMP):
                p.unlink()
