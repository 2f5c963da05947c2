"""A hostile store file costs work in proportion to its size, never to its square.

A pull request can hold one store file with 150,000 bad list elements: validating it
once took ten minutes, because salvage compared every cut path with every earlier cut.
Speed belongs to benchmarks, so these tests do not time anything: they count the
Python calls (and generator steps) a whole validation makes, through `sys.setprofile`,
for a file with n, 2n and 4n bad parts. Linear work adds twice as many calls for the
second doubling as for the first; quadratic work adds four times as many.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from generator.analyze import analyze
from generator.errors import format_text

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo-fleet"
SIZES = (300, 600, 1200)


def _calls(work: Callable[[], object]) -> int:
    """How many Python calls and generator resumptions `work` makes."""
    count = 0

    def tick(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        count += 1

    sys.setprofile(tick)
    try:
        work()
    finally:
        sys.setprofile(None)
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
