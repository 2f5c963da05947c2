"""A fleet's Plans, decoded from the site cache's pickles only when read."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from typing import overload

from generator.fleet_view import FleetView, packed
from generator.plan import Plan


class Plans(Sequence[Plan]):
    """Every store's Plan in fleet order. One the site cache kept is decoded from its
    pickle on first read: a warm validate reads none (the fleet rules read the views),
    and render's workers decode only the stores they render. 10,000 Plans took 0.25 s
    to decode, most of a warm run's cache reading (benchmarks/README.md)."""

    def __init__(
        self,
        items: Sequence[Plan | bytes],
        views: Sequence[FleetView | bytes | None],
        ids: Sequence[str],
    ) -> None:
        self._items = list(items)
        self._views = list(views)  # a FleetView, pickled, or None: made from its Plan
        self._made: dict[int, FleetView] = {}  # views made from a Plan here
        self._views_read = 0  # pickled views decoded (each time: none is kept)
        self.ids = list(ids)  # each store's id, known without decoding its Plan
        self._views_key: str | None = None

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
        """Store i's view. A pickled one is decoded on every read and not kept: its
        bytes stay in the site cache anyway, and keeping 10,000 decoded views beside
        them raised a cold validate's peak RSS by 64 MiB; only the fleet rules and
        hosts.yml read them, once each, and only when their memo misses."""
        held = self._views[i]
        if isinstance(held, bytes):
            self._views_read += 1
            view = pickle.loads(held)  # noqa: S301 - the site cache's own, as above
            assert isinstance(view, FleetView)
            return view
        if held is not None:
            return held
        if i not in self._made:
            self._made[i] = FleetView.of(self[i])
        return self._made[i]

    def views_decoded(self) -> int:
        """How many pickled views were decoded: what the tests hold a warm run whose
        views did not change (none) to."""
        return self._views_read

    def views_key(self) -> str:
        """A digest of every store's view, in fleet order, decoding none: of the bytes
        fleet_view.packed() gives (equal bytes, equal views)."""
        if self._views_key is None:
            h = hashlib.sha256()
            for i, view in enumerate(self._views):
                blob = view if isinstance(view, bytes) else packed(self.view(i))
                h.update(len(blob).to_bytes(8, "big"))
                h.update(blob)
            self._views_key = h.hexdigest()
        return self._views_key


def site_ids(plans: Sequence[Plan]) -> list[str]:
    """The stores' ids in order, without decoding a Plan that is still pickled."""
    return list(plans.ids) if isinstance(plans, Plans) else [p.site_id for p in plans]


def views_key(plans: Sequence[Plan]) -> str:
    """Plans.views_key() of any sequence of Plans."""
    if not isinstance(plans, Plans):
        plans = Plans(plans, [None] * len(plans), [])
    return plans.views_key()


def views_of(plans: Sequence[Plan]) -> list[FleetView]:
    """Every store's FleetView: the cached ones as they are, the others from their Plan."""
    if isinstance(plans, Plans):
        return [plans.view(i) for i in range(len(plans))]
    return [FleetView.of(p) for p in plans]
