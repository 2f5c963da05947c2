"""Commands that act on real stores: apply, verify, probe (registered into the CLI)."""

from __future__ import annotations

import click


def commands() -> list[click.Command]:
    return []
