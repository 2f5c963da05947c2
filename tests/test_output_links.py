"""report, schema --write and init never write through a link nor into a special file.

Each case plants, where the command writes, a symbolic link to a file outside (the
victim), a link to a folder outside, or a FIFO, at the top of the output folder and
nested; the command must stop with exit 1 naming the path, leave the victim and the
linked folder untouched and write nothing. `report -o` inside the build tree or the
fleet folder is refused like render's -o.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

ORIG = "ORIG\n"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The worktree's posnet (python -m from ROOT); a hang (old code opening a FIFO)
    fails the test instead of blocking it."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "generator", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"posnet {' '.join(args)} hung (it opened a FIFO)")
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fleet repository from `posnet init`: fleet/ and the rendered build/."""
    root = tmp_path_factory.mktemp("out-links") / "repo"
    proc = run("init", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def listing(folder: Path) -> dict[str, str]:
    """Every entry below `folder`, not following links: path -> kind (and link target)."""
    out = {}
    for dirpath, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(dirpath, name)
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            elif path.is_file():
                out[rel] = "file:" + path.read_text()
            else:
                out[rel] = "special"
    return out


Plant = Callable[[Path, Path, Path], str]  # (output folder, victim, outside folder) -> rel


def link_file(rel: str) -> Plant:
    def plant(out: Path, victim: Path, _: Path) -> str:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).symlink_to(victim)
        return rel

    return plant


def link_folder(rel: str) -> Plant:
    def plant(out: Path, _: Path, outside: Path) -> str:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).symlink_to(outside, target_is_directory=True)
        return rel

    return plant


def fifo(rel: str) -> Plant:
    def plant(out: Path, _: Path, __: Path) -> str:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(out / rel)
        return rel

    return plant


def plants(*made: tuple[Callable[[str], Plant], str]) -> list[Any]:
    """One test parameter per (kind, path), named after both."""
    return [pytest.param(kind(rel), id=f"{kind.__name__}-{rel}") for kind, rel in made]


def _refused(tmp_path: Path, plant: Plant, args: Callable[[Path], list[str]], out: Path) -> None:
    victim, outside = tmp_path / "victim", tmp_path / "outside"
    victim.write_text(ORIG)
    outside.mkdir()
    out.mkdir(parents=True, exist_ok=True)
    rel = plant(out, victim, outside)
    before = listing(out)
    proc = run(*args(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    message = proc.stdout + proc.stderr
    assert f"{out / rel}:" in message, message
    assert "symbolic link" in message or "FIFO" in message, message
    assert "remove it" in message, message
    assert victim.read_text() == ORIG
    assert list(outside.iterdir()) == []
    assert listing(out) == before  # nothing written, not even beside the planted entry


REPORT_PLANTS = plants(
    (link_file, "index.html"),
    (link_folder, "stores"),
    (fifo, "report.css"),
    (link_file, "stores/store-01.html"),
    (link_folder, "stores/store-01.html"),
    (fifo, "stores/store-01.html"),
)


@pytest.mark.parametrize("plant", REPORT_PLANTS)
def test_report_refuses_links_and_fifos(repo: Path, tmp_path: Path, plant: Plant) -> None:
    def args(out: Path) -> list[str]:
        return ["report", str(repo / "build"), "-o", str(out), "--fleet", str(repo / "fleet")]

    _refused(tmp_path, plant, args, tmp_path / "rep")


def test_report_refuses_a_linked_output_folder(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "rep").symlink_to(outside, target_is_directory=True)
    proc = run("report", str(repo / "build"), "-o", str(tmp_path / "rep"))
    assert proc.returncode == 1
    assert f"{tmp_path / 'rep'}: symbolic link" in proc.stderr
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("where", ["build", "build/sub", "fleet", "fleet/sites", "stores"])
def test_report_refuses_the_build_tree_and_the_fleet_folder(
    repo: Path, tmp_path: Path, where: str
) -> None:
    if where == "stores":  # -o holding the build tree where the report writes its pages
        build, out = tmp_path / "stores", tmp_path
        assert run("render", str(repo / "fleet"), "-o", str(build)).returncode == 0
    else:
        build, out = repo / "build", repo / where
    before = listing(repo), listing(build)
    proc = run("report", str(build), "-o", str(out), "--fleet", str(repo / "fleet"))
    assert proc.returncode == 2, proc.stderr  # a usage error, as render's -o overlap
    assert f"-o {out}: the report would overlap the" in proc.stderr
    assert "pick a folder outside it" in proc.stderr
    assert (listing(repo), listing(build)) == before
    assert not (out / "index.html").exists()


def test_report_refuses_another_build_tree(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-build"
    assert run("render", str(repo / "fleet"), "-o", str(other)).returncode == 0
    before = listing(other)
    proc = run("report", str(repo / "build"), "-o", str(other))
    assert proc.returncode == 2
    assert "holds manifest.json, so it is a build tree" in proc.stderr
    assert listing(other) == before


def test_report_still_rewrites_its_own_folder(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    args = ("report", str(repo / "build"), "-o", str(out))
    assert run(*args).returncode == 0
    (out / "stores" / "gone.html").write_text("a store that left the fleet")
    (out / "index.html").write_text("stale")
    assert run(*args).returncode == 0
    assert "stale" not in (out / "index.html").read_text()
    assert not (out / "stores" / "gone.html").exists()
    assert not [p for p in out.rglob("*") if "posnet-tmp" in p.name]


SCHEMA_PLANTS = plants(
    (link_file, "site.schema.json"),
    (link_folder, "fleet.schema.json"),
    (fifo, "group.schema.json"),
    (link_folder, "sub"),  # --write names sub: a link
)


@pytest.mark.parametrize("plant", SCHEMA_PLANTS)
def test_schema_write_refuses_links_and_fifos(
    tmp_path: Path, plant: Plant, request: pytest.FixtureRequest
) -> None:
    nested = request.node.callspec.id == "link_folder-sub"

    def args(out: Path) -> list[str]:
        return ["schema", "--write", str(out / "sub" if nested else out)]

    _refused(tmp_path, plant, args, tmp_path / "sch")


INIT_PLANTS = plants(
    (link_file, ".gitignore"),
    (link_folder, "fleet"),
    (fifo, ".gitlab-ci.yml"),
    (link_folder, ".github"),
    (link_folder, ".github/workflows"),
    (link_file, ".github/workflows/posnet.yml"),
    (fifo, ".github/workflows/posnet.yml"),
    (link_folder, "schema"),
    (link_folder, "build"),
)


@pytest.mark.parametrize("plant", INIT_PLANTS)
def test_init_refuses_links_and_fifos(tmp_path: Path, plant: Plant) -> None:
    _refused(tmp_path, plant, lambda out: ["init", str(out)], tmp_path / "ini")


def test_init_refuses_an_existing_fleet_folder(tmp_path: Path) -> None:
    """--help: DIR 'must not hold any of these' (fleet/ among them); nothing overwritten."""
    (tmp_path / "ini" / "fleet").mkdir(parents=True)
    proc = run("init", str(tmp_path / "ini"))
    assert proc.returncode == 1
    assert f"{tmp_path / 'ini' / 'fleet'}: error[E004] already exists" in proc.stdout
    assert listing(tmp_path / "ini") == {"fleet": "dir"}


def test_a_link_planted_after_the_check_is_replaced_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: a link appears between the check and the write. The write goes to a
    new file renamed over the link, so the victim keeps its text."""
    from generator import outdir

    victim = tmp_path / "victim"
    victim.write_text(ORIG)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "index.html").symlink_to(victim)
    monkeypatch.setattr(outdir, "_lstat", lambda name, dir_fd: None)  # the check saw nothing
    with outdir.OutDir(tmp_path / "out", "posnet report", "x") as out:
        out.write("index.html", "new\n")
    assert victim.read_text() == ORIG
    assert not (tmp_path / "out" / "index.html").is_symlink()
    assert (tmp_path / "out" / "index.html").read_text() == "new\n"


def test_report_refuses_an_empty_o_and_a_folder_holding_the_fleet(
    repo: Path, tmp_path: Path
) -> None:
    """`-o ""` wrote into the working folder and `-o /` into the root: a folder that holds
    the build tree or the fleet (anywhere below) is refused like render's -o."""
    empty = run("report", str(repo / "build"), "-o", "")
    assert empty.returncode == 2 and "-o: empty path" in empty.stderr, empty.stderr
    before = listing(repo)
    parent = run("report", str(repo / "build"), "-o", str(repo.parent))
    assert parent.returncode == 2 and "would overlap" in parent.stderr, parent.stderr
    assert listing(repo) == before and not (repo.parent / "index.html").exists()


def test_report_leaves_a_folder_of_someone_elses_pages_alone(repo: Path, tmp_path: Path) -> None:
    """A folder holding an index.html or stores/*.html that posnet did not write: the
    report replaced the one and deleted the others. Its own earlier report is updated
    (a removed store's page pruned)."""
    site = tmp_path / "site"
    (site / "stores").mkdir(parents=True)
    (site / "stores" / "old.html").write_text(ORIG)
    (site / "index.html").write_text(ORIG)
    before = listing(site)
    proc = run("report", str(repo / "build"), "-o", str(site))
    assert proc.returncode == 1, proc.stderr
    assert "index.html" in proc.stderr and "did not write" in proc.stderr, proc.stderr
    assert listing(site) == before and (site / "index.html").read_text() == ORIG
    (site / "index.html").unlink()
    proc = run("report", str(repo / "build"), "-o", str(site))
    assert proc.returncode == 1 and "stores/old.html" in proc.stderr, proc.stderr
    own = tmp_path / "own"
    assert run("report", str(repo / "build"), "-o", str(own)).returncode == 0
    (own / "stores" / "gone.html").write_text(ORIG)  # a page of a store since removed
    again = run("report", str(repo / "build"), "-o", str(own))
    assert again.returncode == 0, again.stderr
    assert not (own / "stores" / "gone.html").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["drift", "{build}", "-o", "{build}/manifest.json"],
        ["verify", "{build}", "--json", "{build}/manifest.json"],
        ["verify", "{build}", "--junit", "{build}/inventory/report.xml"],
    ],
    ids=["drift-o", "verify-json", "verify-junit"],
)
def test_report_files_are_refused_inside_the_build_tree(repo: Path, argv: list[str]) -> None:
    """`drift -o build/manifest.json` overwrote the manifest (every later check failed)."""
    build = repo / "build"
    before = listing(build), (build / "manifest.json").read_bytes()
    proc = run(*(a.format(build=build) for a in argv))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "which posnet reads" in proc.stderr, proc.stderr
    assert (listing(build), (build / "manifest.json").read_bytes()) == before


def test_drift_and_verify_never_write_through_a_link(repo: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(ORIG)
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    for argv in (["drift", "-o"], ["verify", "--json"], ["verify", "--junit"]):
        proc = run(argv[0], str(repo / "build"), argv[1], str(link))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"{link}: a symbolic link" in proc.stderr, proc.stderr
        assert victim.read_text() == ORIG


def test_drift_never_writes_a_hard_link_into_the_build_tree(repo: Path, tmp_path: Path) -> None:
    """O_NOFOLLOW stops a symbolic link, not a hard one: `-o` naming a second name of
    build/manifest.json would truncate it."""
    manifest = repo / "build" / "manifest.json"
    before = manifest.read_bytes()
    alias = tmp_path / "m.json"
    os.link(manifest, alias)
    try:
        proc = run("drift", str(repo / "build"), "-o", str(alias))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "other hard link(s)" in proc.stderr
        assert manifest.read_bytes() == before
    finally:
        alias.unlink()


def test_report_of_a_store_file_may_not_write_into_its_fleet(repo: Path) -> None:
    """--fleet naming one store's file kept only sites/ off limits: the report went
    into the fleet's groups/."""
    fleet = repo / "fleet"
    (site,) = sorted((fleet / "sites").glob("*.yaml"))[:1]
    before = listing(fleet)
    proc = run("report", str(repo / "build"), "--fleet", str(site), "-o", str(fleet / "groups"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "would overlap the fleet folder" in proc.stderr
    assert listing(fleet) == before


def test_render_of_a_link_to_a_store_file_keeps_out_of_its_fleet(
    repo: Path, tmp_path: Path
) -> None:
    """A link to fleet/sites/S.yaml was a store without a fleet: -o fleet/groups was
    accepted and left a lock file there."""
    fleet = repo / "fleet"
    (site,) = sorted((fleet / "sites").glob("*.yaml"))[:1]
    link = tmp_path / "links" / site.name
    link.parent.mkdir()
    link.symlink_to(site)
    before = listing(fleet)
    proc = run("render", str(link), "-o", str(fleet / "groups"))
    assert proc.returncode == 2 and "would overlap the fleet folder" in proc.stderr, proc.stderr
    assert listing(fleet) == before


@pytest.mark.parametrize("inside", ["sites", "sites/nested/deeper", "inventory/x"])
def test_render_refuses_a_folder_inside_another_build_tree(repo: Path, inside: str) -> None:
    """`render -o build/sites` was accepted: the outer tree's next render pruned the
    inner one as stray files and its `--check` failed on every inner file."""
    build = repo / "build"
    before = listing(build)
    proc = run("render", str(repo / "fleet"), "-o", str(build / inside))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"lies inside the build tree {build}" in proc.stderr, proc.stderr
    assert listing(build) == before
    check = run("render", str(repo / "fleet"), "-o", str(build), "--check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_manifest_json_of_another_project_is_no_build_tree(repo: Path, tmp_path: Path) -> None:
    """Only a manifest beside posnet's own lock or stat cache marks a build tree: a web
    project's manifest.json above -o does not stop a render."""
    (tmp_path / "manifest.json").write_text("{}\n")
    proc = run("render", str(repo / "fleet"), "-o", str(tmp_path / "build"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
