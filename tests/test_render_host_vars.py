"""Whichever way a host_vars file goes stale (its store re-rendered or not, --only, a
lost stamp cache, a forced render, a deleted file), the next render repairs it, serially
and with worker processes, and leaves a tree that `render --check --full` passes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator import build
from generator.analyze import Analysis, analyze
from tests.treeutil import rendered_bench_fleet

STORES = 230  # above workers.SMALL and the fleet-level fork's 200: jobs=2 forks both


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return rendered_bench_fleet(tmp_path_factory.mktemp("vars"), STORES, seed=11)


@pytest.fixture()
def world(rendered: tuple[Path, Path], tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    fleet, out = tmp_path / "fleet", tmp_path / "build"
    shutil.copytree(rendered[0], fleet)
    shutil.copytree(rendered[1], out)
    assert not _render(fleet, out, 1).written  # stamps of the copies: new inodes
    yield fleet, out


def _render(
    fleet: Path, out: Path, jobs: int, only: tuple[str, ...] = (), force: bool = False
) -> build.Change:
    a: Analysis = analyze(fleet)
    return build.render_tree(out, a.fleet.name, a.plans, a.digests, only, force, jobs)


def _full_check(fleet: Path, out: Path) -> build.CheckResult:
    a = analyze(fleet)
    return build.check_tree(out, a.fleet.name, a.plans, a.digests, 1, full=True)


def _vars(out: Path, n: int) -> Path:
    return sorted((out / "inventory" / "host_vars").iterdir())[n]


def _spoil(path: Path) -> str:
    """Hand-edit a host_vars file; returns its text as posnet wrote it."""
    text = path.read_text()
    path.write_text(text.replace("ansible_user: ", "ansible_user: x", 1))
    assert path.read_text() != text
    return text


def _store_of(vars_file: Path) -> str:
    return vars_file.name.removesuffix("-edge.yml")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_hand_edited_host_vars_of_an_untouched_store_is_repaired(
    world: tuple[Path, Path], jobs: int
) -> None:
    """Its store is not rendered again: the file is made from its Plan on its own."""
    fleet, out = world
    path = _vars(out, 17)
    want = _spoil(path)
    change = _render(fleet, out, jobs)
    assert change.rendered_sites == []
    assert path.read_text() == want
    assert change.written == [path.relative_to(out).as_posix()]
    assert _full_check(fleet, out).ok
    assert not _render(fleet, out, jobs).changed


@pytest.mark.parametrize("jobs", [1, 2])
def test_host_vars_of_a_rerendered_store_follow_its_new_spec(
    world: tuple[Path, Path], jobs: int
) -> None:
    fleet, out = world
    path = _vars(out, 40)
    store = _store_of(path)
    _spoil(path)
    spec = fleet / "sites" / f"{store}.yaml"
    text = spec.read_text()
    assert "\nname: " in text
    spec.write_text(text.replace("\nname: ", "\nname: Renamed ", 1))
    old = path.read_text()
    change = _render(fleet, out, jobs)
    assert change.rendered_sites == [store]
    assert path.read_text() != old
    assert "ansible_user: x" not in path.read_text()
    assert _full_check(fleet, out).ok


@pytest.mark.parametrize("jobs", [1, 2])
def test_only_still_repairs_other_stores_host_vars(world: tuple[Path, Path], jobs: int) -> None:
    fleet, out = world
    other = _vars(out, 3)
    want = _spoil(other)
    mine = _store_of(_vars(out, 90))
    change = _render(fleet, out, jobs, only=(mine,))
    assert other.read_text() == want
    assert change.rendered_sites == []  # the --only store itself was current


@pytest.mark.parametrize("jobs", [1, 2])
def test_lost_stamps_or_force_make_every_host_vars_again_to_the_same_bytes(
    world: tuple[Path, Path], jobs: int
) -> None:
    fleet, out = world
    before = {p.name: p.read_bytes() for p in (out / "inventory" / "host_vars").iterdir()}
    (out / build.CACHE).unlink()
    change = _render(fleet, out, jobs)
    assert len(change.rendered_sites) == STORES  # no stamp vouches for any store
    assert not change.written  # ... and every file made again is what the tree holds
    spoiled = _vars(out, 60)
    want = _spoil(spoiled)
    change = _render(fleet, out, jobs, force=True)
    assert change.written == [spoiled.relative_to(out).as_posix()]
    assert spoiled.read_text() == want
    after = {p.name: p.read_bytes() for p in (out / "inventory" / "host_vars").iterdir()}
    assert after == before
    assert not _render(fleet, out, jobs).changed


def test_a_removed_host_vars_file_comes_back(world: tuple[Path, Path]) -> None:
    fleet, out = world
    path = _vars(out, 120)
    want = path.read_text()
    path.unlink()
    change = _render(fleet, out, 2)
    assert path.read_text() == want
    assert change.rendered_sites == []
    assert _full_check(fleet, out).ok
