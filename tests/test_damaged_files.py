"""Files posnet reads but does not control, damaged: never an internal error.

The site cache (a pickle in the user's cache folder) can be truncated or altered on disk;
JSON from the build tree or from a host's state report can be nested past Python's
recursion limit, which the standard parser reports as RecursionError (not ValueError).
The build tree's own files (manifest, journal, stat cache) are covered in
test_hostile_tree.py.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import click
import pytest

from generator import runtime
from generator.jsondata import parse_untrusted
from generator.report import read_manifest
from generator.verify.state import collect
from tests.conftest import ROOT
from tests.treeutil import copy_demo

DEEP = ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000]


@pytest.mark.parametrize("raw", [*DEEP, "\xff", b"\xff\xfe{", "{"])
def test_parse_untrusted_says_value_error(raw: str | bytes) -> None:
    with pytest.raises(ValueError):
        parse_untrusted(raw)


@pytest.mark.parametrize("payload", DEEP)
def test_report_reads_a_deep_manifest_as_no_store(tmp_path: Path, payload: str) -> None:
    (tmp_path / "manifest.json").write_text(payload)
    assert read_manifest(tmp_path) == {}


@pytest.mark.parametrize("payload", DEEP)
def test_probe_names_a_damaged_tree_file(tmp_path: Path, payload: str) -> None:
    (tmp_path / "manifest.json").write_text(payload)
    with pytest.raises(click.ClickException, match=r"manifest\.json: damaged"):
        runtime._tree_json(tmp_path, "manifest.json")


@pytest.mark.parametrize("payload", [*DEEP, "\xff", '["host"]', '{"host": "h"}'])
def test_a_damaged_state_report_is_that_hosts_error(tmp_path: Path, payload: str) -> None:
    (tmp_path / "edge-1.json").write_text(payload)
    (tmp_path / "edge-2.json").write_text('{"host": "edge-2", "site": "s", "drift": []}')
    states = collect(tmp_path, {})
    assert [(s.host, s.verdict) for s in states] == [("edge-1", "error"), ("edge-2", "in sync")]
    assert "damaged state report edge-1.json" in states[0].error


# --------------------------------------------------------------------------- site cache


def _validate(fleet: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, POSNET_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "generator", "validate", str(fleet)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


@pytest.fixture
def warm(tmp_path: Path) -> tuple[Path, Path, str]:
    """A fleet, its cache file after one validate, and that validate's output."""
    fleet = copy_demo(tmp_path / "fleet")
    first = _validate(fleet, tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    (file,) = (tmp_path / "cache").glob("fleet-*.pickle")
    return fleet, file, first.stdout


def _seal(payload: bytes) -> bytes:
    """A cache file whose checksum is right (what posnet writes) around `payload`."""
    return hashlib.sha256(payload).digest() + payload


def _doc(file: Path) -> dict[str, object]:
    doc = pickle.loads(file.read_bytes()[32:])
    assert isinstance(doc, dict)
    return doc


def _bucket_files(file: Path) -> list[Path]:
    return sorted(file.parent.glob(f"{file.stem}.*.bucket"))


def _replace_bucket(file: Path, b: int, digest: str, blob: bytes) -> str:
    """Bucket B's file replaced by BLOB, under the name its digest gives."""
    (file.parent / f"{file.stem}.{b:02d}-{digest[:32]}.bucket").unlink()
    new = hashlib.sha256(blob).hexdigest()
    (file.parent / f"{file.stem}.{b:02d}-{new[:32]}.bucket").write_bytes(blob)
    return new


def _damage_buckets(file: Path, how: str) -> None:
    """Every bucket file damaged HOW; the main file left as it is, or resealed."""
    buckets = _bucket_files(file)
    assert buckets
    if how == "bucket-missing":
        for p in buckets:
            p.unlink()
    elif how == "bucket-truncated":
        for p in buckets:
            p.write_bytes(p.read_bytes()[:-1])
    elif how == "bucket-flipped":  # same size and name: only the SHA-256 sees it
        for p in buckets:
            good = p.read_bytes()
            p.write_bytes(good[:9] + bytes([good[9] ^ 0x55]) + good[10:])
    elif how == "bucket-forged":  # a valid pickle, same name, the findings gone
        for p in buckets:
            records = pickle.loads(p.read_bytes())
            for rec in records.values():
                rec.lint = []
            p.write_bytes(pickle.dumps(records))
    elif how == "sealed-buckets-swapped":  # each bucket named as the next: none matches
        doc = _doc(file)
        table = doc["buckets"]
        assert isinstance(table, dict)
        blobs = {
            b: (file.parent / f"{file.stem}.{b:02d}-{d[:32]}.bucket").read_bytes()
            for b, d in table.items()
        }
        order = sorted(blobs)
        for b, nxt in zip(order, order[1:] + order[:1], strict=True):
            table[b] = hashlib.sha256(blobs[nxt]).hexdigest()
        for p in buckets:
            p.unlink()
        for b, d in table.items():
            (file.parent / f"{file.stem}.{b:02d}-{d[:32]}.bucket").write_bytes(
                blobs[order[(order.index(b) + 1) % len(order)]]
            )
        file.write_bytes(_seal(pickle.dumps(doc)))
    elif how == "sealed-bucket-outside":  # a digest that would name a file elsewhere
        doc = _doc(file)
        table = doc["buckets"]
        assert isinstance(table, dict)
        table[next(iter(table))] = "/../../" + "0" * 57
        file.write_bytes(_seal(pickle.dumps(doc)))


def _damage(file: Path, how: str) -> None:
    if how.startswith(("bucket-", "sealed-bucket")):
        _damage_buckets(file, how)
        return
    good = file.read_bytes()
    if how == "truncated":
        file.write_bytes(good[: len(good) // 2])
    elif how == "bad-protocol":  # unpickling raised ValueError: an internal error
        file.write_bytes(b"\x80\xff" + good[2:])
    elif how == "bad-utf8":  # a SHORT_BINUNICODE of invalid UTF-8: UnicodeDecodeError
        file.write_bytes(b"\x80\x05\x8c\x02\xff\xfe\x94.")
    elif how == "flipped":  # one byte changed inside a bucket: only the checksum sees it
        mid = len(good) // 2
        file.write_bytes(good[:mid] + bytes([good[mid] ^ 0x55]) + good[mid + 1 :])
    elif how == "sealed-garbage":  # checksum right, contents not a pickle posnet wrote
        file.write_bytes(_seal(b"\x80\xff"))
    elif how == "sealed-wrong-bucket":  # right checksums, format, context; buckets a list
        doc = _doc(file)
        buckets = doc["buckets"]
        assert isinstance(buckets, dict)
        for b, digest in buckets.items():
            blob = pickle.dumps(["x"])
            buckets[b] = _replace_bucket(file, b, digest, blob)
        file.write_bytes(_seal(pickle.dumps(doc)))
    elif how == "sealed-wrong-index":
        doc = _doc(file)
        doc["index"] = ["not", "a", "dict"]
        file.write_bytes(_seal(pickle.dumps(doc)))


@pytest.mark.parametrize(
    "how",
    [
        "truncated",
        "bad-protocol",
        "bad-utf8",
        "flipped",
        "sealed-garbage",
        "sealed-wrong-bucket",
        "sealed-wrong-index",
        "bucket-missing",
        "bucket-truncated",
        "bucket-flipped",
        "bucket-forged",
        "sealed-buckets-swapped",
        "sealed-bucket-outside",
    ],
)
def test_damaged_site_cache_is_ignored(warm: tuple[Path, Path, str], how: str) -> None:
    fleet, file, first = warm
    _damage(file, how)
    res = _validate(fleet, file.parent)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout == first
    again = _validate(fleet, file.parent)  # the damaged file was replaced by a good one
    assert again.returncode == 0 and again.stdout == first
