"""Cold loading in worker processes gives what loading in this process gives: the same
sites, digests and diagnostics, in the same order, on a fleet with errors in several
stores (above workers.SMALL files, so the workers really run)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import pytest

from generator.spec import parallel_load
from generator.spec.load import Fleet, load_fleet
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import fleet_bench


def _break(sites: Path) -> None:
    files = sorted(sites.glob("*.yaml"))

    def edit(n: int, old: str, new: str) -> None:
        text = files[n].read_text()
        assert old in text, (files[n], old)
        files[n].write_text(text.replace(old, new, 1))

    edit(3, "name: ", "name: [unclosed\n")  # YAML syntax: the load raises
    edit(10, "role: pos", "role: 12")  # model validation
    edit(20, "port: 8080", "port: 99999")  # out of range
    edit(30, "group: ", "group: nowhere\n_old_group: ")  # unknown group, unknown key
    edit(40, f"id: {files[40].stem}", "id: someone-else")  # id differs from file name
    fqdn = next(line for line in files[50].read_text().splitlines() if "fqdn:" in line)
    edit(60, "fqdn: ", f"fqdn: {fqdn.split(':', 1)[1].strip()}\n  _was: ")  # E300 across
    (sites / "notes.txt").write_text("not a store\n")  # an info note


def _load(path: Path, parallel: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Fleet, int]:
    calls: list[int] = []
    real = parallel_load.TwoStep

    def spy(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    with monkeypatch.context() as m:
        m.setattr(parallel_load, "TwoStep", spy)
        m.setattr(parallel_load, "default_jobs", lambda jobs: 2 if parallel else 1)
        m.setenv("POSNET_CACHE_DIR", "off")
        fleet = load_fleet(path)
    return fleet, len(calls)


def test_serial_and_parallel_loads_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet_bench.make_fleet(tmp_path / "fleet", 240, seed=3)
    _break(tmp_path / "fleet" / "sites")
    serial, s_calls = _load(tmp_path / "fleet", False, monkeypatch)
    parallel, p_calls = _load(tmp_path / "fleet", True, monkeypatch)
    assert (s_calls, p_calls) == (0, 1)
    assert [d.as_dict() for d in parallel.diagnostics] == [d.as_dict() for d in serial.diagnostics]
    assert [d.why for d in parallel.diagnostics] == [d.why for d in serial.diagnostics]
    codes = {d.code for d in serial.diagnostics if d.severity == "error"}
    assert {"E100", "E101", "E300"} <= codes, codes
    assert len({d.site or d.location.file for d in serial.diagnostics}) >= 6
    assert [(ls.id, ls.file, ls.digest) for ls in parallel.sites] == [
        (ls.id, ls.file, ls.digest) for ls in serial.sites
    ]
    assert [ls.site for ls in parallel.sites] == [ls.site for ls in serial.sites]
    assert [ls.layers for ls in parallel.sites[:20]] == [ls.layers for ls in serial.sites[:20]]


def test_parallel_records_fill_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold parallel load leaves the cache a warm load reads: same sites, diagnostics."""
    fleet_bench.make_fleet(tmp_path / "fleet", 220, seed=5)
    _break(tmp_path / "fleet" / "sites")
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(parallel_load, "default_jobs", lambda jobs: 2)
    cold = load_fleet(tmp_path / "fleet", cached=True)
    assert cold.cache is not None
    cold.cache.save(cold.sites)
    warm = load_fleet(tmp_path / "fleet", cached=True)
    # every store but the one whose YAML does not parse (never cached, as serially)
    assert warm.cache is not None and len(warm.cache.records) == 219
    assert [d.as_dict() for d in warm.diagnostics] == [d.as_dict() for d in cold.diagnostics]
    assert [ls.site for ls in warm.sites] == [ls.site for ls in cold.sites]


def test_plans_from_workers_equal_plans_resolved_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stores resolved in forked workers (central proxies read other stores there) give
    the Plans resolving here gives, in order, and the main process never decodes a
    store's model for it (the memory the workers are there to save)."""
    from generator import pipeline, workers

    fleet_bench.make_fleet(tmp_path / "fleet", 230, seed=7)
    monkeypatch.setattr(parallel_load, "default_jobs", lambda jobs: 2)
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    fleet = load_fleet(tmp_path / "fleet")
    assert all(ls._site is None for ls in fleet.sites)  # models still pickled
    forked: list[int] = []
    real = workers.in_workers

    def spy(*args: Any, **kw: Any) -> Any:
        forked.append(1)
        return real(*args, **kw)

    with monkeypatch.context() as m:
        m.setattr(workers, "in_workers", spy)
        m.setattr(workers, "default_jobs", lambda jobs: 2)
        parallel = pipeline.plans(fleet)
    assert forked == [1]
    assert all(ls._site is None for ls in fleet.sites)
    with monkeypatch.context() as m:
        m.setattr(workers, "default_jobs", lambda jobs: 1)
        serial = pipeline.plans(fleet)
    assert list(parallel) == list(serial) and len(serial) == 230
    assert any(p.proxies for p in serial)  # routes across stores were resolved


# ------------------------------------------------------------------ guided chunks


@pytest.mark.parametrize("count", [1, 24, 25, 26, 199, 200, 1428, 10_000, 10_007])
@pytest.mark.parametrize("jobs", [2, 3, 8])
def test_guided_ranges_cover_every_item_once_and_shrink(count: int, jobs: int) -> None:
    from generator.workers import guided_bounds

    bounds = guided_bounds(count, jobs)
    assert bounds[0][0] == 0 and bounds[-1][1] == count
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))  # no gap
    sizes = [stop - start for start, stop in bounds]
    assert all(s > 0 for s in sizes)
    assert sizes == sorted(sizes, reverse=True)  # the last chunks are the small ones
    assert sizes[-1] <= 25  # the tail a worker may wait out is small
    if count >= 1000:
        assert sizes[0] >= count // (2 * jobs)  # few chunks: little to send per item
        assert len(bounds) <= 12 * jobs + 4  # about 2 x jobs x ln(count / least)


def _slow_tail(context: list[int], start: int, stop: int) -> list[int]:
    """Items at the end cost most, as uneven stores do: order must not depend on it."""
    import time

    time.sleep(0.0005 * sum(1 for i in range(start, stop) if context[i] > 900))
    return [context[i] * 2 for i in range(start, stop)]


def test_shared_map_keeps_order_over_uneven_chunks() -> None:
    from generator.workers import shared_map

    items = list(range(1000))
    assert shared_map(_slow_tail, items, len(items), 2) == [i * 2 for i in items]
