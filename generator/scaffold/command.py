"""The `posnet init` command."""

from __future__ import annotations

from pathlib import Path

import click

from generator.errors import safe_text


@click.command("init")
@click.argument("raw_folder", type=click.Path(file_okay=False), metavar="DIR")
@click.option("--name", default=None, help="Fleet name (default: from DIR's name).")
def init(raw_folder: str, name: str | None) -> None:
    """Create a fleet repository in DIR that validates and renders as it is.

    \b
    fleet/  fleet.yaml, groups/city.yaml, sites/store-01.yaml  the specs (schema modelines)
    schema/                                          JSON Schemas for editors
    build/                                           the rendered tree (commit it)
    .pre-commit-config.yaml                          validate, render, schema hooks
    .github/workflows/posnet.yml, .gitlab-ci.yml     CI: validate, render --check, diff
    .gitignore

    DIR may exist but must not hold any of these; nothing is overwritten. If init
    fails (a full disk, Ctrl-C), what it made goes again and it can simply be rerun. Then:
    `cd DIR && git init && git add -A && git commit -m "fleet"`.
    """
    from generator import terminal
    from generator.scaffold import fleet_name, init_fleet

    if not raw_folder.strip():  # Path("") is the working folder: say so with "."
        raise click.UsageError("DIR: empty path; name a folder, or . for this one")
    if name is not None and not name.strip():
        raise click.UsageError("--name: empty; leave it out to take DIR's name")
    folder = Path(raw_folder)
    written = init_fleet(folder, name or fleet_name(folder))
    for path in written:
        click.echo(safe_text(str(path)))  # a folder name may hold controls or newlines
    click.echo(safe_text(str(folder / "build")) + "/")
    if not terminal.QUIET:
        click.echo(f"posnet: fleet repository ready in {safe_text(str(folder))}", err=True)
