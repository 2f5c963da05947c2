"""`posnet report`: a static, offline HTML overview of a fleet and its build tree.

An index of every store (patterns, partners, exposures, lint status; search and filters
in plain JavaScript) and one page per store (summary, network diagram, lint findings,
handover sheet, rendered files). No CDN, no inline script or style (a strict
Content-Security-Policy), no timestamp: the same fleet and tree give the same bytes.

The build tree is untrusted input: its manifest is read as plain data, and the files
it names only after a scan of the tree that refuses links and special files (as
`render --check` does), to tell which stores are rendered and current: same input,
every file as the manifest has it, no stray. Every page is made from the fleet's Plans
with the same functions that render the tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import Diagnostic, Location, PosnetError, few, safe_text
from generator.jsondata import parse_untrusted
from generator.outdir import OutDir, OutputError, OutputOverlap
from generator.plan import Plan

if TYPE_CHECKING:
    from generator.report.pages import IndexRow

ASSETS = Path(__file__).with_name("assets")


@dataclass
class StoreStatus:
    """What the report says about one store besides its Plan."""

    findings: list[Diagnostic] = field(default_factory=list)
    build: str = "missing"  # current | stale | missing
    files: list[tuple[str, str]] = field(default_factory=list)  # (path, sha256)
    vars_hash: str | None = None  # the manifest's hash of its host_vars file

    @property
    def lint(self) -> str:
        """Worst finding: error, warning, info or ok."""
        for level in ("error", "warning", "info"):
            if any(d.severity == level for d in self.findings):
                return level
        return "ok"


MANIFEST_LIMIT = 512 * 1024 * 1024


def _manifest_doc(build: Path) -> dict[str, Any]:
    """manifest.json as data, {} for anything unexpected. Only a regular file is read
    (a FIFO would block, a link could point anywhere)."""
    path = build / "manifest.json"
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MANIFEST_LIMIT:
            return {}
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            data = parse_untrusted(fh.read(MANIFEST_LIMIT + 1))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_manifest(build: Path) -> dict[str, Any]:
    """The manifest's stores; anything unexpected reads as "no store rendered"."""
    sites = _manifest_doc(build).get("sites")
    return sites if isinstance(sites, dict) else {}


def read_inventory_hashes(build: Path) -> dict[str, str]:
    """The manifest's inventory file -> sha256 (hosts.yml, each store's host_vars)."""
    found = _manifest_doc(build).get("inventory")
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}


def statuses(
    ids: Sequence[str], diags: list[Diagnostic], digests: Mapping[str, str], build: Path
) -> dict[str, StoreStatus]:
    """Each store's findings and what the manifest says of it: "current" here means
    listed for this input only, until confirmed() looks at its folder."""
    from generator.build import host_vars_file, site_key

    sites = read_manifest(build)
    inventory = read_inventory_hashes(build)
    out = {site_id: StoreStatus() for site_id in ids}
    for d in diags:
        if d.site in out:
            out[d.site].findings.append(d)
    for site_id, st in out.items():
        entry = sites.get(site_id)
        if not isinstance(entry, dict):
            continue
        want = site_key(digests[site_id])  # what render writes for this input and posnet
        files = entry.get("files")
        if isinstance(files, dict):
            st.files = sorted((str(k), str(v)) for k, v in files.items())
        st.vars_hash = inventory.get(host_vars_file(site_id))
        same = entry.get("input") == want and isinstance(files, dict)
        st.build = "current" if same else "stale"
    return out


def confirmed(
    build: Path, site_id: str, st: StoreStatus, on_disk: dict[str, set[str]] | None
) -> StoreStatus:
    """The status once the store's folder and host_vars are looked at: current only if
    the folder holds exactly the manifest's files and the host_vars file (what Ansible
    applies to the edge) is as the manifest has it, each with its hash."""
    if st.build == "current" and not (
        _as_listed(build, site_id, st.files, on_disk) and _vars_as_listed(build, site_id, st)
    ):
        return replace(st, build="stale")
    return st


def _vars_as_listed(build: Path, site_id: str, st: StoreStatus) -> bool:
    from generator.build import host_vars_file
    from generator.tree_guard import TreeError, differs

    if st.vars_hash is None:  # a manifest from before posnet hashed the inventory
        return False
    try:
        return differs(build / host_vars_file(site_id), st.vars_hash) is None
    except TreeError:  # a link or a FIFO
        return False


def _scan(build: Path) -> set[str] | None:
    """The tree's files, by a scan that refuses links and special files; None when the
    tree holds one (then no store is current)."""
    from generator.tree_guard import TreeError, scan_tree

    try:
        return set(scan_tree(build))
    except (TreeError, OSError):
        return None


def tree_notes(build: Path, ids: Sequence[str], listing: set[str] | None) -> list[str]:
    """What is wrong with the tree beyond any one store: the inventory's hosts.yml not
    as the manifest has it, inventory files and store folders the fleet does not
    render (what `render --check` calls stale or stray)."""
    from generator.build import HOSTS, host_vars_file
    from generator.tree_guard import TreeError, differs

    if listing is None:
        return ["the build tree holds a link or a special file: no store is current"]
    notes = []
    want = read_inventory_hashes(build).get(HOSTS)
    try:
        hosts_ok = want is not None and differs(build / HOSTS, want) is None
    except TreeError:
        hosts_ok = False
    if not hosts_ok:
        notes.append(f"{HOSTS} is not as the manifest has it")
    expected = {HOSTS, *(host_vars_file(i) for i in ids)}
    stray = sorted(r for r in listing if r.startswith("inventory/") and r not in expected)
    known = set(ids)
    foreign = sorted(
        {r.split("/")[1] for r in listing if r.startswith("sites/") and r.count("/") >= 2} - known
    )
    if stray:
        notes.append(f"{_count(stray, 'inventory file')} the fleet does not render: {few(stray)}")
    if foreign:
        notes.append(f"{_count(foreign, 'store folder')} of no store in the fleet: {few(foreign)}")
    return notes


def _count(items: Sequence[str], what: str) -> str:
    return f"{len(items)} {what}{'' if len(items) == 1 else 's'}"


def _store_files(listing: set[str] | None) -> dict[str, set[str]] | None:
    """Each store folder's files (relative to it), from the scan."""
    if listing is None:
        return None
    found: dict[str, set[str]] = {}
    for rel in listing:
        parts = rel.split("/", 2)
        if parts[0] == "sites" and len(parts) == 3:
            found.setdefault(parts[1], set()).add(parts[2])
    return found


def _as_listed(
    build: Path, site_id: str, files: list[tuple[str, str]], on_disk: dict[str, set[str]] | None
) -> bool:
    """The store's folder holds exactly the manifest's files, each with its hash. Only
    files the scan found are read, so a manifest naming `../x` reads nothing."""
    from generator.tree_guard import TreeError, differs

    if on_disk is None or on_disk.get(site_id, set()) != {rel for rel, _ in files}:
        return False
    try:
        return all(differs(build / "sites" / site_id / rel, sha) is None for rel, sha in files)
    except TreeError:  # swapped for a link or a FIFO since the scan
        return False


def fleet_of(build: Path, fleet: Path | None) -> Path:
    """--fleet, else BUILD's sibling fleet/ (posnet init's layout)."""
    if fleet is not None:
        return fleet
    sibling = build.resolve().parent / "fleet"
    if (sibling / "fleet.yaml").is_file():
        return sibling
    raise PosnetError(
        [
            Diagnostic(
                Location(str(build)),
                "E005",
                "no fleet/fleet.yaml next to this build tree",
                expected="--fleet PATH (the fleet the tree was rendered from)",
            )
        ]
    )


@dataclass(frozen=True)
class _Pages:
    """What the workers making the pages read (inherited by fork, never sent), and the
    output folder they write through (its stores/ descriptor opened before the fork)."""

    plans: Sequence[Plan]
    order: list[int]  # the stores by id
    status: dict[str, StoreStatus]
    build: Path
    on_disk: dict[str, set[str]] | None
    folder: OutDir


def _pages_range(job: _Pages, start: int, stop: int) -> list[IndexRow]:
    """Stores order[start:stop], in a worker that decodes their Plans, checks their
    folders, renders their handover sheets (markdown-it: most of a report's time, 3 ms
    a store) and writes their pages: only the index rows come back."""
    from generator.report.pages import index_row, store_page

    rows = []
    for k in range(start, stop):
        plan = job.plans[job.order[k]]
        st = confirmed(job.build, plan.site_id, job.status[plan.site_id], job.on_disk)
        job.folder.write(f"stores/{plan.site_id}.html", store_page(plan, st))
        rows.append(index_row(plan, st))
    return rows


def write_report(build: Path, fleet: Path, out: Path) -> list[Path]:
    """Analyse FLEET, compare with BUILD's manifest, write the report into OUT; the
    store pages are made and written by worker processes."""
    from generator.analyze import analyze
    from generator.plan_list import site_ids
    from generator.report.pages import index_page
    from generator.terminal import progress
    from generator.workers import shared_map

    if not build.is_dir():
        raise PosnetError([Diagnostic(Location(str(build)), "E002", "no such folder")])
    check_output(out, build, fleet)
    result = analyze(fleet)
    invalid = [
        d for d in result.diagnostics if d.severity == "error" and not d.code.startswith("PN")
    ]
    if invalid:  # a store that does not load has no Plan: never leave it out silently
        raise PosnetError(invalid)
    ids = site_ids(result.plans)
    order = sorted(range(len(ids)), key=ids.__getitem__)
    stores = [f"stores/{ids[i]}.html" for i in order]
    assets = {asset.name: asset.read_text() for asset in sorted(ASSETS.iterdir())}
    written = ["index.html", *stores, *assets]
    with OutDir(out, "posnet report", "pass a fresh folder with -o") as folder:
        for rel in ["", "stores"]:
            folder.check(rel, "folder")
        for rel in [*written, REPORT_MARK]:  # each refused or accepted before any write
            folder.check(rel)
        folder.folder("stores")  # made and opened here, so every worker writes through it
        listing = _scan(build)
        job = _Pages(
            result.plans,
            order,
            statuses(ids, result.diagnostics, result.digests, build),
            build,
            _store_files(listing),
            folder,
        )
        with progress(len(order), "report"):
            rows: list[IndexRow] = shared_map(_pages_range, job, len(order), 0)
        notes = tree_notes(build, ids, listing)
        folder.write("index.html", index_page(result.fleet.name, rows, notes))
        for name, text in assets.items():
            folder.write(name, text)
        folder.prune("stores", {rel[7:] for rel in stores}, ".html")
        folder.write(REPORT_MARK, "posnet report: this folder is rewritten by `posnet report`\n")
    return [out / rel for rel in written]


# A report leaves this file: its folder is posnet's to rewrite and prune.
REPORT_MARK = ".posnet-report"
REPORT_NAMES = ("index.html", "stores", *(p.name for p in ASSETS.iterdir()))


def check_output(out: Path, build: Path, fleet: Path) -> None:
    """Refuse an output folder that is, or is inside, the build tree or the fleet folder,
    or one holding them where the report writes (render refuses the same for its tree)."""
    from generator.fleet_layout import enclosing_fleet

    # a store's file: its whole fleet is off limits, as for render's -o
    spec = fleet if fleet.is_dir() else enclosing_fleet(fleet.resolve()) or fleet.parent
    marks = {"manifest.json": "a build tree", ".posnet-lock": "a build tree"}
    marks["fleet.yaml"] = "a fleet folder"
    for other, what in ((build, "the build tree"), (spec, "the fleet folder")):
        try:
            o, t = out.resolve(), other.resolve()
        except (OSError, RuntimeError):
            continue
        if o == t or t in o.parents or o in t.parents:
            raise OutputOverlap(
                f"-o {safe_text(str(out))}: the report would overlap {what} "
                f"{safe_text(str(other))} (its pages would be mixed with, or replace, its "
                "files); pick a folder outside it, e.g. a sibling `report/`"
            )
    for name, what in marks.items():
        if os.path.lexists(out / name):
            raise OutputOverlap(
                f"-o {safe_text(str(out))}: holds {name}, so it is {what}, not a report "
                "folder; pick a folder outside it, e.g. a sibling `report/`"
            )
    foreign = _not_a_report(out)
    if foreign:
        raise OutputError(
            f"-o {safe_text(str(out))}: holds {few(map(safe_text, foreign), 3)} that posnet "
            "did not write, which the report would replace or delete; pick a fresh folder"
        )


def _not_a_report(out: Path) -> list[str]:
    """What a report would replace or prune in a folder without REPORT_MARK (the file a
    report leaves): regular files at index.html, the assets and stores/*.html. A link
    or special file there is left to OutDir, which names it."""
    if os.path.lexists(out / REPORT_MARK):
        return []

    def regular(path: Path) -> bool:
        with suppress(OSError):
            return stat.S_ISREG(os.lstat(path).st_mode)
        return False

    found = [name for name in REPORT_NAMES if name != "stores" and regular(out / name)]
    with suppress(OSError), os.scandir(out / "stores") as it:
        pages = [e.name for e in it if e.name.endswith(".html")]
        found += sorted(f"stores/{n}" for n in pages if regular(out / "stores" / n))
    return found
