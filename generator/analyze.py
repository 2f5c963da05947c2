"""Validation plus lint for a fleet: the one entry point the CLI commands share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator import lint
from generator.errors import Diagnostic, Location, unique_sorted
from generator.pipeline import plans as make_plans
from generator.plan import Plan
from generator.spec.load import Fleet, load_fleet
from generator.spec.locate import locate


@dataclass
class Analysis:
    fleet: Fleet
    plans: list[Plan]
    diagnostics: list[Diagnostic]

    @property
    def digests(self) -> dict[str, str]:
        return {ls.site.id: ls.digest for ls in self.fleet.sites}

    def failed(self, strict: bool = False) -> bool:
        bad = {"error", "warning"} if strict else {"error"}
        return any(d.severity in bad for d in self.diagnostics)


def _unknown_rule_ids(fleet: Fleet) -> list[Diagnostic]:
    known = {r.id for r in lint.all_rules()}
    out = []
    for ls in fleet.sites:
        for i, rid in enumerate(ls.site.lint.disable):
            if rid not in known:
                loc, shown = ls.locate(("lint", "disable", i))
                out.append(
                    Diagnostic(
                        loc,
                        "E102",
                        f"unknown lint rule '{rid}'",
                        path=shown,
                        expected="an id from `posnet rules`",
                        site=ls.site.id,
                    )
                )
    return out


def enclosing_fleet(path: Path) -> Path | None:
    """A site file inside <fleet>/sites/ is validated with its fleet's defaults."""
    if path.is_file() and path.parent.name == "sites":
        root = path.parent.parent
        if (root / "fleet.yaml").is_file():
            return root
    return None


def analyze(path: Path) -> Analysis:
    root = enclosing_fleet(path)
    if root is not None:
        whole = analyze(root)
        shown = str(root / "sites" / path.name)
        site_ids = {ls.site.id for ls in whole.fleet.sites if ls.file == shown}
        keep = [
            d
            for d in whole.diagnostics
            if d.location.file == shown
            or d.site in site_ids
            or not d.location.file.startswith(str(root / "sites"))
        ]
        return Analysis(whole.fleet, whole.plans, keep)
    fleet = load_fleet(path)
    diags = list(fleet.diagnostics) + _unknown_rule_ids(fleet)
    plans = make_plans(fleet) if fleet.sites else []
    by_id = {ls.site.id: ls for ls in fleet.sites}
    ctx = lint.LintContext(tunnel_limit=fleet.settings.tunnel_rollout_limit)
    for rf in lint.run(plans, fleet.settings.lint.disable, ctx):
        ls = by_id[rf.finding.site]
        loc, shown = locate(ls.layers, rf.finding.path)
        diags.append(
            Diagnostic(
                loc if isinstance(loc, Location) else Location(ls.file),
                rf.rule.id,
                rf.finding.message,
                severity=rf.rule.severity,
                path=shown,
                site=rf.finding.site,
                why=rf.rule.why,
            )
        )
    return Analysis(fleet, plans, unique_sorted(diags))
