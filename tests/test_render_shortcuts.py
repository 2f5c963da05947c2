"""The shortcuts of a render that finds the tree as it left it, attacked.

A manifest whose digest a stamps file signed with this user's key names (and posnet's
own digest) is one this posnet wrote: it is parsed without the checks of valid_manifest,
and the text of each unchanged store's entry is copied into the new manifest. A store's
folder is compared whole with the stamps of the files the manifest lists. Each test here
fails on a version that trusts more than that."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from generator import build, jsontext
from generator.analyze import analyze
from generator.tree_guard import TreeError
from tests.treeutil import read_stamps, rendered_bench_fleet, write_stamps


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return rendered_bench_fleet(tmp_path_factory.mktemp("shortcuts"), 12, seed=11)


@pytest.fixture
def world(bench: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the bench fleet, rendered with a private cache (a keyed stamps file)."""
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    shutil.copytree(bench[0], tmp_path / "fleet")
    _render(tmp_path / "fleet", tmp_path / "build")
    return tmp_path


def _render(fleet: Path, out: Path) -> build.Change:
    a = analyze(fleet)
    return build.render_tree(out, a.fleet.name, a.plans, a.digests)


def _edit_one(fleet: Path) -> str:
    path = sorted((fleet / "sites").iterdir())[3]
    path.write_text(path.read_text().replace("\nname: ", "\nname: Renamed ", 1))
    return path.stem


def _canonical(out: Path) -> tuple[str, str]:
    """The manifest on disk, and what manifest_text writes for what it holds."""
    text = (out / build.MANIFEST).read_text()
    return text, jsontext.dumps(json.loads(text), indent=1) + "\n"


def test_a_manifest_put_together_from_old_entries_is_the_one_written_whole(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = world / "build"
    copied: list[int] = []
    entry_texts = build.entry_texts
    monkeypatch.setattr(build, "entry_texts", lambda t, n: copied.append(n) or entry_texts(t, n))
    changed = _edit_one(world / "fleet")
    change = _render(world / "fleet", out)
    assert changed in change.rendered_sites and len(change.rendered_sites) < 12
    assert copied == [12]  # the shortcut was taken
    text, whole = _canonical(out)
    assert text == whole
    a = analyze(world / "fleet")
    assert build.check_tree(out, a.fleet.name, a.plans, a.digests, full=True).ok
    assert not _render(world / "fleet", out).changed


def test_a_hand_edited_manifest_is_checked_and_rewritten(world: Path) -> None:
    out = world / "build"
    doc = json.loads((out / build.MANIFEST).read_text())
    site = sorted(doc["sites"])[5]
    rel = sorted(doc["sites"][site]["files"])[0]
    doc["sites"][site]["files"][rel] = "0" * 64  # a well-formed lie
    (out / build.MANIFEST).write_text(jsontext.dumps(doc, indent=1) + "\n")
    change = _render(world / "fleet", out)
    assert site in change.rendered_sites  # the stamps no longer vouch for anything
    text, whole = _canonical(out)
    assert text == whole and json.loads(text)["sites"][site]["files"][rel] != "0" * 64


def _hostile_manifest(out: Path) -> None:
    doc = json.loads((out / build.MANIFEST).read_text())
    site = sorted(doc["sites"])[2]
    doc["sites"][site]["files"]["../../../escaped"] = "1" * 64
    (out / build.MANIFEST).write_text(jsontext.dumps(doc, indent=1) + "\n")


def _vouch(out: Path, key: bytes | None) -> None:
    """The stamps file rewritten to name the manifest now there, signed with `key`."""
    doc = read_stamps(out)
    doc["manifest"] = build.sha256((out / build.MANIFEST).read_text())
    write_stamps(out, doc, key)


def test_an_unkeyed_stamps_file_never_vouches_for_a_manifest(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a private cache the stamps are only checksummed: anyone can write them."""
    out = world / "build"
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    _render(world / "fleet", out)
    _hostile_manifest(out)
    _vouch(out, b"")
    with pytest.raises(TreeError, match="damaged manifest"):
        _render(world / "fleet", out)


@pytest.mark.parametrize(
    ("key", "posnet"), [(b"another user's key", None), (None, "0" * 64)], ids=["key", "posnet"]
)
def test_a_stamps_file_signed_elsewhere_or_by_another_posnet_vouches_for_no_manifest(
    world: Path, key: bytes | None, posnet: str | None
) -> None:
    out = world / "build"
    _hostile_manifest(out)
    if posnet is not None:
        doc = read_stamps(out)
        doc["posnet"] = posnet
        write_stamps(out, doc)
    _vouch(out, key)
    with pytest.raises(TreeError, match="damaged manifest"):
        _render(world / "fleet", out)


def test_the_stamps_file_names_this_posnet(world: Path) -> None:
    """What the test above forges: were it missing, no manifest would be trusted."""
    assert read_stamps(world / "build")["posnet"] == build.generator_digest()


def test_a_file_more_in_an_untouched_store_renders_it_and_goes(world: Path) -> None:
    out = world / "build"
    site = sorted(p.name for p in (out / "sites").iterdir())[4]
    (out / "sites" / site / "extra.conf").write_text("stray\n")
    change = _render(world / "fleet", out)
    assert change.rendered_sites == [site]
    assert f"sites/{site}/extra.conf" in change.deleted
    assert not (out / "sites" / site / "extra.conf").exists()


def test_a_file_edited_in_place_keeping_size_and_mtime_is_repaired(world: Path) -> None:
    out = world / "build"
    site = sorted(p.name for p in (out / "sites").iterdir())[6]
    path = sorted((out / "sites" / site).iterdir())[0]
    good = path.read_bytes()
    st = os.stat(path)
    path.write_bytes(bytes([good[0] ^ 1]) + good[1:])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    change = _render(world / "fleet", out)
    assert change.rendered_sites == [site]
    assert path.read_bytes() == good


@pytest.mark.parametrize("which", ["hosts", "host_vars"])
def test_an_inventory_file_edited_in_place_is_repaired_when_one_store_changed(
    world: Path, which: str
) -> None:
    """The inventory files found current by their stamps are made here, not in a
    forked process, when few are to be made: a hand edit still shows in its stamp."""
    out = world / "build"
    path = (
        out / build.HOSTS
        if which == "hosts"
        else sorted((out / "inventory/host_vars").iterdir())[1]
    )
    good = path.read_bytes()
    st = os.stat(path)
    path.write_bytes(good.replace(b"posnet", b"POSNET", 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    _edit_one(world / "fleet")
    change = _render(world / "fleet", out)
    assert str(path.relative_to(out)) in change.written
    assert path.read_bytes() == good
