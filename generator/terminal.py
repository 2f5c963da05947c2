"""What people see in a terminal: progress bars, colour, the per-rule summary, --quiet.

Everything here is for a person at a TTY and stays out of the way otherwise: progress
bars and colour only when the stream is a terminal (and NO_COLOR is unset), nothing of
it in pipes, files or CI logs, so machine formats stay byte-for-byte what they are.
Progress goes to stderr; the long loops (rendering stores in workers, writing report
pages) call `advance()`, which does nothing when no bar is shown.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

from generator.errors import Diagnostic

QUIET = False  # set by `posnet --quiet`
MIN_ITEMS = 50  # fewer stores than this finish before a bar is worth drawing
_running: list[Any] = []  # the running bar's advance(n), if any


def _tty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def stderr_is_tty() -> bool:
    return _tty(sys.stderr)


@contextmanager
def progress(total: int, label: str, console: Console | None = None) -> Iterator[None]:
    """A progress bar for `total` items on stderr, when it is a terminal and not --quiet."""
    if QUIET or total < MIN_ITEMS or not stderr_is_tty() or _running:
        yield
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        f"[bold]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(label, total=total)
    with bar:
        _running.append(lambda n: bar.advance(task, n))
        try:
            yield
        finally:
            _running.clear()


def advance(n: int = 1) -> None:
    """n more items done (rendered stores, written pages)."""
    for step in _running:
        step(n)


_SEVERITY = re.compile(r"^(\S.*?: )(error|warning|info)(\[[A-Z]+\d+\])", re.MULTILINE)
_COLOUR = {"error": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;36m"}
_RESET = "\033[0m"


def colour_text(text: str) -> str:
    """Colour the severity tag of each diagnostic line (text format), when stdout is a
    terminal. Only the tag posnet wrote is coloured; user text is left as it is."""
    if not _tty(sys.stdout):
        return text
    return _SEVERITY.sub(lambda m: f"{m[1]}{_COLOUR[m[2]]}{m[2]}{m[3]}{_RESET}", text)


def rule_summary(diags: Sequence[Diagnostic]) -> Table | None:
    """Lint findings per rule: id, severity, title, findings, stores (None if none)."""
    from generator.lint import all_rules

    rules = {r.id: r for r in all_rules()}
    counts: dict[str, list[Diagnostic]] = {}
    for d in diags:
        if d.code in rules:
            counts.setdefault(d.code, []).append(d)
    if not counts:
        return None
    table = Table(title="lint findings per rule", title_justify="left")
    for col, just in (("rule", "left"), ("severity", "left"), ("title", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    table.add_column("findings", justify="right")
    table.add_column("stores", justify="right")
    style = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    order = {"error": 0, "warning": 1, "info": 2}
    for code in sorted(counts, key=lambda c: (order[rules[c].severity], c)):
        found = counts[code]
        stores = len({d.site or d.location.file for d in found})
        sev = rules[code].severity
        table.add_row(
            code, f"[{style[sev]}]{sev}[/]", rules[code].title, str(len(found)), str(stores)
        )
    return table
