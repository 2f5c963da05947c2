"""One writer at a time on a build tree: an flock on a file inside the output folder.

The kernel releases the lock when its holder exits, however it exits (kill -9
included), so a stale lock never blocks anyone. The file holds the holder's pid, to
say who has it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from generator.errors import safe_text
from generator.tree_guard import LOCK, TreeError, check_root, own_file_taken


def _holder(fd: int) -> str:
    with_pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return f"pid {with_pid}" if with_pid.isdigit() else "another posnet process"


def _open(out: Path) -> int:
    path = out / LOCK
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TreeError(f"{safe_text(str(path))}: symbolic link in the build tree") from None
        if exc.errno == errno.EISDIR:
            raise TreeError(own_file_taken(str(path))) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise TreeError(f"{safe_text(str(path))}: not a regular file in the build tree")
    return fd


@contextmanager
def tree_lock(out: Path, wait: float = 0.0, optional: bool = False) -> Iterator[None]:
    """Hold the output folder's lock; wait up to `wait` seconds for another holder.

    `optional`: a read-only tree (`render --check` in CI) is checked without a lock."""
    check_root(out, create=False)  # never a lock file through a linked output folder
    try:
        fd = _open(out)
    except OSError as exc:
        if optional and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT):
            yield
            return
        raise
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    how = f"still held after {wait:g} s" if wait else "pass --wait SECONDS to wait"
                    raise TreeError(
                        f"{safe_text(str(out))}: another posnet command ({_holder(fd)}) is "
                        f"writing this build tree; {how}"
                    ) from None
                time.sleep(0.05)
        with_pid = f"{os.getpid()}\n".encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, with_pid, 0)
        except OSError:
            pass  # only the message of a waiting process needs it
        yield
    finally:
        os.close(fd)  # releases the lock
