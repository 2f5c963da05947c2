"""Worker processes die with the process that started them.

Python's worker pools and `os.fork` children keep running when their parent is killed
with -9 (no cleanup runs); on Linux the kernel can send them a signal when it dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a freshly started worker: be killed when `parent` dies, ignore Ctrl-C (the
    parent handles it and stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # forked with SIGINT and SIGTERM held (workers.signals_held): the parent's are not
    # its own, and a SIGTERM sent to a worker ends it
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
