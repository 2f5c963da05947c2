"""Where posnet's templates are, apart from jinja2: the cache key of every run
(build.generator_digest) reads them, and `validate`, which renders nothing, would
otherwise import jinja2 for it (about 25 ms)."""

from __future__ import annotations

from pathlib import Path


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("posnet templates folder not found")
