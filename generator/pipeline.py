"""Load a fleet and resolve every valid site into a Plan."""

from __future__ import annotations

import gc
import pickle
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from generator.fleet_view import FleetView
from generator.lint import site_findings
from generator.plan_list import Plans
from generator.resolve import resolve
from generator.spec.fleet import SiteFacts
from generator.spec.load import Fleet, load_fleet
from generator.workers import shared_map
from generator.yamlload import YamlPath


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause CPython's cycle collector while a fleet is loaded or rendered.

    Loading 10,000 stores keeps millions of small objects alive and makes almost no
    garbage cycles, yet the collector rescans the growing heap over and over: more than
    half the load time. Reference counting still frees everything else at once. What is
    still alive afterwards (the fleet, its plans) lives as long as the command, so it is
    frozen out of later collections rather than scanned once more on the way out.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


# A store resolved after loading: its Plan pickled, its view, its site-rule findings.
_Resolved = tuple[bytes, FleetView, list[tuple[str, YamlPath, str]]]


def _resolve_range(
    job: tuple[Fleet, Mapping[str, SiteFacts], Sequence[int]], start: int, stop: int
) -> list[_Resolved]:
    """Resolve stores in a worker, which ships each Plan pickled as the site cache keeps
    it and lints it there: the main process neither decodes nor pickles it again."""
    fleet, targets, todo = job
    sites = fleet.sites
    out = []
    for i in todo[start:stop]:
        plan = resolve(sites[i].site, fleet.catalog, targets, fleet.name)
        found = site_findings(plan, fleet.settings.lint.disable)
        pickled = pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL)
        out.append((pickled, FleetView.of(plan), found))
    return out


def plans(fleet: Fleet, jobs: int = 0) -> Plans:
    """Every site's Plan: from the cache (kept pickled until read, see plan_list), else
    resolved, in forked workers when many are missing (a cold load's workers resolved
    every store already, those that route to others in a second step; what is left:
    stores whose route target changed, or a fleet without the cache). Not for speed
    (sending Plans back costs about what resolving saves on 2 cores) but for memory: the
    main process never decodes the stores' models, 180 MiB less peak RSS at 10,000
    stores (benchmarks/README.md). A route reads its target store's facts, never its
    model."""
    targets = {ls.id: ls.facts for ls in fleet.sites}
    cache = fleet.cache
    cached = [cache.plan(ls, fleet.name) if cache else None for ls in fleet.sites]
    todo = [i for i, hit in enumerate(cached) if hit is None]
    fresh: list[_Resolved] = shared_map(_resolve_range, (fleet, targets, todo), len(todo), jobs)
    made = dict(zip(todo, fresh, strict=True))
    if cache:
        for i, (plan, view, found) in made.items():
            cache.remember_plan(fleet.sites[i], fleet.name, plan, view, found)
    items = [hit[0] if hit else made[i][0] for i, hit in enumerate(cached)]
    views = [hit[1] if hit else made[i][1] for i, hit in enumerate(cached)]
    return Plans(items, views, [ls.id for ls in fleet.sites])


def load_plans(path: Path) -> tuple[Fleet, Plans]:
    fleet = load_fleet(path)
    return fleet, plans(fleet)
