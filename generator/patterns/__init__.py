"""Integration patterns: one module each (generator/patterns/<name>.py), in a registry.

Each module exports `PATTERN` (generator.patterns.base.Pattern): the integration model,
its catalog parameters, its reference checks and its resolve step. Every pattern name the
spec accepts has exactly one module (checked at import); `register()` adds one at run
time (an embedding program, a test).
"""

from __future__ import annotations

import importlib
from typing import Any, get_args

from generator.patterns.base import Pattern

_REGISTRY: dict[str, Pattern[Any]] = {}


class PatternError(RuntimeError):
    """A pattern that is missing, registered twice, or given the wrong model."""


def _load() -> None:
    """Import the built-in modules once, on first use: generator.spec.model imports the
    pattern modules' integration models, so this package must not import it eagerly."""
    if _REGISTRY:
        return
    from generator.spec.model import Integration

    for name in builtin():
        pat: Pattern[Any] = importlib.import_module(f"generator.patterns.{name}").PATTERN
        if pat.name != name:
            raise PatternError(f"generator.patterns.{name} declares pattern {pat.name!r}")
        _REGISTRY[name] = pat
    models = set(get_args(get_args(Integration)[0]))
    if models != {p.model for p in _REGISTRY.values()}:
        raise PatternError("the spec's integration models and the pattern modules differ")


def builtin() -> tuple[str, ...]:
    """The pattern names the spec accepts; each has a module of the same name."""
    from generator.spec.model import PatternName

    return tuple(get_args(PatternName))


def patterns() -> dict[str, Pattern[Any]]:
    _load()
    return dict(_REGISTRY)


def register(pattern: Pattern[Any]) -> None:
    _load()
    if pattern.name in _REGISTRY:
        raise PatternError(f"pattern {pattern.name!r} is already registered")
    _REGISTRY[pattern.name] = pattern


def unregister(name: str) -> None:
    if name in builtin():
        raise PatternError(f"pattern {name!r} is built in")
    _REGISTRY.pop(name, None)


def pattern_of(integ: Any) -> Pattern[Any]:
    """The pattern that owns one integration; no fallback, no getattr dispatch."""
    _load()
    pat = _REGISTRY.get(integ.pattern)
    if pat is None:
        raise PatternError(f"no pattern module for {integ.pattern!r}")
    if not isinstance(integ, pat.model):
        raise PatternError(
            f"pattern {pat.name!r} expects {pat.model.__name__}, got {type(integ).__name__}"
        )
    return pat
