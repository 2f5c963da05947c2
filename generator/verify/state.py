"""Live-vs-intended state of a fleet, gathered with Ansible (playbooks/state.yml).

`posnet verify` and `posnet drift` both run the read-only state play (the posnet_state
module on each host, Ansible forks for parallelism) and read one JSON report per host.
A host with no report was unreachable; a host whose check could not run reports an
error. Verdicts are per host and per store.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from generator.jsondata import parse_untrusted

Verdict = Literal["in sync", "drifted", "unreachable", "error"]

#: `posnet drift` exit codes (documented in --help and the README).
EXIT_IN_SYNC = 0
EXIT_DRIFT = 5  # 3 stays the internal-error code of every posnet command
EXIT_UNCHECKED = 4

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RECAP_LINE = re.compile(r"^(\S+)\s*:\s*(ok=\d+.*)$")


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """Ansible's PLAY RECAP, host -> {ok, changed, unreachable, failed, ...}."""
    text = _ANSI.sub("", output)
    _, _, tail = text.rpartition("PLAY RECAP")
    recap: dict[str, dict[str, int]] = {}
    for line in tail.splitlines():
        m = _RECAP_LINE.match(line.strip())
        if m:
            recap[m[1]] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m[2])}
    return recap


def run_playbook(cmd: list[str], env: dict[str, str], echo: bool) -> tuple[int, str]:
    """Run ansible-playbook, stream its output when ``echo``, return (rc, output)."""
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
            lines.append(line)
        return proc.wait(), "".join(lines)
    except BaseException:
        # Ctrl-C or SIGTERM: ansible-playbook is gone before posnet goes on (apply then
        # releases the stores' locks: nothing of this run may still write after that).
        stop(proc)
        raise


STOP_SECONDS = 15


def stop(proc: subprocess.Popen[str]) -> None:
    """Interrupt ansible-playbook as Ctrl-C does; kill it if it is still there after
    STOP_SECONDS."""
    with suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class HostState:
    host: str
    site: str
    verdict: Verdict
    drift: list[dict[str, str]] = field(default_factory=list)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "site": self.site,
            "verdict": self.verdict,
            "drift": self.drift,
            "error": self.error,
        }


def collect(report_dir: Path, recap: dict[str, dict[str, int]]) -> list[HostState]:
    """One state per host the play reached or tried to reach."""
    states: dict[str, HostState] = {}
    for path in sorted(report_dir.glob("*.json")):
        try:
            data = parse_untrusted(path.read_bytes())
            host = str(data["host"])
            drift = [{"what": str(d["what"]), "detail": str(d["detail"])} for d in data["drift"]]
            error = str(data.get("error") or "")
        except (OSError, ValueError, LookupError, TypeError, AttributeError):
            # a report is written on the host from its answers: damage is that host's error
            host, drift, error = path.stem, [], f"damaged state report {path.name}"
            data = {}
        verdict: Verdict = "error" if error else "drifted" if drift else "in sync"
        states[host] = HostState(host, str(data.get("site") or ""), verdict, drift, error)
    for host, counts in recap.items():
        if host in states or host == "localhost":
            continue
        why = "unreachable" if counts.get("unreachable") else "failed before its check"
        states[host] = HostState(
            host, "", "unreachable" if counts.get("unreachable") else "error", error=why
        )
    return [states[h] for h in sorted(states)]


def exit_code(states: list[HostState]) -> int:
    if any(s.verdict == "drifted" for s in states):
        return EXIT_DRIFT
    if not states or any(s.verdict in ("unreachable", "error") for s in states):
        return EXIT_UNCHECKED
    return EXIT_IN_SYNC


def _line(s: HostState) -> str:
    if s.verdict == "drifted":
        return "; ".join(f"{d['what']}: {d['detail']}" for d in s.drift)
    return s.error


def render(states: list[HostState], fmt: str) -> str:
    if fmt == "json":
        summary = {v: sum(1 for s in states if s.verdict == v) for v in _VERDICTS}
        return json.dumps({"summary": summary, "hosts": [s.as_dict() for s in states]}, indent=2)
    if fmt == "markdown":
        rows = ["| store | host | verdict | what |", "|---|---|---|---|"]
        for s in states:
            what = _line(s).replace("|", "\\|")
            rows.append(f"| {s.site or '?'} | {s.host} | {s.verdict} | {what} |")
        return "\n".join(rows)
    out = []
    for s in states:
        out.append(f"{s.verdict:<12} {s.host} ({s.site or '?'})")
        out += [f"    {d['what']}: {d['detail']}" for d in s.drift]
        if s.error:
            out.append(f"    {s.error}")
    counts = ", ".join(f"{sum(1 for s in states if s.verdict == v)} {v}" for v in _VERDICTS)
    out.append(f"posnet drift: {len(states)} hosts: {counts}")
    return "\n".join(out)


_VERDICTS: tuple[Verdict, ...] = ("in sync", "drifted", "unreachable", "error")
