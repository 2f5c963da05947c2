"""Lint: advice from the vendor documents as small declarative rules over the Plan.

A rule has a stable id, a severity, a title and a one-line why (shown with every
finding, like Ruff's rule docs), and its documentation in generator/lint/docs/<ID>.md:
an explanation, a bad and a good example (`posnet rules --explain ID`). Its pass/fail
fixtures live in tests/lint_fixtures/<ID>.yaml. Site rules see one Plan; fleet rules
see every store's view and the context, and nothing else: the site cache keeps their
findings for the views and context they were made from (analyze._lint). Rules match
typed Plan fields (device file kind, LAN flow kind, secret kind, owning integration),
never ids or wording built elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from generator.fleet_view import FleetView
from generator.plan import Plan
from generator.plan_list import views_of
from generator.yamlload import YamlPath

__all__ = ["Finding", "FleetView", "LintContext", "Rule", "RuleFinding", "all_rules", "run"]

Severity = Literal["error", "warning", "info"]
DOCS = Path(__file__).with_name("docs")


@dataclass(frozen=True)
class Finding:
    site: str
    path: YamlPath  # where in that site's spec the reviewer should look
    message: str


@dataclass(frozen=True)
class LintContext:
    tunnel_limit: int = 5


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    why: str
    check: Callable[[Plan], Iterable[tuple[YamlPath, str]]] | None = None
    fleet_check: Callable[[Sequence[FleetView], LintContext], Iterable[Finding]] | None = None

    def doc(self) -> str:
        """The rule's documentation (explanation, bad and good example)."""
        return (DOCS / f"{self.id}.md").read_text(encoding="utf-8")


@dataclass(frozen=True)
class RuleFinding:
    rule: Rule
    finding: Finding


def all_rules() -> tuple[Rule, ...]:
    from generator.lint.fleet_rules import FLEET_RULES
    from generator.lint.site_rules import SITE_RULES
    from generator.lint.wide_open import WIDE_OPEN_RULES

    return (*SITE_RULES, *WIDE_OPEN_RULES, *FLEET_RULES)


def rule(rule_id: str) -> Rule | None:
    return next((r for r in all_rules() if r.id == rule_id.upper()), None)


def site_findings(plan: Plan, disabled: Iterable[str] = ()) -> list[tuple[str, YamlPath, str]]:
    """One store's site-rule findings as (rule id, path, message), the form the site
    cache keeps them in: rules in `disabled` (fleet.yaml) or the store's own
    lint.disable give none."""
    off = set(disabled) | set(plan.lint_disable)
    return [
        (rule.id, path, message)
        for rule in all_rules()
        if rule.check is not None and rule.id not in off
        for path, message in rule.check(plan)
    ]


def run(
    plans: Sequence[Plan], disabled: Iterable[str] = (), ctx: LintContext | None = None
) -> list[RuleFinding]:
    ctx = ctx or LintContext()
    off = set(disabled)
    views = views_of(plans)
    out: list[RuleFinding] = []
    for rule in all_rules():
        if rule.id in off:
            continue
        if rule.check is not None:
            for plan in plans:
                if rule.id in plan.lint_disable:
                    continue
                for path, msg in rule.check(plan):
                    out.append(RuleFinding(rule, Finding(plan.site_id, path, msg)))
        if rule.fleet_check is not None:
            enabled = [v for v in views if rule.id not in v.lint_disable]
            for finding in rule.fleet_check(enabled, ctx):
                out.append(RuleFinding(rule, finding))
    return out
