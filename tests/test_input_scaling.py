"""A hostile store file costs work in proportion to its size, never to its square.

A pull request can hold one store file with 150,000 bad list elements: validating it
once took ten minutes, because salvage compared every cut path with every earlier cut.
A group file is worse: every store of the group meets its errors again, so its size is
charged once per store; the last tests bound what each store spends on them.
Speed belongs to benchmarks, so these tests do not time anything: they count the
steps a whole validation takes (Python calls, and lines run in posnet's own code,
through `sys.settrace`)
for a file with n, 2n and 4n bad parts. Linear work adds twice as many calls for the
second doubling as for the first; quadratic work adds four times as many.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from generator.analyze import analyze
from generator.errors import Diagnostic, PosnetError, format_text
from generator.spec import diagnose
from generator.spec.diagnose import SHARED_SHOWN
from generator.spec.load import SHARED_VALUES
from tests.treeutil import posnet

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo-fleet"
SIZES = (300, 600, 1200)


def _calls(work: Callable[[], object]) -> int:
    """How many steps `work` takes: every Python call and generator resumption, and
    every line run in posnet's own code (a quadratic plain loop makes no calls)."""
    count = 0
    ours = str(ROOT / "generator")

    def line(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return line

    def call(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return line if frame.f_code.co_filename.startswith(ours) else None

    sys.settrace(call)
    try:
        work()
    finally:
        sys.settrace(None)
    return count


def _validate_counted(root: Path, site: str, text: str) -> tuple[int, int]:
    """Calls made to validate (one process, no cache) and print the store; errors seen."""
    (root / "sites" / f"{site}.yaml").write_text(text, encoding="utf-8")
    errors = 0

    def run() -> None:
        nonlocal errors
        diags = analyze(root, jobs=1).diagnostics
        format_text(diags)
        errors = sum(d.severity == "error" for d in diags)

    return _calls(run), errors


def _bad_lint_list(n: int) -> str:
    """One list with n elements of the wrong type (each one cut by salvage)."""
    values = ", ".join(["1"] * n)
    return f"id: big-01\nname: x\nlint: {{disable: [{values}]}}\n"


def _bad_hosts(n: int) -> str:
    """n hosts, every other one of the wrong type (cut), the rest in the DHCP pool
    (each a problem checked against every cut)."""
    hosts = []
    for i in range(n):
        mac = "12" if i % 2 else f'"52:54:00:00:{i // 256:02x}:{i % 256:02x}"'
        hosts.append(f'  - {{name: h{i}, role: pos, ip: "198.51.100.{100 + i % 100}", mac: {mac}}}')
    return (
        "id: big-01\nname: x\n"
        "wan: {isp: X, ip_mode: static, public_ip: 203.0.113.9}\n"
        'lan: {subnet: "198.51.100.0/24", gateway: "198.51.100.1",\n'
        '      dhcp_pool: {start: "198.51.100.50", end: "198.51.100.250"}}\n'
        "hosts:\n" + "\n".join(hosts) + "\n"
    )


def _one_long_line(n: int) -> str:
    """n services on one line, most of them duplicates: every error's snippet shows
    (and masks) that same long line."""
    services = ", ".join(f"{{name: s{i % 7}, port: {1000 + i}, tls: false}}" for i in range(n))
    return (
        "id: big-01\nname: x\n"
        "wan: {isp: X, ip_mode: static, public_ip: 203.0.113.9}\n"
        'lan: {subnet: "198.51.100.0/24", gateway: "198.51.100.1"}\n'
        "hosts:\n"
        f'  - {{name: h, role: pos, ip: "198.51.100.10", mac: "52:54:00:00:00:01", '
        f"services: [{services}]}}\n"
    )


@pytest.mark.parametrize(
    "shape",
    [_bad_lint_list, _bad_hosts, _one_long_line],
    ids=["lint-list", "hosts", "one-long-line"],
)
def test_validation_work_grows_linearly_with_the_bad_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: Callable[[int], str]
) -> None:
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    _validate_counted(root, "big-01", shape(SIZES[0]))  # first-use work: imports, caches
    counted = [_validate_counted(root, "big-01", shape(n)) for n in SIZES]
    calls = [c for c, _ in counted]
    errors = [e for _, e in counted]
    # Every bad part is reported (so the work measured is the real work)...
    assert all(e >= n // 2 for e, n in zip(errors, SIZES, strict=True)), errors
    assert errors[1] >= 2 * errors[0] - 10 and errors[2] >= 2 * errors[1] - 10, errors
    # ...and the second doubling adds twice what the first added (linear), not four
    # times (quadratic): a slack of 2.5 leaves room for sorting's n log n.
    first, second = calls[1] - calls[0], calls[2] - calls[1]
    assert second < 2.5 * first, (calls, errors)


# ------------------------------------------------------------- shared files, per store


def _coast_fleet(tmp_path: Path, bad_keys: int, members: int) -> Path:
    """The demo fleet with `bad_keys` unknown keys in groups/coast.yaml's defaults (one
    value each, plus wan.isp: two) and `members` more stores in that group."""
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    bad = "".join(f"  bad{i}: 1\n" for i in range(bad_keys))
    (root / "groups/coast.yaml").write_text(
        f"group: coast\ndefaults:\n  wan:\n    isp: Telenet\n{bad}", encoding="utf-8"
    )
    store = (root / "sites/ostend-05.yaml").read_text(encoding="utf-8")
    for i in range(members):
        text = store.replace("id: ostend-05", f"id: coast-{i:03d}")
        (root / "sites" / f"coast-{i:03d}.yaml").write_text(text, encoding="utf-8")
    return root


def _group_diags(root: Path) -> list[Diagnostic]:
    return [d for d in analyze(root, jobs=1).diagnostics if d.location.file.endswith("coast.yaml")]


def test_a_store_explains_only_the_first_errors_of_a_shared_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 unknown keys in a group file of 31 stores: each store explains (locates,
    words, suggests a key for) at most SHARED_SHOWN of them, and the report shows those
    once, then one line saying more are not shown. Explaining all of them in every store
    cost hours for a 4 MiB group file in a fleet of thousands."""
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    root = _coast_fleet(tmp_path, bad_keys=300, members=30)
    explained = 0
    real = diagnose._error_diagnostic

    def counting(*args: Any) -> Diagnostic:
        nonlocal explained
        explained += 1
        return real(*args)

    monkeypatch.setattr(diagnose, "_error_diagnostic", counting)
    found = _group_diags(root)
    members = 31  # ostend-05 and the 30 copies
    assert explained <= members * (SHARED_SHOWN + 5), explained
    unknown = [d for d in found if d.message.startswith("unknown key 'bad")]
    assert len(unknown) == SHARED_SHOWN == len({d.location for d in unknown}), found
    more = [d for d in found if "more errors in this file are not shown" in d.message]
    assert len(more) == 1 and not more[0].site, found
    assert (more[0].location.line, more[0].location.col) == (2, 1)  # at `defaults:`


@pytest.mark.parametrize("values", [SHARED_VALUES, SHARED_VALUES + 1])
def test_shared_defaults_past_their_budget_are_refused_once_where_they_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: int
) -> None:
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    root = _coast_fleet(tmp_path, bad_keys=values - 2, members=3)
    refused = [d for d in _group_diags(root) if d.message.startswith("defaults hold")]
    if values <= SHARED_VALUES:
        assert refused == []
        return
    (diag,) = refused
    assert diag.message.startswith(f"defaults hold {values} values")
    assert (diag.location.line, diag.path) == (2, "defaults")
    assert f"at most {SHARED_VALUES} values" in diag.expected
    # Its stores are still checked, without those defaults: a store's own problem is
    # reported, and nothing it "misses" from the refused defaults is.
    store = root / "sites/coast-000.yaml"
    store.write_text(store.read_text().replace("id: coast-000", "id: coast-000\nbogus: 1"))
    found = analyze(root, jobs=1).diagnostics
    own = [d for d in found if d.location.file.endswith("coast-000.yaml")]
    assert [d.message for d in own] == ["unknown key 'bogus'"], own
    assert not [d for d in found if "missing required key" in d.message], found


def test_fleet_defaults_past_their_budget_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    fleet = (root / "fleet.yaml").read_text(encoding="utf-8")
    extra = "".join(f"        - 192.0.2.{i % 250}/32\n" for i in range(SHARED_VALUES))
    fleet = fleet.replace('      allow_from: ["192.0.2.64/28"]\n', f"      allow_from:\n{extra}")
    (root / "fleet.yaml").write_text(fleet, encoding="utf-8")
    with pytest.raises(PosnetError) as caught:
        analyze(root, jobs=1)
    (diag,) = caught.value.diagnostics
    assert diag.location.file.endswith("fleet.yaml") and diag.path == "defaults"
    assert diag.message.startswith("defaults hold")


# ------------------------------------------------------------ a big store that is valid


def _big_store(
    demo: str, n: int, public_ip: str, pool: tuple[str, str], *more: tuple[str, str]
) -> str:
    """A demo store renamed big-01 (its public IP 203.0.113.99), moved to a /16 LAN
    (its DHCP pool, from `pool`, 10.20.200.1-200), with n more POS hosts p0..."""
    text = (DEMO / "sites" / f"{demo}.yaml").read_text(encoding="utf-8")
    for old, new in [
        (f"id: {demo}", "id: big-01"),
        (f"fqdn: {demo}", "fqdn: big-01"),
        ('subnet: "198.51.100.128/26"', 'subnet: "10.20.0.0/16"'),
        ('gateway: "198.51.100.129"', 'gateway: "10.20.255.254"'),
        ('ip: "198.51.100.140"', 'ip: "10.20.250.2"'),
        ('ip: "198.51.100.141"', 'ip: "10.20.250.3"'),
        (public_ip, "203.0.113.99"),
        (f'start: "{pool[0]}"', 'start: "10.20.200.1"'),
        (f'end: "{pool[1]}"', 'end: "10.20.200.200"'),
        *more,
    ]:
        assert old in text, old
        text = text.replace(old, new)
    hosts = "".join(
        f'  - name: p{i}\n    role: pos\n    ip: "10.20.{i // 200}.{10 + i % 200}"\n'
        f'    mac: "52:54:00:01:{i // 256:02x}:{i % 256:02x}"\n'
        "    services:\n      - {name: api, port: 8443, tls: true}\n"
        for i in range(n)
    )
    return text.replace("hosts:\n", "hosts:\n" + hosts, 1)


def _many_routes(n: int) -> str:
    """brussels-03 with n more POS hosts, each behind its own proxy route."""
    text = _big_store(
        "brussels-03",
        n,
        "203.0.113.30",
        ("198.51.100.170", "198.51.100.190"),
        ('ip: "198.51.100.130"', 'ip: "10.20.250.1"'),
    )
    routes = "".join(f"      - {{service: p{i}/api, path: /p{i}/}}\n" for i in range(n))
    return text.replace("    routes:\n", "    routes:\n" + routes)


def _many_integrations(n: int) -> str:
    """gent-01 with n more POS hosts, each forwarded by a direct integration of its own."""
    text = _big_store("gent-01", n, "203.0.113.10", ("198.51.100.150", "198.51.100.180"))
    integrations = "".join(
        f"  - partner: deliverect\n    pattern: direct\n    service: p{i}/api\n"
        f'    public_port: {20000 + i}\n    sources: ["198.51.100.0/28"]\n'
        for i in range(n)
    )
    return text.replace("integrations:\n", "integrations:\n" + integrations)


def _many_kiosks(n: int) -> str:
    """ostend-05 with n more kiosks in its outbound-only integration: each may reach
    each other's LAN HTTP port, so its Plan holds n flows of n sources."""
    text = (DEMO / "sites/ostend-05.yaml").read_text(encoding="utf-8")
    text = re.sub(r'ip: "198\.51\.100\.(\d+)"', r'ip: "10.30.250.\1"', text)
    for old, new in [
        ('subnet: "198.51.100.0/26"', 'subnet: "10.30.0.0/16"'),
        ('gateway: "198.51.100.1"', 'gateway: "10.30.255.254"'),
        (
            'start: "198.51.100.40", end: "198.51.100.60"',
            'start: "10.30.240.1", end: "10.30.240.9"',
        ),
        (
            "hosts: [tablet1, touch2]",
            "hosts: [tablet1, touch2" + "".join(f", k{i}" for i in range(n)) + "]",
        ),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    kiosks = "".join(
        f"  - name: k{i}\n    role: kiosk\n    os: other\n"
        f'    ip: "10.30.{i // 200}.{10 + i % 200}"\n'
        for i in range(n)
    )
    return text.replace("hosts:\n", "hosts:\n" + kiosks, 1)


@pytest.mark.parametrize(
    ("shape", "store", "file", "last", "sizes", "growth"),
    [
        (
            _many_routes,
            "big-01",
            "proxy/deliverect-proxy.nginx.conf",
            "location /p{n}/",
            (300, 600, 1200),
            2.5,
        ),
        (
            _many_integrations,
            "big-01",
            "HANDOVER.md",
            "Requests to port 2{n:04d} ",
            (300, 600, 1200),
            2.5,
        ),
        # n flows of n sources: quadratic by design, but was cubic (each source looked
        # its host up among all hosts, in the sheet and the topology)
        (_many_kiosks, "ostend-05", "HANDOVER.md", "k{n} (10.30.", (50, 100, 200), 4.5),
    ],
    ids=["routes", "integrations", "kiosks"],
)
def test_rendering_a_valid_store_grows_linearly_with_its_size(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shape: Callable[[int], str],
    store: str,
    file: str,
    last: str,
    sizes: tuple[int, int, int],
    growth: float,
) -> None:
    """Nothing caps a store's hosts, routes or integrations. Every route looked its
    service up by scanning the hosts and its path up among the proxy's other paths
    (4,000 routes: 20 million steps); every partner brief listed every exposure of its
    partner, and every firewall set name was checked against all earlier ones. The
    second doubling may cost `growth` times the first: 2 is linear, 4 quadratic."""
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)

    def render(n: int) -> int:
        (root / "sites" / f"{store}.yaml").write_text(shape(n), encoding="utf-8")
        out = tmp_path / f"build-{n}-{len(list(tmp_path.iterdir()))}"  # a fresh tree
        result: list[int] = []
        args = ("render", root, "-o", out, "--jobs", "1")
        calls = _calls(lambda: result.append(posnet(*args).returncode))
        assert result == [0]
        assert last.format(n=n - 1) in (out / "sites" / store / file).read_text()
        return calls

    render(sizes[0])  # first-use work
    calls = [render(n) for n in sizes]
    first, second = calls[1] - calls[0], calls[2] - calls[1]
    assert second < growth * first, calls


def test_the_help_and_the_readme_state_the_limits_the_code_enforces() -> None:
    """The numbers a user reads are the numbers in force (a limit changed in code but
    not in the text fails here)."""
    from click.testing import CliRunner

    from generator.cli import cli
    from generator.yamlload import NODE_BUDGET

    shown = CliRunner().invoke(cli, ["validate", "--help"], terminal_width=200).output
    assert f"the first {SHARED_SHOWN} validation errors" in " ".join(shown.split())
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"the first {SHARED_SHOWN} validation errors of each shared file" in readme
    assert f"may hold at most {SHARED_VALUES} values" in readme
    assert f"at most {NODE_BUDGET:,} values after aliases are expanded" in readme


@pytest.mark.parametrize("command", ["report", "diff"])
@pytest.mark.parametrize(
    "shape", [_many_routes, _many_integrations], ids=["routes", "integrations"]
)
def test_report_and_diff_of_a_big_store_grow_linearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, shape: Callable[[int], str]
) -> None:
    """The HTML report (diagram, sheet, files) and `posnet diff` against the demo fleet
    read the same Plans as render: a store of n routes or integrations costs them
    linear work too."""
    monkeypatch.setenv("POSNET_CACHE_DIR", "off")

    def run(n: int) -> int:
        base = tmp_path / f"{n}-{len(list(tmp_path.iterdir()))}"
        root, out = base / "fleet", base / "build"
        shutil.copytree(DEMO, root)
        (root / "sites/big-01.yaml").write_text(shape(n), encoding="utf-8")
        assert posnet("render", root, "-o", out, "--jobs", "1").returncode == 0
        args = (
            ("report", out, "-o", base / "report") if command == "report" else ("diff", DEMO, root)
        )
        result: list[int] = []
        calls = _calls(lambda: result.append(posnet(*args).returncode))
        assert result == [0]
        return calls

    sizes = (300, 600, 1200)
    run(sizes[0])  # first-use work
    calls = [run(n) for n in sizes]
    first, second = calls[1] - calls[0], calls[2] - calls[1]
    assert second < 2.5 * first, calls
