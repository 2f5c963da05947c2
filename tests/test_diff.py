"""`posnet diff`: two fleet revisions compared from their Plans, in three formats."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.diff.compare import diff_plans
from generator.diff.formats import MARKDOWN_LIMIT, format_markdown, format_text
from generator.plan import Plan
from tests.conftest import DEMO, ROOT

POSNET = Path(sys.executable).with_name("posnet")
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]


def posnet(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    exe = POSNET if POSNET.exists() else ROOT / ".venv" / "bin" / "posnet"
    proc = subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    return proc


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The demo fleet committed twice: gent-01's port and antwerp-02's sources change."""
    fleet = tmp_path / "repo" / "fleets" / "demo"
    shutil.copytree(DEMO, fleet)
    root = tmp_path / "repo"
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "fleet")
    edit(fleet / "sites" / "gent-01.yaml", "public_port: 18443", "public_port: 18444")
    edit(
        fleet / "sites" / "antwerp-02.yaml",
        'sources: ["198.51.100.0/28", "203.0.113.20"]',
        'sources: ["198.51.100.0/29", "203.0.113.20"]',
    )
    git(root, "commit", "-qam", "two stores")
    return root


def test_git_revisions_name_exactly_the_changes(repo: Path) -> None:
    proc = posnet("diff", "HEAD~1..HEAD", "fleets/demo", "--format", "json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["format"], doc["version"]) == ("posnet-diff", 1)
    stores = {s["id"]: s["changes"] for s in doc["stores"]}
    # mechelen-hq proxies to both stores: its routes follow their ports and nothing else.
    assert sorted(stores) == ["antwerp-02", "gent-01", "mechelen-hq"]
    [gent] = stores["gent-01"]
    assert (gent["kind"], gent["action"]) == ("exposure", "change")
    assert gent["fields"] == {"port": {"old": "18443/tcp", "new": "18444/tcp"}}
    [antwerp] = stores["antwerp-02"]
    assert antwerp["kind"] == "exposure"
    assert antwerp["fields"]["sources"]["added"] == ["198.51.100.0/29"]
    assert antwerp["fields"]["sources"]["removed"] == ["198.51.100.0/28"]
    assert [c["kind"] for c in stores["mechelen-hq"]] == ["proxy_route"]
    assert doc["summary"]["stores"] == {"added": 0, "changed": 3, "removed": 0, "unchanged": 4}
    assert doc["summary"]["exposures"] == {"opened": 0, "changed": 2, "closed": 0}


def test_working_tree_is_never_touched(repo: Path) -> None:
    fleet = repo / "fleets" / "demo"
    edit(fleet / "sites" / "gent-01.yaml", "name: ", "name: Local ")
    before = git(repo, "status", "--porcelain"), git(repo, "stash", "list")
    assert posnet("diff", "HEAD~1..HEAD", "fleets/demo", cwd=repo).returncode == 0
    assert posnet("diff", "HEAD~1", "fleets/demo", cwd=repo).returncode == 0
    assert (git(repo, "status", "--porcelain"), git(repo, "stash", "list")) == before
    assert "name: Local " in (fleet / "sites" / "gent-01.yaml").read_text()


def test_text_and_markdown_formats(repo: Path) -> None:
    text = posnet("diff", "HEAD~1..HEAD", "fleets/demo", cwd=repo).stdout
    assert "~ store gent-01 (changed)" in text
    assert "port: 18443/tcp -> 18444/tcp" in text
    assert "sources: +198.51.100.0/29 -198.51.100.0/28" in text
    assert text.rstrip().splitlines()[-1].startswith("Fleet diff: 0 store(s) added, 3 changed")
    md = posnet("diff", "HEAD~1..HEAD", "fleets/demo", "--format", "markdown", cwd=repo).stdout
    assert "| ~ | exposure deliverect-pos1-api | port | 18443/tcp | 18444/tcp |" in md
    assert (
        "| ~ | exposure deliverect-till1-api | sources | -198.51.100.0/28 | +198.51.100.0/29 |"
        in md
    )


def test_exit_codes(repo: Path) -> None:
    fleet = "fleets/demo"
    assert posnet("diff", "HEAD..HEAD", fleet, "--exit-code", cwd=repo).returncode == 0
    assert posnet("diff", "HEAD~1..HEAD", fleet, "--exit-code", cwd=repo).returncode == 2
    assert posnet("diff", "HEAD~1..HEAD", fleet, cwd=repo).returncode == 0
    bad = posnet("diff", "nope..HEAD", fleet, "--exit-code", cwd=repo)
    assert bad.returncode == 1
    assert "unknown revision 'nope'" in bad.stdout + bad.stderr
    assert posnet("diff", "--", "--upload-pack=x..HEAD", fleet, cwd=repo).returncode == 1


@pytest.mark.parametrize(
    ("args", "where", "message"),
    [
        (("HEAD~1..HEAD", "fleets/dmeo"), "fleets/dmeo", "no such folder"),
        (("HEAD~1..HEAD", "fleets/demo/sites"), "fleets/demo/sites",
         "no fleet.yaml here in HEAD~1 nor in HEAD"),
        (("HEAD", "fleets/demo/sites"), "fleets/demo/sites", "no fleet.yaml in this folder"),
        (("fleets", "fleets/demo"), "fleets", "no fleet.yaml in this folder"),
        (("fleets/demo", "fleets/demo/groups"), "fleets/demo/groups",
         "no fleet.yaml in this folder"),
    ],
)  # fmt: skip
def test_a_path_that_is_no_fleet_is_an_error_not_no_changes(
    repo: Path, args: tuple[str, ...], where: str, message: str
) -> None:
    """A mistyped fleet path was diffed as a fleet without stores: "No changes", exit 0
    under --exit-code, so a CI job passed whatever the pull request changed."""
    res = posnet("diff", *args, "--exit-code", cwd=repo)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{where}: error[E002] {message}" in res.stdout, res.stdout


def test_revision_against_working_folder_and_two_folders(repo: Path, tmp_path: Path) -> None:
    fleet = repo / "fleets" / "demo"
    edit(fleet / "sites" / "bruges-06.yaml", "name: ", "name: Renamed ")
    doc = json.loads(posnet("diff", "HEAD", "fleets/demo", "--format", "json", cwd=repo).stdout)
    assert [s["id"] for s in doc["stores"]] == ["bruges-06"]
    old = tmp_path / "old"
    shutil.copytree(DEMO, old)
    doc = json.loads(posnet("diff", str(old), str(fleet), "--format", "json").stdout)
    assert [s["id"] for s in doc["stores"]] == ["antwerp-02", "bruges-06", "gent-01", "mechelen-hq"]


def test_fleet_default_change_loads_every_store(tmp_path: Path) -> None:
    """fleet.yaml changes every store's inputs: the fast path must not skip them."""
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(DEMO, old)
    shutil.copytree(DEMO, new)
    edit(new / "fleet.yaml", 'allow_from: ["192.0.2.64/28"]', 'allow_from: ["192.0.2.80/28"]')
    doc = json.loads(posnet("diff", str(old), str(new), "--format", "json").stdout)
    assert len(doc["stores"]) == 7
    field = doc["stores"][0]["changes"][0]["fields"]["management_from"]
    assert (field["added"], field["removed"]) == (["192.0.2.80/28"], ["192.0.2.64/28"])


def test_store_added_and_removed_with_secret_names_only(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(DEMO, old)
    shutil.copytree(DEMO, new)
    (new / "sites" / "ostend-05.yaml").unlink()
    edit(new / "sites" / "antwerp-02.yaml", "env:", "env:NEW_")
    proc = posnet("diff", str(old), str(new))
    assert "- store ostend-05 (removed)" in proc.stdout
    assert "+ secret reference env:NEW_" in proc.stdout
    assert "- secret reference env:" in proc.stdout


def test_invalid_side_is_an_error_naming_the_revision(repo: Path) -> None:
    fleet = repo / "fleets" / "demo"
    edit(fleet / "sites" / "gent-01.yaml", "public_port: 18444", "public_port: 99999")
    git(repo, "commit", "-qam", "broken")
    proc = posnet("diff", "HEAD~1..HEAD", "fleets/demo", cwd=repo)
    assert proc.returncode == 1
    assert re.search(r"HEAD/sites/gent-01\.yaml:\d+:\d+: error", proc.stdout + proc.stderr)
    # --format json: the problems as a JSON document on stdout (it was empty)
    as_json = posnet("diff", "HEAD~1..HEAD", "fleets/demo", "--format", "json", cwd=repo)
    assert as_json.returncode == 1
    problems = [d for d in json.loads(as_json.stdout) if d["severity"] == "error"]
    files = {d["location"]["file"] for d in problems}
    assert "HEAD/sites/gent-01.yaml" in files and all(f.startswith("HEAD/") for f in files)


def _renamed(plan: Plan, name: str) -> Plan:
    return dataclasses.replace(plan, site_name=name)


def test_markdown_stays_under_limit_with_whole_tables(demo_plans: dict[str, Plan]) -> None:
    base = demo_plans["gent-01"]
    old = [dataclasses.replace(base, site_id=f"s-{i:04d}") for i in range(3000)]
    new = [_renamed(p, "a much longer store name " * 3) for p in old]
    out = format_markdown(diff_plans(old, new))
    assert len(out.encode()) < MARKDOWN_LIMIT
    shown = out.count("\n#### ")
    assert 0 < shown < 3000
    assert f"… and {3000 - shown} more store(s)" in out
    # Every table is complete: each store header is followed by its one row.
    assert out.count("| ~ | store setting edge | name |") == shown


def test_markdown_and_text_keep_user_text_inert(demo_plans: dict[str, Plan]) -> None:
    base = demo_plans["gent-01"]
    evil = "x | y <script>alert(1)</script> [link](http://192.0.2.1)\n| injected |"
    out = format_markdown(diff_plans([base], [_renamed(base, evil)]))
    # No unescaped HTML tag or link bracket reaches the comment.
    assert not re.search(r"(?<!\\)[<\[]", out)
    row = next(line for line in out.splitlines() if "store setting" in line)
    assert row.count(" | ") == 5 - 1  # no extra cell from the user's pipes
    text = format_text(diff_plans([base], [_renamed(base, evil)]))
    assert "\n| injected |" not in text
    # a mention would notify people where the comment is posted
    mention = format_markdown(diff_plans([base], [_renamed(base, "ask @everyone or @org/team")]))
    assert "@&#8203;everyone" in mention and "@&#8203;org/team" in mention
    assert not re.search(r"@(?!&#8203;)", mention)


def test_diff_formats_listed_in_cli_match_formatters() -> None:
    from generator.diff import command, formats

    assert tuple(sorted(formats.FORMATS)) == command.FORMATS


def test_control_characters_never_reach_a_terminal(demo_plans: dict[str, Plan]) -> None:
    base = demo_plans["gent-01"]
    evil = "a\x1b[2Jb\u202ec"
    diff = diff_plans([base], [_renamed(base, evil)])
    for out in (format_text(diff), format_markdown(diff)):
        assert "\x1b" not in out and "\u202e" not in out
        assert "\\x1b" in out


# --------------------------------------------------------------------------- refusals
# A side is refused where validate would refuse it, before anything of it is read:
# a committed symbolic link was skipped (mode 120000) and a folder side followed it.

LINK_ERROR = "error[E001] is a symbolic link"


def _outside_store(tmp_path: Path) -> Path:
    """A valid store file outside the fleet, holding a value that must never be shown."""
    target = tmp_path / "outside" / "evil.yaml"
    target.parent.mkdir()
    text = (DEMO / "sites" / "gent-01.yaml").read_text().replace("gent-01", "evil")
    target.write_text(text.replace("public_port: 18443", "public_port: 18443  # TOPSECRET"))
    return target


@pytest.mark.parametrize("rel", ["sites/evil.yaml", "sites/evil.yml", "groups/evil.yaml"])
def test_committed_symlink_is_refused(repo: Path, tmp_path: Path, rel: str) -> None:
    fleet = repo / "fleets" / "demo"
    (fleet / rel).symlink_to(_outside_store(tmp_path))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "link")
    for spec in ("HEAD~1..HEAD", "HEAD..HEAD", "HEAD"):  # added; on both sides; working
        proc = posnet("diff", spec, "fleets/demo", "--exit-code", cwd=repo)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, (spec, out)
        assert f"{rel}: {LINK_ERROR}" in out, (spec, out)
        assert "TOPSECRET" not in out and "No changes" not in out
    shown = posnet("diff", "HEAD~1..HEAD", "fleets/demo", cwd=repo).stdout
    assert f"HEAD/{rel}: {LINK_ERROR}" in shown  # named as validate names it, per side
    assert f"HEAD~1/{rel}" not in shown
    valid = posnet("validate", str(fleet))
    assert valid.returncode == 1 and f"{fleet / rel}: {LINK_ERROR}" in valid.stdout


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_folder_side_fifo_or_folder_named_like_a_store_is_refused(
    tmp_path: Path, kind: str
) -> None:
    """validate refuses sites/x.yaml that is a FIFO or a folder; diff skipped it and
    said "No changes" with exit 0."""
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(DEMO, old)
    shutil.copytree(DEMO, new)
    rel = "sites/zz.yaml"
    if kind == "fifo":
        os.mkfifo(new / rel)
        said = "is not a regular file (a FIFO or a device)"
    else:
        (new / rel).mkdir()
        said = "cannot read file: Is a directory"
    for args in ((str(old), str(new)), (str(new), str(old))):
        proc = posnet("diff", *args, "--exit-code")
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out
        assert f"{new / rel}: error[E001] {said}" in out, out
        assert "No changes" not in out


@pytest.mark.parametrize("kind", ["folder", "submodule"])
def test_committed_folder_or_submodule_named_like_a_store_is_refused(repo: Path, kind: str) -> None:
    """`git ls-tree -r` lists a folder's files, not the folder, and a submodule is no
    blob: sites/zz.yaml as either was skipped without a word."""
    rel = "fleets/demo/sites/zz.yaml"
    if kind == "folder":
        (repo / rel).mkdir()
        (repo / rel / "x").write_text("x\n")
        git(repo, "add", "-A")
        said = "cannot read file: Is a directory"
    else:
        git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},{rel}")
        said = "cannot read file: is a Git submodule"
    git(repo, "commit", "-qm", kind)
    proc = posnet("diff", "HEAD~1..HEAD", "fleets/demo", "--exit-code", cwd=repo)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f"HEAD/sites/zz.yaml: error[E001] {said}" in out, out


@pytest.mark.parametrize("kind", ["to-a-store", "dangling", "to-a-folder", "fleet.yaml"])
def test_folder_side_symlink_is_refused(tmp_path: Path, kind: str) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(DEMO, old)
    shutil.copytree(DEMO, new)
    rel = "sites/evil.yaml"
    if kind == "to-a-store":
        (new / rel).symlink_to(_outside_store(tmp_path))
    elif kind == "dangling":
        (new / rel).symlink_to(tmp_path / "nowhere.yaml")
    elif kind == "to-a-folder":
        (new / rel).symlink_to(tmp_path)
    else:
        rel = "fleet.yaml"
        (tmp_path / "fleet.yaml").write_bytes((new / rel).read_bytes())
        (new / rel).unlink()
        (new / rel).symlink_to(tmp_path / "fleet.yaml")
    for args in ((str(old), str(new)), (str(new), str(old))):
        proc = posnet("diff", *args, "--exit-code")
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out
        assert f"{new / rel}: {LINK_ERROR}" in out, out
        assert "TOPSECRET" not in out


def test_store_file_named_in_bad_bytes_is_refused_on_both_side_kinds(
    repo: Path, tmp_path: Path
) -> None:
    fleet = repo / "fleets" / "demo"
    bad = os.fsdecode(b"\xff\xfe") + ".yaml"
    (fleet / "sites" / bad).write_bytes((fleet / "sites" / "gent-01.yaml").read_bytes())
    proc = posnet("diff", str(DEMO), str(fleet), "--exit-code")
    assert proc.returncode == 1 and "sites/\\xff\\xfe.yaml: error[E002]" in proc.stdout
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "bad name")
    proc = posnet("diff", "HEAD~1..HEAD", "fleets/demo", "--exit-code", cwd=repo)
    assert proc.returncode == 1
    assert "HEAD/sites/\\xff\\xfe.yaml: error[E002]" in proc.stdout, proc.stdout


def test_a_group_file_named_yml_is_diffed_like_yaml(repo: Path) -> None:
    """validate and render read groups/*.yml, diff did not: a change there was "No
    changes" (exit 0 under --exit-code), and fleet.yaml changed with it gave a false
    unknown group."""
    groups = repo / "fleets" / "demo" / "groups"
    (group,) = [g for g in groups.iterdir() if g.name == "coast.yaml"]
    git(repo, "mv", str(group), str(groups / "coast.yml"))
    git(repo, "commit", "-qm", "yml")
    edit(groups / "coast.yml", "isp: ", "isp: Other ")
    git(repo, "commit", "-qam", "isp")
    proc = posnet("diff", "HEAD~1..HEAD", "fleets/demo", "--exit-code", cwd=repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "No changes" not in proc.stdout


def test_a_revision_without_fleet_yaml_is_an_error_not_every_store_removed(repo: Path) -> None:
    git(repo, "rm", "-q", "fleets/demo/fleet.yaml")
    git(repo, "commit", "-qm", "lost fleet.yaml")
    proc = posnet("diff", "HEAD~1..HEAD", "fleets/demo", "--exit-code", cwd=repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "E002" in proc.stdout and "no fleet.yaml" in proc.stdout
    assert "removed" not in proc.stdout


def test_a_huge_store_table_does_not_hide_the_stores_after_it(
    demo_plans: dict[str, Plan],
) -> None:
    """The first table too big for the comment ended it: a one-line port change after
    it was not shown, nor named."""
    base = demo_plans["gent-01"]
    big = dataclasses.replace(base, site_id="a-big")
    (e, *others) = big.exposures
    wide = tuple(f"198.51.{i // 250}.{i % 250}/32" for i in range(400))
    big_new = dataclasses.replace(big, exposures=(dataclasses.replace(e, sources=wide), *others))
    small = dataclasses.replace(base, site_id="b-small")
    small_new = _renamed(small, "renamed")
    out = format_markdown(diff_plans([big, small], [big_new, small_new]), limit=4000)
    assert len(out.encode()) < 4000
    assert "`b-small` changed" in out and "| ~ | store setting edge | name |" in out
    assert "`a-big` changed" not in out
    assert "… and 1 more store(s)" in out and "(`a-big`)" in out


def test_an_added_store_shows_what_it_opens(demo_plans: dict[str, Plan]) -> None:
    """Text and Markdown listed an added store's items by name only: the port, target
    and sources of what it opens were in JSON alone."""
    diff = diff_plans([], [demo_plans["gent-01"]])
    text, md_out = format_text(diff), format_markdown(diff)
    (e, *_) = demo_plans["gent-01"].exposures
    for out in (text, md_out):
        assert str(e.public_port) in out and e.sources[0].split("/")[0] in out, out


def test_a_shallow_clone_is_named_as_the_reason_a_revision_is_unknown(
    repo: Path, tmp_path: Path
) -> None:
    """CI checks out one commit by default: 'unknown revision' gave no hint why."""
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(clone))
    proc = posnet("diff", "HEAD~1..HEAD", "fleets/demo", cwd=clone)
    assert proc.returncode == 1
    assert "unknown revision 'HEAD~1'; this clone is shallow" in proc.stdout + proc.stderr
    full = posnet("diff", "HEAD~1..HEAD", "fleets/demo", cwd=repo)
    assert "shallow" not in full.stdout + full.stderr


def test_rev_dot_dot_is_rev_to_head_and_a_file_is_not_a_folder(repo: Path) -> None:
    """`HEAD~1..` compared with the working folder, where git reads HEAD~1..HEAD; a
    store's file given as the new side was 'no such folder'."""
    edit(repo / "fleets" / "demo" / "sites" / "gent-01.yaml", "18444", "18450")  # uncommitted
    proc = posnet("diff", "HEAD~1..", "fleets/demo", "--format", "json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "18444" in text and "18450" not in text
    demo = repo / "fleets" / "demo"
    wrong = posnet("diff", str(demo), str(demo / "sites" / "gent-01.yaml"), cwd=repo)
    assert wrong.returncode == 1 and "a file, not a fleet folder" in wrong.stdout + wrong.stderr
