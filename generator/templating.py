"""One jinja2 environment for all targets: strict, deterministic, no autoescape surprises.

Values reaching templates are already constrained by the spec types; `StrictUndefined`
turns a missing variable into a render error instead of an empty string in a config.
"""

from __future__ import annotations

import shutil
from contextlib import suppress
from functools import cache
from typing import Any

import jinja2
import jinja2.bccache

from generator.template_folder import templates_dir


class _Compiled(jinja2.FileSystemBytecodeCache):
    """Compiled templates in the user's cache folder, so a command that renders a few
    stores does not compile its templates again (0.07 s for all of them). A file that
    does not load is compiled again, one that cannot be written is skipped: the cache
    never fails a render."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # a damaged file: jinja2 lets pickle's errors through
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with suppress(OSError):
            super().dump_bytecode(bucket)


def _compiled() -> _Compiled | None:
    """Keyed by posnet's digest (its templates and this environment's options, which
    jinja2's own key of name and source does not hold); other digests' folders go."""
    from generator.build import generator_digest
    from generator.user_cache import private, private_folder

    here = private_folder("templates")
    if here is None:
        return None
    digest = generator_digest()[:32]
    for old in here.iterdir():
        if old.name != digest and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
    return _Compiled(str(here / digest), "%s.bytecode") if private(here / digest) else None


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        bytecode_cache=_compiled(),
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
