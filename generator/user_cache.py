"""The user's cache folder: where posnet keeps what it may trust across runs (the site
cache's pickles, compiled templates), and only if nobody else can write there."""

from __future__ import annotations

import os
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
