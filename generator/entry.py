"""The `posnet` command's entry point: Ctrl-C and SIGTERM are handled from its first
moment to its last.

- Importing the CLI takes about 60 ms (click, rich; pydantic later). A signal in that
  window used to print a Python traceback (SIGINT) or kill posnet by the signal
  (SIGTERM, exit -15). Nothing has started then (no file written, no worker forked),
  so it exits at once with the codes a later interruption gets (130, 143).
- Once the command has ended, its exit code is decided and nothing is left to stop: a
  signal then changes nothing. posnet ends the process itself (os._exit, after
  flushing its output) rather than through the interpreter's shutdown, where a late
  Ctrl-C printed "Exception ignored ... KeyboardInterrupt" with a traceback, and where
  CPython once ended the process by SIGINT (exit -2) although posnet had handled the
  Ctrl-C and printed its line (seen in random-moment interrupts; the interpreter's path
  to it was not pinned down, and this exit bypasses it).
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import NoReturn

# What each signal ends posnet with: its exit code and the word for it (cli.py too).
EXIT = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}


def _before_start(signum: int, frame: FrameType | None) -> NoReturn:
    code, what = EXIT[signal.Signals(signum)]
    os.write(2, f"posnet: {what} before it started; nothing was changed\n".encode())
    os._exit(code)


def exit_code(exc: SystemExit) -> int:
    """What the interpreter would exit with for `exc` (a text is printed, then 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _quiet() -> None:
    """The command has ended: a signal now changes nothing."""
    for sig in EXIT:
        signal.signal(sig, signal.SIG_IGN)


def main() -> NoReturn:
    for sig in EXIT:
        signal.signal(sig, _before_start)
    from generator.cli import main as cli_main  # it sets its own handlers first thing
    from generator.cli import signal_of, unraisable

    sys.unraisablehook = unraisable  # the process's own hook: not set by cli.main itself

    ended: SystemExit | None = None
    try:
        try:
            cli_main()
        except SystemExit as exc:
            ended = exc
            _quiet()
    except KeyboardInterrupt as exc:  # an instant cli.main does not cover (or a 2nd one)
        _quiet()
        if ended is None:
            code, what = EXIT[signal_of(exc)]
            os.write(2, f"posnet: {what}\n".encode())
            os._exit(code)
    code = exit_code(ended) if ended is not None else 0
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: started with it closed (cli said so)
                stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: cli reported it
            code = code or 1
    os._exit(code)
