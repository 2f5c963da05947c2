"""Load a fleet and resolve every valid site into a Plan."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from generator.plan import Plan
from generator.resolve import resolve
from generator.spec.load import Fleet, LoadedSite, load_fleet
from generator.spec.model import Site


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


class _Sites(Mapping[str, Site]):
    """Sites by id, each model read only when a route needs it (cached sites keep their
    model pickled until then)."""

    def __init__(self, sites: Sequence[LoadedSite]) -> None:
        self.by_id = {ls.id: ls for ls in sites}

    def __getitem__(self, site_id: str) -> Site:
        return self.by_id[site_id].site

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_id)

    def __len__(self) -> int:
        return len(self.by_id)


def plans(fleet: Fleet) -> list[Plan]:
    by_id = _Sites(fleet.sites)
    out = []
    for ls in fleet.sites:
        plan = fleet.cache.plan(ls, fleet.name) if fleet.cache else None
        if plan is None:
            plan = resolve(ls.site, fleet.catalog, by_id, fleet.name)
            if fleet.cache:
                fleet.cache.remember_plan(ls, fleet.name, plan)
        out.append(plan)
    return out


def load_plans(path: Path) -> tuple[Fleet, list[Plan]]:
    fleet = load_fleet(path)
    return fleet, plans(fleet)
