"""The `posnet` command line.

Exit codes: 0 ok · 1 invalid input, failed lint, stale tree or failed check · 2 usage
error · 3 internal error (a bug: please report it with POSNET_DEBUG=1 output).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from generator import __version__, terminal
from generator.errors import FORMATTERS, Diagnostic, PosnetError, format_sarif, unique_sorted

err = Console(stderr=True, highlight=False)
FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(FORMATTERS)),
    default="text",
    show_default=True,
    help="How to print problems: text for people, json/sarif/github for CI.",
)
STRICT = click.option("--strict", is_flag=True, help="Fail on lint warnings too, not only errors.")
PATH = click.argument("path", type=click.Path(exists=False, path_type=Path), metavar="PATH")


def _emit(diags: Sequence[Diagnostic], fmt: str) -> None:
    if fmt == "sarif":
        from generator.lint import all_rules

        rules = {r.id: f"{r.title}: {r.why}" for r in all_rules()}
        click.echo(format_sarif(diags, rules))
    elif fmt == "json" or diags:
        text = FORMATTERS[fmt](diags)
        click.echo(terminal.colour_text(text) if fmt == "text" else text)


def _fail(diags: Sequence[Diagnostic], fmt: str) -> NoReturn:
    _emit(unique_sorted(diags), fmt)
    sys.exit(1)


def _analyze(path: Path, fmt: str) -> Any:
    """Load, validate and lint; a file that cannot even be parsed exits 1 here."""
    from generator.analyze import analyze

    try:
        return analyze(path)
    except PosnetError as exc:
        _fail(exc.diagnostics, fmt)


def _summary(diags: Sequence[Diagnostic]) -> str:
    counts = {s: sum(1 for d in diags if d.severity == s) for s in ("error", "warning", "info")}
    return ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items())


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="posnet")
@click.option(
    "-q", "--quiet", is_flag=True, help="Only problems and results: no summaries, no progress."
)
def cli(quiet: bool) -> None:
    """Turn per-store YAML specs into firewall, proxy, DDNS, DHCP and Windows configs.

    PATH is a fleet folder (fleet.yaml, optional groups/, sites/*.yaml) or one site
    file. Typical flow: `posnet validate fleet/`, `posnet render fleet/ -o build/`,
    review the Git diff, `posnet apply build/`, `posnet verify build/`.
    """
    terminal.QUIET = err.quiet = quiet


@cli.command()
@PATH
@FORMAT
@STRICT
def validate(path: Path, fmt: str, strict: bool) -> None:
    """Check every store of PATH: types, addresses, references, and lint rules.

    All problems are reported together, each with file:line:col, the path in the
    document and what was expected. Exit 1 if any error (or warning with --strict).
    """
    result = _analyze(path, fmt)
    _emit(result.diagnostics, fmt)
    summary = terminal.rule_summary(result.diagnostics)
    if summary is not None and fmt == "text":
        err.print(summary)
    sites = len(result.fleet.sites)
    err.print(f"posnet: {sites} store(s) valid; {_summary(result.diagnostics)}")
    if result.failed(strict):
        sys.exit(1)


@cli.command()
@PATH
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(path_type=Path),
    default=Path("build"),
    show_default=True,
    help="Folder of the build tree (one folder per store, manifest, inventory).",
)
@click.option(
    "--site", "sites", multiple=True, metavar="ID", help="Render only this store (repeatable)."
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the tree on disk is stale.")
@click.option("--force", is_flag=True, help="Re-render every store even if its input is unchanged.")
@click.option(
    "--jobs", type=click.IntRange(0, 64), default=0, help="Worker processes (0 = one per core)."
)
@FORMAT
@STRICT
def render(
    path: Path,
    out: Path,
    sites: tuple[str, ...],
    check: bool,
    force: bool,
    jobs: int,
    fmt: str,
    strict: bool,
) -> None:
    """Validate PATH, then render its stores into the build tree OUT.

    Output is byte-for-byte deterministic. Only stores whose input changed are
    rendered again; files of removed stores are pruned; writes are journaled so an
    interrupted render never leaves a half-updated tree. Secrets never enter the tree:
    files hold markers that `posnet apply` fills from env, vault or file references.
    """
    from generator import build

    result = _analyze(path, fmt)
    if result.failed(strict):
        _emit(result.diagnostics, fmt)
        err.print(f"posnet: nothing rendered; {_summary(result.diagnostics)}")
        sys.exit(1)
    _emit(result.diagnostics, fmt)
    known = {p.site_id for p in result.plans}
    unknown = [s for s in sites if s not in known]
    if unknown:
        raise click.UsageError(f"--site: no store {', '.join(unknown)} in {path}")
    plans = [p for p in result.plans if not sites or p.site_id in sites]
    if check:
        note = build.recover(out) if out.exists() else None
        if note:
            err.print(f"posnet: {note}")
        with terminal.progress(len(result.plans), "checking", err):
            res = build.check_tree(out, result.fleet.name, result.plans, result.digests, jobs)
        if sites:
            keep = tuple(f"sites/{s}/" for s in sites)
            res.stale = [f for f in res.stale if f.startswith(keep)]
            res.missing = [f for f in res.missing if f.startswith(keep)]
            res.stray = [f for f in res.stray if f.startswith(keep)]
        for label, files in (("stale", res.stale), ("missing", res.missing), ("stray", res.stray)):
            for f in files:
                click.echo(f"{out / f}: {label}")
        if not res.ok:
            err.print(
                f"posnet: build tree {out} is out of date "
                f"({len(res.stale)} stale, {len(res.missing)} missing, {len(res.stray)} stray); "
                f"run `posnet render {path} -o {out}`"
            )
            sys.exit(1)
        err.print(f"posnet: build tree {out} is up to date ({len(plans)} store(s))")
        return
    with terminal.progress(len(plans), "rendering", err):
        change = build.render_tree(
            out, result.fleet.name, result.plans, result.digests, only=sites, force=force, jobs=jobs
        )
    table = Table(title=f"posnet render -> {out}", show_lines=False)
    for col in ("stores rendered", "unchanged", "files written", "files removed"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(change.rendered_sites)),
        str(change.skipped_sites),
        str(len(change.written)),
        str(len(change.deleted)),
    )
    err.print(table)


@cli.command()
@click.argument("kind", type=click.Choice(["site", "fleet", "group", "catalog"]), default="site")
@click.option(
    "--write",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write all four schemas into this folder (e.g. schema/ of a fleet repo).",
)
def schema(kind: str, folder: Path | None) -> None:
    """Print the JSON Schema of a site, fleet, group file or the partner catalog.

    Keys that fleet or group defaults can supply are optional, unknown keys are errors.
    Point editors at it with a modeline as the first line of a file, e.g. in a site
    file: `# yaml-language-server: $schema=../schema/site.schema.json`
    """
    from generator.schemas import schema_text, write_schemas

    if folder is not None:
        for path in write_schemas(folder):
            click.echo(str(path))
        return
    click.echo(schema_text(kind), nl=False)


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def rules(fmt: str) -> None:
    """List the lint rules: id, severity, name and why."""
    from generator.lint import all_rules

    items = [
        {"id": r.id, "severity": r.severity, "title": r.title, "why": r.why} for r in all_rules()
    ]
    if fmt == "json":
        click.echo(json.dumps(items, indent=2))
        return
    for r in items:
        click.echo(f"{r['id']}  {r['severity']:<8} {r['title']}\n        {r['why']}")


@cli.command()
@PATH
@click.option("--site", "site", required=True, metavar="ID", help="The store to show.")
def plan(path: Path, site: str) -> None:
    """Print one store's resolved Plan as JSON (what every target reads)."""
    result = _analyze(path, "text")
    errors = [d for d in result.diagnostics if d.severity == "error"]
    if errors:
        _fail(errors, "text")
    for p in result.plans:
        if p.site_id == site:
            click.echo(json.dumps(asdict(p), indent=2, sort_keys=True))
            return
    raise click.UsageError(f"--site: no store {site} in {path}")


def _register_runtime_commands() -> None:
    from generator.runtime import commands

    for command in commands():
        cli.add_command(command)
    for command in _review_commands():
        cli.add_command(command)


def _review_commands() -> list[click.Command]:
    """The review loop (issue 11): diff, report, init; each in its own module."""
    from generator.diff.command import diff
    from generator.report.command import report
    from generator.scaffold.command import init

    return [diff, init, report]


def main(argv: Sequence[str] | None = None) -> Any:
    """Entry point: user errors print located diagnostics; bugs never print a traceback
    unless POSNET_DEBUG=1."""
    try:
        _register_runtime_commands()
        return cli.main(args=list(argv) if argv is not None else None, standalone_mode=True)
    except PosnetError as exc:
        click.echo(FORMATTERS["text"](unique_sorted(exc.diagnostics)))
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("posnet: interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("POSNET_DEBUG"):
            raise
        err.print(f"posnet: internal error: {type(exc).__name__}: {exc}")
        err.print("posnet: this is a bug; re-run with POSNET_DEBUG=1 and report the output")
        sys.exit(3)
