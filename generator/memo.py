"""A one-slot memo by identity, for indexes built over one store at a time.

Checks and targets work on one Site or Plan after another and look things up in it
per route or per flow; an index built per lookup made those loops quadratic. The
object is held (so its id cannot be reused) and compared with `is`: Sites and Plans
are not hashable, and hashing a Plan would cost what the index saves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def last_object(build: Callable[[T], R]) -> Callable[[T], R]:
    """`build(obj)`, built again only when called with another object than last time."""
    slot: list[tuple[T, R]] = []

    @functools.wraps(build)
    def cached(obj: T) -> R:
        if not slot or slot[0][0] is not obj:
            slot[:] = [(obj, build(obj))]
        return slot[0][1]

    return cached
