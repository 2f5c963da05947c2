"""`render --check` without rendering what the manifest vouches for.

A store whose input key (its merged spec and posnet's own code) equals the one in the
manifest is checked by content hash: every file the manifest lists must be on disk
with that hash. Every other store is rendered and compared byte for byte, inside the
worker that rendered it (no file text travels back). Each worker also emits and
compares its stores' host_vars; the manifest is rebuilt from the input keys and the
file hashes, and compared whole, so an entry for a removed store, a wrong key or a
wrong hash of a re-rendered store shows it stale.

The limit: a manifest entry with the current input key is trusted to list what the
store renders. A file edited together with its hash in the manifest (a deliberate,
consistent forgery) passes; `render --check --full` renders every store and catches it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import build, yamlemit
from generator.inventory import host_vars, inventory
from generator.plan import Plan
from generator.tree_guard import TreeError, read_tree_file, valid_manifest
from generator.workers import SMALL, default_jobs, shared_map

# (stale, missing, the files' hashes when rendered here (None: the manifest's held),
# the hash of the store's host_vars)
_StoreCheck = tuple[list[str], list[str], dict[str, str] | None, str]


@dataclass(frozen=True)
class _Context:
    root: str
    plans: Sequence[Plan]
    trusted: Sequence[Mapping[str, str] | None]  # manifest file hashes, key matching


def _disk(path: str) -> bytes | None:
    try:
        return read_tree_file(path)
    except OSError:  # unreadable: as good as missing (TreeError stops the check)
        return None


def _compare(path: str, rel: str, want: bytes, stale: list[str], missing: list[str]) -> None:
    raw = _disk(path)
    if raw is None:
        missing.append(rel)
    elif raw != want:
        stale.append(rel)


def _check_stores(ctx: _Context, start: int, stop: int) -> list[_StoreCheck]:
    """Each store's files (by hash, or rendered) and its host_vars, against the disk."""
    out: list[_StoreCheck] = []
    for i in range(start, stop):
        plan, trusted = ctx.plans[i], ctx.trusted[i]
        prefix = f"sites/{plan.site_id}/"
        stale: list[str] = []
        missing: list[str] = []
        hashes: dict[str, str] | None = None
        if trusted is not None:
            for rel, digest in trusted.items():
                raw = _disk(os.path.join(ctx.root, prefix + rel))
                if raw is None:
                    missing.append(prefix + rel)
                elif hashlib.sha256(raw).hexdigest() != digest:
                    stale.append(prefix + rel)
        else:
            files = build.render_plan(plan)
            hashes = {rel: build.sha256(text) for rel, text in files.items()}
            for rel, text in files.items():
                path = os.path.join(ctx.root, prefix + rel)
                _compare(path, prefix + rel, text.encode(), stale, missing)
        rel = build.host_vars_file(plan)
        text = yamlemit.dumps(host_vars(plan), build.HEADER)
        _compare(os.path.join(ctx.root, rel), rel, text.encode(), stale, missing)
        out.append((stale, missing, hashes, build.sha256(text)))
    return out


def _manifest_sites(out: Path, fleet: str) -> dict[str, Any]:
    """The manifest's stores, or none when it is absent, damaged or of another fleet
    (then every store is rendered, and the manifest reported stale)."""
    path = out / build.MANIFEST
    raw = read_tree_file(path)
    if raw is None:
        return {}
    try:
        doc = valid_manifest(path, raw)
    except TreeError:
        return {}
    return dict(doc["sites"]) if doc["fleet"] == fleet else {}


def check_fast(
    out: Path,
    fleet: str,
    plans: Sequence[Plan],
    digests: Mapping[str, str],
    jobs: int,
    listing: set[str],
) -> build.CheckResult:
    """The tree against the spec; see the module's docstring for what it trusts."""
    old = _manifest_sites(out, fleet)
    keys = [build.site_key(digests[p.site_id]) for p in plans]
    trusted: list[Mapping[str, str] | None] = []
    for plan, key in zip(plans, keys, strict=True):
        entry = old.get(plan.site_id)
        trusted.append(entry["files"] if entry is not None and entry["input"] == key else None)
    ctx = _Context(os.fspath(out), plans, trusted)
    # hosts.yml needs every Plan: emitted in a forked process while the workers check.
    hosts = build.Forked(
        lambda: yamlemit.dumps(inventory(plans), build.HEADER),
        fork=len(plans) >= SMALL and default_jobs(jobs) > 1,
    )
    try:
        done: list[_StoreCheck] = shared_map(_check_stores, ctx, len(plans), jobs)
        hosts_text = hosts.result()
    finally:
        hosts.close()
    res = build.CheckResult()
    expected: set[str] = {build.HOSTS, ".gitignore", build.MANIFEST}
    sites: dict[str, dict[str, object]] = {}
    inventory_hashes = {build.HOSTS: build.sha256(hosts_text)}
    for plan, key, held, (stale, missing, hashes, vars_hash) in zip(
        plans, keys, trusted, done, strict=True
    ):
        inventory_hashes[build.host_vars_file(plan)] = vars_hash
        res.stale.extend(stale)
        res.missing.extend(missing)
        files = hashes if hashes is not None else held
        assert files is not None
        expected.update(f"sites/{plan.site_id}/{rel}" for rel in files)
        expected.add(build.host_vars_file(plan))
        sites[plan.site_id] = {"input": key, "files": dict(files)}
    fleet_level = {
        build.HOSTS: hosts_text,
        ".gitignore": build.GITIGNORE,
        build.MANIFEST: build.manifest_text(fleet, sites, inventory_hashes),
    }
    for rel, text in fleet_level.items():
        _compare(os.path.join(out, rel), rel, text.encode(), res.stale, res.missing)
    res.stale.sort()
    res.missing.sort()
    res.stray = sorted(build.listed(out, listing) - expected)
    return res
