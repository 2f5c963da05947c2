"""Helpers for tests that attack the build tree: run posnet, fingerprint a folder."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from generator.cli import main
from tests.conftest import DEMO, ROOT

Snapshot = dict[str, tuple[object, ...]]


class Hung(BaseException):
    """Not an OSError (which posnet may catch): nothing swallows it."""


def posnet(*args: str | Path, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    """posnet's main() in this process, as the command line runs it (exit code, stdout,
    stderr). A read of a FIFO would block: SIGALRM ends it and fails the test."""
    out, err = io.StringIO(), io.StringIO()

    def hung(signum: int, frame: object) -> None:
        raise Hung(f"posnet {args} hung (reading a FIFO?)")

    old = signal.signal(signal.SIGALRM, hung)
    old_env = os.environ.get("POSNET_CACHE_DIR")
    os.environ["POSNET_CACHE_DIR"] = "off"
    signal.alarm(timeout)
    code: object = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if old_env is None:
            del os.environ["POSNET_CACHE_DIR"]
        else:
            os.environ["POSNET_CACHE_DIR"] = old_env
    rc = code if isinstance(code, int) else 1
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def posnet_process(
    *args: str | Path, timeout: float = 120, env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    """posnet in a fresh process (a FIFO read would hang it: the timeout fails the test);
    `env`: variables on top of the cache being off."""
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "generator", *map(str, args)],
        cwd=ROOT,
        env={**os.environ, "POSNET_CACHE_DIR": "off", "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def snapshot(folder: Path) -> Snapshot:
    """Every entry under folder (links not followed): type, size, mtime, content hash.

    FIFOs are fingerprinted without opening them."""
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath, name)
            st = os.lstat(p)
            rel = str(p.relative_to(folder))
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                out[rel] = ("file", st.st_size, st.st_mtime_ns, digest)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", st.st_mtime_ns)
            else:
                out[rel] = ("special", stat.S_IFMT(st.st_mode), st.st_mtime_ns)
    return out


def copy_demo(dest: Path) -> Path:
    shutil.copytree(DEMO, dest)
    return dest


def render_demo(out: Path) -> Path:
    """The demo fleet rendered into `out` (a tree `posnet apply` accepts)."""
    from generator import build
    from generator.analyze import analyze

    a = analyze(DEMO)
    build.render_tree(out, a.fleet.name, a.plans, a.digests)
    return out


def rendered_bench_fleet(base: Path, stores: int, seed: int) -> tuple[Path, Path]:
    """A synthetic fleet of benchmarks/fleet_bench.py in base/fleet, rendered to
    base/build (with worker processes when it is big enough)."""
    from generator import build
    from generator.analyze import analyze

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import fleet_bench

    fleet_bench.make_fleet(base / "fleet", stores, seed=seed)
    a = analyze(base / "fleet")
    assert not a.failed()
    build.render_tree(base / "build", a.fleet.name, a.plans, a.digests)
    return base / "fleet", base / "build"


def read_stamps(out: Path) -> dict[str, Any]:
    """The body of OUT's stamps file (build._write_cache), whatever its signature."""
    from generator.build import CACHE

    _, _, body = (out / CACHE).read_bytes().partition(b"\n")
    doc: dict[str, Any] = json.loads(body)
    return doc


def write_stamps(out: Path, doc: dict[str, Any], key: bytes | None = None) -> None:
    """A stamps file signed with `key` (default: this process's, as render_tree called
    here signs it; posnet() runs with the cache off, whose key is b"")."""
    from generator.build import CACHE
    from generator.tree_guard import stamps_bytes
    from generator.user_cache import stamp_key

    (out / CACHE).write_bytes(stamps_bytes(doc, stamp_key() if key is None else key))
