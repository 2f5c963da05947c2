"""The user's cache folder: where posnet keeps what it may trust across runs (the site
cache's pickles, compiled templates), and only if nobody else can write there."""

from __future__ import annotations

import functools
import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path

_OFF = ("", "0", "off", "none", "no")


def cache_dir() -> Path | None:
    """POSNET_CACHE_DIR (`off` disables the cache), else the user's cache folder."""
    env = os.environ.get("POSNET_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in _OFF else Path(env)
    try:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    except RuntimeError:  # no home folder
        return None
    return Path(base) / "posnet"


def private(folder: Path) -> bool:
    """Only a folder of this user that nobody else can write: its pickles are trusted."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def private_folder(*parts: str) -> Path | None:
    """A folder under the cache folder, when it and every folder above it up to the
    cache folder are private; else None (the caller runs without a cache)."""
    folder = cache_dir()
    if folder is None or not private(folder):
        return None
    for part in parts:
        folder = folder / part
        if not private(folder):
            return None
    return folder


STAMP_KEY = "stamps.key"


def stamp_key() -> bytes:
    """This user's key for build trees' stamps files (build._write_cache): a render
    trusts only stamps it can verify, so a stamps file written anywhere else (copied,
    committed, forged) cannot make it skip an edited file. b"" without a private cache
    folder: the stamps are then only checksummed."""
    folder = private_folder()
    return b"" if folder is None else _key_in(folder)


@functools.cache
def _key_in(folder: Path) -> bytes:
    path = folder / STAMP_KEY
    damaged = os.path.lexists(path)  # seen before reading: a key made meanwhile is kept
    key = _read_key(path)
    if key is not None:
        return key
    tmp = folder / f"{STAMP_KEY}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        if damaged:
            os.replace(tmp, path)  # a damaged key: a new one (old stamps are re-checked)
        else:
            with suppress(FileExistsError):  # another process made one meanwhile: theirs
                os.link(tmp, path)
    except OSError:
        return b""
    finally:
        with suppress(OSError):
            tmp.unlink()
    return _read_key(path) or b""


def _read_key(path: Path) -> bytes | None:
    """The key if the file is this user's, regular, 0600 and 32 bytes; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        ok = stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_size == 32
        data = fh.read(33) if ok and not st.st_mode & 0o077 else b""
    return data if len(data) == 32 else None
