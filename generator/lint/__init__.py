"""Lint: advice from the vendor documents as small declarative rules over the Plan.

A rule has a stable id, a severity, a title and a one-line why (shown with every
finding, like Ruff's rule docs). Site rules see one Plan; fleet rules see all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from generator.plan import Plan
from generator.yamlload import YamlPath

Severity = Literal["error", "warning", "info"]


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
    fleet_check: Callable[[Sequence[Plan], LintContext], Iterable[Finding]] | None = None


@dataclass(frozen=True)
class RuleFinding:
    rule: Rule
    finding: Finding


def all_rules() -> tuple[Rule, ...]:
    from generator.lint.fleet_rules import FLEET_RULES
    from generator.lint.site_rules import SITE_RULES
    from generator.lint.wide_open import WIDE_OPEN_RULES

    return (*SITE_RULES, *WIDE_OPEN_RULES, *FLEET_RULES)


def run(
    plans: Sequence[Plan], disabled: Iterable[str] = (), ctx: LintContext | None = None
) -> list[RuleFinding]:
    ctx = ctx or LintContext()
    off = set(disabled)
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
            enabled = [p for p in plans if rule.id not in p.lint_disable]
            for finding in rule.fleet_check(enabled, ctx):
                out.append(RuleFinding(rule, finding))
    return out
