"""Golden files for every target over every demo store.

A renderer change shows up here as a reviewable diff. Refresh deliberately with
`make golden` (pytest --update-golden), then read the diff and say in the commit
message why each new output is right. Never refreshed silently.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from generator.build import fleet_files
from generator.plan import Plan
from generator.targets import render_site

GOLDEN = Path(__file__).parent / "golden"


def _compare(expected_dir: Path, files: dict[str, str], update: bool) -> list[str]:
    problems = []
    if update:
        if expected_dir.exists():
            for old in expected_dir.rglob("*"):
                if old.is_file() and str(old.relative_to(expected_dir)) not in files:
                    old.unlink()
        for rel, text in files.items():
            p = expected_dir / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        return []
    on_disk = (
        {str(p.relative_to(expected_dir)) for p in expected_dir.rglob("*") if p.is_file()}
        if expected_dir.exists()
        else set()
    )
    for rel in sorted(on_disk - set(files)):
        problems.append(f"{rel}: golden exists but the target no longer renders it")
    for rel, text in sorted(files.items()):
        p = expected_dir / rel
        if not p.exists():
            problems.append(f"{rel}: no golden file (run `make golden` and review)")
            continue
        with open(p, encoding="utf-8", newline="") as fh:
            want = fh.read()
        if want != text:
            diff = "".join(
                difflib.unified_diff(
                    want.splitlines(True), text.splitlines(True), f"golden/{rel}", f"now/{rel}"
                )
            )
            problems.append(f"{rel} differs:\n{diff[:3000]}")
    return problems


@pytest.mark.parametrize(
    "site",
    ["antwerp-02", "bruges-06", "brussels-03", "gent-01", "leuven-04", "mechelen-hq", "ostend-05"],
)
def test_site_golden(
    site: str, demo_plans: dict[str, Plan], request: pytest.FixtureRequest
) -> None:
    update = bool(request.config.getoption("--update-golden"))
    problems = _compare(GOLDEN / "sites" / site, render_site(demo_plans[site]), update)
    assert not problems, "\n".join(problems)


def test_inventory_golden(demo_plans: dict[str, Plan], request: pytest.FixtureRequest) -> None:
    update = bool(request.config.getoption("--update-golden"))
    plans = [demo_plans[k] for k in sorted(demo_plans)]
    files = {k: v for k, v in fleet_files(plans).items() if k.startswith("inventory/")}
    problems = _compare(GOLDEN / "fleet", files, update)
    assert not problems, "\n".join(problems)


def test_every_target_has_golden_coverage(demo_plans: dict[str, Plan]) -> None:
    """Each target module renders something for at least one demo store."""
    from generator.targets import TARGET_MODULES, modules

    for name, mod in zip(TARGET_MODULES, modules(), strict=True):
        produced = [p for plan in demo_plans.values() for p in mod.render(plan)]
        assert produced, f"target {name} renders nothing for the demo fleet"
