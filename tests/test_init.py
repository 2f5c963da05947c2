"""`posnet init`: a fleet repository that validates, renders, passes its pre-commit
hooks and runs its CI steps as it is; a two-store change gives the expected diff."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from generator.scaffold import skeleton_files
from tests.conftest import ROOT
from tests.test_diff import edit, git, posnet
from tests.test_schema import _fleet_errors

BIN = Path(sys.executable).parent
SCHEMA_OF = {"fleet.yaml": "fleet", "groups": "group", "sites": "site"}


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update(extra)
    return env


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    root = tmp_path / "acme-fleet"
    proc = posnet("init", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def test_init_validates_renders_and_matches_its_schemas(fleet: Path) -> None:
    specs = fleet / "fleet"
    assert 'fleet: "acme-fleet"' in (specs / "fleet.yaml").read_text()
    assert posnet("validate", str(specs), "--strict").returncode == 0
    check = posnet("render", str(specs), "-o", str(fleet / "build"), "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert _fleet_errors(specs) == []
    for path in [specs / "fleet.yaml", *specs.glob("groups/*.yaml"), *specs.glob("sites/*.yaml")]:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        kind = SCHEMA_OF[path.relative_to(specs).parts[0]]
        assert target == (fleet / "schema" / f"{kind}.schema.json").resolve(), path
        assert target.is_file()


@pytest.mark.parametrize("name", ["123", "1e5", "0x1f", "true", "null", "0o17"])
def test_a_name_yaml_would_read_as_a_number_or_a_constant_stays_text(
    tmp_path: Path, name: str
) -> None:
    """fleet.yaml said `fleet: 123` unquoted, so init failed its own validation
    (E100 fleet: must be written as text) with a name its --name check allowed."""
    root = tmp_path / "f"
    proc = posnet("init", str(root), "--name", name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert posnet("validate", str(root / "fleet")).returncode == 0


def test_printed_paths_cannot_forge_lines_or_drive_the_terminal(tmp_path: Path) -> None:
    root = tmp_path / "fake\nposnet: error\x1b]0;pwned\x07"
    proc = posnet("init", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr and "\x07" not in proc.stdout
    lines = proc.stdout.splitlines()
    assert all(line.startswith(str(tmp_path)) for line in lines), lines
    assert "\\nposnet: error\\x1b]0;pwned\\x07/fleet/fleet.yaml" in proc.stdout


def test_init_never_overwrites(tmp_path: Path) -> None:
    root = tmp_path / "f"
    (root / "sites").mkdir(parents=True)
    (root / ".gitignore").write_text("mine\n")
    proc = posnet("init", str(root))
    assert proc.returncode == 1
    assert ".gitignore: error[E004] already exists" in proc.stdout
    assert (root / ".gitignore").read_text() == "mine\n"
    assert not (root / "fleet").exists()
    bad = posnet("init", str(tmp_path / "g"), "--name", "Bad Name")
    assert bad.returncode == 1 and "not a valid fleet name" in bad.stdout
    assert not (tmp_path / "g").exists()


def _second_store(fleet: Path) -> None:
    fleet = fleet / "fleet"
    text = (fleet / "sites" / "store-01.yaml").read_text()
    text = text.replace("store-01", "store-02").replace("203.0.113.10", "203.0.113.11")
    text = text.replace(
        "public_port: 18443", 'public_port: 18443\n    sources: ["198.51.100.0/28"]'
    )
    (fleet / "sites" / "store-02.yaml").write_text(text)


@pytest.fixture
def repo(fleet: Path) -> Path:
    """init, a second store, committed; then one store's port and the other's partner
    sources change (build/ re-rendered) in a second commit."""
    _second_store(fleet)
    assert posnet("render", str(fleet / "fleet"), "-o", str(fleet / "build")).returncode == 0
    git(fleet, "init", "-q", "-b", "main")
    git(fleet, "add", "-A")
    git(fleet, "commit", "-qm", "fleet")
    edit(fleet / "fleet" / "sites" / "store-01.yaml", "public_port: 18443", "public_port: 18444")
    edit(fleet / "fleet" / "sites" / "store-02.yaml", '["198.51.100.0/28"]', '["198.51.100.0/29"]')
    assert posnet("render", str(fleet / "fleet"), "-o", str(fleet / "build")).returncode == 0
    git(fleet, "add", "-A")
    git(fleet, "commit", "-qm", "port and sources")
    return fleet


def test_diff_names_exactly_the_two_changes_in_all_formats(repo: Path) -> None:
    doc = json.loads(posnet("diff", "HEAD~1..HEAD", "fleet", "--format", "json", cwd=repo).stdout)
    got = {
        (s["id"], c["kind"], c["key"], name): (f["old"], f["new"])
        for s in doc["stores"]
        for c in s["changes"]
        for name, f in c["fields"].items()
    }
    assert got == {
        ("store-01", "exposure", "deliverect-pos1-api", "port"): ("18443/tcp", "18444/tcp"),
        ("store-02", "exposure", "deliverect-pos1-api", "sources"): (
            ["198.51.100.0/28"],
            ["198.51.100.0/29"],
        ),
    }
    text = posnet("diff", "HEAD~1..HEAD", "fleet", cwd=repo).stdout
    assert "port: 18443/tcp -> 18444/tcp" in text
    assert "sources: +198.51.100.0/29 -198.51.100.0/28" in text
    assert "Fleet diff: 0 store(s) added, 2 changed, 0 removed (0 unchanged)" in text
    md = posnet("diff", "HEAD~1..HEAD", "fleet", "--format", "markdown", cwd=repo).stdout
    rows = [line for line in md.splitlines() if line.startswith("| ~ |")]
    assert rows == [
        "| ~ | exposure deliverect-pos1-api | port | 18443/tcp | 18444/tcp |",
        "| ~ | exposure deliverect-pos1-api | sources | -198.51.100.0/28 | +198.51.100.0/29 |",
    ]


def _pre_commit(repo: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "pre-commit"), "run", "--all-files"],
        cwd=repo,
        env=_env(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home")),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_pre_commit_passes_and_catches_a_stale_build(repo: Path, tmp_path: Path) -> None:
    if not (BIN / "pre-commit").exists():
        pytest.skip("pre-commit not installed (pip install -e '.[dev]')")
    ok = _pre_commit(repo, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("Passed") == 3, ok.stdout
    edit(repo / "fleet" / "sites" / "store-01.yaml", "public_port: 18444", "public_port: 18445")
    stale = _pre_commit(repo, tmp_path)
    assert stale.returncode == 1
    assert "files were modified by this hook" in stale.stdout


def test_published_hooks_match_the_init_hooks() -> None:
    published = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    local = yaml.safe_load(skeleton_files()[".pre-commit-config.yaml"])
    [repo] = local["repos"]
    assert repo["repo"] == "local"
    mine = {h["id"]: h for h in repo["hooks"]}
    assert [h["id"] for h in published] == list(mine)
    for hook in published:
        assert " ".join([hook["entry"], *hook["args"]]) == mine[hook["id"]]["entry"]
        assert hook.get("files") == mine[hook["id"]].get("files")


def _run_steps(repo: Path, steps: list[str], env: dict[str, str]) -> None:
    for script in steps:
        proc = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, (script, proc.stdout[-2000:], proc.stderr[-2000:])


def test_github_workflow_runs_locally(repo: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((repo / ".github" / "workflows" / "posnet.yml").read_text())
    steps = doc["jobs"]["posnet"]["steps"]
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in steps)
    runs = [s["run"] for s in steps if "run" in s]
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD~1")  # the PR's base
    summary = tmp_path / "summary.md"
    env = _env(
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_BASE_REF="main",
        GITHUB_STEP_SUMMARY=str(summary),
        POSNET_PACKAGE=doc["env"]["POSNET_PACKAGE"],
        PIP_NO_INDEX="1",  # posnet is installed already: nothing to download
    )
    _run_steps(repo, runs, env)
    sarif = json.loads((repo / "posnet.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    text = summary.read_text()
    assert "| ~ | exposure deliverect-pos1-api | port | 18443/tcp | 18444/tcp |" in text


def test_gitlab_ci_runs_locally(repo: Path) -> None:
    doc = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    job = doc["posnet"]
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD~1")
    env = _env(
        CI_PIPELINE_SOURCE="merge_request_event",
        CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main",
        POSNET_PACKAGE=doc["variables"]["POSNET_PACKAGE"],
        PIP_NO_INDEX="1",
    )
    _run_steps(repo, [*job["before_script"], *job["script"]], env)
    assert "18443/tcp | 18444/tcp" in (repo / "posnet-diff.md").read_text()
    assert job["artifacts"]["paths"] == ["posnet-diff.md"]
    assert job["artifacts"]["reports"]["codequality"] == "gl-code-quality.json"
    assert json.loads((repo / "gl-code-quality.json").read_text()) == []  # a clean fleet


def _step_fails(repo: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_ci_refuses_a_rendered_file_forged_together_with_its_manifest_hash(repo: Path) -> None:
    """A pull request that opens a port by editing the rendered firewall and swapping its
    hash in build/manifest.json passed the generated CI (render --check trusts the
    manifest's hashes): both pipelines compare byte for byte now."""
    nft = repo / "build" / "sites" / "store-01" / "firewall" / "nftables.nft"
    old = hashlib.sha256(nft.read_bytes()).hexdigest()
    text = nft.read_text()
    assert "ip saddr @src_" in text
    nft.write_text(re.sub(r"ip saddr @src_\S+ ", "", text))
    new = hashlib.sha256(nft.read_bytes()).hexdigest()
    manifest = repo / "build" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(old, new))
    weak = posnet("render", str(repo / "fleet"), "-o", str(repo / "build"), "--check")
    assert weak.returncode == 0  # the documented limit of --check alone
    gh = yaml.safe_load((repo / ".github" / "workflows" / "posnet.yml").read_text())
    (gh_check,) = [s["run"] for s in gh["jobs"]["posnet"]["steps"] if "--check" in s.get("run", "")]
    gl = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    (gl_check,) = [line for line in gl["posnet"]["script"] if "--check" in line]
    for script in (gh_check, gl_check):
        proc = _step_fails(repo, script, _env())
        assert proc.returncode == 1, (script, proc.stdout, proc.stderr)
        assert "nftables.nft" in proc.stdout + proc.stderr


def test_gitlab_plan_holds_only_the_merge_requests_changes(repo: Path) -> None:
    """The plan compared the target branch's tip with the branch: a commit made on main
    after the fork was shown as this merge request's change."""
    git(repo, "branch", "feature", "HEAD")
    git(repo, "checkout", "-q", "-b", "later-main", "HEAD~1")
    edit(repo / "fleet" / "sites" / "store-02.yaml", "public_port: 18443", "public_port: 18460")
    assert posnet("render", str(repo / "fleet"), "-o", str(repo / "build")).returncode == 0
    git(repo, "commit", "-qam", "main moves on")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(repo, "checkout", "-q", "feature")
    job = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())["posnet"]
    (plan_step,) = [line for line in job["script"] if "posnet diff" in line]
    env = _env(CI_PIPELINE_SOURCE="merge_request_event", CI_MERGE_REQUEST_TARGET_BRANCH_NAME="main")
    assert _step_fails(repo, plan_step, env).returncode == 0
    plan = (repo / "posnet-diff.md").read_text()
    assert "18443/tcp | 18444/tcp" in plan  # the merge request's own change
    assert "18460" not in plan, plan


def test_every_hook_runs_on_every_commit() -> None:
    """A commit that only deletes a store or group file was skipped by hooks limited to
    `files:` (pre-commit leaves deleted paths out)."""
    from generator.scaffold import skeleton_files

    for doc in (
        yaml.safe_load(skeleton_files()[".pre-commit-config.yaml"]),
        {"repos": [{"hooks": yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}]},
    ):
        hooks = [h for r in doc["repos"] for h in r["hooks"]]
        assert len(hooks) == 3
        assert all(h.get("always_run") is True and "files" not in h for h in hooks), hooks


def _listing(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text() if p.is_file() else "/"
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("fail_at", ["write-1", "write-9", "schema", "render", "ctrl-c"])
def test_a_failed_init_leaves_the_folder_as_it_found_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    """The bad state: the disk fills up (or Ctrl-C) halfway through `init`. What init
    created goes again, what was there stays, and init then simply runs again (before,
    the files it had written made the second run refuse: 'already exists')."""
    import errno

    from generator import build, schemas
    from generator.outdir import OutDir
    from generator.scaffold import init_fleet

    root = tmp_path / "shop"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "notes.md").write_text("the user's own\n")
    (root / "README.md").write_text("mine\n")
    before = _listing(root)
    full = OSError(errno.ENOSPC, "No space left on device")
    writes = {"n": 0}
    real_write = OutDir.write

    def write(self: OutDir, rel: str, text: str, exclusive: bool = False) -> bool:
        writes["n"] += 1
        if fail_at.startswith("write-") and writes["n"] == int(fail_at[6:]):
            raise full
        return real_write(self, rel, text, exclusive)

    def fail(*args: object, **kwargs: object) -> None:
        raise full

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(OutDir, "write", write)
    if fail_at == "schema":
        monkeypatch.setattr(schemas, "write_schema_files", fail)
    if fail_at == "render":
        monkeypatch.setattr(build, "render_tree", fail)
    if fail_at == "ctrl-c":
        monkeypatch.setattr(build, "render_tree", interrupt)
    with pytest.raises(KeyboardInterrupt if fail_at == "ctrl-c" else OSError):
        init_fleet(root, "shop")
    assert _listing(root) == before
    monkeypatch.undo()
    assert init_fleet(root, "shop")
    assert (root / "build" / "manifest.json").is_file()
    assert (root / "docs" / "notes.md").read_text() == "the user's own\n"


def test_a_failed_init_also_removes_the_parents_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`posnet init a/b/shop` makes a/ and b/ first; failing later, it takes them back
    too (they were not there), but never a parent that existed or was filled meanwhile."""
    import errno

    from generator import build
    from generator.scaffold import init_fleet

    def fail(*args: object, **kwargs: object) -> None:
        if (tmp_path / "kept" / "b").is_dir():
            (tmp_path / "kept" / "b" / "theirs.txt").write_text("written meanwhile\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    (tmp_path / "kept").mkdir()
    monkeypatch.setattr(build, "render_tree", fail)
    with pytest.raises(OSError, match="No space left"):
        init_fleet(tmp_path / "new" / "deeper" / "shop", "shop")
    assert not (tmp_path / "new").exists()
    with pytest.raises(OSError, match="No space left"):
        init_fleet(tmp_path / "kept" / "b" / "shop", "shop")
    assert _listing(tmp_path / "kept") == {"b": "/", "b/theirs.txt": "written meanwhile\n"}
    monkeypatch.undo()
    assert init_fleet(tmp_path / "new" / "deeper" / "shop", "shop")


def test_an_empty_folder_or_name_is_a_usage_error(tmp_path: Path) -> None:
    """`init ""` set up a repository in the working folder; `--name ""` was ignored."""
    for argv in (["init", ""], ["init", str(tmp_path / "r"), "--name", ""]):
        proc = subprocess.run(
            [sys.executable, "-m", "generator", *argv],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "empty" in proc.stderr
    assert list(tmp_path.iterdir()) == []
