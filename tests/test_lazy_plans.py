"""Plans kept pickled in the site cache (generator/plan_list.py) and the fleet views
beside them (generator/fleet_view.py): what the README's speed section promises.

- A loading worker fills a store's Plan, view and site-rule findings; they equal what
  the main process makes, and a fleet gives the same diagnostics with the cache on or off.
- A warm validate decodes no Plan; a render after one store changed decodes only that
  store's.
- A view is never stale: a changed store's view follows its Plan (hosts.yml and the
  fleet rules see the change while every other store's view comes from the cache).
- The fleet rules' findings and hosts.yml are kept for the views they follow from: an
  edit that changes no view decodes none, and each edit that changes one gives the
  findings of an uncached run; a damaged memo is made again.
- A record holding its store's final Plan keeps no pickled model; a run that needs the
  model (a route to that store changed) validates it again, equal to a fresh load's.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import build, lint, pipeline, workers
from generator.analyze import analyze
from generator.fleet_view import FleetView
from generator.plan_list import Plans
from generator.resolve import resolve
from generator.spec import parallel_load
from generator.spec.cache import SiteCache
from generator.spec.load import load_fleet
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import fleet_bench


def _fleet(root: Path, stores: int, seed: int = 11) -> Path:
    fleet_bench.make_fleet(root, stores, seed=seed)
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def _routed_to(fleet: Path) -> set[str]:
    """Stores some central proxy routes to: changing one changes the proxy's Plan too."""
    loaded = load_fleet(fleet)
    return {target for ls in loaded.sites for _, _, target, _ in ls.facts.routes}


def test_workers_fill_plans_views_and_findings_as_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = _fleet(tmp_path / "fleet", 230)
    monkeypatch.setattr(parallel_load, "default_jobs", lambda jobs: 2)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    loaded = load_fleet(fleet, cached=True)
    assert loaded.cache is not None
    # A store that routes to others is resolved by its worker too, in a second step,
    # once every store's facts are known; its Plan is kept for its final digest.
    targets = {ls.id: ls.facts for ls in loaded.sites}
    filled = routers = 0
    for ls in loaded.sites:
        rec = loaded.cache.records[ls.file]
        routers += bool(ls.facts.routes)
        filled += 1
        assert loaded.cache.plan(ls, loaded.name) is not None  # key of the final digest
        plan = pickle.loads(rec.plan)
        assert plan == resolve(ls.site, loaded.catalog, targets, loaded.name)
        assert rec.view is not None and pickle.loads(rec.view) == FleetView.of(plan)
        assert rec.lint == lint.site_findings(plan, loaded.settings.lint.disable)
    assert filled > 100 and 10 < routers < filled
    cached = analyze(fleet)  # the workers' records, the route stores resolved after them
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    plain = analyze(fleet)
    assert [d.as_dict() for d in cached.diagnostics] == [d.as_dict() for d in plain.diagnostics]
    assert any(d.code.startswith("PN2") for d in plain.diagnostics)  # fleet rules ran
    assert list(cached.plans) == list(plain.plans)


def test_records_with_a_final_plan_keep_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = _fleet(tmp_path / "fleet", 40)
    monkeypatch.setattr(parallel_load, "default_jobs", lambda jobs: 2)
    monkeypatch.setattr(parallel_load, "SMALL", 2)  # 40 stores loaded by workers
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    analyze(fleet)
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    fresh = {ls.id: ls.site for ls in load_fleet(fleet).sites}
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    warm = load_fleet(fleet, cached=True)
    assert warm.cache is not None
    routers = [ls for ls in warm.sites if ls.facts.routes]
    assert routers and len(routers) < len(warm.sites)
    for ls in warm.sites:
        rec = warm.cache.records[ls.file]
        assert (rec.site != b"") == bool(ls.facts.routes), ls.id  # routers keep theirs
        assert ls.site == fresh[ls.id]  # decoded, or validated again from the layers
    # a router's target changes: the router is resolved again, reading the models of
    # its other targets, which its cache records no longer hold
    router = routers[0]
    target = router.facts.routes[0][2]
    _edit(fleet / "sites" / f"{target}.yaml", "name: ", "name: Moved ")
    again = analyze(fleet)
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    plain = analyze(fleet)
    i = again.plans.ids.index(router.id)
    assert again.plans[i] == plain.plans[plain.plans.ids.index(router.id)]
    assert [d.as_dict() for d in again.diagnostics] == [d.as_dict() for d in plain.diagnostics]


def test_warm_validate_decodes_no_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = _fleet(tmp_path / "fleet", 40)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    cold = analyze(fleet)
    warm = analyze(fleet)
    assert isinstance(warm.plans, Plans) and len(warm.plans) == 40
    assert warm.plans.decoded() == 0
    assert [d.as_dict() for d in warm.diagnostics] == [d.as_dict() for d in cold.diagnostics]
    assert list(warm.plans) == list(cold.plans)  # and decoded they are the same Plans
    assert warm.plans.decoded() == 40


def test_one_changed_store_decodes_only_its_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = _fleet(tmp_path / "fleet", 40)
    out = tmp_path / "build"
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    first = analyze(fleet)
    build.render_tree(out, first.fleet.name, first.plans, first.digests, jobs=1)
    quiet = sorted(set(first.plans.ids) - _routed_to(fleet))[0]
    _edit(fleet / "sites" / f"{quiet}.yaml", "name: ", "name: Renamed ")
    again = analyze(fleet)
    assert isinstance(again.plans, Plans)
    change = build.render_tree(out, again.fleet.name, again.plans, again.digests, jobs=1)
    assert change.rendered_sites == [quiet]
    assert again.plans.decoded() == 1  # the fresh Plan of the changed store, no other
    # a display name is in no view: the fleet rules' findings and hosts.yml are kept
    assert again.plans.views_decoded() == 0
    assert any("Renamed" in f.read_text() for f in (out / "sites" / quiet).rglob("*.md"))
    check = build.check_tree(out, again.fleet.name, again.plans, again.digests, jobs=1)
    assert check.ok and again.plans.decoded() == 1


def _bucket_files(cache: Path) -> dict[str, tuple[int, int]]:
    """Each bucket file of the cache folder with its inode and mtime."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.glob("*.bucket")}


def test_one_changed_store_rewrites_only_its_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-store run writes that store's bucket file and the main file, leaves the
    other buckets' files as they were, and removes the bucket file it replaced; the
    run after it is warm and sees the edit (and an edit back gives the first result)."""
    fleet = _fleet(tmp_path / "fleet", 60)
    cache = tmp_path / "cache"
    monkeypatch.setenv("POSNET_CACHE_DIR", str(cache))
    first = analyze(fleet)
    before = _bucket_files(cache)
    quiet = sorted(set(first.plans.ids) - _routed_to(fleet))[0]
    site = fleet / "sites" / f"{quiet}.yaml"
    text = site.read_text()
    _edit(site, "name: ", "name: Renamed ")
    analyze(fleet)
    after = _bucket_files(cache)
    assert len(set(before) - set(after)) == 1 and len(set(after) - set(before)) == 1
    assert {n: before[n] for n in set(before) & set(after)} == {
        n: after[n] for n in set(before) & set(after)
    }
    warm = analyze(fleet)
    assert warm.fleet.cache is not None and len(warm.fleet.cache.records) == 60
    assert not warm.fleet.cache.dirty  # every store a hit
    assert any("Renamed" in (ls.site.name or "") for ls in warm.fleet.sites if ls.id == quiet)
    site.write_text(text)
    back = analyze(fleet)
    assert back.diagnostics == first.diagnostics
    assert back.digests == first.digests


def test_dropped_fleets_take_their_buckets_with_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CACHE_KEEP limit removes a dropped fleet's bucket files with its main file,
    and a bucket file no main file names is removed once older than STALE_TMP (never a
    fresh one: a first write puts its buckets down before its main file)."""
    from generator.spec import cache as site_cache

    monkeypatch.setattr(site_cache, "CACHE_KEEP", 1)
    folder = tmp_path / "cache"
    monkeypatch.setenv("POSNET_CACHE_DIR", str(folder))
    hour_ago = time.time() - 3600
    orphan = folder / f"fleet-{'1' * 32}.07-{'0' * 32}.bucket"
    fresh = folder / f"fleet-{'2' * 32}.07-{'0' * 32}.bucket"
    analyze(_fleet(tmp_path / "a", 10))
    (old_main,) = folder.glob("fleet-*.pickle")
    os.utime(old_main, (hour_ago, hour_ago))
    old_buckets = list(folder.glob(f"{old_main.stem}.*.bucket"))
    assert old_buckets
    for f in (orphan, fresh):
        f.write_bytes(b"")
    os.utime(orphan, (hour_ago, hour_ago))
    analyze(_fleet(tmp_path / "b", 10))
    assert not old_main.exists() and not any(p.exists() for p in old_buckets)
    assert not orphan.exists() and fresh.exists()
    (main,) = folder.glob("fleet-*.pickle")
    assert list(folder.glob(f"{main.stem}.*.bucket"))


def _members(out: Path, group: str) -> set[str]:
    doc = yaml.safe_load((out / build.HOSTS).read_text())
    return set((doc["all"]["children"].get(group) or {}).get("hosts") or {})


def test_a_changed_store_changes_its_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hosts.yml and the fleet rules read views: a store's new group reaches hosts.yml,
    and a store that now shares another's AuthSecret is found with it (PN202), while
    the other store's view comes from the cache."""
    fleet = _fleet(tmp_path / "fleet", 40)
    out = tmp_path / "build"
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    first = analyze(fleet)
    build.render_tree(out, first.fleet.name, first.plans, first.digests, jobs=1)
    users = sorted(v.site_id for v in (first.plans.view(i) for i in range(40)) if v.auth_secrets)
    a, b = users[0], users[1]
    site_b = fleet / "sites" / f"{b}.yaml"
    group = next(line for line in site_b.read_text().splitlines() if line.startswith("group:"))
    other = next(g for g in ("coast", "east", "north", "south") if g not in group)
    assert f"{b}-edge" not in _members(out, f"fleet_group_{other}")
    _edit(site_b, group, f"group: {other}")
    _edit(
        site_b,
        f"vault:{b.replace('-', '_')}_auth_secret",
        f"vault:{a.replace('-', '_')}_auth_secret",
    )
    made: list[str] = []
    real_plan_record = pipeline.plan_record

    def counted(site: Any, *args: Any) -> Any:
        made.append(site.id)
        return real_plan_record(site, *args)

    monkeypatch.setattr(pipeline, "plan_record", counted)
    again = analyze(fleet)
    shared = sorted(d.site for d in again.diagnostics if d.code == "PN202")
    assert shared == sorted([a, b])
    assert made == [b]  # b's Plan made anew: a's view (and all others) cached
    assert again.plans.decoded() == 0  # b's comes back pickled from the resolving worker
    # back to b's own secret: the fleet renders, and b sits in its new group in hosts.yml
    _edit(
        site_b,
        f"vault:{a.replace('-', '_')}_auth_secret",
        f"vault:{b.replace('-', '_')}_auth_secret",
    )
    last = analyze(fleet)
    assert not last.failed()
    build.render_tree(out, last.fleet.name, last.plans, last.digests, jobs=1)
    assert f"{b}-edge" in _members(out, f"fleet_group_{other}")


def test_views_made_by_loading_workers_key_the_next_run_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The views of a cold load are pickled by its workers, a changed store's by the
    next run: their bytes must be equal for equal views, or the first edit after a
    cold run would recompute every fleet-wide result (it did: 0.35 s at 10,000)."""
    fleet = _fleet(tmp_path / "fleet", 60)
    out = tmp_path / "build"
    monkeypatch.setattr(parallel_load, "default_jobs", lambda jobs: 2)
    monkeypatch.setattr(parallel_load, "SMALL", 2)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    first = analyze(fleet)
    build.render_tree(out, first.fleet.name, first.plans, first.digests, jobs=1)
    for name in sorted(first.plans.ids)[:12]:  # routed to or not: every kind of store
        _edit(fleet / "sites" / f"{name}.yaml", "name: ", "name: Renamed ")
    recomputed: list[int] = []
    real = build.inventory
    monkeypatch.setattr(build, "inventory", lambda plans: recomputed.append(1) or real(plans))
    again = analyze(fleet)
    build.render_tree(out, again.fleet.name, again.plans, again.digests, jobs=1)
    assert isinstance(again.plans, Plans)
    assert again.plans.views_decoded() == 0 and recomputed == []
    assert again.plans.views_key() == first.plans.views_key()
    assert build.check_tree(out, again.fleet.name, again.plans, again.digests, jobs=1).ok


def test_packed_views_without_the_memo_switch_are_still_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fleet_view.packed() on a Python whose Pickler has no `fast`: pickle's usual
    bytes, which decode to the same view (a miss may cost a recomputation, no more)."""
    from generator.fleet_view import packed

    fleet = _fleet(tmp_path / "fleet", 3)
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    view = FleetView.of(analyze(fleet).plans[0])
    fast = packed(view)

    def refuse(_self: object, _value: object) -> None:
        raise AttributeError("fast")

    class NoFast(pickle.Pickler):
        fast = property(lambda _self: False, refuse)  # type: ignore[assignment]

    monkeypatch.setattr(pickle, "Pickler", NoFast)
    usual = packed(view)
    assert usual == pickle.dumps(view, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(usual) == view == pickle.loads(fast)


def test_fleet_rule_findings_follow_every_view_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache keeps the fleet rules' findings for the views they were made from:
    each edit below changes one view, and the findings are those of an uncached run,
    whether they appear, move or go away."""
    fleet = _fleet(tmp_path / "fleet", 40)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    first = analyze(fleet)
    users = sorted(v.site_id for v in (first.plans.view(i) for i in range(40)) if v.auth_secrets)
    a, b, c = users[:3]

    def secret(site: str) -> str:
        return f"vault:{site.replace('-', '_')}_auth_secret"

    def same_as_uncached() -> list[str]:
        warm = analyze(fleet)
        monkeypatch.setenv("POSNET_CACHE_DIR", "off")
        plain = analyze(fleet)
        monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
        assert [d.as_dict() for d in warm.diagnostics] == [d.as_dict() for d in plain.diagnostics]
        return sorted(d.site for d in warm.diagnostics if d.code == "PN202")

    assert same_as_uncached() == []
    _edit(fleet / "sites" / f"{b}.yaml", secret(b), secret(a))
    assert same_as_uncached() == sorted([a, b])
    _edit(fleet / "sites" / f"{c}.yaml", secret(c), secret(a))
    assert same_as_uncached() == sorted([a, b, c])
    _edit(fleet / "sites" / f"{b}.yaml", secret(a), secret(b))
    assert same_as_uncached() == sorted([a, c])
    _edit(fleet / "sites" / f"{c}.yaml", secret(a), secret(c))
    assert same_as_uncached() == []


@pytest.mark.parametrize(
    "kept",
    [
        None,
        "not a list",
        [("PN999", "an unknown rule")],
        [("PN202",)],
        [("PN202", "not a Finding")],
        [("PN202", lint.Finding("x", (), "m")), 42],
    ],
)
def test_a_damaged_fleet_memo_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: object
) -> None:
    """Whatever the memo gives back, only a list of (fleet rule, Finding) is used;
    anything else is recomputed, never shown and never a crash."""
    fleet = _fleet(tmp_path / "fleet", 12)
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    plain = [d.as_dict() for d in analyze(fleet).diagnostics]
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    analyze(fleet)
    monkeypatch.setattr(SiteCache, "recall", lambda self, name, key: kept)
    assert [d.as_dict() for d in analyze(fleet).diagnostics] == plain


@pytest.mark.parametrize(
    "memo",
    [
        ["a list"],
        {1: ("key", b"")},
        {"fleet-rules": ("key", b"", "extra")},
        {"fleet-rules": (b"key", b"")},
        {"fleet-rules": ("key", "text")},
    ],
)
def test_a_malformed_memo_in_the_cache_file_is_dropped(memo: object) -> None:
    from generator.spec.cache import _memo_entry, _table

    assert _table({"memo": memo}, "memo", _memo_entry) == {}
    good = {"fleet-rules": ("key", b"x")}
    assert _table({"memo": good}, "memo", _memo_entry) == good


def _cli(env: dict[str, str], *args: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "generator", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)


def test_the_cli_writes_the_cache_in_a_child_it_waits_for(tmp_path: Path) -> None:
    """A cold validate of 200+ stores writes the site cache in a forked child while it
    prints (workers.later); the command ends only once the cache is complete, and no
    process of it is left. A second run then loads nothing: its Plans stay pickled."""
    fleet = _fleet(tmp_path / "fleet", 230)
    env = {**os.environ, "POSNET_CACHE_DIR": str(tmp_path / "cache")}
    first = _cli(env, "validate", fleet)
    assert first.returncode == 0, first.stderr
    files = list((tmp_path / "cache").iterdir())
    suffixes = sorted(f.suffix for f in files)  # no .tmp left: written, renamed
    assert suffixes == [*[".bucket"] * (len(files) - 1), ".pickle"]
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    os.environ["POSNET_CACHE_DIR"] = str(tmp_path / "cache")
    try:
        cache = SiteCache.open(fleet, [fleet / "fleet.yaml", *sorted((fleet / "groups").glob("*"))])
    finally:
        del os.environ["POSNET_CACHE_DIR"]
    assert cache is not None and len(cache.index) == 230
    still = subprocess.run(["pgrep", "-f", f"generator validate {fleet}"], capture_output=True)
    assert still.stdout == b""
    second = _cli(env, "validate", fleet)
    assert second.stdout == first.stdout


def test_api_callers_save_before_analyze_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the CLI nobody joins a child: the cache is written before analyze()
    returns, so the next analyze() is warm (a library user, the test suite)."""
    fleet = _fleet(tmp_path / "fleet", 210)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    forks: list[int] = []
    real = workers.Forked.__init__

    def spy(self: workers.Forked[None], fn: Any, fork: bool) -> None:
        forks.append(int(fork))
        real(self, fn, fork)

    monkeypatch.setattr(workers.Forked, "__init__", spy)
    analyze(fleet)
    assert forks and not any(forks)  # the save ran here, not in a child
    assert analyze(fleet).plans.decoded() == 0


def test_main_joins_the_cache_child_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cli.main() forks the cache write of a big fleet and has joined it (the child
    reaped, its pid cleared) by the time it ends, however the command ends."""
    from generator import cli

    fleet = _fleet(tmp_path / "fleet", 210)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    jobs: list[tuple[workers.Forked[None], int]] = []
    real = workers.Forked.__init__

    def spy(self: workers.Forked[None], fn: Any, fork: bool) -> None:
        real(self, fn, fork)
        jobs.append((self, self.pid))

    monkeypatch.setattr(workers.Forked, "__init__", spy)
    with pytest.raises(SystemExit) as done:
        cli.main(["validate", str(fleet)])
    assert done.value.code == 0
    assert [pid > 0 for _, pid in jobs] == [True]  # one child: the cache write
    assert all(job.pid == 0 for job, _ in jobs)  # joined
    assert not workers.LATER_ALLOWED
    assert analyze(fleet).plans.decoded() == 0  # and what it wrote is complete


def test_a_write_killed_midway_leaves_nothing_behind_for_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache write killed midway (the command killed, its child with it) leaves a
    .tmp file; the next write removes those older than STALE_TMP, never a write that
    may still be running, and a cache folder keeps CACHE_KEEP fleets at most."""
    from generator.spec import cache as site_cache

    fleet = _fleet(tmp_path / "fleet", 20)
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(folder))
    old = folder / "fleet-0123.pickle.4242.tmp"
    fresh = folder / "fleet-0123.pickle.4243.tmp"
    for f in (old, fresh):
        f.write_bytes(b"half a pickle")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    others = []
    for n in range(site_cache.CACHE_KEEP + 2):
        other = folder / f"fleet-{n:032x}.pickle"
        other.write_bytes(b"")
        os.utime(other, (hour_ago + n, hour_ago + n))
        others.append(other)
    analyze(fleet)  # a cold run: the cache is written, then the folder pruned
    assert not old.exists() and fresh.exists()
    assert [o.exists() for o in others[:3]] == [False, False, False]  # the oldest go
    assert len(list(folder.glob("fleet-*.pickle"))) == site_cache.CACHE_KEEP


@pytest.mark.parametrize("how", ["--jobs 1", "one core"])
def test_one_process_when_asked_or_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """`render --jobs 1` (or a machine with one core) runs in this process alone: no
    worker, no early scan, no fleet-level step and no cache writer is forked."""
    from generator import cli

    fleet = _fleet(tmp_path / "fleet", 210)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    if how == "one core":
        monkeypatch.setattr(os, "cpu_count", lambda: 1)
    forks: list[int] = []
    real = workers.Forked.__init__

    def spy(self: workers.Forked[None], fn: Any, fork: bool) -> None:
        real(self, fn, fork)
        forks.append(self.pid)

    monkeypatch.setattr(workers.Forked, "__init__", spy)
    pools: list[int] = []
    monkeypatch.setattr(workers, "ProcessPoolExecutor", lambda *a, **k: pools.append(1))
    args = ["render", str(fleet), "-o", str(tmp_path / "build")]
    for _ in range(2):  # a cold run, then one with a tree to scan and a fleet-level step
        with pytest.raises(SystemExit) as done:
            cli.main([*args, *(["--jobs", "1"] if how == "--jobs 1" else [])])
        assert done.value.code == 0
    assert forks and not any(forks) and not pools
    assert analyze(fleet).plans.decoded() == 0  # the cache was written all the same
