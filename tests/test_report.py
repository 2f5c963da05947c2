"""`posnet report`: static offline HTML of a fleet, checked in headless Chromium."""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys
from pathlib import Path

import pytest

from generator.plan import Plan
from generator.report import write_report
from tests.conftest import DEMO, ROOT, require_tool
from tests.test_diff import edit, posnet

ARTIFACTS = ROOT / "artifacts"  # git-ignored: screenshots of the last test run


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    fleet = root / "fleet"
    shutil.copytree(DEMO, fleet)
    proc = posnet("render", str(fleet), "-o", str(root / "build"))
    assert proc.returncode == 0, proc.stderr
    return fleet


@pytest.fixture(scope="module")
def demo_report(demo_build: Path) -> Path:
    out = demo_build.parent / "report"
    proc = posnet("report", str(demo_build.parent / "build"), "-o", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _pages(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def test_report_pages_deterministic_and_offline(demo_report: Path, demo_build: Path) -> None:
    pages = _pages(demo_report)
    assert sorted(p for p in pages if p.startswith("stores/")) == [
        f"stores/{p.stem}.html" for p in sorted((DEMO / "sites").glob("*.yaml"))
    ]
    again = demo_build.parent / "again"
    write_report(demo_build.parent / "build", demo_build, again)
    assert _pages(again) == pages
    for name, data in pages.items():
        text = data.decode()
        # Nothing is fetched from elsewhere: every src/href is relative to the report.
        for url in re.findall(r'(?:src|href)="([^"]*)"', text):
            assert not re.match(r"^([a-z]+:|//)", url), (name, url)
        if name.endswith(".html"):
            assert "Content-Security-Policy" in text and "<script>" not in text, name


def test_store_page_content(demo_report: Path) -> None:
    page = (demo_report / "stores" / "gent-01.html").read_text()
    assert "<svg" in page and 'id="node-edge"' in page
    assert "18443/tcp" in page and "build current" in page
    assert "Handover: Gent Korenmarkt" in page
    index = (demo_report / "index.html").read_text()
    assert index.count("<tr data-text=") == 7
    assert "0 not current in the build tree" in index


def test_stale_store(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(DEMO, fleet)
    assert posnet("render", str(fleet), "-o", str(tmp_path / "build")).returncode == 0
    edit(fleet / "sites" / "gent-01.yaml", "name: Gent Korenmarkt", "name: Gent Centrum")
    out = tmp_path / "report"
    assert posnet("report", str(tmp_path / "build"), "-o", str(out)).returncode == 0
    assert "build stale" in (out / "stores" / "gent-01.html").read_text()
    assert "build current" in (out / "stores" / "antwerp-02.html").read_text()
    # mechelen-hq proxies to gent-01: its input changed with it.
    assert "build stale" in (out / "stores" / "mechelen-hq.html").read_text()
    assert "2 not current in the build tree" in (out / "index.html").read_text()


def test_invalid_store_is_an_error_not_a_gap(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(DEMO, fleet)
    edit(fleet / "sites" / "gent-01.yaml", "public_port: 18443", "public_port: 99999")
    (tmp_path / "build").mkdir()
    proc = posnet("report", str(tmp_path / "build"), "-o", str(tmp_path / "r"))
    assert proc.returncode == 1
    assert re.search(r"gent-01\.yaml:\d+:\d+: error", proc.stdout)


def test_text_from_a_plan_is_escaped(demo_plans: dict[str, Plan]) -> None:
    from generator.report import StoreStatus
    from generator.report.pages import index_page, index_row, store_page

    plan = dataclasses.replace(demo_plans["gent-01"], site_name='<script>x</script>" a="')
    for page in (
        store_page(plan, StoreStatus()),
        index_page("f", [index_row(plan, StoreStatus())]),
    ):
        assert "<script>x" not in page and '" a="' not in page
        assert "&lt;script&gt;x" in page


def test_report_needs_its_fleet(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    proc = posnet("report", str(tmp_path / "build"), "-o", str(tmp_path / "r"))
    assert proc.returncode == 1
    assert "no fleet/fleet.yaml next to this build tree" in proc.stdout
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------ in a real browser


@pytest.fixture
def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    exe = require_tool("chromium")
    from tests.browser import chromium

    with chromium(exe, tmp_path / "profile") as page:
        yield page


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def test_browser_catches_a_broken_page(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The console check below is real: a page with an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><script src="missing.js"></script></body></html>')
    browser.open(bad.as_uri())
    assert browser.problems, "a missing script must show up as a problem"


def test_demo_report_in_chromium(browser, demo_report: Path) -> None:  # type: ignore[no-untyped-def]
    for page in sorted((demo_report / "stores").glob("*.html")):
        browser.open(page.as_uri())
        assert browser.problems == [], (page.name, browser.problems)
        box = browser.eval(
            "(() => { const r = document.querySelector('figure.diagram svg')"
            ".getBoundingClientRect(); return [r.width, r.height]; })()"
        )
        assert box[0] > 500 and box[1] > 150, (page.name, box)
        shown = browser.eval(
            "getComputedStyle(document.querySelector('#node-edge rect')).visibility"
        )
        assert shown == "visible"
        assert browser.eval("document.querySelectorAll('svg .link').length") > 0, page.name
    browser.open((demo_report / "stores" / "bruges-06.html").as_uri())
    shot = _artifact("report-store.png")
    browser.screenshot(shot)
    assert shot.stat().st_size > 10_000
    browser.open((demo_report / "index.html").as_uri())
    assert browser.problems == []


def test_index_of_1000_stores_opens_and_filters(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fleet_bench import make_fleet

    make_fleet(tmp_path / "fleet", 1000, seed=3)
    (tmp_path / "build").mkdir()
    out = tmp_path / "report"
    assert posnet("report", str(tmp_path / "build"), "-o", str(out)).returncode == 0
    browser.open((out / "index.html").as_uri())
    assert browser.problems == []
    count = "document.querySelectorAll('#stores tbody tr:not([hidden])').length"
    assert browser.eval(count) == 1000
    browser.eval(
        "(() => { const q = document.getElementById('q'); q.value = 'brussels-00014';"
        " q.dispatchEvent(new Event('input')); })()"
    )
    assert browser.eval(count) == 1
    assert browser.eval("document.getElementById('count').textContent") == "1 of 1000 stores"
    browser.eval(
        "(() => { const q = document.getElementById('q'); q.value = '';"
        " q.dispatchEvent(new Event('input'));"
        " const s = document.getElementById('pattern'); s.value = 'tunnel';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    tunnels = sum(1 for p in (tmp_path / "fleet" / "sites").glob("ostend-*.yaml"))
    assert browser.eval(count) == tunnels
    browser.screenshot(_artifact("report-index-1000.png"))
    assert browser.problems == []


def test_hostile_manifest_reads_as_nothing_rendered(tmp_path: Path) -> None:
    """The build tree is untrusted: a FIFO must not hang the report, a link to another
    file must not be followed, garbage must not crash it."""
    import os

    from generator.report import read_manifest

    build = tmp_path / "build"
    build.mkdir()
    os.mkfifo(build / "manifest.json")
    assert read_manifest(build) == {}
    (build / "manifest.json").unlink()
    real = tmp_path / "elsewhere.json"
    real.write_text('{"sites": {"gent-01": {"input": "x"}}}')
    (build / "manifest.json").symlink_to(real)
    assert read_manifest(build) == {}
    (build / "manifest.json").unlink()
    (build / "manifest.json").write_text('{"sites": ["not", "a", "mapping"]}')
    assert read_manifest(build) == {}
    (build / "manifest.json").write_text('{"sites": {"gent-01": {"input": "x"}}}')
    assert read_manifest(build) == {"gent-01": {"input": "x"}}


def _report_of(build: Path, fleet: Path, out: Path) -> dict[str, str]:
    """Each store's build status as the report's store pages give it."""
    proc = posnet("report", str(build), "-o", str(out), "--fleet", str(fleet))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return _statuses_in(out)


def _statuses_in(out: Path) -> dict[str, str]:
    found = {}
    for page in sorted((out / "stores").glob("*.html")):
        m = re.search(r"build (current|stale|missing)", page.read_text())
        assert m, page
        found[page.stem] = m.group(1)
    return found


def test_a_tampered_store_folder_is_not_current(tmp_path: Path) -> None:
    """ "Whether BUILD is current" read the manifest's input keys only: a hand-edited,
    deleted or stray file of a store was reported current, where `render --check`
    fails. Each makes its store stale now, and only its store."""
    fleet = tmp_path / "fleet"
    shutil.copytree(DEMO, fleet)
    build = tmp_path / "build"
    assert posnet("render", str(fleet), "-o", str(build)).returncode == 0
    assert set(_report_of(build, fleet, tmp_path / "r0").values()) == {"current"}
    (build / "sites/gent-01/HANDOVER.md").write_text("hand edit\n")
    (build / "sites/bruges-06/expectations.json").unlink()
    (build / "sites/antwerp-02/stray.conf").write_text("x\n")
    got = _report_of(build, fleet, tmp_path / "r1")
    assert {s for s, v in got.items() if v != "current"} == {"gent-01", "bruges-06", "antwerp-02"}
    assert "3 not current in the build tree" in (tmp_path / "r1" / "index.html").read_text()


def test_the_inventory_counts_and_tree_level_problems_are_named(tmp_path: Path) -> None:
    """A store was "current" while `render --check` called its host_vars (what Ansible
    applies to its edge) stale; an edited hosts.yml, a stray inventory file and store
    folders of another fleet were not mentioned at all."""
    fleet = tmp_path / "fleet"
    shutil.copytree(DEMO, fleet)
    build = tmp_path / "build"
    assert posnet("render", str(fleet), "-o", str(build)).returncode == 0
    assert set(_report_of(build, fleet, tmp_path / "r0").values()) == {"current"}
    assert "Build tree:" not in (tmp_path / "r0/index.html").read_text()
    with (build / "inventory/host_vars/gent-01-edge.yml").open("a") as fh:
        fh.write("ansible_host: 192.0.2.66\n")
    with (build / "inventory/hosts.yml").open("a") as fh:
        fh.write("# edited\n")
    (build / "inventory/stray.yml").write_text("x: 1\n")
    (build / "sites/store-99").mkdir()
    (build / "sites/store-99/HANDOVER.md").write_text("other fleet\n")
    got = _report_of(build, fleet, tmp_path / "r1")
    assert {s for s, v in got.items() if v != "current"} == {"gent-01"}
    text = (tmp_path / "r1/index.html").read_text()
    assert "Build tree: inventory/hosts.yml is not as the manifest has it." in text
    assert "Build tree: 1 inventory file the fleet does not render: inventory/stray.yml." in text
    assert "Build tree: 1 store folder of no store in the fleet: store-99." in text
    check = posnet("render", str(fleet), "-o", str(build), "--check")
    assert check.returncode == 1  # the same tree, as the check sees it
    for rel in ("host_vars/gent-01-edge.yml: stale", "hosts.yml: stale", "stray.yml: stray"):
        assert rel in check.stdout, check.stdout


def test_pages_made_by_workers_are_those_made_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store pages, their index rows and each store's folder check are made in
    forked workers for a big fleet: the same bytes as in one process, tampered stores
    stale in both (the status a worker finds must reach the index)."""
    from generator import workers

    fleet = tmp_path / "fleet"
    shutil.copytree(DEMO, fleet)
    build = tmp_path / "build"
    assert posnet("render", str(fleet), "-o", str(build)).returncode == 0
    (build / "sites/gent-01/HANDOVER.md").write_text("hand edit\n")
    (build / "sites/antwerp-02/stray.conf").write_text("x\n")
    write_report(build, fleet, tmp_path / "here")
    forked: list[int] = []
    real_map = workers.in_workers

    def spy(*args: object, **kwargs: object) -> object:
        forked.append(1)
        return real_map(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(workers, "SMALL", 2)
    monkeypatch.setattr(workers, "default_jobs", lambda jobs: 2)
    monkeypatch.setattr(workers, "in_workers", spy)
    write_report(build, fleet, tmp_path / "workers")
    assert forked
    assert _pages(tmp_path / "workers") == _pages(tmp_path / "here")
    got = _statuses_in(tmp_path / "workers")
    assert {s for s, v in got.items() if v != "current"} == {"gent-01", "antwerp-02"}
    assert "2 not current in the build tree" in (tmp_path / "workers" / "index.html").read_text()


def test_a_linked_store_folder_or_a_manifest_naming_outside_reads_nothing_there(
    tmp_path: Path,
) -> None:
    """A store folder swapped for a link to an identical copy outside the tree, and a
    manifest entry naming ../ with the right hash of a file outside: following either
    would call a store current; no store is."""
    import json

    fleet = tmp_path / "fleet"
    shutil.copytree(DEMO, fleet)
    build = tmp_path / "build"
    assert posnet("render", str(fleet), "-o", str(build)).returncode == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copytree(build / "sites" / "leuven-04", outside / "leuven-04")
    shutil.rmtree(build / "sites" / "leuven-04")
    (build / "sites" / "leuven-04").symlink_to(outside / "leuven-04")
    assert set(_report_of(build, fleet, tmp_path / "r0").values()) == {"stale"}

    (build / "sites" / "leuven-04").unlink()
    shutil.copytree(outside / "leuven-04", build / "sites" / "leuven-04")
    manifest = json.loads((build / "manifest.json").read_text())
    files = manifest["sites"]["gent-01"]["files"]
    secret = outside / "secret.txt"
    secret.write_text("outside\n")
    import hashlib

    files.clear()
    files["../../../outside/secret.txt"] = hashlib.sha256(secret.read_bytes()).hexdigest()
    (build / "manifest.json").write_text(json.dumps(manifest))
    got = _report_of(build, fleet, tmp_path / "r1")
    assert got["gent-01"] == "stale"
    assert {v for s, v in got.items() if s != "gent-01"} == {"current"}
