"""Sources so wide that an allow-list no longer restricts anything."""

from __future__ import annotations

from collections.abc import Iterator

from generator.lint import Rule
from generator.netparse import ip_network
from generator.plan import Plan
from generator.yamlload import YamlPath

MIN_PREFIX = 8  # a /8 is 16 million addresses already; anything wider is "anyone"


def _wide(cidr: str) -> bool:
    try:
        return ip_network(cidr).prefixlen < MIN_PREFIX
    except ValueError:
        return False


def wide_open_sources(plan: Plan) -> Iterator[tuple[YamlPath, str]]:
    for e in plan.exposures:
        for cidr in e.sources:
            if _wide(cidr):
                where: YamlPath = ("integrations", e.integration) if e.integration >= 0 else ()
                yield (
                    where or ("integrations",),
                    f"public port {e.public_port} allows {e.partner} source {cidr}: "
                    "practically the whole internet",
                )
    for i, cidr in enumerate(plan.management.allow_from):
        if _wide(cidr):
            yield (
                ("edge", "management", "allow_from", i),
                f"management port {plan.management.port} is open to {cidr}: "
                "practically the whole internet",
            )


WIDE_OPEN_RULES = (
    Rule(
        "PN112",
        "warning",
        "wide-open-source",
        "An allow-list entry shorter than /8 (0.0.0.0/0 above all) admits most of the "
        "internet: the partner port or the edge's SSH is as open as without a list.",
        check=wide_open_sources,
    ),
)
