"""Device property files completed for real (issue 9, item 4).

`posnet apply` runs the real playbooks (site.yml, tag `devices`) with ansible-playbook on
this machine: playbooks/devices.yml delegates every task to localhost, so no store host
is needed. bruges-06 has a cloud connector terminal (secret inside a JSON string inside a
double-quoted property: style json-in-dq) and the PowerEPOS auth settings (a whole
double-quoted value: style confuse). Secrets come from the `posnet_vault` mapping and
hold quotes, backslashes, braces and non-ASCII; each carries a token that must appear
nowhere but in the completed files: not in the tree, not in Ansible's output at -vvv
--diff, not in Ansible's log file.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from generator.targets import devices
from generator.tree_lock import LOCK as LOCK_NAME
from tests.conftest import ROOT
from tests.treeutil import render_demo, snapshot

TOKEN = "ZqToken4711"  # in every secret: found anywhere, a secret leaked
PPAAS = f"pq\"r\\s'{{x}}$HOME {TOKEN}\u00fc"
AUTH = f'au"th\\\\{TOKEN}'
SITE = "bruges-06"
FILES = {"ppaas-terminal1.properties": "terminal1", "powerepos-auth.properties": "integrator"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_demo(tmp_path_factory.mktemp("devices") / "build")


def tree_state(tree: Path) -> dict[str, tuple[object, ...]]:
    """The tree's files, but not the lock file every apply rewrites (its pid)."""
    return {k: v for k, v in snapshot(tree).items() if k != LOCK_NAME}


def vault(tmp: Path, **values: str) -> Path:
    p = tmp / "vault.yml"
    secrets = {"bruges_06_ppaas_secret": PPAAS, "bruges_06_auth_secret": AUTH} | values
    p.write_text(json.dumps({"posnet_vault": secrets}))
    return p


def apply(
    tree: Path, tmp: Path, *extra: str, home: Path | None = None, limit: str = "site_bruges_06"
) -> subprocess.CompletedProcess[str]:
    """`posnet apply --tags devices` for bruges-06 (or `limit`) at -vvv --diff, Ansible
    logging to a file."""
    env = dict(
        os.environ,
        POSNET_CACHE_DIR="off",
        HOME=str(home or tmp / "home"),
        ANSIBLE_LOG_PATH=str(tmp / "ansible.log"),
        ANSIBLE_NOCOLOR="1",
    )
    cmd = [sys.executable, "-m", "generator", "apply", str(tree), "--limit", limit]
    cmd += ["--tags", "devices", "-vvv", "--diff", *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def unquote(value: str) -> str:
    """A double-quoted property value as the device reads it (`\\\\` and `\\"` escapes)."""
    assert value.startswith('"') and value.endswith('"') and len(value) >= 2, value
    out, chars = [], iter(value[1:-1])
    for ch in chars:
        if ch == "\\":
            ch = next(chars)
            assert ch in '\\"', value
        else:
            assert ch != '"', value
        out.append(ch)
    return "".join(out)


def properties(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(ln.split(": ", 1) for ln in lines if ln and not ln.startswith("#"))


def leaked(tmp: Path, res: subprocess.CompletedProcess[str]) -> list[str]:
    log = tmp / "ansible.log"
    places = {"stdout": res.stdout, "stderr": res.stderr}
    places["ansible.log"] = log.read_text() if log.exists() else ""
    return [where for where, text in places.items() if TOKEN in text]


def assert_completed(folder: Path) -> None:
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name in FILES:
        f = folder / name
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, name
        assert "@@POSNET_SECRET_" not in f.read_text(), name
    terminal = properties(folder / "ppaas-terminal1.properties")
    registration = json.loads(unquote(terminal["custom_registration_data"]))
    assert registration == {
        "client_id": "c1d130d2-9dc0-4b0a-89f4-cd8f25d52afd",
        "client_secret": PPAAS,
    }
    assert terminal["ep_register_url"] == (
        "wss://api.qa.ppaas.tech/cloud-connector/v1/device-listener"
    )
    assert unquote(properties(folder / "powerepos-auth.properties")["AuthSecret"]) == AUTH


def test_apply_completes_every_device_file_outside_the_tree(tree: Path, tmp_path: Path) -> None:
    before = tree_state(tree)
    out = tmp_path / "collect"
    res = apply(tree, tmp_path, "--devices-out", str(out), "-e", f"@{vault(tmp_path)}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert "ESTABLISH LOCAL CONNECTION" in res.stdout  # -vvv was in effect
    assert_completed(out / SITE)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for name, device in FILES.items():
        assert f"posnet: {SITE}: load {out / SITE / name} onto {device} " in res.stdout
    assert leaked(tmp_path, res) == []
    assert (tmp_path / "ansible.log").stat().st_size > 0
    # the tree is untouched and holds no secret
    assert tree_state(tree) == before
    for p in tree.rglob("*"):
        if p.is_file():
            assert TOKEN.encode() not in p.read_bytes(), p
    # a second apply writes nothing
    again = apply(tree, tmp_path, "--devices-out", str(out), "-e", f"@{vault(tmp_path)}")
    assert again.returncode == 0, again.stdout[-3000:]
    assert " changed=0 " in again.stdout
    assert leaked(tmp_path, again) == []


def test_files_of_devices_gone_from_the_spec_are_removed(tree: Path, tmp_path: Path) -> None:
    """The bad state: completed files (credentials) of a device no longer in the spec,
    in a store that still has devices and in one that has none left. Apply removes them
    (a link itself, never what it points to) and leaves folders and current files. The
    folder's path holds what a regular expression or a replacement would read as syntax:
    matching by path would then take the current files for stale ones."""
    out = tmp_path / "collect \\1 [a]+ (b)$"
    assert (
        apply(tree, tmp_path, "--devices-out", str(out), "-e", f"@{vault(tmp_path)}").returncode
        == 0
    )
    outside = tmp_path / "precious.txt"
    outside.write_text("not posnet's\n")
    stale = out / SITE / "old-terminal.properties"
    stale.write_text(f"Secret={TOKEN}\n")
    (out / SITE / "link.properties").symlink_to(outside)
    (out / SITE / "operator-notes").mkdir()
    (out / SITE / "operator-notes" / "n.txt").write_text("kept\n")
    gone = out / "gent-01" / "terminal.properties"  # gent-01 has no devices
    gone.parent.mkdir(mode=0o700)
    gone.write_text(f"Secret={TOKEN}\n")
    res = apply(tree, tmp_path, "--devices-out", str(out), "-e", f"@{vault(tmp_path)}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert not stale.exists() and not (out / SITE / "link.properties").is_symlink()
    assert outside.read_text() == "not posnet's\n"
    assert (out / SITE / "operator-notes" / "n.txt").read_text() == "kept\n"
    (out / SITE / "operator-notes" / "n.txt").unlink()
    (out / SITE / "operator-notes").rmdir()
    assert_completed(out / SITE)
    assert leaked(tmp_path, res) == []
    other = apply(tree, tmp_path, "--devices-out", str(out), limit="site_gent_01")
    assert other.returncode == 0, other.stdout[-3000:] + other.stderr
    assert not gone.exists()
    sheet = " ".join((tree / "sites" / SITE / "HANDOVER.md").read_text().split())
    assert (
        "Once a device is gone from the spec, the next `posnet apply` removes its completed "
        "file from that folder (files and links only: folders in it are left alone)." in sheet
    )


def test_check_mode_writes_nothing_and_says_so(tree: Path, tmp_path: Path) -> None:
    """`apply --check` must not tell the operator to load a file it did not write, nor
    remove a stale one."""
    out = tmp_path / "collect"
    stale = out / SITE / "old-terminal.properties"
    stale.parent.mkdir(parents=True, mode=0o700)
    stale.write_text("kept in check mode\n")
    res = apply(tree, tmp_path, "--devices-out", str(out), "--check", "-e", f"@{vault(tmp_path)}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    for name, device in FILES.items():
        assert f"posnet: {SITE}: check mode, not written: {out / SITE / name} for {device} " in (
            res.stdout
        )
    assert f"posnet: {SITE}: load " not in res.stdout
    assert sorted(p.name for p in (out / SITE).iterdir()) == [stale.name]
    assert stale.read_text() == "kept in check mode\n"
    assert leaked(tmp_path, res) == []


def test_default_folder_is_the_one_the_handover_names(tree: Path, tmp_path: Path) -> None:
    home = tmp_path / "operator"
    home.mkdir()
    res = apply(tree, tmp_path, "-e", f"@{vault(tmp_path)}", home=home)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert devices.DEVICES_OUT == "~/posnet-devices"
    assert_completed(home / "posnet-devices" / SITE)
    sheet = (tree / "sites" / SITE / "HANDOVER.md").read_text()
    for name, device in FILES.items():
        assert f"| `~/posnet-devices/{SITE}/{name}` | `{device}` |" in sheet
    assert "readable by its owner only (0600), to `~/posnet-devices/bruges-06/`" in sheet
    assert "`posnet apply --devices-out DIR` writes to `DIR/bruges-06/`" in sheet
    assert leaked(tmp_path, res) == []


def test_playbook_default_is_the_generator_constant() -> None:
    play = yaml.safe_load((ROOT / "playbooks" / "devices.yml").read_text())[0]
    assert play["vars"]["posnet_devices_out"] == f"{{{{ '{devices.DEVICES_OUT}' | expanduser }}}}"
    site = yaml.safe_load((ROOT / "playbooks" / "site.yml").read_text())
    assert {"name": "Device files, completed on the controller",
            "ansible.builtin.import_playbook": "devices.yml"} in site  # fmt: skip


def test_a_line_break_is_refused_naming_the_reference_only(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "collect"
    bad = vault(tmp_path, bruges_06_ppaas_secret=f"first\n{TOKEN}")
    res = apply(tree, tmp_path, "--devices-out", str(out), "-e", f"@{bad}")
    assert res.returncode == 1
    assert "posnet secret vault:bruges_06_ppaas_secret: holds a line break, refused" in res.stdout
    assert f"posnet apply: {SITE}-edge: failed" in res.stderr
    assert leaked(tmp_path, res) == []
    assert not (out / SITE / "ppaas-terminal1.properties").exists()


def test_a_trailing_newline_is_not_a_line_break(tree: Path, tmp_path: Path) -> None:
    """A secret file usually ends with a newline: it is stripped, not refused."""
    out = tmp_path / "collect"
    res = apply(
        tree,
        tmp_path,
        "--devices-out",
        str(out),
        "-e",
        f"@{vault(tmp_path, bruges_06_auth_secret=AUTH + chr(10))}",
    )
    assert res.returncode == 0, res.stdout[-3000:]
    assert unquote(properties(out / SITE / "powerepos-auth.properties")["AuthSecret"]) == AUTH


def test_a_missing_secret_is_named(tree: Path, tmp_path: Path) -> None:
    p = tmp_path / "vault.yml"
    p.write_text(json.dumps({"posnet_vault": {"bruges_06_ppaas_secret": PPAAS}}))
    res = apply(tree, tmp_path, "--devices-out", str(tmp_path / "collect"), "-e", f"@{p}")
    assert res.returncode == 1
    assert "posnet secret vault:bruges_06_auth_secret: not in the posnet_vault mapping" in (
        res.stdout
    )
    assert leaked(tmp_path, res) == []


@pytest.mark.parametrize("inside", [".", "sites/bruges-06", "x/../devices"])
def test_a_devices_folder_inside_the_tree_is_refused(
    tree: Path, tmp_path: Path, inside: str
) -> None:
    before = tree_state(tree)
    res = apply(tree, tmp_path, "--devices-out", str(tree / inside), "-e", f"@{vault(tmp_path)}")
    assert res.returncode == 1
    assert f"--devices-out {tree / inside}: inside the build tree {tree}" in res.stderr
    assert "must never go into the tree" in res.stderr
    assert tree_state(tree) == before


def test_the_playbook_alone_refuses_the_tree_too(tree: Path, tmp_path: Path) -> None:
    """Run directly (ansible-playbook, AWX), the playbook makes the same check."""
    before = tree_state(tree)
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, HOME=str(tmp_path), ANSIBLE_NOCOLOR="1")
    cmd = [str(bin_dir / "ansible-playbook"), "-i", str(tree / "inventory")]
    cmd += [str(ROOT / "playbooks" / "devices.yml"), "--limit", "site_bruges_06"]
    cmd += ["-e", json.dumps({"posnet_devices_out": str(tree / "devices")})]
    cmd += ["-e", f"@{vault(tmp_path)}"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert "is inside the build tree" in res.stdout
    assert tree_state(tree) == before
    assert TOKEN not in res.stdout + res.stderr


@pytest.mark.parametrize(
    ("serial", "max_fail", "last_batch_runs"),
    [
        ("2", 0, False),  # 1 of 2 failed: 50% > 0%, stop
        ("2", 50, True),  # 50% is not more than 50%: go on
        ("1", 100, False),  # every store of a batch failed: Ansible stops, whatever the share
    ],
)
def test_a_failed_batch_stops_the_roll_out(
    tree: Path, tmp_path: Path, serial: str, max_fail: int, last_batch_runs: bool
) -> None:
    """`--serial` and `--max-fail-percentage` as `posnet apply --help` describes them,
    run for real on three stores in inventory order: bruges-06 fails (its device
    secrets are missing), brussels-03 succeeds, gent-01 comes last and shows whether its
    batch ran (its clean-up removes a stale completed file)."""
    out = tmp_path / "collect"
    stale = out / "gent-01" / "terminal.properties"
    stale.parent.mkdir(parents=True, mode=0o700)
    stale.write_text("Secret=old\n")
    res = apply(
        tree,
        tmp_path,
        *("--devices-out", str(out), "--serial", serial),
        *("--max-fail-percentage", str(max_fail)),
        limit="bruges-06-edge:brussels-03-edge:gent-01-edge",
    )
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr
    assert "posnet secret vault:bruges_06" in res.stdout
    assert stale.exists() is not last_batch_runs, res.stdout[-3000:]
