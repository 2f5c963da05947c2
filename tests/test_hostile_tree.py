"""A build tree written by a stranger cannot make posnet touch anything outside it.

The rendered tree is committed to the fleet repository and CI runs `render --check` on
every pull request, so each file in it is hostile input. Every case here renders a
tree, tampers with it, runs render, render --check and apply (the manifest check that
runs before Ansible), and shows: exit 1, a message naming the offending path, and an
`outside` folder (sentinel files, a folder, and a FIFO that would hang any reader)
exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from generator import build, tree_guard, tree_scan
from tests.treeutil import copy_demo, posnet, posnet_process, read_stamps, snapshot, write_stamps


@dataclass
class World:
    fleet: Path
    out: Path
    outside: Path
    before: dict[str, tuple[object, ...]]
    forks: list[bool] | None = None  # early_scan()'s fork decisions, when it is forced

    def untouched(self) -> None:
        assert snapshot(self.outside) == self.before, "something outside the tree changed"


@pytest.fixture(params=["scan-here", "scan-forked"])
def world(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> World:
    """Each attack twice: the tree scanned in this process, and scanned by early_scan()'s
    forked child while the fleet is validated (a big tree's path; its error must come
    back as the same refusal, and nothing may be touched meanwhile)."""
    real = build.Forked.__init__
    forks: list[bool] = []

    def spy(self: Any, fn: Any, fork: bool) -> None:
        forks.append(fork)
        real(self, fn, fork)

    if request.param == "scan-forked":
        monkeypatch.setattr(tree_scan, "EARLY_SCAN_BYTES", 0)
        monkeypatch.setattr(os, "cpu_count", lambda: 2)  # forks on a 1-core runner too
        monkeypatch.setattr(build.Forked, "__init__", spy)
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "build"
    assert posnet("render", fleet, "-o", out).returncode == 0
    outside = tmp_path / "outside"
    (outside / "dir" / "host_vars").mkdir(parents=True)
    (outside / "keep.txt").write_text("precious\n")
    (outside / "dir" / "stray.conf").write_text("precious too\n")
    (outside / "dir" / "host_vars" / "other-edge.yml").write_text("x: 1\n")
    os.mkfifo(outside / "tripwire")  # opening it to read blocks: a read would hang posnet
    forked = forks if request.param == "scan-forked" else None
    return World(fleet, out, outside, snapshot(outside), forked)


def _attack(w: World, offending: Path, *, apply: bool = True, scanned: bool = True) -> None:
    """render, render --check (and apply): exit 1 naming `offending`, outside intact.
    `scanned`: the tree gets as far as the scan (a linked output folder does not)."""
    runs = [("render", w.fleet, "-o", w.out), ("render", w.fleet, "-o", w.out, "--check")]
    if apply:
        runs.append(("apply", w.out))
    for args in runs:
        res = posnet(*args, timeout=60)
        assert res.returncode == 1, (args, res.returncode, res.stderr[-2000:])
        assert str(offending) in res.stderr, (args, res.stderr[-2000:])
        assert "internal error" not in res.stderr
        w.untouched()
    if w.forks is not None and scanned:
        assert any(w.forks), "the scan did not run in early_scan()'s forked child"


# ------------------------------------------------------------ crafted manifest / journal


Z = "0" * 64


def _file_climbs_out(m: dict[str, Any], o: Path) -> None:
    m["sites"]["gent-01"]["files"]["../../../outside/keep.txt"] = Z


def _site_id_climbs_out(m: dict[str, Any], o: Path) -> None:
    m["sites"]["../../outside"] = {"input": Z, "files": {"keep.txt": Z}}


def _absolute_path(m: dict[str, Any], o: Path) -> None:
    m["sites"]["gent-01"]["files"][str(o / "keep.txt")] = Z


def _wrong_shape(m: dict[str, Any], o: Path) -> None:
    m["sites"] = []


@pytest.mark.parametrize(
    "craft", [_file_climbs_out, _site_id_climbs_out, _absolute_path, _wrong_shape]
)
def test_crafted_manifest_is_refused(
    world: World, craft: Callable[[dict[str, Any], Path], None]
) -> None:
    manifest = world.out / "manifest.json"
    doc = json.loads(manifest.read_text())
    craft(doc, world.outside)
    manifest.write_text(json.dumps(doc))
    for args in [("render", world.fleet, "-o", world.out), ("apply", world.out)]:
        res = posnet(*args)
        assert res.returncode == 1, res.stderr
        assert str(manifest) in res.stderr and "--force" in res.stderr
        world.untouched()
    res = posnet("render", world.fleet, "-o", world.out, "--check")
    assert res.returncode == 1 and f"{manifest}: stale" in res.stdout
    # the check's advice is what repairs it: a plain render stops at this manifest
    remedy = f"run `posnet render {world.fleet} -o {world.out} --force` (the manifest is damaged)"
    assert res.stderr.rstrip().endswith(remedy), res.stderr
    res = posnet("render", world.fleet, "-o", world.out, "--check", "--format", "json")
    assert [d["expected"] for d in json.loads(res.stdout) if d["code"] == "E401"] == [remedy]
    # --force discards the damaged manifest and repairs the tree
    assert posnet("render", world.fleet, "-o", world.out, "--force").returncode == 0
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    world.untouched()


@pytest.mark.parametrize(
    "ops",
    [
        pytest.param({"write": [], "delete": ["../outside/keep.txt"]}, id="delete-climbs-out"),
        pytest.param({"write": ["../outside/keep.txt"], "delete": []}, id="write-climbs-out"),
        pytest.param({"write": [], "delete": ["ABS/keep.txt"]}, id="delete-absolute"),
        pytest.param({"write": [], "delete": ["sites/../../outside/keep.txt"]}, id="dotdot-inside"),
        pytest.param({"write": [], "delete": ["fleet.yaml"]}, id="not-a-tree-file"),
        pytest.param({"write": "sites/x"}, id="wrong-shape"),
        pytest.param(None, id="empty"),
    ],
)
def test_crafted_or_damaged_journal_is_refused(world: World, ops: object) -> None:
    journal = world.out / ".posnet-journal.json"
    text = "" if ops is None else json.dumps(ops).replace("ABS", str(world.outside))
    journal.write_text(text)
    (world.out / ".posnet-staging").mkdir()
    (world.out / ".posnet-staging" / "keep.txt").write_text("staged\n")
    for args in [
        ("render", world.fleet, "-o", world.out),
        ("render", world.fleet, "-o", world.out, "--check"),
    ]:
        res = posnet(*args)
        assert res.returncode == 1, res.stderr
        assert str(journal) in res.stderr and "--force" in res.stderr, res.stderr
        assert "internal error" not in res.stderr
        world.untouched()
    res = posnet("render", world.fleet, "-o", world.out, "--force")
    assert res.returncode == 0 and "discarded a damaged journal" in res.stderr
    assert not journal.exists() and not (world.out / ".posnet-staging").exists()
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    world.untouched()


def test_crafted_cache_is_ignored(world: World) -> None:
    """The stat cache is a local speed-up: a committed, crafted one changes nothing,
    even signed with the key the run uses (posnet() runs with the cache off: b"")."""
    doc = read_stamps(world.out)
    doc["fleet"]["../outside/keep.txt"] = "1:1:1 x"
    doc["fs"]["../outside"] = "keep.txt=1:1:1"
    write_stamps(world.out, doc, key=b"")
    (world.out / "sites" / "gent-01" / "HANDOVER.md").write_text("edited\n")
    assert posnet("render", world.fleet, "-o", world.out).returncode == 0
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    world.untouched()


def test_stamps_that_vouch_for_an_edited_file_are_trusted_only_if_signed_here(
    world: World, tmp_path: Path
) -> None:
    """A stamps file forged (or committed) to carry an edited file's new stamp made
    every render skip the file that `render --check` called stale. Only stamps signed
    with this user's key (in the private cache folder) count now."""
    cache = tmp_path / "user-cache"
    env = {"POSNET_CACHE_DIR": str(cache)}
    assert (
        posnet_process("render", world.fleet, "-o", world.out, "--force", env=env).returncode == 0
    )
    path = world.out / "sites" / "gent-01" / "firewall" / "nftables.nft"
    want = path.read_bytes()
    with path.open("ab") as fh:
        fh.write(b"# evil\n")
    doc = read_stamps(world.out)
    folder = world.out / "sites" / "gent-01"
    doc["fs"]["gent-01"] = tree_guard.store_stamp(
        (p.relative_to(folder).as_posix(), tree_guard.stamp_of(p.stat()))
        for p in folder.rglob("*")
        if p.is_file()
    )
    write_stamps(world.out, doc, key=b"forger's guess")
    assert posnet_process("render", world.fleet, "-o", world.out, env=env).returncode == 0
    assert path.read_bytes() == want
    assert (cache / "stamps.key").stat().st_mode & 0o777 == 0o600
    world.untouched()


def _key_after(folder: str, start: Any, keys: Any) -> None:
    from generator import user_cache

    start.wait()
    keys.put(user_cache._key_in(Path(folder)))


def test_renders_that_make_the_stamps_key_at_once_all_keep_one_key(tmp_path: Path) -> None:
    """Two first renders at once must not each keep their own key: the later one's
    replace made the earlier one's stamps unverifiable (every file re-checked)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for attempt in range(5):
        folder = tmp_path / f"cache-{attempt}"
        folder.mkdir(mode=0o700)
        start, keys = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_key_after, args=(str(folder), start, keys)) for _ in range(6)]
        for proc in procs:
            proc.start()
        got = {keys.get(timeout=30) for _ in procs}
        for proc in procs:
            proc.join(30)
        assert got == {(folder / "stamps.key").read_bytes()}
        assert sorted(p.name for p in folder.iterdir()) == ["stamps.key"]  # no temp left


DEEP = {
    "deep-array": "[" * 100_000 + "]" * 100_000,
    "deep-object": '{"a":' * 100_000 + "1" + "}" * 100_000,
}


@pytest.mark.parametrize("payload", DEEP.values(), ids=DEEP.keys())
@pytest.mark.parametrize("name", ["manifest.json", ".posnet-journal.json"])
def test_deeply_nested_manifest_or_journal_is_damaged(
    world: World, name: str, payload: str
) -> None:
    """JSON nested past Python's recursion limit: the parser raises RecursionError, which
    was no "damaged" case and ended as an internal error (exit 3), even with --force."""
    path = world.out / name
    path.write_text(payload)
    res = posnet("render", world.fleet, "-o", world.out)
    assert res.returncode == 1, res.stderr[-2000:]
    assert f"{path}: damaged" in res.stderr and "--force" in res.stderr
    res = posnet("render", world.fleet, "-o", world.out, "--check")
    assert res.returncode == 1 and "internal error" not in res.stderr, res.stderr[-2000:]
    res = posnet("apply", world.out)
    assert res.returncode == 1 and "internal error" not in res.stderr, res.stderr[-2000:]
    res = posnet("render", world.fleet, "-o", world.out, "--force")
    assert res.returncode == 0, res.stderr[-2000:]
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    world.untouched()


@pytest.mark.parametrize("payload", DEEP.values(), ids=DEEP.keys())
def test_deeply_nested_cache_is_ignored(world: World, payload: str) -> None:
    """The stat cache is posnet's own speed-up: a damaged one is rebuilt, never an error."""
    (world.out / ".posnet-cache.json").write_text(payload)
    for args in [("--check",), (), ("--check",)]:
        res = posnet("render", world.fleet, "-o", world.out, *args)
        assert res.returncode == 0, (args, res.stderr[-2000:])
    assert (world.out / ".posnet-cache.json").read_text() != payload
    world.untouched()


# --------------------------------------------------------------------------- links


def test_symlinked_store_folder(world: World) -> None:
    store = world.out / "sites" / "gent-01"
    for p in store.rglob("*"):
        if p.is_file():
            (world.outside / "dir" / p.name).write_bytes(p.read_bytes())
    world.before = snapshot(world.outside)
    _rm(store)
    store.symlink_to(world.outside / "dir")
    _attack(world, store)


def test_symlinked_inventory_folder(world: World) -> None:
    inv = world.out / "inventory"
    _rm(inv)
    inv.symlink_to(world.outside / "dir")
    _attack(world, inv)


def test_symlinked_output_folder(world: World, tmp_path: Path) -> None:
    real = world.outside / "real-build"
    world.out.rename(real)
    world.before = snapshot(world.outside)
    world.out.symlink_to(real)
    _attack(world, world.out, scanned=False)


def test_symlinked_file_to_a_fifo_outside(world: World) -> None:
    """A file of the tree linked to a FIFO outside: reading it would hang posnet."""
    target = world.out / "sites" / "gent-01" / "HANDOVER.md"
    target.unlink()
    target.symlink_to(world.outside / "tripwire")
    _attack(world, target)


def test_symlinked_manifest_and_journal(world: World) -> None:
    for name in ("manifest.json", ".posnet-journal.json", ".posnet-cache.json"):
        link = world.out / name
        if link.exists():
            link.unlink()
        link.symlink_to(world.outside / "tripwire")
        _attack(world, link)
        link.unlink()


def test_symlinked_staging_folder(world: World) -> None:
    staging = world.out / ".posnet-staging"
    staging.symlink_to(world.outside / "dir")
    _attack(world, staging)


# --------------------------------------------------------------------------- FIFOs


@pytest.mark.parametrize(
    "rel",
    [
        "sites/gent-01/HANDOVER.md",
        "inventory/hosts.yml",
        "manifest.json",
        ".posnet-journal.json",
        ".posnet-cache.json",
        ".gitignore",
    ],
)
def test_file_replaced_by_a_fifo(world: World, rel: str) -> None:
    fifo = world.out / rel
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    _attack(world, fifo)


def _rm(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


# ------------------------------------------------------------------- render repairs


@pytest.mark.parametrize(
    "stray",
    [
        "sites/gent-01/extra.conf",  # in a store that is otherwise unchanged
        "sites/other-fleet-07/HANDOVER.md",  # a store of another fleet's render
        "inventory/host_vars/other-fleet-07-edge.yml",
        "inventory/group_vars/all.yml",
    ],
)
def test_plain_render_repairs_what_check_calls_stray(world: World, stray: str) -> None:
    """What two renders of different fleets into one folder left behind: `--check`
    called it stray while a plain render said "unchanged"."""
    path = world.out / stray
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("left over\n")
    res = posnet("render", world.fleet, "-o", world.out, "--check")
    assert res.returncode == 1 and f"{path}: stray" in res.stdout
    assert posnet("render", world.fleet, "-o", world.out).returncode == 0
    assert not path.exists()
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    world.untouched()


def _file_for_folder(world: World, rel: str) -> None:
    shutil.rmtree(world.out / rel)
    (world.out / rel).write_text("a file where a folder belongs\n")


def _folder_for_file(world: World, rel: str) -> None:
    (world.out / rel).unlink()
    (world.out / rel / "deep").mkdir(parents=True)
    (world.out / rel / "deep" / "x.conf").write_text("a folder where a file belongs\n")


@pytest.mark.parametrize(
    ("rel", "checked"),
    [
        ("sites/gent-01/firewall", "sites/gent-01/firewall: stray"),
        ("sites/gent-01", "sites/gent-01: stray"),
        ("inventory/host_vars", "inventory/host_vars: stray"),
        ("sites", "sites: stray"),
        ("inventory", "inventory: stray"),
    ],
)
def test_a_file_in_a_folders_place_is_a_stray_the_render_removes(
    world: World, rel: str, checked: str
) -> None:
    """A crafted commit swaps a folder of the tree for a file: the render used to
    commit its journal, then fail to move the store's files in, and so every render
    after it, --force included ("Not a directory ... pick another -o")."""
    want = _content(world.out)
    _file_for_folder(world, rel)
    res = posnet("render", world.fleet, "-o", world.out, "--check")
    assert res.returncode == 1 and f"{world.out}/{checked}" in res.stdout
    if rel in ("sites", "inventory"):  # what it held is missing too
        assert "HANDOVER.md: missing" in res.stdout or "hosts.yml: missing" in res.stdout
    res = posnet("render", world.fleet, "-o", world.out)
    assert res.returncode == 0, res.stderr
    assert not (world.out / build.JOURNAL).exists()
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    assert _content(world.out) == want
    world.untouched()


def test_a_tree_wedged_by_a_file_in_a_folders_place_recovers(world: World) -> None:
    """A journal committed with such a file in the way (what the previous version
    left behind) is finished by the next command."""
    gent = world.fleet / "sites" / "gent-01.yaml"
    gent.write_text(gent.read_text().replace("name: ", "name: X ", 1))
    rel = "sites/gent-01/firewall"
    _file_for_folder(world, rel)
    real = build._move_in
    build._move_in = lambda staging, root, folder: (  # type: ignore[assignment]
        _fail_like_before(root + folder) or real(staging, root, folder)
    )
    try:
        assert posnet("render", world.fleet, "-o", world.out).returncode == 1
    finally:
        build._move_in = real  # type: ignore[assignment]
    assert (world.out / build.JOURNAL).exists()
    res = posnet("render", world.fleet, "-o", world.out)
    assert res.returncode == 0, res.stderr
    assert "finished an interrupted render" in res.stderr
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    world.untouched()


def _fail_like_before(dest: str) -> bool:
    if os.path.isfile(dest):
        raise NotADirectoryError(20, "Not a directory", dest)
    return False


@pytest.mark.parametrize(
    "rel", ["sites/gent-01/HANDOVER.md", "inventory/hosts.yml", "manifest.json"]
)
def test_a_folder_in_a_files_place_is_refused_before_anything_is_written(
    world: World, rel: str
) -> None:
    """Like a link or a FIFO there: named, exit 1, no journal, the tree as it was."""
    _folder_for_file(world, rel)
    before = snapshot(world.out)
    for args in (("--check",), ()):
        res = posnet("render", world.fleet, "-o", world.out, *args)
        assert res.returncode == 1
        assert f"{world.out / rel}: not a regular file in the build tree" in res.stderr
    after = snapshot(world.out)
    assert {k: v for k, v in after.items() if not k.startswith(".posnet")} == {
        k: v for k, v in before.items() if not k.startswith(".posnet")
    }
    assert not (world.out / build.JOURNAL).exists()
    world.untouched()


def _content(tree: Path) -> dict[str, object]:
    """What the tree holds (folders, and files by content), posnet's own state aside."""
    return {
        rel: entry[0] if entry[0] == "dir" else entry[3]
        for rel, entry in snapshot(tree).items()
        if not rel.startswith(".posnet")
    }


def _change_a_store(world: World) -> None:
    gent = world.fleet / "sites" / "gent-01.yaml"
    gent.write_text(gent.read_text().replace("name: ", "name: Changed ", 1))


@pytest.mark.parametrize("name", sorted(tree_guard.OWN_FILES))
def test_a_folder_where_posnet_keeps_its_state_is_refused_up_front(world: World, name: str) -> None:
    """A folder at the cache's, journal's or lock's name (or their temporary files')
    stopped a render halfway, the cache's after the commit point, with advice to use
    --force that did not help. Now every command names it before touching anything."""
    _change_a_store(world)
    path = world.out / name
    if path.exists():
        path.unlink()
    (path / "inner").mkdir(parents=True)
    before = _content(world.out)
    for args in ((), ("--force",), ("--check",)):
        res = posnet("render", world.fleet, "-o", world.out, *args)
        assert res.returncode == 1, args
        assert f"{path}: not a regular file in the build tree" in res.stderr, res.stderr
        assert "posnet keeps its own state there: remove it" in res.stderr
    assert _content(world.out) == before
    assert not (world.out / build.STAGING).exists()
    world.untouched()


def test_a_file_where_posnet_stages_is_discarded(world: World) -> None:
    """The staging area is posnet's scratch: a file there is discarded like what an
    interrupted render left, where it used to stop every render that stages."""
    _change_a_store(world)
    (world.out / build.STAGING).write_text("not a folder\n")
    res = posnet("render", world.fleet, "-o", world.out)
    assert res.returncode == 0, res.stderr
    assert "discarded an interrupted render" in res.stderr
    assert not (world.out / build.STAGING).exists()
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    world.untouched()


def _oversized(path: Path) -> None:
    with path.open("r+b") as fh:  # sparse: nothing is written, every reader sees its size
        fh.truncate(tree_guard.MAX_TREE_FILE + 1)


def _not_utf8(path: Path) -> None:
    path.write_bytes(b"\xff\xfe not text\n")


@pytest.mark.parametrize("spoil", [_oversized, _not_utf8])
@pytest.mark.parametrize(
    "rel", ["sites/gent-01/HANDOVER.md", "inventory/host_vars/gent-01-edge.yml"]
)
def test_a_store_file_posnet_could_not_have_written_is_stale_and_repaired(
    world: World, rel: str, spoil: Callable[[Path], None]
) -> None:
    """Larger than posnet ever writes, or not UTF-8: the render used to stop at an
    oversized one every time, and --check --full called a non-UTF-8 one missing."""
    path = world.out / rel
    want = path.read_bytes()
    spoil(path)
    for args in (("--check",), ("--check", "--full")):
        res = posnet("render", world.fleet, "-o", world.out, *args)
        assert res.returncode == 1, res.stderr
        assert f"{path}: stale" in res.stdout, (args, res.stdout[-300:], res.stderr)
    res = posnet("render", world.fleet, "-o", world.out)
    assert res.returncode == 0, res.stderr
    assert path.read_bytes() == want
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    world.untouched()


def test_a_mode_posnet_does_not_leave_is_stale_and_repaired(world: World) -> None:
    """`chmod +x` on a rendered file (a mode change Git records) and a file its owner
    may not read passed `--check` and stayed after a render."""
    exe = world.out / "sites" / "gent-01" / "firewall" / "nftables.nft"
    locked = world.out / "inventory" / "host_vars" / "gent-01-edge.yml"
    exe.chmod(0o755)
    locked.chmod(0o000)
    for args in (("--check",), ("--check", "--full")):
        res = posnet("render", world.fleet, "-o", world.out, *args)
        assert res.returncode == 1, res.stderr
        for path in (exe, locked):
            assert f"{path}: stale" in res.stdout, (args, res.stdout[-500:])
    assert posnet("render", world.fleet, "-o", world.out).returncode == 0
    for path in (exe, locked):
        mode = path.stat().st_mode
        assert not mode & 0o111 and mode & 0o400, (path, oct(mode))
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    world.untouched()


def test_an_oversized_stamps_file_is_ignored_not_fatal(world: World) -> None:
    """The stamps file is an optimisation: one larger than posnet writes stopped every
    render ("larger than posnet ever writes", no remedy named) while --check passed. It
    now counts as no stamps: the files themselves are checked, an edit is repaired."""
    path = world.out / "sites" / "gent-01" / "HANDOVER.md"
    want = path.read_bytes()
    path.write_bytes(want + b"edited\n")
    _oversized(world.out / build.CACHE)
    res = posnet("render", world.fleet, "-o", world.out)
    assert res.returncode == 0, res.stderr
    assert path.read_bytes() == want
    assert (world.out / build.CACHE).stat().st_size < tree_guard.MAX_TREE_FILE
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0
    world.untouched()


def test_edit_that_keeps_size_and_mtime_is_repaired(world: World) -> None:
    """An in-place edit with the same size, its mtime set back: still re-rendered."""
    path = world.out / "sites" / "gent-01" / "HANDOVER.md"
    st = path.stat()
    text = path.read_text()
    path.write_text(text.replace("e", "E", 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 1
    assert posnet("render", world.fleet, "-o", world.out).returncode == 0
    assert path.read_text() == text
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0


def test_inventory_edit_that_keeps_size_and_mtime_is_repaired(world: World) -> None:
    """The same for a host_vars file, whose stamp the scan takes too (the inventory's
    stamps are read by the fleet-level step, not by the stores' check)."""
    path = world.out / "inventory" / "host_vars" / "gent-01-edge.yml"
    st = path.stat()
    text = path.read_text()
    path.write_text(text.replace("a", "A", 1))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert posnet("render", world.fleet, "-o", world.out).returncode == 0
    assert path.read_text() == text
    assert posnet("render", world.fleet, "-o", world.out, "--check").returncode == 0


def test_cache_written_next_to_another_manifest_is_ignored(world: World) -> None:
    """The stat cache holds the digest of the manifest it was written with; next to any
    other manifest (another render, a checkout) it is ignored."""
    doc = read_stamps(world.out)
    doc["manifest"] = "0" * 64
    path = world.out / "sites" / "gent-01" / "HANDOVER.md"
    text = path.read_text()
    path.write_text(text.replace("e", "E", 1))
    stat_now = partial(build._stamp_now, str(world.out), {})
    doc["fs"]["gent-01"] = build._site_stamp("gent-01", doc_files(world), stat_now)
    write_stamps(world.out, doc, key=b"")  # matching the edited files, signed as posnet()
    assert posnet("render", world.fleet, "-o", world.out).returncode == 0
    assert path.read_text() == text


def doc_files(world: World) -> list[str]:
    manifest = json.loads((world.out / "manifest.json").read_text())
    return list(manifest["sites"]["gent-01"]["files"])
