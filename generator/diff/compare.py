"""Compare two fleets' Plans store by store, item by item (never their text)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from generator.diff.items import KINDS, Value, items
from generator.plan import Plan

Action = Literal["add", "remove", "change"]
Status = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class FieldChange:
    name: str
    old: Value | None  # None: the item did not exist on that side
    new: Value | None

    def added(self) -> tuple[str, ...]:
        """Set members only on the new side (sets only)."""
        if isinstance(self.new, tuple) and isinstance(self.old, tuple | type(None)):
            return tuple(v for v in self.new if v not in (self.old or ()))
        return ()

    def removed(self) -> tuple[str, ...]:
        if isinstance(self.old, tuple) and isinstance(self.new, tuple | type(None)):
            return tuple(v for v in self.old if v not in (self.new or ()))
        return ()


@dataclass(frozen=True)
class ItemChange:
    kind: str
    key: str
    action: Action
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True)
class StoreDiff:
    site_id: str
    status: Status
    changes: tuple[ItemChange, ...]

    def count(self, kind: str, action: Action) -> int:
        return sum(1 for c in self.changes if c.kind == kind and c.action == action)


@dataclass
class FleetDiff:
    old_label: str
    new_label: str
    stores: list[StoreDiff] = field(default_factory=list)
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.stores)

    def stores_with(self, status: Status) -> int:
        return sum(1 for s in self.stores if s.status == status)

    def count(self, kind: str, action: Action) -> int:
        return sum(s.count(kind, action) for s in self.stores)

    def summary(self) -> str:
        """One line in the spirit of `terraform plan`."""
        if not self.stores:
            return f"No changes: {self.unchanged} store(s) have the same plan."
        head = (
            f"Fleet diff: {self.stores_with('added')} store(s) added, "
            f"{self.stores_with('changed')} changed, {self.stores_with('removed')} removed "
            f"({self.unchanged} unchanged)"
        )
        exp = (
            f"exposures: {self.count('exposure', 'add')} opened, "
            f"{self.count('exposure', 'change')} changed, "
            f"{self.count('exposure', 'remove')} closed"
        )
        other = sum(len(s.changes) for s in self.stores) - sum(
            self.count("exposure", a) for a in ("add", "change", "remove")
        )
        return f"{head}; {exp}; {other} other item change(s)."


def _fields(old: Mapping[str, Value] | None, new: Mapping[str, Value] | None) -> list[FieldChange]:
    names = list((new or old or {}).keys())
    names += [n for n in (old or {}) if n not in names]
    out = []
    for n in names:
        a = None if old is None else old.get(n)
        b = None if new is None else new.get(n)
        if a != b:
            out.append(FieldChange(n, a, b))
    return out


def diff_store(site_id: str, old: Plan | None, new: Plan | None) -> StoreDiff | None:
    """The item changes of one store, or None when its Plan is the same."""
    if old == new:
        return None
    a, b = items(old), items(new)
    changes: list[ItemChange] = []
    for kind in KINDS:
        ka, kb = a.get(kind, {}), b.get(kind, {})
        for key in sorted(ka.keys() | kb.keys()):
            fa, fb = ka.get(key), kb.get(key)
            if fa == fb:
                continue
            action: Action = "add" if fa is None else "remove" if fb is None else "change"
            changes.append(ItemChange(kind, key, action, tuple(_fields(fa, fb))))
    status: Status = "added" if old is None else "removed" if new is None else "changed"
    if not changes and status == "changed":
        return None  # differs only in what no reviewer acts on (e.g. a finding's index)
    return StoreDiff(site_id, status, tuple(changes))


def diff_plans(
    old: Iterable[Plan],
    new: Iterable[Plan],
    old_label: str = "old",
    new_label: str = "new",
    unchanged: int = 0,
) -> FleetDiff:
    """Stores added, removed and changed between two sets of Plans, sorted by id.
    `unchanged` counts stores known to be equal that were not loaded at all."""
    a = {p.site_id: p for p in old}
    b = {p.site_id: p for p in new}
    result = FleetDiff(old_label, new_label, unchanged=unchanged)
    for site_id in sorted(a.keys() | b.keys()):
        d = diff_store(site_id, a.get(site_id), b.get(site_id))
        if d is None:
            result.unchanged += 1
        else:
            result.stores.append(d)
    return result
