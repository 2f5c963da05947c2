"""Load a fleet and resolve every valid site into a Plan."""

from __future__ import annotations

from pathlib import Path

from generator.plan import Plan
from generator.resolve import resolve
from generator.spec.load import Fleet, load_fleet


def plans(fleet: Fleet) -> list[Plan]:
    by_id = {ls.site.id: ls.site for ls in fleet.sites}
    return [resolve(ls.site, fleet.catalog, by_id, fleet.name) for ls in fleet.sites]


def load_plans(path: Path) -> tuple[Fleet, list[Plan]]:
    fleet = load_fleet(path)
    return fleet, plans(fleet)
