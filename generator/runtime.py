"""Commands that act on real stores: apply (Ansible), verify (testinfra), probe."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from generator.build import MANIFEST


def playbooks_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_playbooks", here.parent / "playbooks"):
        if (candidate / "site.yml").exists():
            return candidate
    raise click.ClickException("posnet playbooks not found (broken installation)")


def _tree(build: Path) -> Path:
    """A rendered tree whose files are exactly what the manifest says."""
    from generator.build import open_tree
    from generator.tree_guard import read_tree_file, valid_manifest

    open_tree(build)  # no links or special files anywhere in it
    manifest = build / MANIFEST
    raw = read_tree_file(manifest)
    if raw is None:
        raise click.ClickException(
            f"{build}: no {MANIFEST}; run `posnet render FLEET -o {build}` first"
        )
    data = valid_manifest(manifest, raw)
    edited = []
    for site, entry in sorted(data.get("sites", {}).items()):
        for rel, digest in sorted(entry.get("files", {}).items()):
            p = build / "sites" / site / rel
            try:
                data = p.read_bytes()
            except OSError:
                edited.append(f"{p}: missing")
                continue
            if hashlib.sha256(data).hexdigest() != digest:
                edited.append(f"{p}: edited by hand")
    if edited:
        for line in edited[:20]:
            click.echo(line, err=True)
        raise click.ClickException(f"{build} differs from its manifest; re-render before applying")
    return build.resolve()


def _ansible_env(tmp: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_HOME", os.path.join(tmp, "ansible-home"))
    env.setdefault("ANSIBLE_LOCAL_TEMP", os.path.join(tmp, "ansible-local"))
    env["ANSIBLE_RETRY_FILES_ENABLED"] = "0"
    env.setdefault("ANSIBLE_FORCE_COLOR", "1" if sys.stdout.isatty() else "0")
    env.setdefault("ANSIBLE_STDOUT_CALLBACK", "default")
    return env


def _which(tool: str) -> str:
    here = Path(sys.executable).parent / tool
    path = str(here) if here.exists() else shutil.which(tool)
    if not path:
        raise click.ClickException(f"{tool} not found: pip install 'posnet[apply]'")
    return path


INVENTORY = click.option(
    "-i",
    "--inventory",
    "inventories",
    multiple=True,
    type=click.Path(exists=True),
    help="Extra inventory layered over the build's (ssh settings, real addresses).",
)
LIMIT = click.option("--limit", "-l", default=None, help="Ansible host pattern, e.g. site_gent_01.")


@click.command()
@click.argument("build", type=click.Path(exists=True, file_okay=False, path_type=Path))
@INVENTORY
@LIMIT
@click.option("--check", is_flag=True, help="Dry run: report what would change.")
@click.option("--diff", is_flag=True, help="Show file differences (never for files with secrets).")
@click.option(
    "--tags", default=None, help="Components: firewall, dhcp, ddns, proxy (comma-separated)."
)
@click.option("--serial", default=None, help="Stores per batch (number or percentage).")
@click.option(
    "--max-fail-percentage",
    type=click.IntRange(0, 100),
    default=None,
    help="Stop the roll-out when more than this share of a batch fails.",
)
@click.option(
    "--vault-password-file",
    type=click.Path(exists=True),
    default=None,
    help="For vault: secret references (with -e @vault.yml).",
)
@click.option("-e", "--extra-vars", "extra", multiple=True, help="Passed to ansible-playbook.")
@click.option(
    "--forks", type=click.IntRange(1, 500), default=None, help="Parallel ssh connections."
)
@click.option("-v", "--verbose", count=True, help="More Ansible output (secrets stay hidden).")
@click.option(
    "--wait",
    type=click.FloatRange(0, 86400),
    default=0,
    metavar="SECONDS",
    help="If a render or apply holds BUILD, wait this long for it (default: exit 1 at once).",
)
def apply(
    build: Path,
    inventories: tuple[str, ...],
    limit: str | None,
    check: bool,
    diff: bool,
    tags: str | None,
    serial: str | None,
    max_fail_percentage: int | None,
    vault_password_file: str | None,
    extra: tuple[str, ...],
    forks: int | None,
    verbose: int,
    wait: float,
) -> None:
    """Apply a rendered BUILD tree to the stores with Ansible (playbooks/site.yml).

    Files are checked by their real parser before they replace anything, activated only
    when changed, and rolled back when activation or a post-check fails. Secrets are
    resolved on this machine at apply time and never logged. BUILD stays locked against
    renders while it is applied.
    """
    from generator.tree_lock import tree_lock

    with tree_lock(build, wait, optional=True):
        _apply(
            build,
            inventories,
            limit,
            check,
            diff,
            tags,
            serial,
            max_fail_percentage,
            vault_password_file,
            extra,
            forks,
            verbose,
        )


def _apply(
    build: Path,
    inventories: tuple[str, ...],
    limit: str | None,
    check: bool,
    diff: bool,
    tags: str | None,
    serial: str | None,
    max_fail_percentage: int | None,
    vault_password_file: str | None,
    extra: tuple[str, ...],
    forks: int | None,
    verbose: int,
) -> None:
    tree = _tree(build)
    cmd = [_which("ansible-playbook"), "-i", str(tree / "inventory")]
    for inv in inventories:
        cmd += ["-i", str(Path(inv).resolve())]
    cmd += [str(playbooks_dir() / "site.yml"), "-e", json.dumps({"posnet_tree": str(tree)})]
    if limit:
        cmd += ["--limit", limit]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if tags:
        cmd += ["--tags", tags]
    if serial:
        cmd += ["-e", json.dumps({"posnet_serial": serial})]
    if max_fail_percentage is not None:
        cmd += ["-e", json.dumps({"posnet_max_fail_percentage": max_fail_percentage})]
    if vault_password_file:
        cmd += ["--vault-password-file", vault_password_file]
    if forks:
        cmd += ["--forks", str(forks)]
    for e in extra:
        cmd += ["-e", e]
    if verbose:
        cmd.append("-" + "v" * min(verbose, 4))
    with tempfile.TemporaryDirectory(prefix="posnet-apply-") as tmp:
        rc = subprocess.call(cmd, env=_ansible_env(tmp))
    if rc != 0:
        click.echo(f"posnet: ansible-playbook failed (exit {rc})", err=True)
        sys.exit(1)


@click.command()
@click.argument("build", type=click.Path(exists=True, file_okay=False, path_type=Path))
@INVENTORY
@LIMIT
@click.option(
    "--junit", type=click.Path(dir_okay=False), default=None, help="Write a JUnit XML report."
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a JSON summary (one entry per check and host).",
)
def verify(
    build: Path,
    inventories: tuple[str, ...],
    limit: str | None,
    junit: str | None,
    json_out: str | None,
) -> None:
    """Check the stores of BUILD with the packaged testinfra suite.

    Rulesets loaded with default drop, management kept, every exposure forwarded,
    files present with the right owner and mode, no secret marker left, DHCP serving.
    Run `posnet probe` from a partner's and a stranger's vantage point for the network
    view.
    """
    tree = _tree(build)
    suite = Path(__file__).resolve().parent / "verify" / "suite" / "test_edge.py"
    with tempfile.TemporaryDirectory(prefix="posnet-verify-") as tmp:
        # testinfra takes one inventory: a folder holding the build's and the extra ones.
        inv = Path(tmp) / "inventory"
        inv.mkdir()
        (inv / "hosts.yml").symlink_to(tree / "inventory" / "hosts.yml")
        (inv / "host_vars").symlink_to(tree / "inventory" / "host_vars")
        for n, extra in enumerate(inventories):
            src = Path(extra).resolve()
            (inv / f"zz-extra-{n}{src.suffix or '.ini'}").symlink_to(src)
        # testinfra reads plain patterns only (no :& intersections); the suite skips
        # hosts that are not edges (proxies are proven by the playbook and probes).
        pattern = limit or "posnet_edges"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            tmp,
            "-c",
            os.devnull,
            str(suite),
            f"--hosts=ansible://{pattern}",
            f"--ansible-inventory={inv}",
        ]
        report = os.path.join(tmp, "report.xml")
        cmd += [f"--junitxml={junit or report}"]
        env = _ansible_env(tmp)
        rc = subprocess.call(cmd, env=env)
        results = _junit_to_json(junit or report)
        if json_out:
            Path(json_out).write_text(json.dumps(results, indent=2) + "\n")
    if rc != 0:
        sys.exit(1)
    if not any(r["status"] == "passed" for r in results):
        click.echo(f"posnet: no host matched {pattern}; nothing was verified", err=True)
        sys.exit(1)


def _junit_to_json(path: str) -> list[dict[str, Any]]:
    import xml.etree.ElementTree as ET

    out: list[dict[str, Any]] = []
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - our own pytest's report
    except (OSError, ET.ParseError):
        return out
    for case in root.iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        out.append(
            {
                "check": case.get("name", ""),
                "status": "failed" if failed else "skipped" if skipped else "passed",
            }
        )
    return out


@click.command()
@click.argument("build", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--site", "site", required=True, metavar="ID", help="The store to probe.")
@click.option(
    "--as",
    "role",
    type=click.Choice(["partner", "stranger"]),
    default="partner",
    show_default=True,
    help="partner: exposures must answer; stranger: all must fail.",
)
@click.option("--host", "host", default=None, help="Probe this address instead of the public one.")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=3.0, show_default=True)
@click.option(
    "--verify-tls", is_flag=True, help="Require a certificate trusted by --ca or the system."
)
@click.option("--ca", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def probe(
    build: Path,
    site: str,
    role: str,
    host: str | None,
    timeout: float,
    verify_tls: bool,
    ca: str | None,
    as_json: bool,
) -> None:
    """Probe one store's exposures from where this command runs.

    Run it from a real vantage point (a partner's network, or an outside host that is
    not allow-listed), never against addresses you do not own. Exit 1 on any mismatch.
    """
    from generator.probe import ProbeResult, probe_closed, probe_exposure

    tree = _tree(build)
    exp_file = tree / "sites" / site / "expectations.json"
    if not exp_file.exists():
        raise click.UsageError(f"--site: no store {site} in {build}")
    exp = json.loads(exp_file.read_text())
    target_host = host or next((e["public_host"] for e in exp["exposures"]), None)
    results: list[ProbeResult] = []
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [
            pool.submit(probe_exposure, e, role, host, timeout, verify_tls, ca)  # type: ignore[arg-type]
            for e in exp["exposures"]
        ]
        if target_host:
            futures.append(pool.submit(probe_closed, target_host, exp["blocked_ports"], timeout))
        for f in futures:
            results.extend(f.result())
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            mark = "ok  " if r.ok else "FAIL"
            click.echo(f"{mark} {r.check:<40} {r.target:<24} {r.detail}")
    failed = [r for r in results if not r.ok]
    click.echo(
        f"posnet probe {site} as {role}: {len(results) - len(failed)} ok, {len(failed)} failed",
        err=True,
    )
    if not results:
        click.echo("posnet: nothing to probe for this store", err=True)
    if failed:
        sys.exit(1)


def commands() -> list[click.Command]:
    return [apply, verify, probe]
