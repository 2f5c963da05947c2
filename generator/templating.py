"""One jinja2 environment for all targets: strict, deterministic, no autoescape surprises.

Values reaching templates are already constrained by the spec types; `StrictUndefined`
turns a missing variable into a render error instead of an empty string in a config.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("posnet templates folder not found")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - outputs are configs, not HTML; inputs are typed
        # Compile each template once per process: no stat of its file on every render
        # (templates ship with posnet; their digest already keys every cache).
        auto_reload=False,
    )
    return env


def render(template: str, **context: Any) -> str:
    """Render templates/<target>/<name>; ensure exactly one trailing newline."""
    text = environment().get_template(template).render(**context)
    return text.rstrip("\n") + "\n"
