"""Commands that act on real stores: apply (Ansible), verify (testinfra), probe."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import click

from generator.options import COMPONENTS, batch_size, components, host_pattern, once
from generator.tree_guard import MANIFEST
from generator.verify.state import (
    EXIT_IN_SYNC,
    HostState,
    collect,
    exit_code,
    parse_recap,
    render,
    run_playbook,
)


def playbooks_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_playbooks", here.parent / "playbooks"):
        if (candidate / "site.yml").exists():
            return candidate
    raise click.ClickException("posnet playbooks not found (broken installation)")


def _tree(build: Path) -> Path:
    """A rendered tree whose files are exactly what the manifest says."""
    from generator.errors import safe_text
    from generator.tree_guard import differs, read_tree_file, valid_manifest
    from generator.tree_scan import open_tree

    listing = open_tree(build)  # no links or special files anywhere in it
    manifest = build / MANIFEST
    raw = read_tree_file(manifest)
    if raw is None:
        raise click.ClickException(
            f"{build}: no {MANIFEST}; run `posnet render FLEET -o {build}` first"
        )
    doc = valid_manifest(manifest, raw)
    if "inventory" not in doc:
        raise click.ClickException(
            f"{manifest}: written by an older posnet, without the inventory's hashes; "
            f"run `posnet render FLEET -o {build}` again before applying"
        )
    # Ansible reads the inventory on this machine (host names, users, file lists): it is
    # held to the manifest like the stores' files, and a file the manifest does not name
    # (a group_vars/ file, another host) is refused.
    expected = dict(doc["inventory"])
    for site, entry in doc["sites"].items():
        expected.update({f"sites/{site}/{rel}": digest for rel, digest in entry["files"].items()})
    edited = [
        f"{build / rel}: not rendered by posnet"
        for rel in sorted(listing)
        if rel.startswith("inventory/") and rel not in expected
    ]
    for rel, digest in sorted(expected.items()):
        how = differs(build / rel, digest)
        if how is not None:
            edited.append(f"{build / rel}: {'missing' if how == 'missing' else 'edited by hand'}")
    if edited:
        for line in edited[:20]:
            click.echo(safe_text(line), err=True)  # a stray's name is anyone's text
        raise click.ClickException(f"{build} differs from its manifest; re-render before applying")
    return build.resolve()


# How long the testinfra suite may take: a host that stops answering mid-run (its ssh
# connection kept open by a ControlMaster) used to hold verify forever.
SUITE_SECONDS, HOST_SECONDS = 120, 60


def _suite(cmd: list[str], env: dict[str, str], limit: float) -> int:
    """Run the testinfra suite in its own session; past `limit` seconds, stop it and
    every process it started, and fail."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        click.echo(
            f"posnet: the testinfra checks did not finish in {limit:.0f} s (a host stopped "
            "answering?); stopped them",
            err=True,
        )
        return 1
    except BaseException:  # Ctrl-C: no check left running behind
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def _ansible_env(tmp: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_HOME", os.path.join(tmp, "ansible-home"))
    env.setdefault("ANSIBLE_LOCAL_TEMP", os.path.join(tmp, "ansible-local"))
    env["ANSIBLE_RETRY_FILES_ENABLED"] = "0"
    # testinfra's ansible backend and ansible's own tools call ansible-* by name: the
    # ones installed beside this interpreter come first (no venv on PATH needed).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
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
LIMIT = click.option(
    "--limit",
    "-l",
    multiple=True,
    callback=host_pattern,
    help="Ansible host pattern, e.g. site_gent_01 (an empty one is refused: Ansible would "
    "read it as every store).",
)


@click.command()
@click.argument("build", type=click.Path(exists=True, file_okay=False, path_type=Path))
@INVENTORY
@LIMIT
@click.option("--check", is_flag=True, help="Dry run: report what would change.")
@click.option("--diff", is_flag=True, help="Show file differences (never for files with secrets).")
@click.option(
    "--tags",
    multiple=True,
    callback=components,
    help=f"Components: {', '.join(COMPONENTS)} (comma-separated).",
)
@click.option(
    "--serial",
    multiple=True,
    callback=batch_size,
    help="Stores per batch (number or percentage). A batch in which every store fails "
    "stops the roll-out (Ansible's rule, whatever --max-fail-percentage says).",
)
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
    "--devices-out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder on this machine for the completed device files, one 0700 folder per store"
    " (default ~/posnet-devices); never inside BUILD.",
)
@click.option(
    "--wait",
    type=click.FloatRange(0, 86400),
    default=0,
    metavar="SECONDS",
    help="If a render or apply holds BUILD, or another apply (from any controller) holds a "
    "store's lock, wait this long for it (default: exit 1 at once, naming the holder).",
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
    devices_out: Path | None,
    wait: float,
) -> None:
    """Apply a rendered BUILD tree to the stores with Ansible (playbooks/site.yml).

    Files are checked by their real parser before they replace anything, activated only
    when changed, and rolled back when activation or a post-check fails. Secrets are
    resolved on this machine at apply time and never logged. BUILD stays locked against
    renders while it is applied. Device property files are completed on this machine and
    written 0600 to ~/posnet-devices/<store>/ (or --devices-out) for the operator to load
    onto the devices; the tree keeps its markers.

    One apply at a time per store, whichever controller or clone runs it: each store host
    holds a lock (/var/lib/posnet/apply.lock) from the first play to the last, and a
    second apply stops that store naming the holder and since when. The lock is a lease
    renewed at every play (-e posnet_lock_seconds=N, default 900): one left by a run that
    died is taken over when its lease ends.
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
            devices_out,
            wait,
        )


def _devices_out(tree: Path, out: Path) -> str:
    """The devices folder as an absolute path, refused inside the tree (it holds secrets)."""
    folder = out.expanduser().resolve()
    if folder == tree or tree in folder.parents:
        raise click.ClickException(
            f"--devices-out {out}: inside the build tree {tree}; completed device files hold"
            " secrets and must never go into the tree: choose a folder outside it"
        )
    return str(folder)


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
    devices_out: Path | None = None,
    wait: float = 0,
) -> None:
    tree = _tree(build)
    base = [_which("ansible-playbook"), "-i", str(tree / "inventory")]
    for inv in inventories:
        base += ["-i", str(Path(inv).resolve())]
    run = {"posnet_run_id": run_id(), "posnet_run_owner": run_owner()}
    # What the release after a failure needs as well: the same run, stores and vault, as
    # wide as the run (--forks); --tags: devices alone lock no store, so none to release.
    shared = ["-e", json.dumps({"posnet_tree": str(tree), **run})]
    for flag, value in (
        ("--limit", limit),
        ("--tags", tags),
        ("--forks", str(forks) if forks else None),
        ("--vault-password-file", vault_password_file),
    ):
        if value:
            shared += [flag, value]
    site_vars: dict[str, object] = {"posnet_lock_wait": wait}
    if serial:
        site_vars["posnet_serial"] = serial
    if max_fail_percentage is not None:
        site_vars["posnet_max_fail_percentage"] = max_fail_percentage
    if devices_out is not None:
        site_vars["posnet_devices_out"] = _devices_out(tree, devices_out)
    # The user's -e last, so they override posnet's own (ssh settings, watchdog seconds)
    user = [a for e in extra for a in ("-e", e)]
    modes = [m for m, on in (("--check", check), ("--diff", diff)) if on]
    if verbose:
        modes.append("-" + "v" * min(verbose, 4))
    site = str(playbooks_dir() / "site.yml")
    cmd = [*base, site, *shared, "-e", json.dumps(site_vars), *modes, *user]
    release = [*base, str(playbooks_dir() / "unlock.yml"), *shared, *user]
    with tempfile.TemporaryDirectory(prefix="posnet-apply-") as tmp:
        env = _ansible_env(tmp)
        try:
            rc, output = run_playbook(cmd, env, echo=True)
        except BaseException:  # Ctrl-C, SIGTERM: the stores this run still holds
            if not check:
                _release(release, env)
            raise
        if matched_nothing(rc, output):  # no store was reached, so none was locked
            click.echo(
                f"posnet: no host matched {limit or 'the build'}; nothing was applied", err=True
            )
            sys.exit(1)
        if rc != 0 and not check:
            _release(release, env)
    _apply_summary(rc, parse_recap(output))


def run_id() -> str:
    """This apply's lock token on every store host (playbooks/lock.yml)."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(4)}"


def run_owner() -> str:
    """Who holds a store's lock, as a second apply's message names it."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}, posnet apply pid {os.getpid()}"


def _release(release: list[str], env: dict[str, str]) -> None:
    """After a failed or interrupted run, give back the locks of the stores that failed
    mid-run (Ansible drops a failed host from the later plays, site.yml's last one
    included). A store this run never locked, or lost, is left alone: only the token's
    holder can release. An unreachable store keeps the lock until its lease ends.

    No overall deadline: each store's release is bounded on its own (ssh's connect
    timeout, the release task's `timeout` in unlock.yml), so a fleet of any size is
    released whole instead of cut off after its first stores (which then refused the
    next apply for a whole lease)."""
    click.echo("posnet: giving back the store locks this run still holds", err=True)
    try:
        proc = subprocess.run(
            release,
            env={**env, "ANSIBLE_FORCE_COLOR": "0"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,  # nothing may wait for an answer nobody sees
            text=True,
            check=False,
        )
    except OSError:
        click.echo("posnet: could not release the store locks; they end with their lease", err=True)
        return
    if proc.returncode != 0:
        click.echo(
            "posnet: some store locks could not be released (unreachable?); they end with "
            "their lease (posnet_lock_seconds)",
            err=True,
        )


def _apply_summary(rc: int, recap: dict[str, dict[str, int]]) -> None:
    """Per-store outcome of a fleet run; exit 1 naming every store that failed."""
    # A host that failed and then went unreachable is one unreachable store: each store
    # is counted once, as its own line below names it.
    outcome = {
        h: "unreachable" if c.get("unreachable") else "failed"
        for h, c in recap.items()
        if c.get("failed") or c.get("unreachable")
    }
    changed = sorted(h for h, c in recap.items() if c.get("changed"))
    failed = sum(1 for what in outcome.values() if what == "failed")
    click.echo(
        f"posnet apply: {len(recap)} hosts, {len(changed)} changed, "
        f"{failed} failed, {len(outcome) - failed} unreachable",
        err=True,
    )
    for host, what in sorted(outcome.items()):
        click.echo(f"posnet apply: {host}: {what}", err=True)
    if rc != 0:
        click.echo(f"posnet: ansible-playbook failed (exit {rc})", err=True)
        sys.exit(1)
    if outcome:  # a recap naming failures under exit 0 (a callback, an old Ansible)
        click.echo(f"posnet: {len(outcome)} store(s) did not apply", err=True)
        sys.exit(1)


# What ansible-playbook prints when the inventory and --limit leave no host.
NO_HOSTS = "leaves us with no hosts to target"


def matched_nothing(rc: int, output: str) -> bool:
    """ansible-playbook stopped before any play because no host was left to target."""
    return rc != 0 and not parse_recap(output) and NO_HOSTS in " ".join(output.split())


def live_state(
    tree: Path, inventories: tuple[str, ...], limit: str | None, forks: int | None
) -> list[HostState]:
    """Run the read-only state play (playbooks/state.yml) and collect one verdict per host."""
    with tempfile.TemporaryDirectory(prefix="posnet-state-") as tmp:
        reports = Path(tmp) / "reports"
        reports.mkdir()
        cmd = [_which("ansible-playbook"), "-i", str(tree / "inventory")]
        for inv in inventories:
            cmd += ["-i", str(Path(inv).resolve())]
        extra = {"posnet_tree": str(tree), "posnet_report_dir": str(reports)}
        cmd += [str(playbooks_dir() / "state.yml"), "-e", json.dumps(extra)]
        if limit:
            cmd += ["--limit", limit]
        if forks:
            cmd += ["--forks", str(forks)]
        env = _ansible_env(tmp)
        env["ANSIBLE_FORCE_COLOR"] = "0"
        rc, output = run_playbook(cmd, env, echo=False)
        if matched_nothing(rc, output):
            return []  # --limit matched no host: the callers say so
        recap = parse_recap(output)
        if rc not in (0, 2, 4) and not recap:
            click.echo(output[-3000:], err=True)
            raise click.ClickException(
                f"ansible-playbook could not run the state check (exit {rc})"
            )
        return collect(reports, recap)


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
    """Check the stores of BUILD: live state against the build, then the testinfra suite.

    Live state (the same comparison as `posnet drift`): the kernel's `table inet posnet`
    (nft JSON) must equal the rendered ruleset loaded into a scratch network namespace
    on the same host, rule by rule with handles and counters ignored (iptables: the
    normalised iptables-save of the chains posnet writes); any extra, missing or changed
    rule fails and is named by chain and comment. Installed files must hash to the
    build's, the services posnet runs (dnsmasq, nginx, Apache) must run and have been
    (re)started after their config was written, with no other process serving their
    ports (a second DHCP server on the LAN), no lease may give a DHCP reservation's
    address to another MAC, and ip_forward must be on (bridge
    netfilter off where the module is loaded). The testinfra suite then checks default
    drop, management, forwards, owners and modes, DHCP serving. Exit 1 on any failure.
    Run `posnet probe` from a partner's and a stranger's vantage point for the network
    view.
    """
    from generator.outdir import check_output_file, write_output_file

    tree = _tree(build)
    for option, value in (("--junit", junit), ("--json", json_out)):
        if value:
            check_output_file(Path(value), option, tree)
    states = live_state(tree, inventories, limit, None)
    for st in states:
        mark = "ok  " if st.verdict == "in sync" else "FAIL"
        click.echo(f"{mark} live state {st.host}: {st.verdict}")
        for d in st.drift:
            click.echo(f"     {d['what']}: {d['detail']}")
        if st.error:
            click.echo(f"     {st.error}")
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
        cmd += [f"--junitxml={junit or report}", "--tb=line"]  # one line a failure
        env = _ansible_env(tmp)
        rc = _suite(cmd, env, SUITE_SECONDS + HOST_SECONDS * len(states))
        results = [
            {
                "check": f"live_state[{st.host}]",
                "status": "passed" if st.verdict == "in sync" else "failed",
                "verdict": st.verdict,
                "drift": st.drift,
            }
            for st in states
        ]
        results += _junit_to_json(junit or report)
        if json_out:
            write_output_file(Path(json_out), json.dumps(results, indent=2) + "\n", "--json", tree)
    if rc != 0 or any(st.verdict != "in sync" for st in states):
        sys.exit(1)
    if not any(r["status"] == "passed" for r in results):
        click.echo(f"posnet: no host matched {pattern}; nothing was verified", err=True)
        sys.exit(1)


@click.command()
@click.argument("build", type=click.Path(exists=True, file_okay=False, path_type=Path))
@INVENTORY
@LIMIT
@click.option(
    "--forks", type=click.IntRange(1, 500), default=None, help="Parallel ssh connections."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the report here."
)
def drift(
    build: Path,
    inventories: tuple[str, ...],
    limit: str | None,
    forks: int | None,
    fmt: str,
    output: str | None,
) -> None:
    """Compare every store of BUILD with what runs on it, in parallel (Ansible forks).

    The same live-vs-intended comparison as `posnet verify` (ruleset, files, services,
    kernel settings), read-only. One verdict per host: in sync, drifted (with what),
    unreachable, or error (the check could not run).

    \b
    Exit codes:
      0  every host checked and in sync
      5  drift found on at least one host (3 stays "internal error", as for every command)
      4  no drift found, but at least one host could not be checked
      1  invalid build tree or Ansible could not run
    """
    from generator.outdir import check_output_file, write_output_file

    tree = _tree(build)
    if output:
        check_output_file(Path(output), "-o", tree)  # before any host is contacted
    states = live_state(tree, inventories, limit, forks)
    text = render(states, fmt)
    if output:
        write_output_file(Path(output), text + "\n", "-o", tree)
    else:
        click.echo(text)
    code = exit_code(states)
    if code != EXIT_IN_SYNC and not states:
        click.echo(f"posnet drift: no host matched {limit or 'the build'}", err=True)
    sys.exit(code)


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


def _edge_of(tree: Path, site: str) -> dict[str, Any]:
    """The store's edge host variables (address, management port) from the build."""
    from ruamel.yaml import YAML

    loader = YAML(typ="safe", pure=True)
    for path in sorted((tree / "inventory" / "host_vars").glob("*.yml")):
        data = loader.load(path.read_text()) or {}
        if data.get("posnet_site") == site and "posnet_firewall" in data:
            return dict(data)
    return {}


def _tree_json(tree: Path, rel: str) -> Any:
    """A JSON file of the build tree (checked against the manifest by _tree, but the
    manifest is as untrusted as the file): damage is an error naming it, not a crash."""
    from generator.errors import safe_text
    from generator.jsondata import parse_untrusted
    from generator.tree_guard import read_tree_file

    path = tree / rel
    try:
        return parse_untrusted(read_tree_file(path) or b"")
    except ValueError:
        raise click.ClickException(
            f"{safe_text(str(path))}: damaged; run `posnet render FLEET -o "
            f"{safe_text(str(tree))} --force` to render the tree again"
        ) from None


def _probe_site(
    tree: Path,
    site: str,
    role: str,
    host: str | None,
    timeout: float,
    verify_tls: bool,
    ca: str | None,
) -> list[Any]:
    from generator.probe import probe_exposure, probe_not_exposed

    exp = _tree_json(tree, f"sites/{site}/expectations.json")
    edge = _edge_of(tree, site)
    fw = exp.get("firewall") or {}
    target_host = (
        host or next((e["public_host"] for e in exp["exposures"]), None) or edge.get("ansible_host")
    )
    results: list[Any] = []
    if not target_host:
        return results
    ports: list[tuple[int, str]] = [(int(p), "blocked") for p in exp["blocked_ports"]]
    mgmt = fw.get("management_port") or edge.get("posnet_management_port")
    if mgmt is not None:
        ports.append((int(mgmt), "management"))
    if role == "partner":
        # a UDP exposure's number says nothing about the TCP port of the same number
        exposed = {
            int(e["public_port"]) for e in exp["exposures"] if e.get("protocol", "tcp") == "tcp"
        }
        ports = [p for p in ports if p[0] not in exposed]
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [
            pool.submit(probe_exposure, e, role, host, timeout, verify_tls, ca)  # type: ignore[arg-type]
            for e in exp["exposures"]
        ]
        drop = fw.get("policy", "drop") == "drop"
        futures += [pool.submit(probe_not_exposed, target_host, [p], timeout, drop) for p in ports]
        for f in futures:
            results.extend(f.result())
    return results


@click.command()
@click.argument("build", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--site", "site", multiple=True, callback=once, metavar="ID",
    help="The store to probe.",
)  # fmt: skip
@click.option("--all", "all_sites", is_flag=True, help="Probe every store of BUILD.")
@click.option(
    "--as",
    "role",
    type=click.Choice(["partner", "stranger"]),
    default="partner",
    show_default=True,
    help=(
        "partner: exposures open, the rest filtered, and a proxy's routes refused "
        "without credentials; stranger: every port filtered but exposures open to anyone."
    ),
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
    site: str | None,
    all_sites: bool,
    role: str,
    host: str | None,
    timeout: float,
    verify_tls: bool,
    ca: str | None,
    as_json: bool,
) -> None:
    """Probe stores from where this command runs: open, closed or filtered.

    A port is open (SYN answered), closed (RST: the packet got through to a host) or
    filtered (no answer). On a default-drop edge, a stranger must see every port
    filtered: each exposure, each port that must stay closed, and the management port;
    a closed answer fails; an exposure without an allow-list must be open. A partner
    must see its exposures open (TLS and HTTP checked, by the name partners use) and
    the rest filtered; in front of a proxy with basic auth or client certificates, a
    route asked without credentials must be refused (the probe holds none). Only TCP
    is probed: a UDP exposure is listed as not probed (skip), neither ok nor failed.
    Stores without exposures are probed at their edge's address.
    Run it from a real vantage point, never against addresses you do not own.
    Exit 1 on any mismatch.
    """
    tree = _tree(build)
    if all_sites == bool(site):
        raise click.UsageError("give --site ID or --all")
    if all_sites and host:
        raise click.UsageError("--host goes with --site (one store), not --all")
    if all_sites:
        manifest = _tree_json(tree, MANIFEST)
        sites = sorted(manifest.get("sites", {}))
    else:
        assert site is not None
        if not (tree / "sites" / site / "expectations.json").exists():
            raise click.UsageError(f"--site: no store {site} in {build}")
        sites = [site]
    per_site = {s: _probe_site(tree, s, role, host, timeout, verify_tls, ca) for s in sites}
    if as_json:
        if all_sites:
            out: Any = {s: [r.as_dict() for r in rs] for s, rs in per_site.items()}
        else:
            out = [r.as_dict() for r in per_site[sites[0]]]
        click.echo(json.dumps(out, indent=2))
    else:
        for s, rs in per_site.items():
            for r in rs:
                mark = "skip" if r.skipped else "ok  " if r.ok else "FAIL"
                prefix = f"{s:<14} " if all_sites else ""
                click.echo(f"{mark} {prefix}{r.check:<40} {r.target:<24} {r.detail}")
    failed_sites = []
    for s, rs in per_site.items():
        failed = [r for r in rs if not r.ok]
        skipped = sum(r.skipped for r in rs)
        click.echo(
            f"posnet probe {s} as {role}: {len(rs) - len(failed) - skipped} ok, "
            f"{len(failed)} failed" + (f", {skipped} not probed (UDP)" if skipped else ""),
            err=True,
        )
        if not rs:
            click.echo(f"posnet: {s}: no address to probe (no exposure, no edge address)", err=True)
        if failed or not rs:
            failed_sites.append(s)
    if all_sites:
        click.echo(
            f"posnet probe --all as {role}: {len(sites) - len(failed_sites)} stores as expected, "
            f"{len(failed_sites)} not" + (f": {', '.join(failed_sites)}" if failed_sites else ""),
            err=True,
        )
    if failed_sites:
        sys.exit(1)


def commands() -> list[click.Command]:
    return [apply, verify, probe, drift]
