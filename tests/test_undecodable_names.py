"""File names that are not UTF-8, in the fleet and in the build tree.

Python hands such a name over with each bad byte as a lone surrogate (PEP 383): encoded
for output it raised UnicodeEncodeError (exit 3), or reached a terminal as raw bytes.
Every --format must print it escaped (`\\xff`), and a store file so named is refused.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from generator.errors import FORMATTERS
from tests.conftest import ROOT
from tests.treeutil import copy_demo, posnet

BAD = os.fsdecode(b"\xff\xfe")  # two bytes that are not UTF-8, as Python names them
ESC = os.fsdecode(b"\xfe\x1b[31m")  # and a terminal colour escape
FORMATS = sorted(FORMATTERS)
SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> None:
    """No byte of a bad name, and no control character but line breaks, in output."""
    assert not SURROGATE.search(text), text[-2000:]
    assert "\x1b" not in text, text[-2000:]


@pytest.mark.parametrize("fmt", FORMATS)
def test_store_file_named_in_bad_bytes_is_refused(tmp_path: Path, fmt: str) -> None:
    fleet = copy_demo(tmp_path / "fleet")
    (fleet / "sites" / f"{BAD}.yaml").write_bytes((fleet / "sites" / "gent-01.yaml").read_bytes())
    res = posnet("validate", fleet, "--format", fmt)
    assert res.returncode == 1, res.stderr[-2000:]
    clean(res.stdout + res.stderr)
    assert "E002" in res.stdout and "not valid UTF-8" in res.stdout
    assert shown(res.stdout, fmt) & {"\\xff\\xfe.yaml", "%FF%FE.yaml"}


def shown(stdout: str, fmt: str) -> set[str]:
    """The file names a report shows (last path part), as a reader sees them."""
    if fmt == "json":
        return {d["location"]["file"].rpartition("/")[2] for d in json.loads(stdout)}
    if fmt == "gitlab":
        return {d["location"]["path"].rpartition("/")[2] for d in json.loads(stdout)}
    if fmt == "sarif":
        results = json.loads(stdout)["runs"][0]["results"]
        return {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].rpartition("/")[2]
            for r in results
        }
    pattern = r"file=[^,]*/([^,/]*)," if fmt == "github" else r"^\S*/([^/:]*):"
    return set(re.findall(pattern, stdout, re.M))


@pytest.mark.parametrize("fmt", FORMATS)
def test_ignored_files_named_in_bad_bytes(tmp_path: Path, fmt: str) -> None:
    """Files validate only notes (not a store, hidden): shown escaped, exit 0."""
    fleet = copy_demo(tmp_path / "fleet")
    (fleet / "sites" / f"{BAD}x.txt").touch()
    (fleet / "sites" / f".{ESC}x.yaml").touch()
    res = posnet("validate", fleet, "--format", fmt)
    assert res.returncode == 0, res.stderr[-2000:]
    clean(res.stdout + res.stderr)
    names = shown(res.stdout, fmt)
    if fmt in ("sarif", "gitlab"):  # a URI or path: the bytes themselves, percent-encoded
        assert {"%FF%FEx.txt", ".%FE%1B%5B31mx.yaml"} <= names, names
    elif fmt == "json":  # JSON escapes the control character itself
        assert {"\\xff\\xfex.txt", ".\\xfe\x1b[31mx.yaml"} <= names, names
    else:
        assert {"\\xff\\xfex.txt", ".\\xfe\\x1b[31mx.yaml"} <= names, names


@pytest.mark.parametrize("fmt", FORMATS)
def test_stray_file_named_in_bad_bytes_in_the_tree(tmp_path: Path, fmt: str) -> None:
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "build"
    assert posnet("render", fleet, "-o", out).returncode == 0
    (out / "sites" / "gent-01" / f"{BAD}{ESC}").touch()
    res = posnet("render", fleet, "-o", out, "--check", "--format", fmt)
    assert res.returncode == 1, res.stderr[-2000:]
    clean(res.stdout + res.stderr)
    names = (
        shown(res.stdout, fmt) if fmt != "text" else set(re.findall(r"/([^/]*): stray", res.stdout))
    )
    if fmt in ("sarif", "gitlab"):
        assert {"%FF%FE%FE%1B%5B31m"} <= names, names
    elif fmt == "json":
        assert {"\\xff\\xfe\\xfe\x1b[31m"} <= names, names
    else:
        assert {"\\xff\\xfe\\xfe\\x1b[31m"} <= names, names
    res = posnet("render", fleet, "-o", out)  # the stray file is removed
    assert res.returncode == 0 and not (out / "sites" / "gent-01" / f"{BAD}{ESC}").exists()


def test_fleet_in_a_folder_named_in_bad_bytes_with_the_site_cache(tmp_path: Path) -> None:
    """The site cache hashed paths with str.encode(): a folder or store file named in
    bad bytes ended the run (exit 3) before anything was checked."""
    fleet = copy_demo(tmp_path / BAD / "fleet")
    (fleet / "sites" / f"{BAD}.yaml").write_bytes((fleet / "sites" / "gent-01.yaml").read_bytes())
    env = dict(os.environ, POSNET_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    for _ in range(2):  # cold, then warm
        res = subprocess.run(
            [sys.executable, "-m", "generator", "validate", str(fleet)],
            capture_output=True,
            env=env,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        assert res.returncode == 1, res.stderr[-2000:]
        text = (res.stdout + res.stderr).decode("utf-8")  # strict: no raw bytes
        assert "\\xff\\xfe/fleet/sites/\\xff\\xfe.yaml" in text and "E002" in text
