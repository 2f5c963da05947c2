"""The `posnet diff` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from generator.errors import Diagnostic, Location, PosnetError

if TYPE_CHECKING:
    from generator.diff.sources import Side

FORMATS = ("json", "markdown", "text")  # generator.diff.formats.FORMATS (imported lazily)

EXIT_CHANGES = 2


def _git_root(path: Path) -> tuple[Path, str]:
    """The repository holding PATH and PATH's folder inside it."""
    folder = path if path.is_dir() else path.parent
    proc = subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "--show-toplevel", "--show-prefix"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise PosnetError(
            [
                Diagnostic(
                    Location(str(path)),
                    "E003",
                    "not inside a Git repository",
                    expected="REV1..REV2 run inside a fleet repo, or two fleet folders",
                )
            ]
        )
    top, _, prefix = proc.stdout.partition("\n")
    return Path(top.strip()), prefix.strip()


def _not_a_fleet(where: str, what: str) -> PosnetError:
    """A mistyped fleet path must not read as a fleet with no stores: "no changes" (exit
    0 under --exit-code) would pass CI."""
    return PosnetError(
        [
            Diagnostic(
                Location(where),
                "E002",
                what,
                expected="a fleet folder (fleet.yaml, sites/*.yaml) or a Git revision",
            )
        ]
    )


def _no_folder(path: Path) -> PosnetError:
    return _not_a_fleet(
        str(path), "a file, not a fleet folder" if path.exists() else "no such folder"
    )


def _fleet_folder(path: Path) -> Path:
    if not path.is_dir():
        raise _no_folder(path)
    if not (path / "fleet.yaml").is_file():
        raise _not_a_fleet(str(path), "no fleet.yaml in this folder")
    return path


def sides(spec: str, other: Path | None) -> tuple[Side, Side]:
    """OLD NEW folders, or REV1..REV2 [FLEET] / REV [FLEET] (REV against the folder)."""
    from generator.diff.sources import FolderSide, GitSide

    first = Path(spec)
    if first.is_dir():
        if other is None:
            raise click.UsageError("two fleet folders are needed: posnet diff OLD NEW")
        return FolderSide(_fleet_folder(first)), FolderSide(_fleet_folder(other))
    if other is not None and not other.is_dir():
        raise _no_folder(other)
    fleet = other or Path(".")
    repo, prefix = _git_root(fleet)
    old, dots, new = spec.partition("..")
    if new.startswith("."):
        raise click.UsageError("use REV1..REV2 (two dots): posnet compares two snapshots")
    if not old:
        raise click.UsageError("REV1..REV2: the old revision is missing")
    if dots:
        new = new or "HEAD"  # `REV..` is REV..HEAD, as in git
        pair: tuple[Side, Side] = (GitSide(repo, old, prefix), GitSide(repo, new, prefix))
        if not any("fleet.yaml" in side.listing() for side in pair):
            # a fleet may be added (or removed) between the two, never absent from both
            raise _not_a_fleet(str(fleet), f"no fleet.yaml here in {old} nor in {new}")
        return pair
    return GitSide(repo, old, prefix), FolderSide(_fleet_folder(fleet))


@click.command("diff")
@click.argument("spec", metavar="REV1..REV2|OLD")
@click.argument("fleet", required=False, type=click.Path(path_type=Path), metavar="[FLEET|NEW]")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people, json (versioned) for programs, markdown for a PR comment.",
)
@click.option(
    "--exit-code",
    "exit_code",
    is_flag=True,
    help="Exit 0 when no store's plan changes, 2 when some do (1 stays an error).",
)
def diff(spec: str, fleet: Path | None, fmt: str, exit_code: bool) -> None:
    """What changes between two fleet revisions, store by store, from their Plans.

    \b
    posnet diff main..HEAD            the fleet in the current folder, two commits
    posnet diff main..HEAD fleets/eu  a fleet folder inside the repository
    posnet diff main                  a commit against the working folder
    posnet diff main..                main..HEAD, as git reads it
    posnet diff old-fleet/ new-fleet/ two fleet folders

    Lists stores added, removed and changed; per store the exposures opened, closed or
    changed (port, target, sources), egress and LAN flows, proxies and routes, DDNS,
    DHCP reservations, Windows bindings, device settings, tunnels and secret references
    (names only: posnet never holds a secret's value), then a summary line. Revisions
    are read with git; the working tree is never touched. Only stores whose file (or a
    store they route to) changed are loaded, unless fleet.yaml or a group changed.

    Exit codes: 0 ok · 1 a side does not validate, unknown revision · 2 usage error;
    with --exit-code: 0 no change · 2 changes · 1 error.
    """
    from generator.diff import formats
    from generator.diff.compare import diff_plans
    from generator.diff.sources import load_pair

    try:
        old, new = sides(spec, fleet)
        pa, pb, skipped = load_pair(old, new)
    except PosnetError as exc:
        if fmt != "json":
            raise
        from generator.errors import FORMATTERS, unique_sorted

        # a JSON reader gets a JSON document on stdout: the problems, as validate gives
        click.echo(FORMATTERS["json"](unique_sorted(exc.diagnostics)))
        sys.exit(1)
    result = diff_plans(pa, pb, old.label, new.label, unchanged=skipped)
    click.echo(formats.FORMATS[fmt](result), nl=False)
    if exit_code and result.changed:
        sys.exit(EXIT_CHANGES)
