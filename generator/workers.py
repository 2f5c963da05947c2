"""Worker processes for work over the whole fleet: render, check, load.

Workers are forked, so they start with every object of this process as it is. Work
given as index ranges over a shared context (`shared_map`) is never pickled on the
way in; only what each worker returns comes back. `Forked` runs one function in a
forked copy while this process goes on (the fleet-level files, the tree's early scan);
`later` does so for work whose result nobody waits for (writing the site cache), and
the CLI joins it before exiting (`join_later`).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from typing import Any, Generic, NoReturn, TypeVar

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
    each: bool = False,
) -> list[Any]:
    """fn over chunks of items (at least `chunk` each; `each`: one item per chunk), in
    worker processes when there are `least` items or more."""
    from generator.terminal import advance  # a progress bar, when one is shown

    jobs = default_jobs(jobs)
    if jobs <= 1 or len(items) < least:
        done = fn(items)
        advance(len(items))
        return done
    size = 1 if each else max(chunk, len(items) // (jobs * 4))
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


def guided_bounds(count: int, jobs: int, least: int = 25) -> list[tuple[int, int]]:
    """Ranges over 0..count that shrink as the work runs out (guided scheduling): each
    takes a share of what is left, so the workers finish together instead of one
    waiting out the other's last big chunk (0.4 s of idle core in a cold load of
    10,000 stores with eight equal chunks)."""
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < count:
        size = max(least, (count - start) // (2 * jobs))
        bounds.append((start, min(start + size, count)))
        start += size
    return bounds


def shared_map(
    fn: Callable[[Any, int, int], list[Any]], context: Any, count: int, jobs: int
) -> list[Any]:
    """fn(context, start, stop) over items 0..count, concatenated in order.

    In forked workers when there are many items: they inherit `context` rather than
    receive it pickled (a fleet's Plans would cost more to send than to check)."""
    if default_jobs(jobs) <= 1 or count < SMALL or not hasattr(os, "fork"):
        return fn(context, 0, count)
    bounds = guided_bounds(count, default_jobs(jobs))
    _SHARED.update(fn=fn, context=context)
    try:
        return in_workers(_run_range, bounds, jobs, least=2, each=True)
    finally:
        _SHARED.clear()


T = TypeVar("T")


class Forked(Generic[T]):
    """`fn()` computed in a forked copy of this process while this one goes on.

    The child sees every object as it is (nothing is pickled on the way in; only the
    result comes back), so it suits work over the whole fleet. Without fork, or for a
    small fleet, `fn` simply runs on `result()`.
    """

    def __init__(self, fn: Callable[[], T], fork: bool) -> None:
        self.fn = fn
        self.pid = 0
        self.fd = -1
        if fork and hasattr(os, "fork"):
            r, w = os.pipe()
            parent = os.getpid()
            pid = os.fork()
            if pid == 0:  # the child: never returns
                os.close(r)
                die_with_parent(parent)
                self._child(w)
            os.close(w)
            self.pid, self.fd = pid, r

    def _child(self, w: int) -> NoReturn:
        code = 0
        try:
            try:
                payload = pickle.dumps((True, self.fn()), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # re-raised in the parent
                try:
                    payload = pickle.dumps((False, exc))
                except Exception:
                    payload = pickle.dumps((False, RuntimeError(repr(exc))))
            with os.fdopen(w, "wb") as fh:
                fh.write(payload)
        except BaseException:
            code = 1
        os._exit(code)  # no atexit handlers, no flushing of the parent's buffers

    def result(self) -> T:
        if not self.pid:
            return self.fn()
        try:
            with os.fdopen(self.fd, "rb", closefd=False) as fh:
                data = fh.read()
        except BaseException:  # Ctrl-C while waiting: stop the child, do not wait for it
            self.close()
            raise
        os.close(self.fd)
        os.waitpid(self.pid, 0)
        self.pid, self.fd = 0, -1
        if not data:
            raise RuntimeError("a posnet worker process died")
        ok, value = pickle.loads(data)  # noqa: S301 - from our own forked child
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop a child whose result is no longer wanted (this process failed)."""
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            os.close(self.fd)
            self.pid, self.fd = 0, -1


# Work nobody waits for (writing the site cache), run in a forked child while the
# command goes on, when the entry point (cli.main) promises to join it before exiting.
_LATER: list[Forked[None]] = []
LATER_ALLOWED = False


def later(fn: Callable[[], None], big: bool) -> None:
    """fn() now, or (`big`, and the entry point joins: see join_later) in a forked child
    while this process goes on: a cold validate prints its warnings while the cache of
    10,000 stores is written."""
    job = Forked(fn, fork=big and LATER_ALLOWED)
    if job.pid:
        _LATER.append(job)
    else:
        job.result()


def join_later(stop: bool = False) -> None:
    """Wait for the work started by later(), or (`stop`, or Ctrl-C while waiting) end it
    unfinished. Its failure fails no command: it is work nobody reads the result of."""
    while _LATER:
        job = _LATER.pop()
        if stop:
            job.close()
            continue
        try:
            job.result()
        except KeyboardInterrupt:
            stop = True
        except Exception:  # noqa: S110 - a cache not written is read cold next time
            pass
