"""Click option helpers shared by the commands."""

from __future__ import annotations

import click


def once(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str | None:
    """A `multiple` option's callback that refuses it twice: click keeps the last value
    of a plain option, so `--site a --site b` silently showed b alone."""
    if len(value) > 1:
        raise click.BadParameter(f"given {len(value)} times; give it once", ctx, param)
    return value[0] if value else None
