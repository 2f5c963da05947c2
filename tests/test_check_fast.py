"""`render --check` by content hash: every stale, missing, stray and hand-edited file
is still caught, serially and in worker processes, and `--full` catches what the fast
path trusts (a file edited together with its hash in the manifest)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from generator import build
from generator.analyze import Analysis, analyze
from tests.conftest import ROOT
from tests.treeutil import rendered_bench_fleet

STORES = 230  # above workers.SMALL: jobs=2 checks in worker processes


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return rendered_bench_fleet(tmp_path_factory.mktemp("fast"), STORES, seed=7)


@pytest.fixture()
def world(rendered: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    fleet, out = tmp_path / "fleet", tmp_path / "build"
    shutil.copytree(rendered[0], fleet)
    shutil.copytree(rendered[1], out)
    return fleet, out


def _check(fleet: Path, out: Path, full: bool, jobs: int = 2) -> build.CheckResult:
    a: Analysis = analyze(fleet)
    return build.check_tree(out, a.fleet.name, a.plans, a.digests, jobs, full)


def _store(out: Path, n: int = 3) -> str:
    return sorted((out / "sites").iterdir())[n].name


def _manifest(out: Path) -> dict[str, object]:
    return json.loads((out / "manifest.json").read_text())  # type: ignore[no-any-return]


def _write_manifest(out: Path, doc: dict[str, object]) -> None:
    (out / "manifest.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def test_an_untouched_tree_passes_both_ways(world: tuple[Path, Path]) -> None:
    for full in (False, True):
        res = _check(*world, full=full)
        assert res.ok, res


def _edit_site_file(out: Path) -> str:
    site = _store(out)
    path = out / "sites" / site / "expectations.json"
    path.write_text(path.read_text() + " ")
    return f"sites/{site}/expectations.json"


def _edit_host_vars(out: Path) -> str:
    rel = sorted((out / "inventory" / "host_vars").iterdir())[5].relative_to(out).as_posix()
    (out / rel).write_text((out / rel).read_text().replace("root", "admin", 1))
    return rel


def _edit_hosts(out: Path) -> str:
    path = out / build.HOSTS
    path.write_text(path.read_text() + "# hand edit\n")
    return build.HOSTS


def _edit_gitignore(out: Path) -> str:
    (out / ".gitignore").write_text("")
    return ".gitignore"


def _edit_manifest_hash(out: Path) -> str:
    """A manifest hash changed, the file not: the file no longer matches its hash."""
    doc = _manifest(out)
    site = _store(out)
    files = doc["sites"][site]["files"]  # type: ignore[index]
    files["expectations.json"] = "0" * 64
    _write_manifest(out, doc)
    return f"sites/{site}/expectations.json"


def _edit_manifest_inventory_hash(kind: str) -> Callable[[Path], str]:
    """The manifest's hash of an inventory file (hosts.yml, or a store's host_vars)
    changed, the file not."""

    def edit(out: Path) -> str:
        doc = _manifest(out)
        inventory = doc["inventory"]
        assert isinstance(inventory, dict)
        rel = build.HOSTS if kind == "hosts" else sorted(inventory)[7]
        assert rel.startswith(f"inventory/{kind}"), rel
        inventory[rel] = "0" * 64
        _write_manifest(out, doc)
        return rel

    edit.__name__ = f"_edit_manifest_hash_of_{kind}"
    return edit


_edit_manifest_vars_hash = _edit_manifest_inventory_hash("host_vars")
_edit_manifest_hosts_hash = _edit_manifest_inventory_hash("hosts")
HASH_EDITS = (_edit_manifest_hash, _edit_manifest_vars_hash, _edit_manifest_hosts_hash)


def _edit_manifest_extra_store(out: Path) -> str:
    doc = _manifest(out)
    sites = doc["sites"]
    assert isinstance(sites, dict)
    sites["zz-removed"] = next(iter(sites.values()))
    _write_manifest(out, doc)
    return "manifest.json"


@pytest.mark.parametrize(
    "edit",
    [
        _edit_site_file,
        _edit_host_vars,
        _edit_hosts,
        _edit_gitignore,
        *HASH_EDITS,
        _edit_manifest_extra_store,
    ],
)
@pytest.mark.parametrize("jobs", [1, 2])
def test_hand_edits_are_stale(
    world: tuple[Path, Path], edit: Callable[[Path], str], jobs: int
) -> None:
    rel = edit(world[1])
    for full in (False, True):
        res = _check(*world, full=full, jobs=jobs)
        # a wrong hash in the manifest: the fast path finds the file does not match it,
        # --full that the manifest does not match the file
        assert set(res.stale) in ({rel}, {rel, "manifest.json"}, {"manifest.json"}), res
        assert rel in res.stale or (full and edit in HASH_EDITS), (full, res)
        assert not res.missing and not res.stray


@pytest.mark.parametrize("jobs", [1, 2])
def test_missing_files(world: tuple[Path, Path], jobs: int) -> None:
    out = world[1]
    site = _store(out, 7)
    site_file = f"sites/{site}/expectations.json"
    host_vars = sorted((out / "inventory" / "host_vars").iterdir())[9]
    (out / site_file).unlink()
    host_vars.unlink()
    (out / build.HOSTS).unlink()
    want = sorted([site_file, host_vars.relative_to(out).as_posix(), build.HOSTS])
    for full in (False, True):
        res = _check(*world, full=full, jobs=jobs)
        assert res.missing == want, (full, res)
        assert not res.stale and not res.stray


@pytest.mark.parametrize("jobs", [1, 2])
def test_stray_files(world: tuple[Path, Path], jobs: int) -> None:
    out = world[1]
    strays = [
        f"sites/{_store(out)}/firewall/extra.nft",  # in a store whose key matches
        "sites/gone-store/expectations.json",  # a store no longer in the spec
        "inventory/host_vars/gone-store.yml",
    ]
    for rel in strays:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("x\n")
    for full in (False, True):
        res = _check(*world, full=full, jobs=jobs)
        assert res.stray == sorted(strays), (full, res)
        assert not res.stale and not res.missing


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_spec_changed_without_a_render_is_stale(world: tuple[Path, Path], jobs: int) -> None:
    """The store's input key no longer matches: it is rendered and compared."""
    fleet, out = world
    site = _store(out, 11)
    spec = fleet / "sites" / f"{site}.yaml"
    text = spec.read_text()
    assert "\nname: " in text
    spec.write_text(text.replace("\nname: ", "\nname: Renamed ", 1))
    res = _check(fleet, out, full=False, jobs=jobs)
    assert "manifest.json" in res.stale
    assert any(f.startswith(f"sites/{site}/") for f in res.stale), res
    assert _check(fleet, out, full=True, jobs=jobs).stale == res.stale


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_store_removed_from_the_spec_changes_hosts_yml(
    world: tuple[Path, Path], jobs: int
) -> None:
    """Every store left is vouched for by the manifest, yet hosts.yml (which lists
    them all) is stale: its manifest hash is trusted only for the same set of stores."""
    fleet, out = world
    site = _store(out, STORES - 5)
    (fleet / "sites" / f"{site}.yaml").unlink()
    for full in (False, True):
        res = _check(fleet, out, full=full, jobs=jobs)
        assert res.stale == [build.HOSTS, "manifest.json"], (full, res)
        assert res.stray and all(site in f for f in res.stray), res
        assert not res.missing


def test_a_damaged_manifest_renders_every_store(world: tuple[Path, Path]) -> None:
    out = world[1]
    (out / "manifest.json").write_text("{not json")
    site_file = _edit_site_file(out)
    res = _check(*world, full=False)
    assert res.stale == sorted(["manifest.json", site_file])


def test_serial_and_parallel_checks_agree(world: tuple[Path, Path]) -> None:
    out = world[1]
    _edit_site_file(out)
    _edit_host_vars(out)
    (out / f"sites/{_store(out, 20)}/expectations.json").unlink()
    (out / f"sites/{_store(out, 30)}/stray.txt").write_text("x")
    results = [_check(*world, full=False, jobs=j) for j in (1, 2)]
    assert results[0] == results[1]
    assert results[0].stale and results[0].missing and results[0].stray


def test_a_consistent_forgery_needs_full(world: tuple[Path, Path]) -> None:
    """The documented limit: a file edited with its manifest hash passes the fast
    check (its input key still matches); --full renders the store and catches it."""
    out = world[1]
    rel = _edit_site_file(out)
    site, file = rel.removeprefix("sites/").split("/", 1)
    doc = _manifest(out)
    digest = hashlib.sha256((out / rel).read_bytes()).hexdigest()
    doc["sites"][site]["files"][file] = digest  # type: ignore[index]
    _write_manifest(out, doc)
    assert _check(*world, full=False).ok
    assert _check(*world, full=True).stale == ["manifest.json", rel]


def _posnet(*args: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "generator", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)


def test_cli_full_catches_the_forgery_and_help_states_the_limit(world: tuple[Path, Path]) -> None:
    fleet, out = world
    rel = _edit_site_file(out)
    site, file = rel.removeprefix("sites/").split("/", 1)
    doc = _manifest(out)
    doc["sites"][site]["files"][file] = hashlib.sha256((out / rel).read_bytes()).hexdigest()  # type: ignore[index]
    _write_manifest(out, doc)
    assert _posnet("render", fleet, "-o", out, "--check").returncode == 0
    res = _posnet("render", fleet, "-o", out, "--check", "--full")
    assert res.returncode == 1
    assert f"{out / rel}: stale" in res.stdout
    help_text = " ".join(_posnet("render", "--help").stdout.split())
    assert "its hash in the manifest passes (use --full)" in help_text
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "edited together with its hash in the manifest passes" in readme


def test_full_needs_check(world: tuple[Path, Path]) -> None:
    res = _posnet("render", world[0], "-o", world[1], "--full")
    assert res.returncode == 2
    assert "--full goes with --check" in res.stderr
