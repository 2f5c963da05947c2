"""`render --check` without rendering what the manifest vouches for.

A store whose input key (its merged spec and posnet's own code) equals the one in the
manifest is checked by content hash: every file the manifest lists, and its host_vars
file, must be on disk with the manifest's hash. Every other store is rendered and
compared byte for byte, inside the worker that rendered it (no file text travels
back), and its host_vars emitted and compared. hosts.yml is checked by its hash only
when every store is vouched for and the manifest lists exactly the same stores (it
follows from their Plans alone); else it is emitted. The manifest is rebuilt from the
input keys and the hashes, and compared whole, so an entry for a removed store, a
wrong key or a wrong hash of a re-rendered store shows it stale.

The limit: a manifest entry with the current input key is trusted to list what the
store renders. A file edited together with its hash in the manifest (a deliberate,
consistent forgery) passes; `render --check --full` renders every store and catches it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import build, yamlemit
from generator.inventory import host_vars, inventory
from generator.plan import Plan
from generator.plan_list import site_ids
from generator.tree_guard import MANIFEST, TreeError, differs, read_tree_file, valid_manifest
from generator.workers import SMALL, Forked, default_jobs, shared_map

# (stale, missing, the files' hashes when rendered here (None: the manifest's held),
# the hash of the store's host_vars)
_StoreCheck = tuple[list[str], list[str], dict[str, str] | None, str]


@dataclass(frozen=True)
class _Context:
    root: str
    plans: Sequence[Plan]  # decoded only for a store rendered here (plan_list.Plans)
    ids: Sequence[str]
    trusted: Sequence[Mapping[str, str] | None]  # manifest file hashes, key matching
    vars_hashes: Sequence[str | None]  # the manifest's host_vars hash, key matching


def _compare(path: str, rel: str, want: bytes | str, stale: list[str], missing: list[str]) -> None:
    """The file at `path` against `want`: its bytes, or (a str) their SHA-256 hex."""
    how = differs(path, want)
    if how is not None:
        (missing if how == "missing" else stale).append(rel)


def _check_stores(ctx: _Context, start: int, stop: int) -> list[_StoreCheck]:
    """Each store's files (by hash, or rendered) and its host_vars, against the disk."""
    out: list[_StoreCheck] = []
    for i in range(start, stop):
        site_id, trusted = ctx.ids[i], ctx.trusted[i]
        prefix = f"sites/{site_id}/"
        stale: list[str] = []
        missing: list[str] = []
        hashes: dict[str, str] | None = None
        if trusted is not None:
            for rel, digest in trusted.items():
                path = os.path.join(ctx.root, prefix + rel)
                _compare(path, prefix + rel, digest, stale, missing)
        else:
            files = build.render_plan(ctx.plans[i])
            hashes = {rel: build.sha256(text) for rel, text in files.items()}
            for rel, text in files.items():
                path = os.path.join(ctx.root, prefix + rel)
                _compare(path, prefix + rel, text.encode(), stale, missing)
        rel = build.host_vars_file(site_id)
        vars_hash = ctx.vars_hashes[i]
        if vars_hash is not None:  # emitting host_vars costs twice reading and hashing
            _compare(os.path.join(ctx.root, rel), rel, vars_hash, stale, missing)
        else:
            text = yamlemit.dumps(host_vars(ctx.plans[i]), build.HEADER)
            _compare(os.path.join(ctx.root, rel), rel, text.encode(), stale, missing)
            vars_hash = build.sha256(text)
        out.append((stale, missing, hashes, vars_hash))
    return out


def _manifest(out: Path, fleet: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The manifest's stores and inventory hashes, or none when it is absent, damaged or
    of another fleet (then every store is rendered, and the manifest reported stale)."""
    path = out / MANIFEST
    raw = read_tree_file(path)
    if raw is None:
        return {}, {}
    try:
        doc = valid_manifest(path, raw)
    except TreeError:
        return {}, {}
    if doc["fleet"] != fleet:
        return {}, {}
    return dict(doc["sites"]), dict(doc.get("inventory", {}))


def check_fast(
    out: Path,
    fleet: str,
    plans: Sequence[Plan],
    digests: Mapping[str, str],
    jobs: int,
    listing: set[str],
) -> build.CheckResult:
    """The tree against the spec; see the module's docstring for what it trusts."""
    old, old_inventory = _manifest(out, fleet)
    ids = site_ids(plans)
    keys = [build.site_key(digests[site_id]) for site_id in ids]
    trusted: list[Mapping[str, str] | None] = []
    vars_hashes: list[str | None] = []
    for site_id, key in zip(ids, keys, strict=True):
        entry = old.get(site_id)
        files = entry["files"] if entry is not None and entry["input"] == key else None
        trusted.append(files)
        vouched = old_inventory.get(build.host_vars_file(site_id)) if files is not None else None
        vars_hashes.append(vouched)
    ctx = _Context(os.fspath(out), plans, ids, trusted, vars_hashes)
    same_stores = set(old) == set(ids)
    vouched_hosts = old_inventory.get(build.HOSTS)
    if not (same_stores and all(h is not None for h in vars_hashes)):
        vouched_hosts = None  # a store added, removed or changed: emit hosts.yml
    # hosts.yml needs every Plan: emitted in a forked process while the workers check.
    hosts = None
    if vouched_hosts is None:
        hosts = Forked(
            lambda: yamlemit.dumps(inventory(plans), build.HEADER),
            fork=len(plans) >= SMALL and default_jobs(jobs) > 1,
        )
    try:
        done: list[_StoreCheck] = shared_map(_check_stores, ctx, len(plans), jobs)
        hosts_text = hosts.result() if hosts is not None else None
    finally:
        if hosts is not None:
            hosts.close()
    # each fleet-level file against its text, or (hosts.yml, vouched for) its hash
    fleet_level: dict[str, bytes | str] = {".gitignore": build.GITIGNORE.encode()}
    if hosts_text is not None:
        fleet_level[build.HOSTS] = hosts_text.encode()
        vouched_hosts = build.sha256(hosts_text)
    else:
        assert vouched_hosts is not None
        fleet_level[build.HOSTS] = vouched_hosts
    res = build.CheckResult()
    expected: set[str] = {build.HOSTS, ".gitignore", MANIFEST}
    sites: dict[str, dict[str, object]] = {}
    inventory_hashes = {build.HOSTS: vouched_hosts}
    for site_id, key, held, (stale, missing, hashes, vars_hash) in zip(
        ids, keys, trusted, done, strict=True
    ):
        inventory_hashes[build.host_vars_file(site_id)] = vars_hash
        res.stale.extend(stale)
        res.missing.extend(missing)
        files = hashes if hashes is not None else held
        assert files is not None
        expected.update(f"sites/{site_id}/{rel}" for rel in files)
        expected.add(build.host_vars_file(site_id))
        sites[site_id] = {"input": key, "files": dict(files)}
    fleet_level[MANIFEST] = build.manifest_text(fleet, sites, inventory_hashes).encode()
    for rel, want in fleet_level.items():
        _compare(os.path.join(out, rel), rel, want, res.stale, res.missing)
    res.stale.sort()
    res.missing.sort()
    res.stray = sorted(build.listed(out, listing) - expected)
    return res
