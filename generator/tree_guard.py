"""Confinement of the build tree: everything in it may have been written by a stranger.

The rendered tree is committed to the fleet repository and checked in CI, so a pull
request can put anything there: a manifest or journal naming `../../x`, a store folder
that is a symlink to `/etc`, a FIFO where a file should be. Before posnet reads or
writes a tree, `scan_tree` walks it without following links and refuses anything but
plain folders and regular files; the manifest, journal and cache are checked against a
schema whose every path is relative, below the output folder and without `..`. So no
path posnet derives from the tree can leave it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from generator.errors import UserError, safe_text
from generator.jsondata import parse_untrusted
from generator.nofollow import NotRegular, TooLarge, read_regular

MAX_TREE_FILE = 64 * 1024 * 1024  # a manifest of 10,000 stores is about 8 MiB

MANIFEST = "manifest.json"  # every store's input key and file hashes: reviewed with the tree
# posnet's own state at the top of the tree (gitignored, never reviewed)
CACHE = ".posnet-cache.json"  # stat fingerprints: local speed-up only
JOURNAL = ".posnet-journal.json"
CACHE_TMP, JOURNAL_TMP = f"{CACHE}.tmp", f"{JOURNAL}.tmp"  # written, then renamed over
LOCK = ".posnet-lock"
STAGING = ".posnet-staging"  # a folder: whatever stands there is discarded (recover)
# each a regular file or absent: a folder there stopped a render only halfway, after
# its commit point for the cache's
OWN_FILES = frozenset({CACHE, CACHE_TMP, JOURNAL, JOURNAL_TMP, LOCK})


class TreeError(UserError):
    """The build tree cannot be trusted or used as it is: exit 1, naming the path."""


class OversizedTreeFile(TreeError):
    """A tree file larger than posnet ever writes: a damaged manifest, journal or cache,
    but only a stale file where posnet writes a store's or the inventory's (it differs
    from anything posnet renders, and a render replaces it)."""


def _rel_ok(rel: object) -> bool:
    """A relative path below the output folder: no root, no `.`/`..`, no empty part."""
    if not isinstance(rel, str) or not rel or len(rel) > 4096 or "\0" in rel or "\\" in rel:
        return False
    wrapped = f"/{rel}/"  # an empty, `.` or `..` part shows as one of these
    return "//" not in wrapped and "/./" not in wrapped and "/../" not in wrapped


def _in_tree(rel: object) -> bool:
    """A path posnet itself writes: under sites/ or inventory/, or a top-level file."""
    if not _rel_ok(rel):
        return False
    assert isinstance(rel, str)
    return rel.startswith(("sites/", "inventory/")) or rel in ("manifest.json", ".gitignore")


def check_root(out: Path, create: bool) -> None:
    """The output folder itself: a real folder (or absent), never a link or a file."""
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        if create:
            out.mkdir(parents=True, exist_ok=True)
        return
    if stat.S_ISLNK(st.st_mode):
        raise TreeError(
            f"{safe_text(str(out))}: the output folder is a symbolic link; "
            "render into a real folder (pass its real path with -o)"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise TreeError(
            f"{safe_text(str(out))}: -o names an existing file, not a folder; "
            "pass a folder for the build tree"
        )


def stamp_of(st: os.stat_result) -> str:
    """Size, modification and change times, inode: changes whenever the file is written.

    The change time is what `touch -r` or an in-place edit that keeps size and mtime
    cannot set back (git's index relies on it too): without it, a render could call
    such a file unchanged while `render --check` calls it stale.
    Kept as text in the cache file: 80,000 short strings parse far faster than lists."""
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


class TreeScan(NamedTuple):
    files: set[str]  # under sites/ and inventory/ (relative, '/'-separated)
    stamps: dict[str, str]  # of the files under inventory/, as stamp_of() gives them
    # each folder under sites/ -> store_stamp() of every file in it
    stores: dict[str, str]


def store_stamp(stamps: Iterable[tuple[str, str]]) -> str:
    """A store's folder in one stamp: of each file (path in the folder, stamp), in order
    of their paths. Equal: the same files, none written since. A digest of that line,
    not the line: the stamps file of 10,000 stores shrinks from 6.9 to 2.2 MB, and reading,
    checking and writing it from 0.07 to 0.03 s."""
    line = "|".join(f"{rel}={stamp}" for rel, stamp in sorted(stamps))
    # a name in undecodable bytes holds surrogates (os.fsdecode): encoded one to one
    return hashlib.blake2b(line.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def scan_tree(out: Path) -> set[str]:
    """Every file under the output folder, refusing links and special files anywhere.

    Returns the files under sites/ and inventory/ (relative, '/'-separated)."""
    return _walk(out, None)


def scan_stamped(out: Path) -> TreeScan:
    """scan_tree(), with each file's stamp: taken while walking, they spare a render one
    stat per file afterwards (a no-op render of 10,000 stores checks 88,000). A store's
    are put in one line here (store_stamp), in the early scan's process: comparing
    10,000 such lines is all a render then does to find the stores left as it wrote
    them (building them there took 0.05 s), and fewer objects travel back."""
    stamps: dict[str, str] = {}
    files = _walk(out, stamps)
    by_store: dict[str, list[tuple[str, str]]] = {}
    inventory: dict[str, str] = {}
    for rel, stamp in stamps.items():
        if rel.startswith("sites/"):
            site_id, _, name = rel[6:].partition("/")
            if name:
                by_store.setdefault(site_id, []).append((name, stamp))
        else:
            inventory[rel] = stamp
    return TreeScan(files, inventory, {k: store_stamp(v) for k, v in by_store.items()})


def _walk(out: Path, stamps: dict[str, str] | None) -> set[str]:
    found: set[str] = set()
    if not out.is_dir():
        return found
    stack = [""]
    root = os.fspath(out)
    while stack:
        rel_dir = stack.pop()
        with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as it:
            entries = list(it)
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_symlink():
                raise TreeError(
                    f"{safe_text(entry.path)}: symbolic link in the build tree; posnet "
                    "follows none (it could point outside the output folder): remove it, "
                    "or render into a fresh folder"
                )
            if entry.is_dir(follow_symlinks=False):
                if rel in OWN_FILES:
                    raise TreeError(own_file_taken(entry.path))
                stack.append(rel)
            elif entry.is_file(follow_symlinks=False):
                if rel.startswith(("sites/", "inventory/")):
                    found.add(rel)
                if stamps is not None and rel.startswith(("sites/", "inventory/")):
                    stamps[rel] = stamp_of(entry.stat(follow_symlinks=False))
            else:
                raise TreeError(
                    f"{safe_text(entry.path)}: not a regular file (a FIFO, socket or device) "
                    "in the build tree: remove it, or render into a fresh folder"
                )
    return found


def own_file_taken(path: str) -> str:
    return (
        f"{safe_text(path)}: not a regular file in the build tree; posnet keeps its own "
        "state there: remove it"
    )


def read_tree_file(path: Path | str) -> bytes | None:
    """A regular file of the tree, without following a link or blocking on a FIFO.

    None when it does not exist."""
    try:
        return read_regular(path, limit=MAX_TREE_FILE)
    except NotRegular as exc:
        what = "symbolic link" if exc.st is None else "not a regular file"
        raise TreeError(f"{safe_text(str(path))}: {what} in the build tree") from None
    except TooLarge:
        raise OversizedTreeFile(f"{safe_text(str(path))}: larger than posnet ever writes") from None


def odd_mode(path: Path | str) -> bool:
    """A tree file posnet did not leave so: executable (a mode change Git records) or
    unreadable by its owner. posnet writes files as open() does (0666 less the umask)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False  # absent: the reader says so
    return bool(mode & 0o111) or not mode & 0o400


def differs(path: Path | str, want: bytes | str) -> Literal["missing", "changed"] | None:
    """How the tree file at `path` differs from `want` (its bytes, or as a str their
    SHA-256 hex): "missing" (also unreadable), "changed", or None when it matches. A
    link or special file raises TreeError. What `render --check` and `apply` share."""
    try:
        raw = read_tree_file(path)
    except OSError:  # unreadable (a TreeError, link or special file, is no OSError)
        raw = None
    except OversizedTreeFile:
        return "changed"
    if raw is None:
        return "missing"
    got = raw if isinstance(want, bytes) else hashlib.sha256(raw).hexdigest()
    return None if got == want and not odd_mode(path) else "changed"


def _damaged(path: Path, what: str) -> TreeError:
    return TreeError(
        f"{safe_text(str(path))}: damaged {what}; run `posnet render FLEET -o "
        f"{safe_text(str(path.parent))} --force` to discard it and render the tree again"
    )


def _all_hexes(values: list[object]) -> bool:
    """Every value a SHA-256 hex digest: lengths one by one, the digits all at once (a
    regular expression per value took 0.06 s of a manifest's 80,000)."""
    if not all(type(v) is str and len(v) == 64 for v in values):
        return False
    digits = "".join(values)  # type: ignore[arg-type]  # each a str, checked above
    return digits.isascii() and not digits.encode().translate(None, b"0123456789abcdef")


def _files_ok(files: dict[Any, Any]) -> bool:
    """Relative paths to SHA-256 hex digests."""
    return all(map(_rel_ok, files)) and _all_hexes(list(files.values()))


def valid_manifest(path: Path, raw: bytes) -> dict[str, Any]:
    """The manifest, checked: fleet, generator, per store its input and file hashes, and
    the hashes of the inventory files."""
    try:
        doc = parse_untrusted(raw)
    except ValueError:
        raise _damaged(path, "manifest") from None
    # "inventory" (hashes of hosts.yml and host_vars) is absent from manifests written
    # before posnet hashed the inventory: render rewrites them; `apply` refuses them.
    ok = (
        isinstance(doc, dict)
        and set(doc) - {"inventory"} == {"fleet", "generator", "sites"}
        and isinstance(doc["fleet"], str)
        and isinstance(doc["generator"], str)
        and isinstance(doc["sites"], dict)
        and isinstance(doc.get("inventory", {}), dict)
        and _files_ok(doc.get("inventory", {}))
        and all(r.startswith("inventory/") for r in doc.get("inventory", {}))
    )
    if ok:
        # 10,000 stores name the same few files: each distinct name is checked once,
        # every hash in one pass
        names: set[str] = set()
        hashes: list[object] = []
        for site, entry in doc["sites"].items():
            ok = (
                _rel_ok(site)
                and "/" not in site
                and isinstance(entry, dict)
                and set(entry) == {"input", "files"}
                and isinstance(entry["files"], dict)
            )
            if not ok:
                break
            names.update(entry["files"])
            hashes.append(entry["input"])
            hashes.extend(entry["files"].values())
        ok = ok and all(map(_rel_ok, names)) and _all_hexes(hashes)
    if not ok:
        raise _damaged(path, "manifest (it names a path outside its store, or is malformed)")
    return doc  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Journal:
    write: list[str]
    delete: list[str]


def valid_journal(path: Path, raw: bytes) -> Journal:
    """The journal of an interrupted render: only paths posnet itself writes."""
    try:
        doc = parse_untrusted(raw)
    except ValueError:
        raise _damaged(path, "journal of an interrupted render") from None
    ok = isinstance(doc, dict) and set(doc) == {"write", "delete"}
    ok = ok and all(isinstance(doc[k], list) and all(map(_in_tree, doc[k])) for k in doc)
    if not ok:
        raise _damaged(path, "journal (it names a path outside the build tree, or is malformed)")
    return Journal(list(doc["write"]), list(doc["delete"]))


STAMPS_HEAD = b"posnet-stamps-2 "  # then the body's HMAC-SHA256 (hex), a newline, the body


def stamps_bytes(doc: dict[str, Any], key: bytes) -> bytes:
    """The stamps file: its JSON body signed with this user's key (user_cache)."""
    body = json.dumps(doc, sort_keys=True).encode()
    mac = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    return STAMPS_HEAD + mac + b"\n" + body


def valid_cache(raw: bytes | None, manifest_digest: str, key: bytes) -> dict[str, Any]:
    """The local speed-up cache, or nothing: any doubt means render from scratch. Only
    stamps signed with this user's key count: a stamps file from anywhere else (a
    commit, a copy, a hand edit) could vouch for a file that was changed."""
    if raw is None or not raw.startswith(STAMPS_HEAD):
        return {}
    mac, _, body = raw[len(STAMPS_HEAD) :].partition(b"\n")
    want = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(mac, want):
        return {}
    try:
        doc = parse_untrusted(body)
    except ValueError:
        return {}
    if not isinstance(doc, dict) or doc.get("manifest") != manifest_digest:
        return {}  # written for another manifest (another render, a checkout): not ours
    fs, fleet = doc.get("fs"), doc.get("fleet")
    if not isinstance(fs, dict) or not isinstance(fleet, dict):
        return {}
    if not all(_rel_ok(k) and "/" not in k and isinstance(v, str) for k, v in fs.items()):
        return {}
    if not all(_in_tree(k) and isinstance(v, str) for k, v in fleet.items()):
        return {}
    posnet = doc.get("posnet")  # what wrote it (build.generator_digest): absent before
    mark = {"posnet": posnet} if isinstance(posnet, str) else {}
    return {"fs": fs, "fleet": fleet, "manifest": manifest_digest, **mark}
