"""The stamps a render records (.posnet-cache.json) are those the files have on disk,
whether the render workers took them as they wrote (a file that moved in with its
folder) or the main process after the commit (a file renamed on its own, whose change
time the rename moves). A wrong stamp would make the next render redo every store, or
worse, trust a file it should not: the next render here must redo nothing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from generator import build
from generator.analyze import analyze
from generator.tree_guard import TreeError, stamp_of, store_stamp
from tests.treeutil import read_stamps, rendered_bench_fleet, write_stamps

STORES = 230  # above workers.SMALL and the fleet-level fork's 200: jobs=2 forks both


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rendered_bench_fleet(tmp_path_factory.mktemp("stamps"), STORES, seed=5)[0]


def _render(fleet: Path, out: Path, jobs: int) -> build.Change:
    a = analyze(fleet)
    return build.render_tree(out, a.fleet.name, a.plans, a.digests, jobs=jobs)


def _inputs(out: Path) -> dict[str, str]:
    sites = json.loads((out / build.MANIFEST).read_text())["sites"]
    return {site_id: entry["input"] for site_id, entry in sites.items()}


def _assert_stamps_true(out: Path) -> None:
    doc = read_stamps(out)
    manifest = json.loads((out / build.MANIFEST).read_text())
    assert set(doc["fs"]) == set(manifest["sites"])
    for site_id, recorded in doc["fs"].items():
        files = sorted(manifest["sites"][site_id]["files"])
        now = store_stamp((r, stamp_of(os.stat(out / "sites" / site_id / r))) for r in files)
        assert recorded == now, site_id
    assert len(doc["fleet"]) == len(manifest["inventory"])
    for rel, entry in doc["fleet"].items():
        assert entry.split(" ")[0] == stamp_of(os.stat(out / rel)), rel


@pytest.mark.parametrize("jobs", [1, 2])
def test_recorded_stamps_are_the_files_stamps(spec: Path, tmp_path: Path, jobs: int) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(spec, fleet)
    sites = sorted((fleet / "sites").iterdir())
    held_back = sites[100].read_bytes()
    sites[100].unlink()
    out = tmp_path / "build"
    _render(fleet, out, jobs)  # a first render: every folder moves in whole
    _assert_stamps_true(out)

    sites[100].write_bytes(held_back)  # a new store: its folder moves in whole ...
    text = sites[7].read_text()  # ... a changed one: its files are renamed one by one
    sites[7].write_text(text.replace("\nname: ", "\nname: Renamed ", 1))
    inputs = _inputs(out)
    change = _render(fleet, out, jobs)
    assert {sites[100].stem, sites[7].stem} <= set(change.rendered_sites)
    new_inputs = _inputs(out)  # and the stores that route to those, nothing else
    assert set(change.rendered_sites) == {s for s in new_inputs if inputs.get(s) != new_inputs[s]}
    _assert_stamps_true(out)

    again = _render(fleet, out, jobs)
    assert again.rendered_sites == [] and not again.changed


def test_a_wrong_recorded_stamp_costs_a_render_never_a_missed_edit(
    spec: Path, tmp_path: Path
) -> None:
    """_write_cache's promise for a file system that moves stamps anyway: a recorded
    stamp that no longer matches its files makes the next render do that store again
    (writing nothing, as its files are right), and records the true stamps."""
    fleet = tmp_path / "fleet"
    shutil.copytree(spec, fleet)
    out = tmp_path / "build"
    _render(fleet, out, 2)
    doc = read_stamps(out)
    store = sorted(doc["fs"])[3]
    was = doc["fs"][store]
    doc["fs"][store] = ("1" if was[0] == "0" else "0") + was[1:]  # another stamp
    write_stamps(out, doc)  # signed as posnet signs it: still never trusted blindly
    change = _render(fleet, out, 2)
    assert change.rendered_sites == [store] and not change.changed
    _assert_stamps_true(out)
    handover = out / "sites" / store / "HANDOVER.md"
    handover.write_text(handover.read_text() + "hand edit\n")  # and a real edit still shows
    assert _render(fleet, out, 2).written == [f"sites/{store}/HANDOVER.md"]


def _states(out: Path) -> dict[str, tuple[int, int, int]]:
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
        for p in out.rglob("*")
        if p.is_file()
    }


def test_a_render_that_changes_nothing_writes_nothing_but_its_lock(
    spec: Path, tmp_path: Path
) -> None:
    """Not even the stamps file: it was rewritten, with the same bytes, on every no-op
    render. A change still rewrites it; a link planted there is refused up front."""
    fleet = tmp_path / "fleet"
    shutil.copytree(spec, fleet)
    out = tmp_path / "build"
    _render(fleet, out, 2)
    before = _states(out)
    again = _render(fleet, out, 2)
    assert not again.changed
    after = _states(out)
    assert {k for k in set(before) | set(after) if before.get(k) != after.get(k)} <= {build.LOCK}
    site = sorted((fleet / "sites").iterdir())[5]
    site.write_text(site.read_text().replace("\nname: ", "\nname: Renamed ", 1))
    _render(fleet, out, 2)
    assert _states(out)[build.CACHE] != after[build.CACHE]
    _assert_stamps_true(out)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes((out / build.CACHE).read_bytes())
    (out / build.CACHE).unlink()
    (out / build.CACHE).symlink_to(elsewhere)
    with pytest.raises(TreeError):  # the tree scan refuses a link before anything
        _render(fleet, out, 2)


class _CountedList(list[str]):
    """A list that counts the scans `x in list` makes of it."""

    scans = 0

    def __contains__(self, item: object) -> bool:
        _CountedList.scans += 1
        return super().__contains__(item)


def test_recording_stamps_never_scans_the_list_of_rendered_stores(tmp_path: Path) -> None:
    """A fleet-wide change re-renders every store: looking each kept stamp up in the list
    of re-rendered stores made recording them quadratic (0.9 s of a 10,000-store render
    in a profile). Every store here was kept and every one re-rendered: the list is
    never scanned, and each store's old stamp gives way to its new one."""
    ids = [f"s{i:04d}" for i in range(2000)]
    sites: dict[str, dict[str, object]] = {i: {"files": {}} for i in ids}
    was = {"fs": {i: "old" for i in ids}}
    _CountedList.scans = 0
    build._write_cache(tmp_path, sites, was, _CountedList(ids), {}, "d", {})
    assert _CountedList.scans == 0
    assert read_stamps(tmp_path)["fs"] == {i: store_stamp([]) for i in ids}
