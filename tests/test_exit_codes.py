"""Exit codes: which inputs reach which code, and that exit 3 ("internal error, a bug")
is reached by a bug only.

Problems of the environment (a read-only or full disk, a bad -o, a closed stdout, a
damaged tree) are the user's to fix: one line naming the path and what to do, exit 1
or 2. The table below is the list; the last case is the only way to exit 3.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from generator import build
from generator.cli import Terminated
from tests.conftest import ROOT
from tests.treeutil import copy_demo, posnet, posnet_process, snapshot

PY = shlex.quote(sys.executable)


def _in_mount(tmp: Path, options: str, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` in a private mount namespace with a tmpfs on tmp/mnt."""
    mnt = tmp / "mnt"
    mnt.mkdir()
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    full = f"mount -t tmpfs -o {options} tmpfs {mnt} && {script}"
    env = dict(os.environ, POSNET_CACHE_DIR="off", COLUMNS="200")
    res = subprocess.run(
        ["unshare", "-m", "sh", "-c", full],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    if "mount:" in res.stderr and "permission denied" in res.stderr.lower():
        pytest.skip("no permission to mount a tmpfs")
    return res


def _one_line(res: subprocess.CompletedProcess[str]) -> str:
    lines = [
        ln for ln in res.stderr.splitlines() if ln.startswith("posnet:") and "valid;" not in ln
    ]
    assert len(lines) == 1, res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr
    return lines[0]


def test_read_only_folder(tmp_path: Path) -> None:
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "mnt" / "build"
    res = _in_mount(
        tmp_path,
        "size=4m",
        f"mkdir {out} && mount -o remount,ro {out.parent} && "
        f"exec {PY} -m generator render {fleet} -o {out}",
    )
    assert res.returncode == 1, res.stderr
    line = _one_line(res)
    assert str(out) in line and "Read-only file system" in line and "-o" in line


def test_disk_full_leaves_the_tree_as_it_was(tmp_path: Path) -> None:
    """A real full disk: a 96 KiB tmpfs that the first render does not fit in."""
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "mnt" / "build"
    res = _in_mount(
        tmp_path,
        "size=96k",
        f"{PY} -m generator render {fleet} -o {out}; echo rc=$?; "
        f"find {out} -mindepth 1 -not -name .posnet-lock | wc -l",
    )
    assert "rc=1" in res.stdout, res.stderr
    line = _one_line(res)
    assert "No space left on device" in line and str(out) in line and "free some space" in line
    assert res.stdout.split()[-1] == "0", "a failed first render must leave nothing behind"


def test_disk_full_midway_keeps_the_old_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on the 4th write of a re-render: the tree stays exactly as it was."""
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "build"
    assert posnet("render", fleet, "-o", out).returncode == 0
    before = snapshot(out)
    for site in (fleet / "sites").glob("*.yaml"):
        site.write_text(site.read_text().replace("isp: ", "isp: Other ", 1))
    real_write = os.write
    count = [0]

    def full(fd: int, data: bytes) -> int:
        count[0] += 1
        if count[0] >= 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(build.os, "write", full)
    res = posnet("render", fleet, "-o", out, "--force")
    monkeypatch.undo()
    assert count[0] >= 4
    assert res.returncode == 1, res.stderr
    assert "No space left on device" in res.stderr and str(out) in res.stderr
    after = {k: v for k, v in snapshot(out).items() if k != ".posnet-lock"}
    assert after == {k: v for k, v in before.items() if k != ".posnet-lock"}


@pytest.mark.parametrize(
    ("make_out", "code", "says"),
    [
        (lambda t, f: "", 2, "-o: empty path"),
        (lambda t, f: "   ", 2, "-o: empty path"),
        (lambda t, f: str(f), 2, "would overlap the fleet folder"),
        (lambda t, f: str(f / "build"), 2, "would overlap the fleet folder"),
        (lambda t, f: str(f / "sites"), 2, "would overlap the fleet folder"),
        (lambda t, f: str(t), 2, "would overlap the fleet folder"),
        (lambda t, f: str(_touch(t / "a-file")), 1, "-o names an existing file"),
        (lambda t, f: str(_touch(t / "a-file") / "build"), 1, "Not a directory"),
    ],
    ids=["empty", "blank", "fleet", "inside-fleet", "sites", "parent", "file", "under-file"],
)
def test_bad_output_folder(
    tmp_path: Path, make_out: Callable[[Path, Path], str], code: int, says: str
) -> None:
    fleet = copy_demo(tmp_path / "fleet")
    before = snapshot(tmp_path)
    out = make_out(tmp_path, fleet)
    before = snapshot(tmp_path)
    res = posnet("render", fleet, "-o", out)
    assert res.returncode == code, res.stderr
    assert says in res.stderr, res.stderr
    assert snapshot(tmp_path) == before, "nothing may be written for a refused -o"
    assert not (ROOT / "manifest.json").exists()


@pytest.mark.parametrize(
    "make_out",
    [lambda f: f, lambda f: f / "build", lambda f: f / "sites", lambda f: f.parent],
    ids=["fleet", "inside-fleet", "sites", "parent"],
)
def test_a_site_file_rendered_over_its_own_fleet_is_refused(
    tmp_path: Path, make_out: Callable[[Path], Path]
) -> None:
    """`render fleet/sites/gent-01.yaml -o fleet --force` replaced every store spec by
    build folders: -o was compared with sites/ only. The whole fleet is off limits."""
    fleet = copy_demo(tmp_path / "fleet")
    before = snapshot(tmp_path)
    site = fleet / "sites" / "gent-01.yaml"
    res = posnet("render", site, "-o", make_out(fleet), "--force")
    assert res.returncode == 2, res.stderr
    assert "would overlap the fleet folder" in res.stderr, res.stderr
    assert snapshot(tmp_path) == before


def test_a_store_file_renders_that_store_with_its_whole_fleet_validated(tmp_path: Path) -> None:
    """`render sites/gent-01.yaml` rendered all seven stores but showed one store's
    diagnostics: another store's error went unseen, and that store's folder was pruned
    from the tree. It is `render FLEET --site gent-01` now."""
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "out"
    res = posnet("render", fleet / "sites" / "gent-01.yaml", "-o", out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(p.name for p in (out / "sites").iterdir()) == ["gent-01"]
    assert posnet("render", fleet, "-o", out).returncode == 0
    other = fleet / "sites" / "ostend-05.yaml"
    other.write_text(other.read_text().replace("ip_mode: static", "ip_mode: sideways", 1))
    before = {k: v for k, v in snapshot(out).items() if k != ".posnet-lock"}
    res = posnet("render", fleet / "sites" / "gent-01.yaml", "-o", out)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "ostend-05.yaml" in res.stdout and "nothing rendered" in res.stderr
    assert {k: v for k, v in snapshot(out).items() if k != ".posnet-lock"} == before


def test_a_mistyped_fleet_path_is_e002_and_creates_nothing(tmp_path: Path) -> None:
    """A PATH that does not exist was taken for a file, its parent for the fleet: the
    answer was a false "overlap" (exit 2), and a render elsewhere created -o."""
    for target in (tmp_path / "build", tmp_path / "new" / "out"):
        res = posnet("render", tmp_path / "flet", "-o", target)
        assert res.returncode == 1 and "E002" in res.stdout, res.stdout + res.stderr
        assert "overlap" not in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _touch(p: Path) -> Path:
    p.touch()
    return p


def _proc(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, POSNET_CACHE_DIR="off")
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "generator", *args], cwd=ROOT, env=env, text=True, **kw
    )


def test_stdout_closed() -> None:
    script = f"exec {PY} -m generator rules >&-"
    res = subprocess.run(
        ["sh", "-c", script], capture_output=False, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert res.returncode == 2
    assert (
        res.stderr.strip() == "posnet: standard output is closed; redirect it instead (>/dev/null)"
    )


def test_stdout_a_broken_pipe() -> None:
    r, w = os.pipe()
    os.close(r)
    res = _proc(["rules", "--format", "json"], stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    assert res.returncode == 1
    assert res.stderr.strip() == "posnet: cannot write to standard output: Broken pipe"


def test_stdout_a_full_device() -> None:
    with open("/dev/full", "w") as full:
        res = _proc(
            ["validate", "examples/demo-fleet", "--format", "sarif"],
            stdout=full,
            stderr=subprocess.PIPE,
        )
    assert res.returncode == 1
    assert "posnet: cannot write to standard output: No space left on device" in res.stderr
    assert "internal error" not in res.stderr


def test_empty_journal_and_manifest_exit_1(tmp_path: Path) -> None:
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "build"
    assert posnet("render", fleet, "-o", out).returncode == 0
    for name in (".posnet-journal.json", "manifest.json"):
        (out / name).write_text("")
        res = posnet("render", fleet, "-o", out)
        assert res.returncode == 1 and f"{out / name}: damaged" in res.stderr, res.stderr
        assert posnet("render", fleet, "-o", out, "--force").returncode == 0


def test_only_a_bug_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one way to exit 3: posnet itself fails (here: a renderer raising)."""
    import generator.targets

    def broken(plan: object) -> dict[str, str]:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(generator.targets, "render_site", broken)
    fleet = copy_demo(tmp_path / "fleet")
    res = posnet("render", fleet, "-o", tmp_path / "build")
    assert res.returncode == 3
    assert "internal error: RuntimeError: renderer bug" in res.stderr
    assert "this is a bug" in res.stderr


def test_usage_error_exits_2(tmp_path: Path) -> None:
    res = posnet("render", "--jobs", "nope", tmp_path)
    assert res.returncode == 2


def test_version_and_help_exit_0() -> None:
    assert posnet("--version").returncode == 0
    assert posnet("render", "--help").returncode == 0
    res = posnet("rules", "--format", "json")
    assert res.returncode == 0 and json.loads(res.stdout)


def test_check_works_on_a_read_only_tree(tmp_path: Path) -> None:
    """CI checks a read-only checkout: `render --check` goes on without the lock."""
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "mnt" / "build"
    res = _in_mount(
        tmp_path,
        "size=8m",
        f"{PY} -m generator render {fleet} -o {out} >/dev/null && "
        f"mount -o remount,ro {out.parent} && "
        f"exec {PY} -m generator render {fleet} -o {out} --check",
    )
    assert res.returncode == 0, res.stderr
    assert f"build tree {out} is up to date" in res.stderr


@pytest.mark.parametrize(
    ("interrupt", "code", "word"),
    [(KeyboardInterrupt, 130, "interrupted"), (Terminated, 143, "terminated")],
)
def test_an_interrupt_after_the_work_is_done_still_exits_cleanly(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    interrupt: type[KeyboardInterrupt],
    code: int,
    word: str,
) -> None:
    """Ctrl-C (or SIGTERM) that lands once the tree is written, while the entry point
    joins the cache writer, exits 130 (143) and says the tree was updated, never a
    traceback nor death by the signal (found: a SIGINT at that moment exited -2)."""
    from generator import workers

    real_join = workers.join_later

    def join_interrupted(stop: bool = False) -> None:
        if not stop:
            raise interrupt
        real_join(stop=True)

    monkeypatch.setattr(workers, "join_later", join_interrupted)
    fleet = copy_demo(tmp_path / "fleet")
    res = posnet("render", fleet, "-o", tmp_path / "build")
    assert res.returncode == code, res.stderr
    assert f"posnet: {word}; the build tree was updated completely" in res.stderr
    monkeypatch.undo()
    assert posnet("render", fleet, "-o", tmp_path / "build", "--check").returncode == 0


def test_drift_with_a_limit_that_matches_no_host_says_so(tmp_path: Path) -> None:
    """ansible-playbook refuses a --limit that leaves no host: drift said "could not
    run" (exit 1) where its help promises "no host matched" (exit 4)."""
    fleet = copy_demo(tmp_path / "fleet")
    assert posnet("render", fleet, "-o", tmp_path / "build").returncode == 0
    res = posnet_process("drift", tmp_path / "build", "--limit", "no-such-host")
    assert res.returncode == 4, res.stdout + res.stderr
    assert "posnet drift: no host matched no-such-host" in res.stderr
    assert "could not run" not in res.stderr


def test_apply_with_a_limit_that_matches_no_host_says_so(tmp_path: Path) -> None:
    """ansible-playbook refuses a --limit that leaves no host, before any play: apply
    then said it was giving back locks and that some "could not be released
    (unreachable?)", of stores it never reached."""
    fleet = copy_demo(tmp_path / "fleet")
    assert posnet("render", fleet, "-o", tmp_path / "build").returncode == 0
    res = posnet_process("apply", tmp_path / "build", "--limit", "no-such-host")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "posnet: no host matched no-such-host; nothing was applied" in res.stderr
    assert "lock" not in res.stderr and "unreachable" not in res.stderr


def test_an_option_for_one_store_given_twice_is_a_usage_error(tmp_path: Path) -> None:
    """click keeps the last value of a plain option: `plan --site a --site b` silently
    showed b alone."""
    fleet = copy_demo(tmp_path / "fleet")
    res = posnet("plan", fleet, "--site", "gent-01", "--site", "ostend-05")
    assert res.returncode == 2 and "given 2 times; give it once" in res.stderr, res.stderr
    one = posnet("plan", fleet, "--site", "gent-01")
    assert one.returncode == 0 and '"site_id": "gent-01"' in one.stdout
    assert posnet("render", fleet, "-o", tmp_path / "b").returncode == 0
    probe = posnet("probe", tmp_path / "b", "--site", "gent-01", "--site", "ostend-05")
    assert probe.returncode == 2 and "give it once" in probe.stderr, probe.stderr
