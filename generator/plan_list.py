"""A fleet's Plans, decoded from the site cache's pickles only when read."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import overload

from generator.fleet_view import FleetView
from generator.plan import Plan


class Plans(Sequence[Plan]):
    """Every store's Plan in fleet order. One the site cache kept is decoded from its
    pickle on first read: a warm validate reads none (the fleet rules read the views),
    and render's workers decode only the stores they render. 10,000 Plans took 0.25 s
    to decode, most of a warm run's cache reading (benchmarks/README.md)."""

    def __init__(
        self,
        items: Sequence[Plan | bytes],
        views: Sequence[FleetView | None],
        ids: Sequence[str],
    ) -> None:
        self._items = list(items)
        self._views = list(views)
        self.ids = list(ids)  # each store's id, known without decoding its Plan

    @overload
    def __getitem__(self, i: int) -> Plan: ...

    @overload
    def __getitem__(self, i: slice) -> list[Plan]: ...

    def __getitem__(self, i: int | slice) -> Plan | list[Plan]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        item = self._items[i]
        if isinstance(item, bytes):
            plan = pickle.loads(item)  # noqa: S301 - the site cache's own, see SiteCache.open()
            assert isinstance(plan, Plan)
            self._items[i] = item = plan
        return item

    def __len__(self) -> int:
        return len(self._items)

    def decoded(self) -> int:
        """How many Plans are held decoded (read, or resolved in this run): what the
        tests hold a warm validate (none) and a one-store render (one) to."""
        return sum(not isinstance(item, bytes) for item in self._items)

    def view(self, i: int) -> FleetView:
        view = self._views[i]
        if view is None:
            view = self._views[i] = FleetView.of(self[i])
        return view


def site_ids(plans: Sequence[Plan]) -> list[str]:
    """The stores' ids in order, without decoding a Plan that is still pickled."""
    return list(plans.ids) if isinstance(plans, Plans) else [p.site_id for p in plans]


def views_of(plans: Sequence[Plan]) -> list[FleetView]:
    """Every store's FleetView: the cached ones as they are, the others from their Plan."""
    if isinstance(plans, Plans):
        return [plans.view(i) for i in range(len(plans))]
    return [FleetView.of(p) for p in plans]
