"""A target and a pattern added from outside the package, touching no file under generator/.

The toy target comes in through the `posnet.targets` entry-point group (a dist-info
folder on sys.path, as an installed plug-in would); the toy pattern through the public
pattern registry. Both render with the built-in ones.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from generator import patterns, targets
from generator.catalog import Partner
from generator.patterns.base import Pattern
from generator.patterns.context import Context
from generator.pipeline import load_plans
from generator.plan import LanFlow, Plan
from generator.resolve import resolve
from generator.targets.base import Artifact, Declared, Target
from tests.conftest import DEMO, ROOT

PLUGIN = """
from generator.targets.base import Artifact, Declared


def _render(plan):
    lines = [f"{b.partner} {b.pattern} {' '.join(b.endpoints)}" for b in plan.briefs]
    return {"toy/briefs.txt": "\\n".join(lines) + "\\n"}


def _files(plan):
    return (Artifact("toy/briefs.txt", "/etc/toy/briefs.txt", "toy"),)


TARGET = Declared("toy", "edge", lambda plan: bool(plan.briefs), _render, _files)
"""


def _tree_digest() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / "generator").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(ROOT)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def toy_plugin(tmp_path: Path) -> Iterator[None]:
    """An installed distribution `posnet-toy` whose entry point adds the toy target."""
    (tmp_path / "posnet_toy.py").write_text(PLUGIN)
    dist = tmp_path / "posnet_toy-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: posnet-toy\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[posnet.targets]\ntoy = posnet_toy:TARGET\n")
    sys.path.insert(0, str(tmp_path))
    targets.targets.cache_clear()
    targets.by_name.cache_clear()
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("posnet_toy", None)
        targets.targets.cache_clear()
        targets.by_name.cache_clear()


class ToyIntegration(BaseModel):
    pattern: str = "toy"
    partner: str
    host: str
    port: int


def _resolve_toy(ctx: Context, i: ToyIntegration, p: Partner) -> None:
    ip = ctx.hosts[i.host].ip
    ctx.add_flow(
        LanFlow(f"{i.partner}-{i.host}", i.partner, "toy", (f"{ip}/32",), ip, i.port, "tcp")
    )
    ctx.brief(i.partner, p, i.pattern, [f"tcp://{ip}:{i.port}"])


@pytest.fixture
def toy_pattern() -> Iterator[None]:
    patterns.register(Pattern("toy", ToyIntegration, _resolve_toy, doc="A toy pattern."))
    try:
        yield
    finally:
        patterns.unregister("toy")


def _toy_plan() -> Plan:
    fleet, _ = load_plans(DEMO)
    site = next(ls.site for ls in fleet.sites if ls.id == "gent-01")
    integ = ToyIntegration(partner="toyco", host="pos2", port=7000)
    site = site.model_copy(update={"integrations": [*site.integrations, integ]})
    partner = Partner.model_construct(
        title="Toy Co", patterns=["toy"], sources=[], egress=[], notes=["a toy"]
    )
    catalog = fleet.catalog.model_copy(
        update={"partners": {**fleet.catalog.partners, "toyco": partner}}
    )
    return resolve(site, catalog, {}, fleet.name)


def test_toy_target_and_pattern_render_without_touching_generator(
    toy_plugin: None, toy_pattern: None
) -> None:
    before = _tree_digest()
    toy = targets.by_name()["toy"]
    assert isinstance(toy, Target) and isinstance(toy, Declared)

    plan = _toy_plan()
    files = targets.render_site(plan)
    assert files["toy/briefs.txt"] == (
        "deliverect direct https://gent-01.pos.example.com:18443/\n"
        "toyco toy tcp://198.51.100.141:7000\n"
    )
    assert [f.purpose for f in plan.lan_flows if f.partner == "toyco"] == ["toy"]
    assert "Toy Co" in files["HANDOVER.md"]
    # the plug-in's artifact reaches the edge's inventory like a built-in one
    from generator.inventory import artifacts

    assert Artifact("toy/briefs.txt", "/etc/toy/briefs.txt", "toy") in artifacts(plan, "edge")
    assert _tree_digest() == before


def test_plugin_target_must_be_a_target(tmp_path: Path) -> None:
    (tmp_path / "posnet_bad.py").write_text("TARGET = object()\n")
    dist = tmp_path / "posnet_bad-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: posnet-bad\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[posnet.targets]\nbad = posnet_bad:TARGET\n")
    sys.path.insert(0, str(tmp_path))
    targets.targets.cache_clear()
    try:
        with pytest.raises(
            targets.TargetError, match=r"posnet\.targets:bad is not a posnet Target"
        ):
            targets.targets()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("posnet_bad", None)
        targets.targets.cache_clear()


def test_a_pattern_name_cannot_be_registered_twice() -> None:
    with pytest.raises(patterns.PatternError, match="'direct' is already registered"):
        patterns.register(patterns.patterns()["direct"])
