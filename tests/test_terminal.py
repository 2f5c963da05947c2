"""Terminal output for people: colour and progress on a TTY only, --quiet, and the
per-rule summary of lint findings."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import DEMO, ROOT
from tests.test_diff import posnet

EXE = Path(sys.executable).with_name("posnet")


def _on_tty(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run posnet with stdout and stderr on one pseudo-terminal; all it printed."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [str(EXE), *args],
        stdout=child,
        stderr=child,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )
    os.close(child)
    out = b""
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        out += data
    os.close(main)
    return proc.wait(timeout=120), out.decode(errors="replace")


def test_colour_on_a_terminal_only() -> None:
    code, out = _on_tty("validate", str(DEMO))
    assert code == 0
    assert "\033[1;33mwarning[PN101]\033[0m" in out
    piped = posnet("validate", str(DEMO))
    assert "\033[" not in piped.stdout + piped.stderr
    _, plain = _on_tty("validate", str(DEMO), env={"NO_COLOR": "1"})
    assert "\033[1;33m" not in plain


def test_per_rule_summary_and_quiet() -> None:
    proc = posnet("validate", str(DEMO))
    rows = [line for line in proc.stderr.splitlines() if "PN101" in line]
    assert len(rows) == 1 and "dynamic-public-ip" in rows[0]
    cells = [c.strip() for c in rows[0].split("│") if c.strip()]
    assert cells == ["PN101", "warning", "dynamic-public-ip", "2", "2"]
    quiet = posnet("-q", "validate", str(DEMO))
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout == proc.stdout  # the findings themselves are never hidden
    machine = posnet("validate", str(DEMO), "--format", "json")
    assert "lint findings per rule" not in machine.stderr


def test_progress_bar_on_a_terminal_not_in_a_pipe(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fleet_bench import make_fleet

    fleet = make_fleet(tmp_path / "fleet", 210, seed=5).root
    env = {"POSNET_CACHE_DIR": "off"}
    code, out = _on_tty("render", str(fleet), "-o", str(tmp_path / "b1"), "--jobs", "2", env=env)
    assert code == 0, out
    assert "rendering" in out and "/210" in out
    piped = subprocess.run(
        [str(EXE), "render", str(fleet), "-o", str(tmp_path / "b2"), "--jobs", "2"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    assert piped.returncode == 0
    assert "rendering" not in piped.stderr and "\033[" not in piped.stderr
    _, quiet = _on_tty("-q", "render", str(fleet), "-o", str(tmp_path / "b3"), env=env)
    assert "rendering" not in quiet and "/210" not in quiet
    args = ("report", str(tmp_path / "b1"), "--fleet", str(fleet), "-o", str(tmp_path / "r"))
    code, out = _on_tty(*args, env=env)
    assert code == 0 and "report" in out and "/210" in out, out


def test_the_bar_moves_when_one_process_does_the_work(tmp_path: Path) -> None:
    """Fewer stores than are worth worker processes (here 60) are rendered and
    reported in this process: the bar still counts them, it does not sit at 0."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fleet_bench import make_fleet

    fleet = make_fleet(tmp_path / "fleet", 60, seed=5).root
    env = {"POSNET_CACHE_DIR": "off"}
    code, out = _on_tty("render", str(fleet), "-o", str(tmp_path / "b"), env=env)
    assert code == 0 and "60/60" in out, out[-3000:]
    args = ("report", str(tmp_path / "b"), "--fleet", str(fleet), "-o", str(tmp_path / "r"))
    code, out = _on_tty(*args, env=env)
    assert code == 0 and "60/60" in out, out[-3000:]


def test_quiet_report_and_init(tmp_path: Path) -> None:
    init = posnet("-q", "init", str(tmp_path / "f"))
    assert init.returncode == 0 and init.stderr == ""
    report = posnet("-q", "report", str(tmp_path / "f" / "build"), "-o", str(tmp_path / "r"))
    assert report.returncode == 0 and report.stderr == ""
    loud = posnet("report", str(tmp_path / "f" / "build"), "-o", str(tmp_path / "r"))
    assert "posnet: report of 1 store(s)" in loud.stderr


def test_quiet_keeps_every_problem(tmp_path: Path) -> None:
    """-q drops summaries only: a refusal that exits 1 still says why (it once went silent
    because the whole stderr console was muted)."""
    build = tmp_path / "build"
    assert posnet("-q", "render", str(DEMO), "-o", str(build)).returncode == 0
    victim = tmp_path / "victim"
    victim.write_text("not posnet's\n")
    handover = build / "sites" / "gent-01" / "HANDOVER.md"
    handover.unlink()
    handover.symlink_to(victim)
    for args in (
        ("render", str(DEMO), "-o", str(build)),
        ("render", str(DEMO), "-o", str(build), "--check"),
        ("render", str(DEMO), "-o", str(victim)),
    ):
        loud, quiet = posnet(*args), posnet("-q", *args)
        assert loud.returncode == quiet.returncode == 1, (args, quiet.stderr)
        problem = [line for line in loud.stderr.splitlines() if line.startswith("posnet: ")]
        assert problem and quiet.stderr.splitlines() == problem, (args, quiet.stderr)
    assert victim.read_text() == "not posnet's\n"
    bad = tmp_path / "fleet"
    shutil.copytree(DEMO, bad)
    site = bad / "sites" / "gent-01.yaml"
    site.write_text(site.read_text().replace('"198.51.100.128/26"', '"10.0.0.0/33"', 1))
    quiet = posnet("-q", "validate", str(bad))
    assert quiet.returncode == 1 and "error[" in quiet.stdout
    assert "store(s) checked, not valid" in quiet.stderr
    stale = posnet("-q", "render", str(DEMO), "-o", str(tmp_path / "b2"), "--check")
    assert stale.returncode == 1 and "is out of date" in stale.stderr
