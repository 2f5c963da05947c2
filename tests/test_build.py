"""The build tree: deterministic, incremental, pruned, journaled, checkable."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import pytest

from generator import build
from generator.analyze import analyze
from tests.conftest import DEMO, ROOT


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".posnet-")
    }


def _render(fleet: Path, out: Path, **kw: object) -> build.Change:
    a = analyze(fleet)
    assert not a.failed()
    return build.render_tree(out, a.fleet.name, a.plans, a.digests, **kw)  # type: ignore[arg-type]


def _check(fleet: Path, out: Path) -> build.CheckResult:
    a = analyze(fleet)
    return build.check_tree(out, a.fleet.name, a.plans, a.digests)


@pytest.fixture()
def fleet(tmp_path: Path) -> Path:
    dest = tmp_path / "fleet"
    shutil.copytree(DEMO, dest)
    return dest


def test_two_renders_identical_across_processes(tmp_path: Path) -> None:
    outs = []
    for i, seed in enumerate(("0", "12345")):
        out = tmp_path / f"out{i}"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run(
            [sys.executable, "-m", "generator", "render", str(DEMO), "-o", str(out)],
            check=True,
            env=env,
            cwd=ROOT,
            capture_output=True,
        )
        outs.append(_tree_digest(out))
    assert outs[0] == outs[1]
    assert any(k.startswith("sites/gent-01/") for k in outs[0])


def test_tree_layout_and_manifest(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    change = _render(fleet, out)
    assert len(change.rendered_sites) == 7
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fleet"] == "demo"
    for site, entry in manifest["sites"].items():
        for rel, digest in entry["files"].items():
            data = (out / "sites" / site / rel).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest
    assert (out / "inventory" / "hosts.yml").exists()
    assert (out / "inventory" / "host_vars" / "gent-01-edge.yml").exists()
    # no absolute machine paths, no timestamps
    for p in out.rglob("*"):
        if p.is_file() and not p.name.startswith(".posnet-"):
            text = p.read_text()
            assert str(tmp_path) not in text and str(ROOT) not in text, p


def test_rerender_unchanged_writes_nothing(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    _render(fleet, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    change = _render(fleet, out)
    assert change.rendered_sites == [] and change.skipped_sites == 7
    assert not change.written and not change.deleted
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p in before}
    assert {k: v for k, v in before.items() if ".posnet-cache" not in str(k)} == {
        k: v for k, v in after.items() if ".posnet-cache" not in str(k)
    }


def test_one_site_change_rerenders_one_site(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    _render(fleet, out)
    site = fleet / "sites" / "gent-01.yaml"
    site.write_text(site.read_text().replace("public_port: 18443", "public_port: 18444"))
    change = _render(fleet, out)
    # mechelen-hq's central proxy routes to gent-01's public port, so it follows.
    assert change.rendered_sites == ["gent-01", "mechelen-hq"]
    assert "sites/gent-01/firewall/nftables.nft" in change.written
    assert "18444" in (out / "sites/gent-01/firewall/nftables.nft").read_text()
    assert _check(fleet, out).ok


def test_check_catches_stale_edited_and_stray(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    _render(fleet, out)
    assert _check(fleet, out).ok
    nft = out / "sites/gent-01/firewall/nftables.nft"
    nft.write_text(nft.read_text() + "# hand edit\n")
    (out / "sites/gent-01/stray.txt").write_text("x\n")
    res = _check(fleet, out)
    assert "sites/gent-01/firewall/nftables.nft" in res.stale
    assert "sites/gent-01/stray.txt" in res.stray
    # a spec change makes the committed tree stale too
    _render(fleet, out)
    assert _check(fleet, out).ok, "render repairs hand edits and removes strays"
    site = fleet / "sites" / "bruges-06.yaml"
    site.write_text(site.read_text().replace("8443", "8444"))
    assert not _check(fleet, out).ok


def test_hand_edit_is_repaired_by_next_render(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    _render(fleet, out)
    handover = out / "sites/gent-01/HANDOVER.md"
    original = handover.read_text()
    handover.write_text("oops\n")
    change = _render(fleet, out)
    assert change.rendered_sites == ["gent-01"]
    assert handover.read_text() == original


def test_removed_site_is_pruned(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    _render(fleet, out)
    (fleet / "sites" / "leuven-04.yaml").unlink()
    change = _render(fleet, out)
    assert not (out / "sites" / "leuven-04").exists()
    assert any(d.startswith("sites/leuven-04/") for d in change.deleted)
    assert not (out / "inventory/host_vars/leuven-04-edge.yml").exists()
    assert "leuven-04" not in (out / "inventory/hosts.yml").read_text()
    assert _check(fleet, out).ok


def test_site_filter_renders_only_that_site(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    _render(fleet, out)
    for name in ("gent-01", "bruges-06"):
        site = fleet / "sites" / f"{name}.yaml"
        site.write_text(site.read_text().replace("name: ", "name: X ", 1))
    change = _render(fleet, out, only=("gent-01",))
    assert change.rendered_sites == ["gent-01"]
    assert not _check(fleet, out).ok  # bruges-06 still stale


def test_interrupted_before_commit_point_keeps_old_tree(fleet: Path, tmp_path: Path) -> None:
    out = tmp_path / "build"
    _render(fleet, out)
    before = _tree_digest(out)
    staging = out / build.STAGING / "sites/gent-01/HANDOVER.md"
    staging.parent.mkdir(parents=True)
    staging.write_text("half-written\n")
    assert build.recover(out) == "discarded an interrupted render"
    assert _tree_digest(out) == before
    assert not (out / build.STAGING).exists()


def test_interrupted_after_commit_point_is_finished(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "build"
    _render(fleet, out)
    site = fleet / "sites" / "gent-01.yaml"
    site.write_text(site.read_text().replace("public_port: 18443", "public_port: 18445"))
    calls = {"n": 0}
    real = os.replace

    def crash_midway(src: object, dst: object) -> None:
        real(src, dst)  # type: ignore[arg-type]
        if str(dst).endswith(build.JOURNAL) or not str(dst).startswith(f"{out}/"):
            return  # the journal, or a cache file outside the tree (site cache buckets)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(build.os, "replace", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        _render(fleet, out)
    monkeypatch.setattr(build.os, "replace", real)
    assert (out / build.JOURNAL).exists()
    assert build.recover(out) == "finished an interrupted render"
    assert "18445" in (out / "sites/gent-01/firewall/nftables.nft").read_text()
    assert _check(fleet, out).ok


def _crash_at(monkeypatch: pytest.MonkeyPatch, step: int) -> list[str]:
    """Make the step-th move from staging into the tree raise after it is done;
    returns the list every move tried is recorded in."""
    moves: list[str] = []
    real = os.replace

    def replace(src: object, dst: object) -> None:
        staged = f"/{build.STAGING}/" in str(src)
        if staged:
            moves.append(str(dst))  # tried, whether it succeeds or not
        real(src, dst)  # type: ignore[arg-type]
        if staged and len(moves) == step:
            raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(build.os, "replace", replace)
    return moves


def test_a_commit_cut_at_any_move_is_finished_to_the_same_tree(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New stores' folders move in whole, changed files one by one: whichever move a
    power cut follows (and one more in the recovery), recover() finishes the tree that
    an uncut render makes."""
    leuven = fleet / "sites" / "leuven-04.yaml"
    spec = leuven.read_text()
    leuven.unlink()
    before = tmp_path / "before"
    _render(fleet, before)
    leuven.write_text(spec)  # a new store: its folder moves in whole
    gent = fleet / "sites" / "gent-01.yaml"
    gent.write_text(gent.read_text().replace("public_port: 18443", "public_port: 18445"))
    want = tmp_path / "want"
    _render(fleet, want)
    step = 0
    while True:
        step += 1
        out = tmp_path / f"cut-{step}"
        shutil.copytree(before, out)
        moves = _crash_at(monkeypatch, step)
        try:
            _render(fleet, out)
        except KeyboardInterrupt:
            monkeypatch.undo()
            _crash_at(monkeypatch, 1)  # and the recovery cut too, after its first move
            said = None
            with suppress(KeyboardInterrupt):
                said = build.recover(out)
            monkeypatch.undo()
            assert (said or build.recover(out)) == "finished an interrupted render"
            assert _tree_digest(out) == _tree_digest(want), f"cut after move {step}"
            continue
        monkeypatch.undo()
        assert _tree_digest(out) == _tree_digest(want)
        break
    assert any(m.endswith("/sites/leuven-04") for m in moves), moves
    assert not any("/sites/leuven-04/" in m for m in moves), "its files came with it"
    assert any(m.endswith("/sites/gent-01/firewall/nftables.nft") for m in moves), moves


def test_a_first_render_moves_folders_not_files(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moves = _crash_at(monkeypatch, 0)
    _render(fleet, tmp_path / "build")
    assert sorted(m.rsplit("/", 1)[1] for m in moves) == [
        ".gitignore",
        "inventory",
        "manifest.json",
        "sites",
    ]


def test_secrets_never_in_tree(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSNET_DDNS_ANTWERP", "s3cr3t-value-xyz")
    out = tmp_path / "build"
    _render(fleet, out)
    for p in out.rglob("*"):
        if p.is_file():
            assert "s3cr3t-value-xyz" not in p.read_text()
    hv = (out / "inventory/host_vars/antwerp-02-edge.yml").read_text()
    assert "env:POSNET_DDNS_ANTWERP" in hv
