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
import select
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any, Generic, NoReturn, TypeVar

from generator.orphans import die_with_parent

SMALL = 200  # fewer items than this: one process is faster than starting a pool


HELD = frozenset({signal.SIGINT, signal.SIGTERM})  # what a fork or a commit holds back


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (then they are delivered).

    Around a commit, and around every fork: the parent runs Python's after-fork hooks
    (logging registers one), and a Ctrl-C raised inside a hook is printed as "Exception
    ignored" with a traceback, then lost, the command running on to its end."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def fork_held() -> int:
    """os.fork() with SIGINT and SIGTERM held (see signals_held): in this process until
    the fork is done, in the child until it calls orphans.die_with_parent(), which
    ignores SIGINT (a terminal's Ctrl-C reaches the whole process group) and lets them
    through again."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        raise
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid


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
        with signals_held():  # the pool forks all its workers on the first task
            pool.submit(int).result()
        # Futures, not pool.map(): an interrupted map() cancels the chunks still queued,
        # and Python 3.11's manager thread, finding the workers killed, then dies with
        # a traceback setting its error on one of them (CPython gh-107219, fixed in
        # 3.12). Never cancelled, each queued chunk just gets the pool's error.
        for future in [pool.submit(fn, chunk) for chunk in chunks]:
            part = future.result()
            out.extend(part)
            advance(len(part))
    except BaseException:
        # Ctrl-C, a failed chunk, a full disk: stop the others now rather than letting
        # them finish their chunks (or outlive this process).
        for proc in list(getattr(pool, "_processes", {}).values()):
            with suppress(OSError):
                proc.kill()
        _unblock_results(pool)
        raise
    finally:
        pool.shutdown(wait=True)
    return out


def _unblock_results(pool: ProcessPoolExecutor) -> None:
    """Let the pool's result reader see the end of its pipe once the workers are killed.

    A worker killed while it sends a result (one larger than the pipe's buffer goes in
    pieces) leaves the pool's manager thread reading the rest of that message. This
    process holds the pipe's other end too, so the read never ends, and
    `shutdown(wait=True)` (or the interpreter's exit, which joins that thread) hung
    forever: a render stopped with Ctrl-C at that moment never exited. With this end
    closed, every writer is gone: the read ends, the pool counts itself broken and
    shuts down."""
    queue = getattr(pool, "_result_queue", None)
    writer = getattr(queue, "_writer", None)
    if writer is not None:
        with suppress(OSError):
            writer.close()


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
        from generator.terminal import advance  # as in_workers does, for a progress bar

        done = fn(context, 0, count)
        advance(count)
        return done
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
            pid = fork_held()
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
                _send(w, (True, self.fn()))
            except BaseException as exc:  # re-raised in the parent
                _send(w, (False, _picklable(exc)))
        except BaseException:
            code = 1
        os._exit(code)  # no atexit handlers, no flushing of the parent's buffers

    def result(self) -> T:
        if not self.pid:
            return self.fn()
        try:
            value = _reply(self.fd)
        except BaseException:  # Ctrl-C while waiting, a failed or dead child: stop it
            self.close()
            raise
        fd, self.fd = self.fd, -1
        os.close(fd)
        os.waitpid(self.pid, 0)
        self.pid = 0
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop a child whose result is no longer wanted (this process failed).

        A signal can land anywhere in result(), also after the child was reaped and
        before it was forgotten: the child being gone then is no error (a
        ProcessLookupError here replaced the interrupt, reported as "cannot write to
        standard output: No such process", exit 1 instead of 130/143)."""
        if self.pid:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


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


# -------------------------------------------------------------- two-step workers

_FRAME = 8  # bytes of a frame's length


def _send(fd: int, value: object) -> None:
    """One frame: its length, then the pickle (the pickle itself is not copied)."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    for part in (len(data).to_bytes(_FRAME, "big"), data):
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view) :]


def _picklable(exc: BaseException) -> BaseException:
    """`exc`, or what names it when it cannot travel to the parent."""
    try:
        pickle.dumps(exc)
    except Exception:
        return RuntimeError(repr(exc))
    return exc


def _reply(fd: int) -> Any:
    """A worker's next answer: its value, or its exception raised here."""
    try:
        ok, value = _receive(fd)
    except EOFError:
        raise RuntimeError("a posnet worker process died") from None
    if not ok:
        raise value
    return value


def _receive(fd: int) -> Any:
    """One frame's value; EOFError when the other end closed first (or died)."""

    def read(n: int) -> bytes:
        parts, left = [], n
        while left:
            part = os.read(fd, min(left, 1 << 20))
            if not part:
                raise EOFError
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    return pickle.loads(read(int.from_bytes(read(_FRAME), "big")))  # noqa: S301 - our child


class TwoStep:
    """shared_map() whose forked workers stay alive for a second step over what they
    kept from the first: a cold load keeps the models of the stores that route to
    others, and resolves them once every store's facts are known, instead of shipping
    each model out and forking a second pool to decode it again (0.28 -> 0.2 s for
    1,428 such stores in a cold load of 10,000).

    `first(context, start, stop)` runs over guided ranges handed out through a pipe (a
    free worker takes the next); `second(context, arg)` runs once in each worker, with
    the argument given to second(). Use as a context manager: leaving it stops and reaps
    every worker, whatever happened."""

    def __init__(
        self,
        first: Callable[[Any, int, int], list[Any]],
        second: Callable[[Any, Any], list[Any]],
        context: Any,
        count: int,
        jobs: int,
    ) -> None:
        self.children: list[tuple[int, int, int]] = []  # pid, result fd, request fd
        bounds = guided_bounds(count, jobs)
        tasks_r, tasks_w = os.pipe()
        # every task is in the pipe before a worker starts: a 4-byte read is one task
        os.write(tasks_w, b"".join(k.to_bytes(4, "big") for k in range(len(bounds))))
        os.close(tasks_w)
        parent = os.getpid()
        try:
            for _ in range(min(jobs, len(bounds))):
                res_r, res_w = os.pipe()
                req_r, req_w = os.pipe()
                pid = fork_held()
                if pid == 0:  # the child: never returns
                    for _pid, fd1, fd2 in self.children:
                        os.close(fd1)
                        os.close(fd2)
                    os.close(res_r)
                    os.close(req_w)
                    die_with_parent(parent)
                    self._child(tasks_r, res_w, req_r, first, second, context, bounds)
                os.close(res_w)
                os.close(req_r)
                self.children.append((pid, res_r, req_w))
        except BaseException:
            self.close()
            raise
        finally:
            os.close(tasks_r)

    @staticmethod
    def _child(
        tasks: int,
        res: int,
        req: int,
        first: Callable[[Any, int, int], list[Any]],
        second: Callable[[Any, Any], list[Any]],
        context: Any,
        bounds: Sequence[tuple[int, int]],
    ) -> NoReturn:
        code = 0
        try:
            try:
                while len(task := os.read(tasks, 4)) == 4:
                    k = int.from_bytes(task, "big")
                    _send(res, (True, (k, first(context, *bounds[k]))))
                _send(res, (True, None))  # the first step is done
                try:
                    arg = _receive(req)
                except EOFError:  # no second step wanted
                    os._exit(0)
                _send(res, (True, second(context, arg)))
            except BaseException as exc:  # re-raised in the parent
                _send(res, (False, _picklable(exc)))
        except BaseException:
            code = 1
        os._exit(code)  # no atexit handlers, no flushing of the parent's buffers

    def first(self) -> list[Any]:
        """The first step's results, in item order (as shared_map gives them). Each range
        is read as soon as a worker sends it: decoding them overlaps the others' work."""
        parts: list[tuple[int, list[Any]]] = []
        busy = {res: pid for pid, res, _req in self.children}
        while busy:
            ready, _, _ = select.select(list(busy), [], [])
            for res in ready:
                part = _reply(res)
                if part is None:
                    del busy[res]
                else:
                    parts.append(part)
        parts.sort(key=lambda p: p[0])
        return [item for _k, items in parts for item in items]

    def second(self, arg: Any) -> list[Any]:
        """second(context, arg) in every worker, the results concatenated (in no set
        order)."""
        for _pid, _res, req in self.children:
            _send(req, arg)
        return [item for _pid, res, _req in self.children for item in _reply(res)]

    def close(self) -> None:
        for pid, res, req in self.children:
            os.close(req)  # a worker still waiting for a second step ends
            os.close(res)
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self.children = []

    def __enter__(self) -> TwoStep:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
