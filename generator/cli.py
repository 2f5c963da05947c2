"""The `posnet` command line.

Exit codes: 0 ok · 1 invalid input, failed lint, stale tree, failed check, or a problem
of the environment (locked, read-only or full folder, damaged tree) · 2 usage error ·
3 internal error (a bug: please report it with POSNET_DEBUG=1 output) · 130 Ctrl-C ·
143 SIGTERM.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from generator import __version__, terminal, workers
from generator.entry import EXIT
from generator.errors import (
    FORMATTERS,
    Diagnostic,
    PosnetError,
    RuleDoc,
    UserError,
    format_sarif,
    safe_text,
    unique_sorted,
)
from generator.options import once

if TYPE_CHECKING:
    from generator.tree_guard import TreeScan
    from generator.workers import Forked

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
TEXT_OR_JSON = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
PATH = click.argument("path", type=click.Path(exists=False, path_type=Path), metavar="PATH")


def note(message: str) -> None:
    """One line for people on stderr: escaped, never read as rich markup. Printed even
    with --quiet: problems and results are what -q keeps."""
    err.print(safe_text(message), markup=False, highlight=False, soft_wrap=True)


def summary(message: str | Table) -> None:
    """A summary for people on stderr (a table, a count after success): --quiet drops it."""
    if terminal.QUIET:
        return
    if isinstance(message, str):
        note(message)
    else:
        err.print(message)


WAIT = click.option(
    "--wait",
    type=click.FloatRange(0, 86400),
    default=0,
    metavar="SECONDS",
    help="If another posnet command holds the build tree, wait this long for it "
    "(default: stop at once, exit 1).",
)


def output_folder(raw: str, fleet: Path) -> Path:
    """-o as given, refused when empty or overlapping the fleet folder (exit 2)."""
    if not raw.strip():
        raise click.UsageError("-o: empty path; name a folder for the build tree, e.g. -o build")
    from generator.fleet_layout import enclosing_fleet

    out = Path(raw)
    if not fleet.exists():
        return out  # nothing to overlap: the render stops at E002 before writing
    # a site file is rendered with its fleet: the whole fleet folder is off limits
    spec = fleet if fleet.is_dir() else enclosing_fleet(fleet.resolve()) or fleet.parent
    try:
        o, f = out.resolve(), spec.resolve()
    except (OSError, RuntimeError):
        return out
    if o == f or f in o.parents or o in f.parents:
        raise click.UsageError(
            f"-o {safe_text(raw)}: the build tree would overlap the fleet folder "
            f"{safe_text(str(fleet))} (render would overwrite or prune its files); "
            "pick a folder outside it, e.g. a sibling `build/`"
        )
    holder = _enclosing_build_tree(o)
    if holder is not None:
        raise click.UsageError(
            f"-o {safe_text(raw)}: lies inside the build tree {safe_text(str(holder))} "
            "(its next render would prune this tree as stray files, and its checks "
            "would fail on it); pick a folder outside it, e.g. a sibling `build/`"
        )
    return out


def _enclosing_build_tree(out: Path) -> Path | None:
    """A folder above OUT that a render made: its manifest beside posnet's own lock or
    stat cache (a manifest.json alone is common in other projects). Only names are
    looked up above OUT, nothing is read or written there."""
    from generator.tree_guard import CACHE, LOCK

    for folder in out.parents:
        if os.path.lexists(folder / "manifest.json") and (
            os.path.lexists(folder / LOCK) or os.path.lexists(folder / CACHE)
        ):
            return folder
    return None


def _emit(diags: Sequence[Diagnostic], fmt: str) -> None:
    if fmt == "sarif":
        from generator.diagnostics import CODES
        from generator.lint import all_rules

        rules = {c.code: RuleDoc(c.title, c.why, c.doc()) for c in CODES.values()}
        rules.update({r.id: RuleDoc(r.title, r.why, r.doc()) for r in all_rules()})
        click.echo(format_sarif(diags, rules))
    elif fmt in ("json", "gitlab") or diags:  # a JSON document even when empty
        text = FORMATTERS[fmt](diags)
        click.echo(terminal.colour_text(text) if fmt == "text" else text)


# What `render --check` reports about files of the build tree, in every machine format
# (titles and docs in generator/diagnostics.py).
TREE_CODES = {
    "stale": ("E401", "it differs from what the spec renders now"),
    "missing": ("E402", "the spec renders it, the tree lacks it"),
    "stray": ("E403", "the tree holds it, the spec renders it not"),
}


def tree_diagnostics(out: Path, res: Any, fleet: Path) -> list[Diagnostic]:
    from generator.diagnostics import CODES
    from generator.errors import Location

    found = []
    remedy = check_remedy(out, res, fleet)
    for label, files in (("stale", res.stale), ("missing", res.missing), ("stray", res.stray)):
        code, why = TREE_CODES[label]
        title = CODES[code].title
        for f in files:
            found.append(
                Diagnostic(Location(str(out / f)), code, f"{title.lower()}: {why}", expected=remedy)
            )
    return found


def check_remedy(out: Path, res: Any, fleet: Path) -> str:
    """What repairs a tree `render --check` found out of date: a render, with --force
    when the manifest is damaged (a plain render stops at it)."""
    from generator.tree_guard import MANIFEST

    if MANIFEST in res.stale and _damaged_manifest(out):
        return f"run `posnet render {fleet} -o {out} --force` (the manifest is damaged)"
    return f"run `posnet render {fleet} -o {out}`"


def _damaged_manifest(out: Path) -> bool:
    """A manifest a render refuses (it stops, naming --force)."""
    from generator.tree_guard import MANIFEST, TreeError, read_tree_file, valid_manifest

    path = out / MANIFEST
    try:
        raw = read_tree_file(path)
        if raw is not None:
            valid_manifest(path, raw)
    except (TreeError, OSError):
        return True
    return False


def _fail(diags: Sequence[Diagnostic], fmt: str) -> NoReturn:
    _emit(unique_sorted(diags), fmt)
    sys.exit(1)


def _analyze(path: Path, fmt: str, jobs: int = 0) -> Any:
    """Load, validate and lint; a file that cannot even be parsed exits 1 here."""
    from generator.analyze import analyze

    try:
        return analyze(path, jobs)
    except PosnetError as exc:
        _fail(exc.diagnostics, fmt)


def _summary(diags: Sequence[Diagnostic]) -> str:
    counts = {s: sum(1 for d in diags if d.severity == s) for s in ("error", "warning", "info")}
    return ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items())


class _Posnet(click.Group):
    """The command group, whose apply/verify/probe/drift and diff/init/report commands
    are imported when first named (or listed, e.g. by --help or a mistyped name): their
    modules took about 25 ms of every `render` and `validate`, which never run them."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            # an unknown name loads them all: "No such command" suggests from the full set
            _register_later_commands(*(() if cmd_name not in _LATER else (cmd_name,)))
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register_later_commands()
        return super().list_commands(ctx)


@click.group(
    cls=_Posnet,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
    terminal.QUIET = quiet  # the console itself stays on: errors are never muted


@cli.command()
@PATH
@FORMAT
@STRICT
def validate(path: Path, fmt: str, strict: bool) -> None:
    """Check every store of PATH: types, addresses, references, and lint rules.

    All problems are reported together, each with file:line:col, the path in the
    document and what was expected (of a shared file, fleet.yaml or a group, the first
    20 validation errors, then a line saying more are not shown). Exit 1 if any error
    (or warning with --strict).
    """
    result = _analyze(path, fmt)
    _emit(result.diagnostics, fmt)
    per_rule = terminal.rule_summary(result.diagnostics)
    if per_rule is not None and fmt == "text":
        summary(per_rule)
    sites = result.stores
    if result.failed(strict):
        note(f"posnet: {sites} store(s) checked, not valid; {_summary(result.diagnostics)}")
        sys.exit(1)
    summary(f"posnet: {sites} store(s) valid; {_summary(result.diagnostics)}")


@cli.command()
@PATH
@click.option(
    "-o",
    "--output",
    "out_arg",
    type=str,
    default="build",
    show_default=True,
    help="Folder of the build tree (one folder per store, manifest, inventory); "
    "outside the fleet folder and any other build tree.",
)
@click.option(
    "--site", "sites", multiple=True, metavar="ID", help="Render only this store (repeatable)."
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if any file of the tree is stale, missing or stray. Stores "
    "whose input key matches the manifest are checked against its file hashes, the rest "
    "rendered: a file edited together with its hash in the manifest passes (use --full).",
)
@click.option(
    "--full",
    is_flag=True,
    help="With --check: render every store and compare byte for byte (trusts no manifest).",
)
@click.option("--force", is_flag=True, help="Re-render every store even if its input is unchanged.")
@click.option(
    "--jobs", type=click.IntRange(0, 64), default=0, help="Worker processes (0 = one per core)."
)
@WAIT
@FORMAT
@STRICT
def render(
    path: Path,
    out_arg: str,
    sites: tuple[str, ...],
    check: bool,
    full: bool,
    force: bool,
    jobs: int,
    wait: float,
    fmt: str,
    strict: bool,
) -> None:
    """Validate PATH, then render its stores into the build tree OUT.

    PATH is a fleet folder, or one store's file in its sites/: that store alone, as
    `--site ID` renders it (the whole fleet is validated either way).

    Output is byte-for-byte deterministic. Only stores whose input changed are
    rendered again; files of removed stores are pruned; writes are journaled so an
    interrupted render never leaves a half-updated tree. Secrets never enter the tree:
    files hold markers that `posnet apply` fills from env, vault or file references.

    One posnet command at a time writes a tree (a lock inside OUT); a tree holding a
    symbolic link, a special file, or a manifest or journal naming a path outside it
    is refused. --force also discards a damaged manifest or journal.
    """
    from generator.fleet_layout import enclosing_fleet
    from generator.tree_guard import check_root
    from generator.tree_lock import tree_lock

    if full and not check:
        raise click.UsageError("--full goes with --check")
    real = path.resolve() if path.is_file() else path  # a link to a store's file too
    root = enclosing_fleet(real)
    if root is not None:  # a store's file: that store of its fleet, as --site ID does
        path, sites = root, (*sites, real.stem)
    out = output_folder(out_arg, path)
    # The lock comes first: of two renders started together, the first one started
    # holds the tree, and the other waits (--wait) or stops, before validating anything.
    # A PATH that does not exist creates nothing: the render stops at E002.
    if check or not os.path.lexists(path):
        check_root(out, create=False)
        lock = tree_lock(out, wait, optional=True) if out.is_dir() else nullcontext()
    else:
        check_root(out, create=True)
        lock = tree_lock(out, wait)
    if workers.default_jobs(jobs) <= 1:
        workers.LATER_ALLOWED = False  # --jobs 1: this process alone, cache write included
    with lock:
        _render(path, out, sites, (check, full), force, jobs, fmt, strict)


def _render(
    path: Path,
    out: Path,
    sites: tuple[str, ...],
    checking: tuple[bool, bool],  # --check, --full
    force: bool,
    jobs: int,
    fmt: str,
    strict: bool,
) -> None:
    from generator.tree_scan import early_scan  # before the loader's imports: see there

    scan = early_scan(out, jobs) if out.is_dir() else None
    try:
        _render_with(path, out, sites, checking, force, jobs, fmt, strict, scan)
    finally:
        if scan is not None:
            scan.close()


def _render_with(
    path: Path,
    out: Path,
    sites: tuple[str, ...],
    checking: tuple[bool, bool],
    force: bool,
    jobs: int,
    fmt: str,
    strict: bool,
    scan: Forked[TreeScan] | None,
) -> None:
    from generator import build

    check, full = checking
    result = _analyze(path, fmt, jobs)
    if result.failed(strict):
        _emit(result.diagnostics, fmt)
        note(f"posnet: nothing rendered; {_summary(result.diagnostics)}")
        sys.exit(1)
    if not check:
        _emit(result.diagnostics, fmt)
    known = set(result.plans.ids)
    unknown = [s for s in sites if s not in known]
    if unknown:
        raise click.UsageError(f"--site: no store {', '.join(unknown)} in {path}")
    chosen = len(set(sites)) if sites else len(known)
    if check:
        listing: set[str] | None = None
        if scan is not None:
            listing = scan.result().files
            done = build.recover(out, force)
            if done:
                note(f"posnet: {done}")
                listing = None  # scanned again
        with terminal.progress(len(result.plans), "checking", err):
            res = build.check_tree(
                out, result.fleet.name, result.plans, result.digests, jobs, full, listing
            )
        if sites:
            keep = tuple(f"sites/{s}/" for s in sites)
            res.stale = [f for f in res.stale if f.startswith(keep)]
            res.missing = [f for f in res.missing if f.startswith(keep)]
            res.stray = [f for f in res.stray if f.startswith(keep)]
        if fmt == "text":
            _emit(result.diagnostics, fmt)
            for label, files in (
                ("stale", res.stale),
                ("missing", res.missing),
                ("stray", res.stray),
            ):
                for f in files:
                    click.echo(safe_text(f"{out / f}: {label}"))
        else:  # one document: lint findings and the tree's problems together
            _emit([*result.diagnostics, *tree_diagnostics(out, res, path)], fmt)
        if not res.ok:
            note(
                f"posnet: build tree {out} is out of date "
                f"({len(res.stale)} stale, {len(res.missing)} missing, {len(res.stray)} stray); "
                f"{check_remedy(out, res, path)}"
            )
            sys.exit(1)
        summary(f"posnet: build tree {out} is up to date ({chosen} store(s))")
        return
    with terminal.progress(chosen, "rendering", err):
        change = build.render_tree(
            out,
            result.fleet.name,
            result.plans,
            result.digests,
            only=sites,
            force=force,
            jobs=jobs,
            scan=scan,
        )
    if change.recovered:
        note(f"posnet: {change.recovered}")
    table = Table(title=Text(safe_text(f"posnet render -> {out}")), show_lines=False)
    for col in ("stores rendered", "unchanged", "files written", "files removed"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(change.rendered_sites)),
        str(change.skipped_sites),
        str(len(change.written)),
        str(len(change.deleted)),
    )
    summary(table)


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
@TEXT_OR_JSON
@click.option(
    "--explain",
    "explain",
    metavar="ID",
    default=None,
    help="Print one code's documentation (E-code or lint rule): why, bad and good example.",
)
def rules(fmt: str, explain: str | None) -> None:
    """List every code: E-codes (errors of the spec) and lint rules (PN), with id,
    severity, title and why (--explain ID for one code's docs)."""
    from generator.diagnostics import CODES
    from generator.lint import all_rules, rule

    if explain is not None:
        code = CODES.get(explain.upper())
        found = rule(explain)
        if code is None and found is None:
            known = ", ".join([*CODES, *(r.id for r in all_rules())])
            raise click.ClickException(f"no code {safe_text(explain)!r} (known: {known})")
        click.echo(code.doc() if code is not None else found.doc() if found else "", nl=False)
        return

    items = [
        {"id": c.code, "severity": "error", "title": c.title, "why": c.why} for c in CODES.values()
    ]
    items += [
        {"id": r.id, "severity": r.severity, "title": r.title, "why": r.why} for r in all_rules()
    ]
    if fmt == "json":
        click.echo(json.dumps(items, indent=2))
        return
    for r in items:
        click.echo(f"{r['id']}  {r['severity']:<8} {r['title']}\n        {r['why']}")


@cli.command()
@click.argument("partner", required=False, metavar="[PARTNER]")
@click.option(
    "--fleet",
    "fleet_path",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help=("Fleet folder whose fleet.yaml partners are merged in (default: built-in only)."),
)
@TEXT_OR_JSON
def catalog(partner: str | None, fleet_path: Path | None, fmt: str) -> None:
    """List the partners an integration can name: built-in ones and the fleet's own.

    For each partner: where it is defined (built-in, fleet.yaml, or built-in changed in
    fleet.yaml), its patterns, environments (cloud connector), the domains and ports a
    store needs, its source addresses and notes. PARTNER shows one; an unknown id exits 1.
    A fleet adds or changes partners under `partners.<id>` in fleet.yaml (environments
    under `partners.<id>.cloud_connector.environments`).
    """
    from generator.catalog import BUILTIN, Catalog
    from generator.catalog.listing import UnknownPartner, listing, text
    from generator.yamlload import load_file

    builtin = load_file(BUILTIN, "<builtin catalog>").data["partners"]
    if fleet_path is None:
        cat, fleet_ids = Catalog.model_validate({"partners": builtin}), set()
    else:
        from generator.spec.load import load_fleet

        if not fleet_path.is_dir():
            raise click.UsageError(f"--fleet: {safe_text(str(fleet_path))} is not a fleet folder")
        try:
            fleet = load_fleet(fleet_path)
        except PosnetError as exc:
            _fail(exc.diagnostics, "text")
        cat, fleet_ids = fleet.catalog, set(fleet.settings.partners)
    try:
        items = listing(cat, set(builtin), fleet_ids, partner)
    except UnknownPartner as exc:
        raise click.ClickException(safe_text(str(exc))) from None
    click.echo(
        json.dumps(items, indent=2, sort_keys=True) if fmt == "json" else text(items),
        nl=fmt == "json",
    )


@cli.command()
@PATH
@click.option(
    "--site", "site", required=True, multiple=True, callback=once, metavar="ID",
    help="The store to show.",
)  # fmt: skip
def plan(path: Path, site: str) -> None:
    """Print one store's resolved Plan as JSON (what every target reads)."""
    result = _analyze(path, "text")
    errors = [d for d in result.diagnostics if d.severity == "error"]
    if errors:
        _fail(errors, "text")
    if site in result.plans.ids:
        p = result.plans[result.plans.ids.index(site)]
        click.echo(json.dumps(asdict(p), indent=2, sort_keys=True))
        return
    raise click.UsageError(f"--site: no store {site} in {path}")


def _runtime_commands() -> list[click.Command]:
    from generator.runtime import commands

    return commands()


def _review_commands() -> list[click.Command]:
    """The review loop (issue 11): diff, report, init; each in its own module."""
    from generator.diff.command import diff
    from generator.report.command import report
    from generator.scaffold.command import init

    return [diff, init, report]


# The commands registered on first use (see _Posnet), by name: what imports them.
_LATER: dict[str, Callable[[], list[click.Command]]] = {
    **dict.fromkeys(("apply", "drift", "probe", "verify"), _runtime_commands),
    **dict.fromkeys(("diff", "init", "report"), _review_commands),
}


def _register_later_commands(*names: str) -> None:
    """Add the commands of NAMES (all of _LATER when none) to the group."""
    for load in dict.fromkeys(_LATER[n] for n in names or _LATER):
        for command in load():
            cli.add_command(command)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs."""


# The signals this run received: an interrupt that a library wrapped in an exception of
# its own (pydantic builds a model's validator on first use, and reports a Ctrl-C there as
# a SchemaError) is still reported as an interrupt, never as a bug.
_SIGNALLED: list[int] = []


def signal_of(exc: KeyboardInterrupt) -> signal.Signals:
    """The signal an interrupt stands for (see _on_signal)."""
    return signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT


def _raised_for(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGINT raises KeyboardInterrupt, SIGTERM Terminated: one clean-up for both."""
    _SIGNALLED.append(signum)
    raise _raised_for(signum)


def unraisable(args: Any) -> None:
    """A signal's exception raised where Python swallows exceptions (an import lock's
    weakref callback, an after-fork hook, a __del__) was printed as "Exception ignored"
    with a traceback, and lost: the command ran on. The signal is delivered again from a
    helper thread instead, once that code has returned, so the handler raises where the
    command handles it."""
    if isinstance(args.exc_value, KeyboardInterrupt) and _SIGNALLED:
        import threading

        threading.Thread(target=_deliver_after_hook, args=(_SIGNALLED[-1],), daemon=True).start()
        return
    sys.__unraisablehook__(args)


def _deliver_after_hook(signum: int) -> None:
    """Deliver the signal once the main thread has left unraisable(): delivered while it
    is still inside (a fixed delay did that on a loaded machine), the handler's exception
    is raised in the hook and lost again."""
    import _thread
    import threading
    import time

    main = threading.main_thread().ident
    while True:
        frame = sys._current_frames().get(main) if main is not None else None
        while frame is not None and frame.f_code is not unraisable.__code__:
            frame = frame.f_back
        if frame is None:
            break
        time.sleep(0.001)
    _thread.interrupt_main(signal.Signals(signum))


_WRITE_HINTS = {
    errno.ENOSPC: "free some space (the build tree was left as it was) and run it again",
    errno.EDQUOT: "free some space under your quota and run it again",
    errno.EROFS: "the file system is read-only: pick another folder with -o",
    errno.EACCES: "you may not write there: fix its permissions or pick another folder",
    errno.EPERM: "you may not write there: fix its permissions or pick another folder",
    errno.ENOTDIR: "a part of this path is a file, not a folder: pick another -o",
    errno.EISDIR: "a folder stands where posnet writes a file: remove it",
    errno.ENAMETOOLONG: "the path is too long: pick a shorter -o",
}


def _environment_error(exc: OSError) -> str:
    """One line for an OSError: the path, what happened, what to do."""
    what = exc.strerror or type(exc).__name__
    hint = _WRITE_HINTS.get(exc.errno or 0, "check the path and run it again")
    if exc.filename is None:
        # posnet names every path it opens; what is left is standard output.
        return f"posnet: cannot write to standard output: {what}"
    return f"posnet: {exc.filename}: {what}; {hint}"


def _stdout_gone() -> None:
    """After a failed write to stdout, make the final flush at exit harmless."""
    with suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _exit(code: int) -> NoReturn:
    sys.exit(code)


def _interrupted(cause: KeyboardInterrupt) -> NoReturn:
    """Say what state the build tree is in, and exit 130 (Ctrl-C) or 143 (SIGTERM)."""
    workers.join_later(stop=True)  # a cache half written is never used
    build = sys.modules.get("generator.build")
    state = (
        "the build tree was updated completely before it stopped"
        if build is not None and build.progress.tree_updated
        else "the build tree was left as it was"
    )
    code, what = EXIT[signal_of(cause)]
    note(f"posnet: {what}; {state}")
    _exit(code)


def main(argv: Sequence[str] | None = None) -> Any:
    """Entry point: user errors print located diagnostics or one line naming the path;
    bugs never print a traceback unless POSNET_DEBUG=1."""
    if sys.stdout is None:
        sys.stderr.write("posnet: standard output is closed; redirect it instead (>/dev/null)\n")
        _exit(2)
    _SIGNALLED.clear()
    with suppress(ValueError):  # not in the main thread (tests calling main())
        for sig in EXIT:
            signal.signal(sig, _on_signal)
    # joined below, whatever way the command ends; one core gains nothing from a child
    workers.LATER_ALLOWED = workers.default_jobs(0) > 1
    try:
        try:
            _main(argv)
        finally:
            workers.join_later()
            workers.LATER_ALLOWED = False
    except KeyboardInterrupt as exc:
        # Ctrl-C or SIGTERM in the last moments (while _main's handlers run, or while
        # the cache writer is joined) is still a clean 130/143, never a traceback.
        _interrupted(exc)


def _main(argv: Sequence[str] | None) -> None:
    try:
        code = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
        sys.stdout.flush()
        _exit(code if isinstance(code, int) else 0)
    except SystemExit as exc:
        # click ends a command whose stdout pipe broke with a silent exit 1, after
        # wrapping stdout so that the final flush stays quiet: say why on stderr.
        if exc.code == 1 and type(sys.stdout).__name__.endswith("PacifyFlushWrapper"):
            note("posnet: cannot write to standard output: Broken pipe")
        raise
    except PosnetError as exc:
        click.echo(FORMATTERS["text"](unique_sorted(exc.diagnostics)))
        _exit(1)
    except UserError as exc:
        note(f"posnet: {exc}")
        _exit(exc.exit_code)
    except click.ClickException as exc:
        shown = io.StringIO()  # its message may name a path: escaped, never raw bytes
        exc.show(file=shown)
        for line in shown.getvalue().splitlines():
            click.echo(safe_text(line), err=True)
        _exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt) as exc:
        cause = exc if isinstance(exc, KeyboardInterrupt) else exc.__context__
        if isinstance(cause, KeyboardInterrupt):
            _interrupted(cause)
        _exit(1)  # end of input at a prompt
    except OSError as exc:
        if exc.filename is None:
            _stdout_gone()
        note(_environment_error(exc))
        _exit(1)
    except Exception as exc:
        if _SIGNALLED:  # a signal, wrapped by a library on its way up: not a bug
            _interrupted(_raised_for(_SIGNALLED[-1]))
        if os.environ.get("POSNET_DEBUG"):
            raise
        note(f"posnet: internal error: {type(exc).__name__}: {exc}")
        note("posnet: this is a bug; re-run with POSNET_DEBUG=1 and report the output")
        _exit(3)
