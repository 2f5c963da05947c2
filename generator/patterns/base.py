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
class Output:
    """One name an integration's files are written under (see Pattern.outputs)."""

    name: str  # "proxy deliverect-proxy": the kind and the id its targets name files by
    key: tuple[str | int, ...]  # where, inside the integration, the name comes from
    expected: str  # what to do instead when two integrations share it


def _no_outputs(integ: Any) -> tuple[Output, ...]:
    return ()


@dataclass(frozen=True)
class Listener:
    """A TCP port a server the integration configures binds on a LAN host."""

    host: str
    port: int
    server: str  # the software: "nginx", "apache"
    key: tuple[str | int, ...]  # where, inside the integration, the port comes from
    # the host names it answers to: nginx picks a file's server by name, so two proxies
    # sharing a port need names of their own (nginx ignores the second of two)
    names: tuple[str, ...] = ()
    names_key: tuple[str | int, ...] = ()  # where the names come from (else `key`)


def _no_listeners(site: Site, integ: Any) -> tuple[Listener, ...]:
    return ()


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
    #: The names the integration's own files are written under ("proxy deliverect-proxy",
    #: "device ppaas-pos1"): each is the id that resolve gives a ProxyPlan, WindowsBinding
    #: or DeviceConfig, and a target names its file after that id. Two integrations of a
    #: store giving the same name would write the same file (the last one silently wins),
    #: so the checks refuse that (E213) before anything is rendered.
    outputs: Callable[[I], tuple[Output, ...]] = _no_outputs
    #: The ports the servers the integration configures listen on (a proxy's listen
    #: port): one host:port taken by two of them, or by one and a service of the host,
    #: cannot be bound by both, so the checks refuse that (E214).
    listeners: Callable[[Site, I], tuple[Listener, ...]] = _no_listeners
