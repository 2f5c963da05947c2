"""The `posnet report` command."""

from __future__ import annotations

from pathlib import Path

import click

from generator.errors import safe_text


def _named(value: Path) -> Path:
    if not str(value).strip() or str(value) == ".":
        raise click.UsageError("-o: empty path; name a folder for the report, e.g. -o report")
    return value


@click.command("report")
@click.argument("build", type=click.Path(path_type=Path), metavar="BUILD")
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    callback=lambda ctx, param, value: _named(value),
    default="report",
    show_default=True,
    help="Folder of the HTML report.",
)
@click.option(
    "--fleet",
    type=click.Path(path_type=Path),
    default=None,
    help="The fleet BUILD was rendered from (default: fleet/ next to BUILD).",
)
def report(build: Path, out: Path, fleet: Path | None) -> None:
    """Write a static HTML report of the fleet rendered into BUILD.

    index.html lists every store (patterns, partners, exposures, lint status, whether
    BUILD is current) with search and filters; stores/<id>.html shows a store's summary,
    network diagram (SVG), lint findings, handover sheet and rendered files. Works
    offline from file:// (no CDN, no network); the same input gives the same bytes.

    OUT must lie outside BUILD, the fleet folder and any other build tree (exit 2); a
    symbolic link or special file where the report writes is refused (exit 1), never
    written through.
    """
    from generator import terminal
    from generator.report import fleet_of, write_report

    written = write_report(build, fleet_of(build, fleet), out)
    if not terminal.QUIET:
        stores = sum(1 for p in written if p.parent.name == "stores")
        where = safe_text(str(out / "index.html"))
        click.echo(f"posnet: report of {stores} store(s) in {where}", err=True)
