"""`posnet diff` benchmark: a synthetic fleet in a Git repo, one store changed.

    .venv/bin/python benchmarks/diff_bench.py --stores 10000 --repeat 3

The fleet is fleet_bench.py's (every integration pattern, central proxies). Commit 1
holds the fleet, commit 2 changes one store's public port. Each figure is the median
of --repeat runs of `posnet diff` in a fresh process with an empty site cache (what a
CI job gets): REV1..REV2 read with git, and two fleet folders. The output must name
exactly that store's exposure (and nothing else), or the benchmark fails.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_bench import make_fleet, posnet

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def _git(repo: Path, *args: str) -> None:
    subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True)


def _change_port(path: Path) -> None:
    text = path.read_text()
    bump = lambda m: f"public_port: {int(m[1]) + 1}"  # noqa: E731
    new, n = re.subn(r"public_port: (\d+)", bump, text, count=1)
    assert n == 1, path
    path.write_text(new)


def _check(out: str, store: str) -> None:
    doc = json.loads(out[: out.rindex("}") + 1])
    ids = [s["id"] for s in doc["stores"]]
    assert ids == [store], ids
    kinds = [c["kind"] for c in doc["stores"][0]["changes"]]
    assert kinds == ["exposure"], kinds


def bench(stores: int, repeat: int, base: Path) -> dict[str, float]:
    repo = base / "repo"
    fleet = make_fleet(repo, stores, seed=7)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "fleet")
    old = base / "old"
    subprocess.run(["cp", "-r", str(repo), str(old)], check=True)
    _change_port(fleet.changed)
    _git(repo, "commit", "-qam", "one store changed")
    store = fleet.changed.stem
    out: dict[str, float] = {}
    cases = {
        "git REV1..REV2": ["diff", "HEAD~1..HEAD", str(repo), "--format", "json"],
        "two folders": ["diff", str(old), str(repo), "--format", "json"],
    }
    for label, args in cases.items():
        times = []
        for i in range(repeat):
            scratch = base / f"scratch-{label.split()[0]}-{i}"
            scratch.mkdir()
            run, text = posnet(args, scratch)
            _check(text, store)
            times.append(run.seconds)
        out[label] = statistics.median(times)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", type=int, action="append")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for n in args.stores or [10000]:
        with tempfile.TemporaryDirectory(prefix="posnet-diff-bench-") as tmp:
            res = bench(n, args.repeat, Path(tmp))
        for label, seconds in res.items():
            print(f"{n:>6} stores, one changed, {label:<15} {seconds:6.2f} s (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
