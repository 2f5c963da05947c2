"""What decides that a store is rendered (or parsed) again, backed by the README's
promises: the site key holds the merged input, the catalog and posnet's own code; the
site cache is keyed by fleet.yaml and the group files and is used only from a private
folder; `--force` renders every store; the 4 MiB spec-file limit; and no machine path
reaches the build tree. Each test makes the state a wrong key would hide (a changed
catalog, default or posnet, a foreign cache folder, a tree rendered elsewhere) and
checks what the user sees: `render --check`, the rendered files, `posnet plan`."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from generator import build
from generator.analyze import analyze
from generator.cli import cli
from generator.yamlload import MAX_BYTES
from tests.conftest import DEMO

STORES = sorted(p.stem for p in (DEMO / "sites").glob("*.yaml"))
DELIVERECT = '  deliverect:\n    # Not published in the vendor guide: the MSP fills in what the partner announces.\n    sources: ["198.51.100.0/28"]\n'  # noqa: E501


@pytest.fixture()
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the demo fleet, with a site cache of this test's own."""
    monkeypatch.setenv("POSNET_CACHE_DIR", str(tmp_path / "cache"))
    dst = tmp_path / "fleet"
    shutil.copytree(DEMO, dst)
    return dst


def _posnet(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _render(fleet: Path, out: Path, *flags: str) -> build.Change:
    """Render in this process through the API the CLI uses: the Change tells which
    stores were rendered."""
    a = analyze(fleet)
    assert not a.failed(), a.diagnostics
    return build.render_tree(out, a.fleet.name, a.plans, a.digests, force="--force" in flags)


def _plan(fleet: Path, site: str) -> dict[str, object]:
    res = _posnet("plan", fleet, "--site", site)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert isinstance(doc, dict)
    return doc


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))


# 1. The catalog is part of the site key -------------------------------------------


def test_a_changed_partner_catalog_makes_the_store_stale_and_is_rendered(
    fleet: Path, tmp_path: Path
) -> None:
    """A partner's `sources` changed in fleet.yaml's catalog override leaves every site
    file and group untouched: only the catalog digest in the site key tells that
    mechelen-hq's firewall (which allow-lists deliverect's catalog sources) is stale.
    Without it `render --check` passes and a render keeps the old allow-list."""
    out = tmp_path / "build"
    assert _posnet("render", fleet, "-o", out).exit_code == 0
    firewall = out / "sites/mechelen-hq/firewall/nftables.nft"
    assert "198.51.100.0/28" in firewall.read_text()
    assert "198.51.100.0/29" not in firewall.read_text()
    _edit(fleet / "fleet.yaml", DELIVERECT, DELIVERECT.replace("/28", "/29"))

    check = _posnet("render", "--check", fleet, "-o", out)
    assert check.exit_code == 1, check.output
    assert f"{out}/sites/mechelen-hq/firewall/nftables.nft: stale" in check.output

    assert _posnet("render", fleet, "-o", out).exit_code == 0
    assert "198.51.100.0/29" in firewall.read_text()
    assert "198.51.100.0/28" not in firewall.read_text()
    assert _posnet("render", "--check", fleet, "-o", out).exit_code == 0


# 2. The site cache is keyed by fleet.yaml and the group files ---------------------


def test_an_edited_fleet_default_is_seen_through_a_warm_site_cache(fleet: Path) -> None:
    """A warm site cache holds gent-01 loaded (and planned) with the fleet default
    management port 22. Only fleet.yaml changes, not gent-01.yaml: a cache keyed by the
    site file alone would hand back the old merge and `plan` would still say 22."""
    assert _posnet("validate", fleet).exit_code == 0
    management = _plan(fleet, "gent-01")["management"]
    assert isinstance(management, dict)
    assert management["port"] == 22
    assert any((fleet.parent / "cache").glob("fleet-*.pickle")), "the cache was not warmed"
    _edit(fleet / "fleet.yaml", "      port: 22\n", "      port: 2222\n")
    management = _plan(fleet, "gent-01")["management"]
    assert isinstance(management, dict)
    assert management["port"] == 2222


def test_an_edited_group_default_is_seen_through_a_warm_site_cache(
    fleet: Path, tmp_path: Path
) -> None:
    """Same for a group file: bruges-06 takes its ISP from the coast group's defaults.
    After the cache is warm only groups/coast.yaml changes; plan, validate's view and
    the rendered files must all carry the new ISP."""
    out = tmp_path / "build"
    assert _posnet("render", fleet, "-o", out).exit_code == 0
    wan = _plan(fleet, "bruges-06")["wan"]
    assert isinstance(wan, dict)
    assert wan["isp"] == "Telenet"
    _edit(fleet / "groups/coast.yaml", "isp: Telenet", "isp: Orange")
    wan = _plan(fleet, "bruges-06")["wan"]
    assert isinstance(wan, dict)
    assert wan["isp"] == "Orange"
    assert _posnet("render", "--check", fleet, "-o", out).exit_code == 1


# 3. The cache is used only from a private folder ----------------------------------


class _Mark:
    """Unpickling this creates the folder `path`: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.path),)


def _plant(folder: Path, fleet: Path, marker: Path) -> Path:
    """A cache file exactly where posnet looks for this fleet's, valid in every way
    (its SHA-256 header matches) except that loading it runs code."""
    name = hashlib.sha256(os.fsencode(fleet.resolve())).hexdigest()[:32]
    payload = pickle.dumps(_Mark(marker), protocol=pickle.HIGHEST_PROTOCOL)
    planted = folder / f"fleet-{name}.pickle"
    planted.write_bytes(hashlib.sha256(payload).digest() + payload)
    return planted


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702], ids=["world+group", "group", "world"])
def test_a_cache_folder_others_can_write_is_never_read_or_written(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    """Anyone who can write the cache folder can put a pickle there, and unpickling
    runs their code. A folder writable by group or others is therefore ignored: the
    planted pickle is never loaded and posnet writes no cache into it."""
    folder = tmp_path / "shared-cache"
    folder.mkdir()
    os.chmod(folder, mode)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(folder))
    marker = tmp_path / "unpickled"
    planted = _plant(folder, fleet, marker)
    before = planted.read_bytes()

    res = _posnet("validate", fleet)
    assert res.exit_code == 0, res.output
    assert not marker.exists(), "a pickle from a writable folder was loaded"
    assert planted.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [planted.name]


def test_the_planted_pickle_is_what_a_private_folder_would_load(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: the same planted file in a private (0o700)
    folder is loaded, so its absence there means the folder was refused, not that the
    plant was misnamed."""
    folder = tmp_path / "own-cache"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("POSNET_CACHE_DIR", str(folder))
    marker = tmp_path / "unpickled"
    _plant(folder, fleet, marker)
    assert _posnet("validate", fleet).exit_code == 0
    assert marker.is_dir()


# 4. posnet's own code is part of the site key ------------------------------------


def test_a_changed_posnet_renders_every_store_again(
    fleet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another posnet (another generator_digest) may render the same input to other
    bytes, so a tree made by the old one is stale even when no spec changed:
    `render --check` says so and the next render renders every store."""
    out = tmp_path / "build"
    first = _render(fleet, out)
    assert sorted(first.rendered_sites) == STORES
    assert _posnet("render", "--check", fleet, "-o", out).exit_code == 0
    assert _render(fleet, out).rendered_sites == []  # up to date: nothing rendered

    real = build.generator_digest()
    monkeypatch.setattr(build, "generator_digest", lambda: hashlib.sha256(b"next").hexdigest())
    assert build.generator_digest() != real
    check = _posnet("render", "--check", fleet, "-o", out)
    assert check.exit_code == 1, check.output
    assert "stale" in check.output
    assert sorted(_render(fleet, out).rendered_sites) == STORES
    assert _posnet("render", "--check", fleet, "-o", out).exit_code == 0


# 5. The 4 MiB spec-file limit -----------------------------------------------------


def _pad(path: Path, size: int) -> None:
    """Grow a site file to exactly `size` bytes with a trailing comment."""
    raw = path.read_bytes()
    filler = size - len(raw) - len(b"# \n")
    assert filler > 0
    path.write_bytes(raw + b"# " + b"x" * filler + b"\n")
    assert path.stat().st_size == size


def test_a_site_file_of_exactly_four_mib_is_accepted(fleet: Path) -> None:
    """The limit is inclusive: a file of MAX_BYTES is read and validated normally."""
    assert MAX_BYTES == 4 * 1024 * 1024
    _pad(fleet / "sites/gent-01.yaml", MAX_BYTES)
    res = _posnet("validate", fleet)
    assert res.exit_code == 0, res.output
    assert "larger than" not in res.output


def test_a_site_file_one_byte_over_four_mib_is_refused_with_its_location(
    fleet: Path,
) -> None:
    """One byte over the limit the file is refused before it is parsed, with an error
    naming the file, and validate exits 1 (a huge or endless file never exhausts
    memory)."""
    _pad(fleet / "sites/gent-01.yaml", MAX_BYTES + 1)
    res = _posnet("validate", fleet)
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if "file is larger than 4 MiB" in ln]
    assert lines, res.output
    assert "sites/gent-01.yaml" in lines[0]


# 6. --force --------------------------------------------------------------------------


def test_force_renders_every_store_of_an_up_to_date_tree(fleet: Path, tmp_path: Path) -> None:
    """`render --force` re-renders every store even if its input is unchanged (a tree
    whose stamps and manifest are trusted but wrong is rebuilt). Rendering identical
    bytes leaves the tree as it was. Two guards keep this: `not force` in the freshness
    test and the file-stamp cache dropped under --force (no stamp: not untouched); this
    test fails only when both are gone, as either one alone renders every store."""
    out = tmp_path / "build"
    _render(fleet, out)
    assert _render(fleet, out).rendered_sites == []
    before = _tree(out)
    change = _render(fleet, out, "--force")
    assert sorted(change.rendered_sites) == STORES
    assert _tree(out) == before
    res = _posnet("render", "--force", fleet, "-o", out)
    assert res.exit_code == 0, res.output
    assert _tree(out) == before


# 7. Deterministic: no machine paths ---------------------------------------------


def _ignored(out: Path) -> set[str]:
    lines = (out / ".gitignore").read_text().splitlines()
    return {ln.strip("/") for ln in lines if ln and not ln.startswith("#")}


def _tree(out: Path) -> dict[str, bytes]:
    """Every file of a build tree but those its .gitignore lists (local state)."""
    ignored = _ignored(out)
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and rel.split("/")[0] not in ignored:
            files[rel] = p.read_bytes()
    return files


def test_trees_rendered_from_two_places_are_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same fleet copied to two different absolute paths (and folder names) and
    rendered into output folders at two different paths gives the same bytes: no fleet
    or output path leaks into a rendered file, so a tree reviewed in git does not
    change with the machine or checkout that rendered it."""
    trees = []
    for fleet_dir, out_dir in (
        (tmp_path / "a" / "fleet", tmp_path / "a" / "build"),
        (tmp_path / "elsewhere" / "deep" / "spec-repo", tmp_path / "ci" / "out-tree"),
    ):
        monkeypatch.setenv("POSNET_CACHE_DIR", str(fleet_dir.parent / "cache"))
        shutil.copytree(DEMO, fleet_dir)
        res = _posnet("render", fleet_dir, "-o", out_dir)
        assert res.exit_code == 0, res.output
        trees.append(_tree(out_dir))
    assert trees[0].keys() == trees[1].keys()
    assert len(trees[0]) > len(STORES)
    for rel, data in trees[0].items():
        assert data == trees[1][rel], rel
