"""The store-side apply lock (playbooks/library/posnet_lock.py): its decisions, its lease
rule, and the race it exists for, run as the real module file on this machine.

The lab proves it on a real edge (tests/lab/test_e2e_lock.py); here each bad state is
made directly in a scratch state folder: a live holder, a holder whose lease ended, an
unreadable lock file, a run whose lease another run took over, a watchdog still armed at
release, and many runs asking at the same instant.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, load_playbook_plugin

MODULE = ROOT / "playbooks" / "library" / "posnet_lock.py"


def load() -> ModuleType:
    return load_playbook_plugin("library", "posnet_lock")


lock = load()


def args(path: Path, action: str, token: str, **more: Any) -> dict[str, Any]:
    return {"action": action, "token": token, "owner": f"owner-{token}", "host": "gent-01-edge",
            "seconds": 900, "path": str(path), **more}  # fmt: skip


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "apply.lock"


def holder(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def test_second_run_is_refused_naming_the_holder_and_since_when(path: Path) -> None:
    first = lock.run(args(path, "acquire", "A"))
    assert not first.get("failed") and first["verdict"] == "take"
    taken = holder(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    second = lock.run(args(path, "acquire", "B"))
    assert second["failed"] and second["verdict"] == "busy"
    assert "gent-01-edge is being applied by another run: owner-A (run A) since " in second["msg"]
    assert lock.stamp(taken["since"]) in second["msg"]
    assert "posnet apply --wait SECONDS" in second["msg"]
    assert holder(path) == taken  # the refused run wrote nothing


def test_renewal_extends_the_lease_and_keeps_since(path: Path) -> None:
    lock.run(args(path, "acquire", "A"), clock=lambda: 1000.0)
    res = lock.run(args(path, "renew", "A", seconds=120), clock=lambda: 1500.0)
    assert not res.get("failed")
    assert holder(path)["since"] == 1000.0 and holder(path)["deadline"] == 1620.0


def test_expired_lease_is_taken_over_with_a_warning(path: Path) -> None:
    lock.run(args(path, "acquire", "A", seconds=60), clock=lambda: 1000.0)
    busy = lock.run(args(path, "acquire", "B"), clock=lambda: 1059.0)
    assert busy["failed"]
    res = lock.run(args(path, "acquire", "B"), clock=lambda: 1060.0)
    assert not res.get("failed") and res["verdict"] == "takeover"
    (warning,) = res["warnings"]
    assert "took over the lock of a run whose lease ended: owner-A (run A)" in warning
    assert holder(path)["token"] == "B" and holder(path)["since"] == 1060.0


def test_a_run_whose_lease_was_taken_over_stops_at_its_next_renewal(path: Path) -> None:
    lock.run(args(path, "acquire", "A", seconds=60), clock=lambda: 1000.0)
    lock.run(args(path, "acquire", "B"), clock=lambda: 2000.0)
    res = lock.run(args(path, "renew", "A"), clock=lambda: 2001.0)
    assert res["failed"] and res["verdict"] == "lost"
    assert "another run took the lock over (owner-B (run B)" in res["msg"]
    assert holder(path)["token"] == "B"
    # Even once B's lease ended: B may have written; A does not carry on.
    assert lock.run(args(path, "renew", "A"), clock=lambda: 9999.0)["verdict"] == "lost"


def test_renewal_without_a_lock_taken_by_site_yml_fails(path: Path) -> None:
    res = lock.run(args(path, "renew", ""))
    assert res["failed"] and "run playbooks/site.yml (or `posnet apply`)" in res["msg"]
    assert not path.exists()


def test_release_removes_only_this_runs_lock(path: Path) -> None:
    lock.run(args(path, "acquire", "A"))
    other = lock.run(args(path, "release", "B"))
    assert not other.get("failed") and other["verdict"] == "none" and path.exists()
    assert lock.run(args(path, "release", ""))["verdict"] == "none" and path.exists()
    assert lock.run(args(path, "release", "A"))["verdict"] == "remove"
    assert not path.exists()
    assert lock.run(args(path, "release", "A"))["verdict"] == "none"  # twice: harmless


def test_release_keeps_the_lock_while_a_watchdog_is_armed(path: Path) -> None:
    now = time.time()
    lock.run(args(path, "acquire", "A"), clock=lambda: now)
    watch = path.parent / "watch-1-2.armed"
    watch.touch()
    res = lock.run(args(path, "release", "A", watchdog_seconds=30), clock=lambda: now)
    assert res["verdict"] == "kept" and "a firewall watchdog is still armed" in res["warnings"][0]
    deadline = holder(path)["deadline"]
    assert watch.stat().st_mtime + 30 <= deadline <= watch.stat().st_mtime + 30 + lock.SLACK
    # Another run is refused until the watchdog has done its work, then takes over: told
    # that A finished (not that A is applying), and with no "dead run" warning after.
    busy = lock.run(args(path, "acquire", "B"), clock=lambda: now + 1)
    assert busy["verdict"] == "busy" and busy["failed"]
    assert "owner-A (run A) finished; its firewall watchdog may still roll back" in busy["msg"]
    assert "is being applied" not in busy["msg"] and "run that died" not in busy["msg"]
    took = lock.run(args(path, "acquire", "B"), clock=lambda: deadline)
    assert took["verdict"] == "takeover" and not took.get("warnings")
    assert holder(path)["token"] == "B" and not holder(path).get("finished")


def test_an_old_armed_file_does_not_keep_the_lock(path: Path) -> None:
    lock.run(args(path, "acquire", "A"))
    watch = path.parent / "watch-1-2.armed"
    watch.touch()
    os.utime(watch, (time.time() - 3600, time.time() - 3600))  # watchdog gone (reboot)
    assert lock.run(args(path, "release", "A", watchdog_seconds=30))["verdict"] == "remove"
    assert not path.exists()


@pytest.mark.parametrize("raw", [b"", b"{not json", b'{"token": 1}', b"\xff\xfe", b"[1, 2]"])
def test_an_unreadable_lock_file_holds_for_a_lease_from_its_last_change(
    path: Path, raw: bytes
) -> None:
    path.parent.mkdir()
    path.write_bytes(raw)
    mtime = path.stat().st_mtime
    res = lock.run(args(path, "acquire", "B", seconds=60), clock=lambda: mtime + 59)
    assert res["failed"] and "unknown (unreadable lock file)" in res["msg"]
    res = lock.run(args(path, "acquire", "B", seconds=60), clock=lambda: mtime + 60)
    assert res["verdict"] == "takeover" and holder(path)["token"] == "B"


def test_wait_gets_the_lock_once_the_holder_releases(path: Path) -> None:
    lock.run(args(path, "acquire", "A"))
    timer = threading.Timer(1.0, lambda: lock.run(args(path, "release", "A")))
    timer.start()
    try:
        t0 = time.monotonic()
        res = lock.run(args(path, "acquire", "B", wait=20))
        assert not res.get("failed") and holder(path)["token"] == "B"
        assert 0.9 <= time.monotonic() - t0 < 10
    finally:
        timer.join()
    res = lock.run(args(path, "acquire", "C", wait=1))
    assert res["failed"] and "still held after waiting 1 s" in res["msg"]


def _contend(path: str, token: str, start: Any, out: Any) -> None:
    start.wait()
    res = load().run(args(Path(path), "acquire", token))
    out.put((token, bool(res.get("failed"))))


def test_of_many_runs_asking_at_once_exactly_one_gets_the_lock(path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(str(path), f"T{i}", start, out)) for i in range(8)]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    winners = [token for token, failed in results if not failed]
    assert len(winners) == 1, results
    assert holder(path)["token"] == winners[0]
    assert sorted(os.listdir(path.parent)) == ["apply.lock"]  # no temporary file left


def test_the_module_file_runs_as_ansible_runs_it(tmp_path: Path, path: Path) -> None:
    argfile = tmp_path / "args.json"
    argfile.write_text(json.dumps(args(path, "acquire", "A")))
    res = subprocess.run(
        [sys.executable, MODULE, argfile], capture_output=True, text=True, check=True
    )
    assert json.loads(res.stdout)["verdict"] == "take"
    res = subprocess.run(
        [sys.executable, MODULE, argfile.with_name("missing.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode != 0
    argfile.write_text(json.dumps(args(path, "steal", "A")))
    res = subprocess.run(
        [sys.executable, MODULE, argfile], capture_output=True, text=True, check=True
    )
    assert json.loads(res.stdout)["failed"]


def test_site_yml_locks_first_and_releases_last() -> None:
    site = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
    imports = [p["ansible.builtin.import_playbook"] for p in site]
    assert imports[0] == "lock.yml" and imports[-1] == "unlock.yml"
    for name in ("lock.yml", "unlock.yml"):
        (play,) = yaml.safe_load((ROOT / "playbooks" / name).read_text())
        assert play["tags"] == ["always"]  # --tags firewall still locks
        assert play["hosts"] == "posnet_edges:posnet_proxies:ddns"
    # Every play that writes on a store host renews the lock before anything else.
    for name in ("firewall.yml", "dhcp.yml", "ddns.yml", "proxy.yml"):
        (play,) = yaml.safe_load((ROOT / "playbooks" / name).read_text())
        assert play["tasks"][0] == {
            "name": "Renew the apply lock",
            "ansible.builtin.import_tasks": "tasks/renew_lock.yml",
        }, name


def test_a_run_whose_lock_was_taken_over_and_released_does_not_take_it_again(
    path: Path,
) -> None:
    # A's lease ran out mid-run, B took the lock over, wrote and released it: A's next
    # play must stop, not find "no lock" and carry on as if nothing happened.
    lock.run(args(path, "acquire", "A", seconds=60), clock=lambda: 1000.0)
    lock.run(args(path, "acquire", "B"), clock=lambda: 2000.0)
    assert lock.run(args(path, "release", "B"), clock=lambda: 2100.0)["verdict"] == "remove"
    res = lock.run(args(path, "renew", "A"), clock=lambda: 2200.0)
    assert res["failed"] and res["verdict"] == "lost"
    assert "the lock this run took is gone from the host" in res["msg"]
    assert not path.exists()


def test_a_lease_written_before_the_clock_went_back_counts_again_from_now(path: Path) -> None:
    # Written while the edge's clock read 2030; NTP then set it back to 2027: the lease
    # end must not be read as three years away.
    lock.run(args(path, "acquire", "A", seconds=60), clock=lambda: 1.9e9)
    res = lock.run(args(path, "acquire", "B"), clock=lambda: 1.8e9)
    assert res["verdict"] == "busy" and lock.stamp(1.8e9 + 60) in res["msg"]
    assert holder(path)["deadline"] == 1.8e9 + 60  # stable: written back
    res = lock.run(args(path, "acquire", "B"), clock=lambda: 1.8e9 + 60)
    assert res["verdict"] == "takeover"
    # A lease that is only as far ahead as it was granted is left alone.
    lock.run(args(path, "renew", "B", seconds=600), clock=lambda: 1.8e9 + 100)
    lock.run(args(path, "acquire", "C", seconds=60), clock=lambda: 1.8e9 + 101)
    assert holder(path)["deadline"] == 1.8e9 + 700


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e300", "-5"])
def test_a_lock_file_with_no_real_time_is_unreadable_not_held_forever(
    path: Path, value: str
) -> None:
    path.parent.mkdir()
    path.write_text(f'{{"token": "X", "owner": "o", "since": 0, "deadline": {value}}}')
    mtime = path.stat().st_mtime
    res = lock.run(args(path, "acquire", "B", seconds=60), clock=lambda: mtime + 1)
    assert res["failed"] and "unknown (unreadable lock file)" in res["msg"]
    res = lock.run(args(path, "acquire", "B", seconds=60), clock=lambda: mtime + 60)
    assert res["verdict"] == "takeover"


def _planted(path: Path, kind: str) -> None:
    path.parent.mkdir(mode=0o700)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        target = path.parent.parent / "elsewhere"
        target.write_text('{"token": "A", "owner": "o", "since": 0, "deadline": 1e10}')
        path.symlink_to(target)
    else:
        path.mkdir()


@pytest.mark.parametrize("kind", ["fifo", "symlink", "folder"])
@pytest.mark.parametrize("action", ["acquire", "renew", "release"])
def test_a_planted_lock_path_is_refused_naming_it_without_hanging(
    path: Path, kind: str, action: str
) -> None:
    _planted(path, kind)
    out: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: out.append(lock.run(args(path, action, "A"))))
    worker.daemon = True
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "posnet_lock hung on a planted " + kind
    (res,) = out
    assert res["failed"] and res["msg"].startswith(
        f"posnet: the apply lock on gent-01-edge: {path}"
    )


def test_a_planted_temporary_file_is_not_written_through(path: Path) -> None:
    path.parent.mkdir(mode=0o700)
    os.mkfifo(f"{path}.{os.getpid()}.tmp")  # no reader: opening it to write would hang
    out: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: out.append(lock.run(args(path, "acquire", "A"))))
    worker.daemon = True
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    assert out[0]["verdict"] == "take" and holder(path)["token"] == "A"


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o702], ids=oct)
def test_a_state_folder_others_may_write_is_refused(path: Path, mode: int) -> None:
    path.parent.mkdir()
    path.parent.chmod(mode)
    res = lock.run(args(path, "acquire", "A"))
    assert res["failed"] and f"{path.parent} is owned by uid" in res["msg"]
    assert f"mode {mode:04o}" in res["msg"] and "chmod 700" in res["msg"]
    assert not path.exists()


@pytest.mark.parametrize("seconds", ["abc", 1e300, -5, "nan"])
def test_a_lease_length_that_is_no_number_of_seconds_is_an_error(path: Path, seconds: Any) -> None:
    res = lock.run(args(path, "acquire", "A", seconds=seconds))
    assert res["failed"] and "is not a lease length" in res["msg"]
    assert not path.exists()


class FailedApply:
    """runtime._apply with a playbook run that fails (or is interrupted): records the
    run's command and the release's command and keywords."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tree: Path, interrupted: bool) -> None:
        from generator import runtime

        self.run: list[str] = []
        self.releases: list[tuple[list[str], dict[str, Any]]] = []

        def fake_playbook(cmd: list[str], env: dict[str, str], echo: bool) -> tuple[int, str]:
            self.run = cmd
            if interrupted:
                raise KeyboardInterrupt
            return 2, ""

        def fake_run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
            self.releases.append((cmd, kw))
            return subprocess.CompletedProcess(cmd, 0, "", "")

        monkeypatch.setattr(runtime, "_tree", lambda build: tree)
        monkeypatch.setattr(runtime, "_which", lambda name: "/usr/bin/" + name)
        monkeypatch.setattr(runtime, "run_playbook", fake_playbook)
        monkeypatch.setattr(runtime.subprocess, "run", fake_run)
        monkeypatch.setattr(runtime, "_apply_summary", lambda rc, recap: None)
        self.apply = runtime._apply


@pytest.mark.parametrize("interrupted", [False, True])
def test_apply_releases_a_failed_runs_locks_as_wide_as_it_ran_and_without_a_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupted: bool
) -> None:
    # A fleet of hundreds of stores: the release after a failed run must reach every
    # one (with the run's --forks), not be cut off after a fixed time with the rest
    # still locked for a whole lease.
    fake = FailedApply(monkeypatch, tmp_path, interrupted)
    try:
        fake.apply(tmp_path, (), "site_gent_01", False, False, None, None, None, None,
                   ("ansible_user=ops",), 40, 0)  # fmt: skip
    except KeyboardInterrupt:
        assert interrupted
    ((cmd, kw),) = fake.releases
    assert cmd[cmd.index("--forks") + 1] == "40"
    assert str(ROOT / "playbooks" / "unlock.yml") in cmd
    assert cmd[cmd.index("--limit") + 1] == "site_gent_01"
    assert "timeout" not in kw and kw["stdin"] == subprocess.DEVNULL


def test_the_release_of_one_store_is_bounded_on_its_own() -> None:
    (play,) = yaml.safe_load((ROOT / "playbooks" / "unlock.yml").read_text())
    (task,) = play["tasks"]
    assert 0 < task["timeout"] <= 120


def test_the_run_and_its_release_share_every_option_and_the_users_vars_come_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The release must reach the same stores (--limit, --tags), with the same vault and
    # ssh settings (-e), as the run; the user's -e override posnet's own in both.
    fake = FailedApply(monkeypatch, tmp_path, interrupted=False)
    fake.apply(tmp_path, ("extra.yml",), "site_gent_01", False, True, "firewall", "2", 10,
                   "/vault.txt", ("posnet_serial=5", "ansible_user=ops"), 8, 2)  # fmt: skip
    run, ((release, _),) = fake.run, fake.releases
    for flag, value in (("--limit", "site_gent_01"), ("--tags", "firewall"), ("--forks", "8"),
                        ("--vault-password-file", "/vault.txt")):  # fmt: skip
        assert run[run.index(flag) + 1] == value and release[release.index(flag) + 1] == value
    assert release[release.index("-i", 3) + 1] == str(Path("extra.yml").resolve())
    assert "--diff" in run and "-vv" in run and "--diff" not in release
    for cmd in (run, release):
        values = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-e"]
        assert values[-2:] == ["posnet_serial=5", "ansible_user=ops"]
        own = json.loads(values[0])
        assert own["posnet_tree"] == str(tmp_path) and own["posnet_run_id"]
    site_vars = json.loads([run[i + 1] for i, a in enumerate(run) if a == "-e"][1])
    assert site_vars == {"posnet_lock_wait": 0, "posnet_serial": "2",
                         "posnet_max_fail_percentage": 10}  # fmt: skip
    assert [a for a in run if a.endswith("site.yml")] == [str(ROOT / "playbooks" / "site.yml")]
    assert not [a for a in run if a.endswith("unlock.yml")]
    assert release[release.index("-e") - 1] == str(ROOT / "playbooks" / "unlock.yml")


def _play_hosts(listing: str) -> list[tuple[str, set[str]]]:
    """(play name, hosts) of each play in `ansible-playbook --list-hosts` output."""
    plays: list[tuple[str, set[str]]] = []
    for line in listing.splitlines():
        if m := re.match(r"\s+play #\d+ \([^)]*\): (.*?)\tTAGS", line):
            plays.append((m[1], set()))
        elif plays and re.match(r"\s{6}\S+$", line):
            plays[-1][1].add(line.strip())
    return plays


@pytest.mark.parametrize("fleet", ["demo", "no-ddns"])
def test_every_host_a_play_writes_to_is_locked_first_and_released_last(
    tmp_path: Path, fleet: str
) -> None:
    # An extra inventory (posnet apply -i) may add a host to any group a play targets,
    # e.g. a back-office PC running the DDNS client: it must be locked like the edges,
    # or its renewal fails with "run site.yml" and a second run can overlap on it. A
    # fleet without DDNS or proxies gets no "could not match host pattern" warning.
    from generator import build
    from generator.analyze import analyze
    from tests.conftest import DEMO

    src = DEMO
    if fleet == "no-ddns":
        src = tmp_path / "fleet"
        (src / "sites").mkdir(parents=True)
        (src / "fleet.yaml").write_text((DEMO / "fleet.yaml").read_text())
        shutil.copytree(DEMO / "groups", src / "groups")
        shutil.copy(DEMO / "sites" / "gent-01.yaml", src / "sites")
    a = analyze(src)
    assert not a.failed()
    out = tmp_path / "build"
    build.render_tree(out, a.fleet.name, a.plans, a.digests)
    site = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
    patterns = set()
    for entry in site:
        (play,) = yaml.safe_load(
            (ROOT / "playbooks" / entry["ansible.builtin.import_playbook"]).read_text()
        )
        patterns |= set(str(play["hosts"]).split(":"))
    extra = tmp_path / "extra.yml"
    groups = {g: {"hosts": {f"extra-{g.replace('_', '-')}": None}} for g in sorted(patterns)}
    extra.write_text(json.dumps({"all": {"children": groups}}))
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    listings = []
    for inventories in ([out / "inventory"], [out / "inventory", extra]):
        res = subprocess.run(
            [playbook, "--list-hosts", *(f"-i{i}" for i in inventories), "site.yml"],
            capture_output=True, text=True, cwd=ROOT / "playbooks", check=True,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
        )  # fmt: skip
        assert "Could not match supplied host pattern" not in res.stdout + res.stderr
        listings.append(res.stdout)
    plays = _play_hosts(listings[1])
    assert plays[0][0].startswith("Take the posnet apply lock")
    assert plays[-1][0].startswith("Release the posnet apply lock")
    locked, released = plays[0][1], plays[-1][1]
    assert locked == released and "extra-ddns" in locked
    for name, hosts in plays[1:-1]:
        if "controller" in name:  # devices.yml writes on the controller only
            continue
        assert hosts <= locked, (name, hosts - locked)
