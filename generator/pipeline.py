"""Load a fleet and resolve every valid site into a Plan."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from generator.plan_list import Plans
from generator.spec.cache import PlanRecord, plan_record
from generator.spec.fleet import SiteFacts
from generator.spec.load import Fleet, load_fleet
from generator.workers import shared_map


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


def _resolve_range(
    job: tuple[Fleet, Mapping[str, SiteFacts], Sequence[int]], start: int, stop: int
) -> list[PlanRecord]:
    fleet, targets, todo = job
    off = fleet.settings.lint.disable
    return [
        plan_record(fleet.sites[i].site, fleet.catalog, targets, fleet.name, off)
        for i in todo[start:stop]
    ]


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
    fresh: list[PlanRecord] = shared_map(_resolve_range, (fleet, targets, todo), len(todo), jobs)
    made = dict(zip(todo, fresh, strict=True))
    if cache:
        for i, record in made.items():
            cache.remember_plan(fleet.sites[i], fleet.name, record)
    items = [hit[0] if hit else made[i][0] for i, hit in enumerate(cached)]
    views = [hit[1] if hit else made[i][1] for i, hit in enumerate(cached)]
    return Plans(items, views, [ls.id for ls in fleet.sites])


def load_plans(path: Path) -> tuple[Fleet, Plans]:
    fleet = load_fleet(path)
    return fleet, plans(fleet)
