"""Shared fixtures: the demo fleet's plans, real-tool lookup, golden refresh flag."""

from __future__ import annotations

import importlib.util
import os
import shutil
import types
from pathlib import Path

import pytest

from generator.pipeline import load_plans
from generator.plan import Plan

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo-fleet"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden from the current renderers (review the diff!)",
    )


@pytest.fixture(scope="session")
def demo_plans() -> dict[str, Plan]:
    fleet, plans = load_plans(DEMO)
    assert fleet.ok, fleet.diagnostics
    return {p.site_id: p for p in plans}


def require_tool(name: str) -> str:
    """Path of a real program; under CI a missing tool fails instead of skipping."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if path is None:
        msg = f"{name} is not installed (make test installs it)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def load_playbook_plugin(folder: str, name: str) -> types.ModuleType:
    """A module of playbooks/ (library, filter_plugins, lookup_plugins), loaded as
    Ansible loads it: from its file, not as a package import."""
    path = ROOT / "playbooks" / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_plugin", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
