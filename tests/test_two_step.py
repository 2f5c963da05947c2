"""workers.TwoStep: forked workers that keep state between two steps.

The cold load keeps the models of the stores that route to others in the workers that
loaded them and resolves them in a second step. What it promises: results in item
order whichever worker took which range, one second step per worker over exactly what
that worker kept, an error of a worker raised in this process, a worker that dies
reported instead of waited for, and no worker left running or unreaped, however the
steps end.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from generator.workers import TwoStep

_KEPT: list[int] = []  # in a worker: the items it handled (a fork: empty here)


def _double(context: list[int], start: int, stop: int) -> list[int]:
    # the first range is slowest: later ones arrive first, and every worker gets some
    time.sleep(0.05 if start == 0 else 0.005)
    _KEPT.extend(range(start, stop))
    return [context[i] * 2 for i in range(start, stop)]


def _kept(context: list[int], arg: int) -> list[tuple[int, int, int]]:
    return [(os.getpid(), i, context[i] + arg) for i in _KEPT]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


def test_results_in_order_and_one_second_step_per_worker() -> None:
    items = list(range(3000))
    fds = _fds()
    with TwoStep(_double, _kept, items, len(items), 2) as pool:
        pids = [pid for pid, _res, _req in pool.children]
        assert pool.first() == [i * 2 for i in items]
        second = pool.second(7)
    assert sorted(i for _pid, i, _v in second) == items  # each item once, by its keeper
    assert all(v == i + 7 for _pid, i, v in second)
    assert {pid for pid, _i, _v in second} == set(pids)  # both workers took ranges
    assert _KEPT == []  # the state lives in the workers
    assert _gone(pids)
    assert _fds() == fds  # every pipe closed


def test_workers_end_when_no_second_step_is_asked() -> None:
    fds = _fds()
    with TwoStep(_double, _kept, list(range(500)), 500, 2) as pool:
        pids = [pid for pid, _res, _req in pool.children]
        pool.first()
    assert _gone(pids)
    assert _fds() == fds


def _fail_at_700(context: list[int], start: int, stop: int) -> list[int]:
    if start <= 700 < stop:
        raise ValueError("store 700 is broken")
    return list(range(start, stop))


def _die_at_300(context: Any, start: int, stop: int) -> list[int]:
    if start <= 300 < stop:
        os.kill(os.getpid(), signal.SIGKILL)
    return list(range(start, stop))


@pytest.mark.parametrize(
    ("first", "raised", "match"),
    [
        (_fail_at_700, ValueError, "store 700"),  # an error: raised here
        (_die_at_300, RuntimeError, "worker process died"),  # killed: reported, not awaited
    ],
)
def test_a_failing_worker_stops_the_steps_and_every_worker(
    first: Any, raised: type[Exception], match: str
) -> None:
    with pytest.raises(raised, match=match), TwoStep(first, _kept, None, 2000, 2) as pool:
        pids = [pid for pid, _res, _req in pool.children]
        pool.first()
    assert _gone(pids)


def _fail_second(context: Any, arg: Any) -> list[Any]:
    raise KeyError(arg)


def test_an_error_in_the_second_step_is_raised_here() -> None:
    with (
        pytest.raises(KeyError, match="missing-store"),
        TwoStep(_double, _fail_second, list(range(400)), 400, 2) as pool,
    ):
        pids = [pid for pid, _res, _req in pool.children]
        pool.first()
        pool.second("missing-store")
    assert _gone(pids)
