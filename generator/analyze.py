"""Validation plus lint for a fleet: the one entry point the CLI commands share."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from generator import lint
from generator.errors import Diagnostic, Location, unique_sorted
from generator.fleet_layout import enclosing_fleet
from generator.pipeline import paused_gc
from generator.pipeline import plans as make_plans
from generator.plan_list import Plans, views_key, views_of
from generator.spec.diagnose import unknown_rule
from generator.spec.load import Fleet, load_fleet
from generator.spec.locate import locate


@dataclass
class Analysis:
    fleet: Fleet
    plans: Plans
    diagnostics: list[Diagnostic]
    checked: int = -1  # stores the user asked about; -1: every site file of the fleet

    @property
    def stores(self) -> int:
        """How many stores were checked (valid or not), as the summary counts them."""
        return self.fleet.checked if self.checked < 0 else self.checked

    @property
    def digests(self) -> dict[str, str]:
        return {ls.id: ls.digest for ls in self.fleet.sites}

    def failed(self, strict: bool = False) -> bool:
        bad = {"error", "warning"} if strict else {"error"}
        return any(d.severity in bad for d in self.diagnostics)


def _unknown_rule_ids(fleet: Fleet) -> list[Diagnostic]:
    """lint.disable naming a rule posnet does not have disables nothing: in a store and
    in fleet.yaml's own lint settings alike. One a store inherits from shared defaults
    is reported once, at that file, by the loader (diagnose.defaults_diagnostics)."""
    known = {r.id for r in lint.all_rules()}
    out = []
    if fleet.layer is not None:
        for i, rid in enumerate(fleet.settings.lint.disable):
            if rid not in known:
                out.append(unknown_rule(rid, locate([fleet.layer], ("lint", "disable", i))))
    for ls in fleet.sites:
        for i, rid in enumerate(ls.facts.lint_disable):
            if rid not in known:
                where = ls.locate(("lint", "disable", i))
                if where[0].file == ls.file:
                    out.append(unknown_rule(rid, where, ls.id))
    return out


def _lint(fleet: Fleet, plans: Plans) -> list[lint.RuleFinding]:
    """lint.run() over the fleet, except that a store's own findings (site rules) come
    from the cache while its Plan does (they follow from the Plan alone), and the fleet
    rules read each store's view, never its whole Plan; their findings come from the
    cache's memo while no view changed (a display name edit changes none)."""
    ctx = lint.LintContext(tunnel_limit=fleet.settings.tunnel_rollout_limit)
    if fleet.cache is None:
        return lint.run(plans, fleet.settings.lint.disable, ctx)
    off = set(fleet.settings.lint.disable)
    rules = {r.id: r for r in lint.all_rules() if r.id not in off}
    out: list[lint.RuleFinding] = []
    for i, ls in enumerate(fleet.sites):
        found = fleet.cache.lint(ls)
        if found is None:
            found = lint.site_findings(plans[i], off)
            fleet.cache.remember_lint(ls, found)
        out.extend(lint.RuleFinding(rules[r], lint.Finding(ls.id, p, m)) for r, p, m in found)
    checks = {r.id: r.fleet_check for r in rules.values() if r.fleet_check is not None}
    # The fleet rules follow from the views, the rules enabled and the context alone
    key = hashlib.sha256(f"{views_key(plans)}\0{sorted(checks)}\0{ctx!r}".encode()).hexdigest()
    kept = fleet.cache.recall("fleet-rules", key)
    if not _findings_of(kept, checks):
        views = views_of(plans)
        kept = [
            (rid, f)
            for rid, check in checks.items()
            for f in check([v for v in views if rid not in v.lint_disable], ctx)
        ]
        fleet.cache.keep("fleet-rules", key, kept)
    assert isinstance(kept, list)
    out.extend(lint.RuleFinding(rules[rid], f) for rid, f in kept)
    return out


def _findings_of(kept: object, rules: Mapping[str, object]) -> bool:
    """Whether the memo's fleet-rule findings have their shape (a damaged one is
    recomputed)."""
    return isinstance(kept, list) and all(
        isinstance(k, tuple) and len(k) == 2 and k[0] in rules and isinstance(k[1], lint.Finding)
        for k in kept
    )


def analyze(path: Path, jobs: int = 0) -> Analysis:
    """Load, validate and lint PATH; `jobs`: worker processes (0: one per core)."""
    with paused_gc():
        return _analyze(path, jobs)


def _analyze(path: Path, jobs: int) -> Analysis:
    root = enclosing_fleet(path)
    if root is not None:
        whole = _analyze(root, jobs)
        shown = str(root / "sites" / path.name)
        site_ids = {ls.id for ls in whole.fleet.sites if ls.file == shown}
        keep = [
            d
            for d in whole.diagnostics
            if d.location.file == shown
            or d.site in site_ids
            or not d.location.file.startswith(str(root / "sites") + "/")
        ]
        return Analysis(whole.fleet, whole.plans, keep, checked=1)
    fleet = load_fleet(path, cached=True, jobs=jobs)
    diags = list(fleet.diagnostics) + _unknown_rule_ids(fleet)
    plans = make_plans(fleet, jobs) if fleet.sites else Plans([], [], [])
    by_id = {ls.id: ls for ls in fleet.sites}
    for rf in _lint(fleet, plans):
        ls = by_id[rf.finding.site]
        loc, shown = ls.locate(rf.finding.path)
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
    found = unique_sorted(diags)
    if fleet.cache is not None:
        fleet.cache.keep_lines(found)
        fleet.cache.save(fleet.sites)
    return Analysis(fleet, plans, found)
