"""Reading a file that a stranger may have replaced: never through a link, never
blocking on a FIFO, never more than a limit. The build tree (tree_guard) and the
output folders of `report`, `schema --write` and `init` (outdir) read this way."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class NotRegular(Exception):
    """Not a regular file: `st` says what it is (None: a link, met by O_NOFOLLOW)."""

    def __init__(self, st: os.stat_result | None) -> None:
        super().__init__("not a regular file")
        self.st = st


class TooLarge(Exception):
    """Larger than the caller's limit: never read into memory."""


def read_regular(
    name: Path | str, dir_fd: int | None = None, limit: int | None = None
) -> bytes | None:
    """The bytes of the regular file `name` (relative to `dir_fd` if given); None when it
    does not exist. A link raises NotRegular(None), a special file NotRegular(its stat)."""
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise NotRegular(None) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(st)
        if limit is not None and st.st_size > limit:
            raise TooLarge(name)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
