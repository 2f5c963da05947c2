"""Validation errors as diagnostics: pydantic's errors and the checks' Problems,
located in the file that wrote the value, with what was expected.

A problem in a shared file (fleet.yaml, a group file) is located there, so it is
reported once however many stores inherit it; its follow-ups in each store are dropped.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from generator.catalog import Catalog
from generator.errors import Diagnostic, Location
from generator.spec.checks import Problem, check_site
from generator.spec.locate import Layer, holds, key_text, locate
from generator.spec.model import LintConfig, ServiceRef, Site
from generator.spec.types import (
    Guid,
    Ident,
    InterfaceName,
    Note,
    ProfileName,
    Text,
    Thumbprint,
    UrlPath,
)
from generator.yamlload import V11_BOOLS, YamlPath, yaml11_reading

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "float_type": "a number",
}

_MAPPING_TYPES = frozenset({"dict_type", "model_type", "model_attributes_type"})


def _unwrap(tp: Any) -> list[Any]:
    """All concrete classes an annotation may hold (through Optional, list, Annotated)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [c for a in typing.get_args(tp) for c in _unwrap(a)]
    if origin in (list, tuple, dict):
        return [c for a in typing.get_args(tp) for c in _unwrap(a)]
    return [tp]


def _is_dict(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _is_dict(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_dict(a) for a in typing.get_args(tp))
    return origin is dict


def _model_at(root: type[BaseModel], data: Any, path: YamlPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path` (for 'did you mean')."""
    cls: type[BaseModel] | None = root
    cur = data
    in_dict = False  # the next part is a key of a dict[str, Model] (e.g. a partner name)
    for part in path:
        if cls is None:
            return None
        if isinstance(part, int) or in_dict:
            cur = cur[part] if holds(cur, (part,)) else None
            in_dict = False
            continue
        f = cls.model_fields.get(part)
        cur = cur.get(part) if isinstance(cur, dict) else None
        if f is None:
            return None
        in_dict = _is_dict(f.annotation)
        candidates = [c for c in _unwrap(f.annotation) if isinstance(c, type)]
        models = [c for c in candidates if issubclass(c, BaseModel)]
        cls = None
        if len(models) == 1:
            cls = models[0]
        elif models:
            pick = cur[0] if isinstance(cur, list) and cur else cur
            pattern = pick.get("pattern") if isinstance(pick, dict) else None
            for m in models:
                pf = m.model_fields.get("pattern")
                if pf is not None and pattern in typing.get_args(pf.annotation):
                    cls = m
    return cls


def data_path(data: Any, loc: Sequence[str | int]) -> YamlPath:
    """Pydantic's loc with union tags (e.g. 'direct') removed, so it walks the data."""
    out: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        if holds(cur, (part,)):
            out.append(part)
            cur = cur[part]
        elif i == len(loc) - 1 or not isinstance(part, str):
            out.append(part)
            cur = None
        # else: a discriminator tag inserted by pydantic; skip it
    return tuple(out)


def _clean(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def validation_diagnostics(
    exc: ValidationError,
    data: Any,
    layers: Sequence[Layer],
    model: type[BaseModel],
    site_id: str = "",
) -> list[Diagnostic]:
    return [
        _error_diagnostic(err, data_path(data, err["loc"]), data, layers, model, site_id)
        for err in exc.errors(include_input=False, include_url=False)
    ]


@functools.lru_cache(maxsize=1024)
def _close_key(key: str, allowed: tuple[str, ...]) -> str | None:
    """The allowed key a misspelt one was meant to be (memoized: a typo in a shared file
    is met again in every store of its group)."""
    close = difflib.get_close_matches(key, allowed, n=1)
    return close[0] if close else None


def _error_diagnostic(
    err: Any,
    path: YamlPath,
    data: Any,
    layers: Sequence[Layer],
    model: type[BaseModel],
    site_id: str,
) -> Diagnostic:
    """One pydantic error, located and explained."""
    etype = err["type"]
    msg = _clean(err["msg"])
    ctx = err.get("ctx", {})
    expected = _EXPECTED.get(etype, "")
    prefer_key = False
    if etype in _MAPPING_TYPES:
        # pydantic names its own class ("a valid dictionary or instance of Lan"): the
        # reader wrote YAML, where this is a mapping
        msg = "Input should be a mapping"
    elif etype == "int_type" and str(_value_at(data, path)).isdigit():
        expected = "an integer without quotes"
    elif etype in ("int_type", "int_parsing", "bool_type") and _yaml11_only(
        _value_at(data, path), etype
    ):
        value = _value_at(data, path)
        what = "a boolean" if etype == "bool_type" else f"the number {yaml11_reading(value)}"
        msg = f"'{value}' is text in YAML 1.2 (only YAML 1.1 reads it, unquoted, as {what})"
        expected = "true or false" if etype == "bool_type" else "a plain decimal number"
    elif etype == "extra_forbidden":
        key = str(path[-1])
        cls = _model_at(model, data, path[:-1])
        allowed = sorted(cls.model_fields) if cls else []
        close = _close_key(key, tuple(allowed))
        shown_key = key_text(key)
        shown_key = shown_key if shown_key.startswith('"') else f"'{shown_key}'"
        msg = f"unknown key {shown_key}" + (f"; did you mean '{close}'?" if close else "")
        expected = "one of: " + ", ".join(allowed) if allowed else ""
        prefer_key = True
    elif etype == "missing":
        msg = f"missing required key '{path[-1]}'"
        expected = f"{path[-1]}: ..."
    elif etype == "literal_error":
        exp = err.get("ctx", {}).get("expected", "")
        msg, expected = "value is not allowed", f"one of {exp}"
    elif etype == "union_tag_invalid":
        exp = err.get("ctx", {}).get("expected_tags", "")
        msg, expected = "unknown pattern", f"one of {exp}"
        path = (*path, "pattern")
    elif etype == "union_tag_not_found":
        msg, expected = (
            "missing required key 'pattern'",
            "pattern: direct | reverse_proxy | ...",
        )
    elif etype == "string_pattern_mismatch":
        msg = "contains characters or a form that is not allowed here"
        expected = _PATTERN_HINTS.get(str(ctx.get("pattern", ""))) or _pattern_hint(path)
    elif etype == "posnet_value":
        expected = str(ctx.get("expected", ""))
    elif etype in ("too_long", "string_too_long"):
        unit = _unit(data, path, ctx.get("max_length"))
        msg = f"is too long (at most {ctx.get('max_length')} {unit})"
        expected = f"at most {ctx.get('max_length')} {unit}"
    elif etype in ("too_short", "string_too_short"):
        unit = _unit(data, path, ctx.get("min_length"))
        msg = f"is too short (at least {ctx.get('min_length')} {unit})"
        expected = f"at least {ctx.get('min_length')} {unit}"
    elif etype in _BOUNDS:
        bound = next(iter(ctx.values()), "")
        expected = f"a number {_BOUNDS[etype]} {bound}"
    loc, shown = locate(layers, path, prefer_key=prefer_key)
    return Diagnostic(loc, "E100", msg, path=shown, expected=expected, site=site_id)


_BOUNDS = {
    "greater_than_equal": ">=",
    "less_than_equal": "<=",
    "greater_than": ">",
    "less_than": "<",
}


def _pattern_of(tp: Any) -> str:
    for meta in typing.get_args(tp)[1:]:
        pattern = getattr(meta, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    return ""


_TEXT_HINT = "one line of letters, digits, spaces and . , : ( ) / ' + @ # -"
_PATTERN_HINTS = {
    _pattern_of(Text): _TEXT_HINT,
    _pattern_of(Note): _TEXT_HINT.replace(" #", " # ;"),
    _pattern_of(Ident): "lowercase letters, digits, '-' and '_' (e.g. an id)",
    _pattern_of(InterfaceName): "an interface name (up to 15 of A-Z a-z 0-9 _ . -)",
    _pattern_of(UrlPath): "a URL path like /pos1/",
    _pattern_of(Guid): "a GUID like 77ba29fd-9f7a-45b0-8d7e-1ee5d879951b",
    _pattern_of(Thumbprint): "40 hex digits (the certificate's SHA-1 thumbprint)",
    _pattern_of(ProfileName): "up to 64 of A-Z a-z 0-9 _ -",
    _pattern_of(ServiceRef): "host/service, e.g. pos1/api",
    _pattern_of(typing.get_args(LintConfig.model_fields["disable"].annotation)[0]): (
        "a rule id like PN101"
    ),
}


def _unit(data: Any, path: YamlPath, count: object) -> str:
    unit = "character" if isinstance(_value_at(data, path), str) else "item"
    return unit if count == 1 else unit + "s"


def _yaml11_only(value: Any, etype: str) -> bool:
    """Text that a YAML 1.1 tool reads as the boolean or number this field wants
    (`yes`, `off`, `1:20`): posnet and the schemas read YAML 1.2, where it is text."""
    if not isinstance(value, str):
        return False
    if etype == "bool_type":
        return value in V11_BOOLS
    return isinstance(yaml11_reading(value), int)


def _value_at(data: Any, path: YamlPath) -> Any:
    if not holds(data, path):
        return None
    for part in path:
        data = data[part]
    return data


def _pattern_hint(path: YamlPath) -> str:
    last = str(path[-1]) if path else ""
    hints = {
        "name": "one line of letters, digits, spaces and . , : ( ) / ' + @ # -",
        "service": "host/service, e.g. pos1/api",
        "websocket_service": "host/service",
        "auth_service": "host/service",
        "site_service": "host/service",
        "path": "a URL path like /pos1/",
        "health_path": "a URL path like /health",
        "thumbprint": "40 hex digits (the certificate's SHA-1 thumbprint)",
        "appid": "a GUID like 77ba29fd-9f7a-45b0-8d7e-1ee5d879951b",
        "interface": "an interface name (up to 15 of A-Z a-z 0-9 _ . -)",
        "ssl_profile_crt": "the absolute path of the CA's PEM file on the device, like "
        "/certs/ca.pem",
        "uninstaller": "a folder and a file, e.g. Program Files (x86)/acme-tunnel/uninstall.exe",
    }
    if last in hints:
        return hints[last]
    if isinstance(path[-1] if path else None, int) and len(path) > 1:
        return hints.get(str(path[-2]), "")
    return "lowercase letters, digits, '-' and '_' (e.g. an id)"


SHARED_SHOWN = 20  # a shared file's validation errors kept per store


def site_validation_diagnostics(
    exc: ValidationError,
    data: Any,
    layers: Sequence[Layer],
    site_id: str,
    broken_group: bool,
) -> list[Diagnostic]:
    """A store's validation errors, without the follow-ups of a shared file's problem,
    and at most SHARED_SHOWN of each shared file's own.

    A key misspelled in fleet.yaml or a group file (reported once, at that file) leaves
    each store "missing" the key it meant, as does a group file that has errors. Every
    store of a group meets its file's errors again: 500 bad values in one group file
    cost (and kept) 500 diagnostics in each of its thousands of stores, all but one
    copy dropped at the end. Past SHARED_SHOWN, a store counts them unexplained."""
    own_file = layers[0].file
    errs = exc.errors(include_input=False, include_url=False)
    paths = [data_path(data, e["loc"]) for e in errs]
    files = [locate(layers, path)[0].file for path in paths]
    typo_at = {
        path[:-1]
        for e, path, file in zip(errs, paths, files, strict=True)
        if e["type"] == "extra_forbidden" and file != own_file
    }
    out: list[Diagnostic] = []
    shown: dict[str, int] = {}
    for err, path, file in zip(errs, paths, files, strict=True):
        if err["type"] == "missing" and (broken_group or path[:-1] in typo_at):
            continue
        if file != own_file:
            shown[file] = shown.get(file, 0) + 1
            if shown[file] > SHARED_SHOWN:
                continue
        out.append(_error_diagnostic(err, path, data, layers, Site, site_id))
    out += [_more_not_shown(layer) for layer in layers if shown.get(layer.file, 0) > SHARED_SHOWN]
    return out


def _more_not_shown(layer: Layer) -> Diagnostic:
    """A shared file's errors past SHARED_SHOWN: one line at its defaults instead."""
    where = layer.positions.key(layer.prefix) or layer.positions.nearest(layer.prefix)
    return Diagnostic(
        where or Location(layer.file),
        "E100",
        f"more errors in this file are not shown (at most {SHARED_SHOWN})",
        expected="fix the errors shown and run again",
    )


def defaults_diagnostics(layer: Layer) -> list[Diagnostic]:
    """The errors of shared defaults (fleet.yaml's or a group file's `defaults:`, the
    layer's data) on their own, as the published schemas check them: a mapping may
    leave out any key (a site supplies it), while a list entry (a host, an
    integration) is replaced whole and must be complete.

    Merged into a store, a default that every store overrides is never validated
    (`lan: 5` beside each store's own `lan:`, or any default of a group no store
    names): without this check posnet would accept it silently. An error also met in
    a store is the same diagnostic and is reported once (errors.unique_sorted). So is
    a lint rule id posnet does not have (E102): a store that inherits it leaves it to
    this check (analyze._unknown_rule_ids)."""
    out = _unknown_rules_in_defaults(layer)
    try:
        Site.model_validate(layer.data)
    except ValidationError as exc:
        errs = [
            e
            for e in exc.errors(include_input=False, include_url=False)
            if e["type"] != "missing" or any(isinstance(part, int) for part in e["loc"])
        ]
    else:
        return out
    out += [
        _error_diagnostic(err, data_path(layer.data, err["loc"]), layer.data, [layer], Site, "")
        for err in errs[:SHARED_SHOWN]
    ]
    if len(errs) > SHARED_SHOWN:
        out.append(_more_not_shown(layer))
    return out


def unknown_rule(rid: str, where: tuple[Location, str], site: str = "") -> Diagnostic:
    """E102: lint.disable names a rule posnet does not have, so it disables nothing."""
    loc, shown = where
    return Diagnostic(
        loc,
        "E102",
        f"unknown lint rule '{rid}'",
        path=shown,
        expected="an id from `posnet rules`",
        site=site,
    )


def _unknown_rules_in_defaults(layer: Layer) -> list[Diagnostic]:
    from generator import lint  # lint reads Plans, which are made of this package's specs

    config = layer.data.get("lint") if isinstance(layer.data, dict) else None
    disable = config.get("disable") if isinstance(config, dict) else None
    if not isinstance(disable, list):
        return []  # not a list of ids: a type error, reported as such
    known = {r.id for r in lint.all_rules()}
    return [
        unknown_rule(rid, locate([layer], ("lint", "disable", i)))
        for i, rid in enumerate(disable)
        if isinstance(rid, str) and rid not in known
    ]


def problem_diagnostics(
    problems: Iterable[Problem], layers: Sequence[Layer], site_id: str
) -> list[Diagnostic]:
    out = []
    for prob in problems:
        loc, shown = locate(layers, prob.path, prefer_key=prob.at_key)
        out.append(
            Diagnostic(
                loc, prob.code, prob.message, path=shown, expected=prob.expected, site=site_id
            )
        )
    return out


def salvaged_problems(
    merged: Any, layers: Sequence[Layer], catalog: Catalog, site_id: str
) -> list[Diagnostic]:
    """A type error hides no other problem: check what validates without the failing
    parts (see salvage.py)."""
    from generator.spec.salvage import salvage

    saved = salvage(merged)
    if saved is None:
        return []
    problems = saved.independent(check_site(saved.site, catalog))
    return problem_diagnostics(problems, layers, site_id)
