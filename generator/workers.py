"""Worker processes for work over the whole fleet: render, check, load.

Workers are forked, so they start with every object of this process as it is. Work
given as index ranges over a shared context (`shared_map`) is never pickled on the
way in; only what each worker returns comes back.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from typing import Any

from generator.orphans import die_with_parent

SMALL = 200  # fewer items than this: one process is faster than starting a pool


def default_jobs(jobs: int) -> int:
    return jobs or min(os.cpu_count() or 1, 8)


def in_workers(
    fn: Callable[[Sequence[Any]], list[Any]],
    items: Sequence[Any],
    jobs: int,
    least: int = SMALL,
    chunk: int = 50,
) -> list[Any]:
    """fn over chunks of items (at least `chunk` each), in worker processes when there
    are `least` items or more."""
    from generator.terminal import advance  # a progress bar, when one is shown

    jobs = default_jobs(jobs)
    if jobs <= 1 or len(items) < least:
        done = fn(items)
        advance(len(items))
        return done
    size = max(chunk, len(items) // (jobs * 4))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    out: list[Any] = []
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("fork"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        for part in pool.map(fn, chunks):
            out.extend(part)
            advance(len(part))
    except BaseException:
        # Ctrl-C, a failed chunk, a full disk: stop the others now rather than letting
        # them finish their chunks (or outlive this process).
        for proc in list(getattr(pool, "_processes", {}).values()):
            with suppress(OSError):
                proc.kill()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


# What the forked workers of the running shared_map() read: set before the pool forks.
_SHARED: dict[str, Any] = {}


def _run_range(bounds: Sequence[tuple[int, int]]) -> list[Any]:
    fn, context = _SHARED["fn"], _SHARED["context"]
    out: list[Any] = []
    for start, stop in bounds:
        out.extend(fn(context, start, stop))
    return out


def shared_map(
    fn: Callable[[Any, int, int], list[Any]], context: Any, count: int, jobs: int
) -> list[Any]:
    """fn(context, start, stop) over items 0..count, concatenated in order.

    In forked workers when there are many items: they inherit `context` rather than
    receive it pickled (a fleet's Plans would cost more to send than to check)."""
    if default_jobs(jobs) <= 1 or count < SMALL or not hasattr(os, "fork"):
        return fn(context, 0, count)
    size = max(25, count // (default_jobs(jobs) * 4))
    bounds = [(i, min(i + size, count)) for i in range(0, count, size)]
    _SHARED.update(fn=fn, context=context)
    try:
        return in_workers(_run_range, bounds, jobs, least=2, chunk=1)
    finally:
        _SHARED.clear()
