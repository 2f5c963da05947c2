"""What an integration pattern is: one module that the registry finds.

A pattern names its integration model (the `integrations:` entry of a store), its
catalog parameters (a sub-model: the partner says `<pattern>: {...}`), its reference
checks against the store, and its resolve step over the shared Context, which also
writes the partner's handover brief (endpoints to share).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from generator.patterns.context import Context

if TYPE_CHECKING:
    from generator.catalog import Partner
    from generator.spec.checks import Problem
    from generator.spec.model import Site
    from generator.yamlload import YamlPath

I = TypeVar("I", bound=BaseModel)  # noqa: E741 - the integration model


def _no_checks(site: Site, integ: Any, partner: Partner, base: YamlPath) -> Iterator[Problem]:
    return iter(())


@dataclass(frozen=True)
class Pattern(Generic[I]):
    """One integration pattern. `params` is None when the catalog has nothing for it."""

    name: str
    model: type[I]
    resolve: Callable[[Context, I, Partner], None]
    check: Callable[[Site, I, Partner, YamlPath], Iterator[Problem]] = _no_checks
    params: type[BaseModel] | None = None
    doc: str = ""
    #: Whether the partner connects in from the internet. A store whose patterns all say
    #: False (the store dials out, or the traffic stays on the LAN) needs no public
    #: address, no FQDN and no DDNS: behind carrier NAT it still works.
    inbound: bool = True
