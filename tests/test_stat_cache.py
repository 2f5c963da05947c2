"""The site cache's stat fast path (SiteCache.known): a site file whose lstat() is the
one an earlier run kept is neither read nor hashed, and every edit is still seen: a
same-size edit within one tick of a coarse clock (the racy guard), a `touch -d` that
puts the old mtime back (ctime), a file replaced by a rename (inode), a chmod (mode and
ctime). Each case is checked against a load with an empty cache, snippets included."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.analyze import Analysis, analyze
from generator.errors import format_text
from generator.spec import cache, load
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import fleet_bench

STORES = 6


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "fleet"
    fleet_bench.make_fleet(root, STORES, seed=5)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    return root


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The site files the loader reads from now on."""
    seen: list[str] = []
    real = load._read

    def spy(spath: Path, follow: bool) -> bytes | None:
        seen.append(spath.name)
        return real(spath, follow)

    monkeypatch.setattr(load, "_read", spy)
    return seen


def _late_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file is old enough to be trusted: the clock runs a minute ahead."""
    monkeypatch.setattr(load, "now_ns", lambda: time.time_ns() + 60 * 10**9)


def _cold(fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Analysis:
    with monkeypatch.context() as m:
        m.setenv("POSNET_CACHE_DIR", str(tmp_path / f"cold-{time.time_ns()}"))
        return analyze(fleet)


def _same(warm: Analysis, cold: Analysis) -> None:
    assert [d.as_dict() for d in warm.diagnostics] == [d.as_dict() for d in cold.diagnostics]
    assert warm.digests == cold.digests
    assert format_text(warm.diagnostics) == format_text(cold.diagnostics)


def _first_site(fleet: Path) -> Path:
    return sorted((fleet / "sites").glob("*.yaml"))[0]


def _same_size_edit(path: Path) -> None:
    """A new display name of the same length: the file's size stays."""
    text = path.read_text()
    start = text.index("\nname: ") + len("\nname: ")
    old = text[start]
    new = "Q" if old != "Q" else "R"
    path.write_text(text[:start] + new + text[start + 1 :])


def test_unchanged_files_are_not_read_again(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _late_clock(monkeypatch)
    analyze(fleet)
    reads = _reads(monkeypatch)
    warm = analyze(fleet)
    assert reads == []
    assert any(d.location.line for d in warm.diagnostics)  # snippets from kept lines
    _same(warm, _cold(fleet, tmp_path, monkeypatch))


def test_same_size_edit_within_one_clock_tick(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system whose times never move within the test (a coarse clock): the stat
    of the edited file is what the first run saw, so only the racy guard (its times
    are not older than the run) makes the next run read it."""
    tick = time.time_ns()

    def coarse(file: str) -> cache.Stat | None:
        st = os.lstat(file)
        return (st.st_size, tick, tick, st.st_ino, st.st_dev, st.st_mode)

    monkeypatch.setattr(load, "stat_of", coarse)
    analyze(fleet)
    site = _first_site(fleet)
    _same_size_edit(site)
    reads = _reads(monkeypatch)
    warm = analyze(fleet)
    assert site.name in reads
    _same(warm, _cold(fleet, tmp_path, monkeypatch))


def _set_back(site: Path, tmp_path: Path) -> None:
    """`touch -d` puts the old mtime back after a same-size edit: ctime moved."""
    before = site.stat()
    time.sleep(0.01)
    _same_size_edit(site)
    os.utime(site, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (site.stat().st_size, site.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def _renamed_over(site: Path, tmp_path: Path) -> None:
    """An editor's save: a new file of the same size and mtime renamed over the old."""
    before = site.stat()
    new = tmp_path / "saved.yaml"
    new.write_bytes(site.read_bytes())
    _same_size_edit(new)
    os.utime(new, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(new, site)


def _chmod(site: Path, tmp_path: Path) -> None:
    """A chmod changes what reading the file gives (for anyone but root)."""
    site.chmod(0o400)


@pytest.mark.parametrize("change", [_set_back, _renamed_over, _chmod])
def test_a_changed_stat_reads_the_file(
    fleet: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Path, Path], None],
) -> None:
    _late_clock(monkeypatch)
    analyze(fleet)
    site = _first_site(fleet)
    change(site, tmp_path)
    reads = _reads(monkeypatch)
    warm = analyze(fleet)
    assert reads == [site.name]
    _same(warm, _cold(fleet, tmp_path, monkeypatch))


def test_a_damaged_stat_table_is_dropped() -> None:
    """Stats or lines of the wrong shape are dropped whole, never trusted."""
    for bad in ({"a": ((1, 2, 3), "x")}, {"a": ((1, 2, 3, 4, 5, "6"), "x")}, [], {1: ()}):
        assert cache._table({"stats": bad}, "stats", cache._stat_entry) == {}
    assert cache._table({"lines": {"a": ("x", {"1": "y"})}}, "lines", cache._lines_entry) == {}
    ok = {"a": ((1, 2, 3, 4, 5, 6), "x")}
    assert cache._table({"stats": ok}, "stats", cache._stat_entry) == ok
