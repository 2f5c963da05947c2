"""Property tests: damaged or hostile site files never crash posnet or reach an output.

(a) Random structural damage to a valid site file (lines deleted, duplicated or
    re-indented, odd characters inserted, bytes corrupted, the file cut short) yields
    either a valid fleet or located diagnostics for that file; only PosnetError may
    escape.
(b) Any text put into any string field of a valid site is either rejected with a
    located diagnostic, or accepted and then never spans lines in the Plan (the only
    input of every target) nor in any rendered file.
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.analyze import analyze
from generator.errors import FORMATTERS, Diagnostic, PosnetError
from generator.pipeline import load_plans
from generator.plan import Plan
from generator.targets import TARGET_MODULES, render_site
from generator.yamlload import load_file

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo-fleet"
SITES = sorted(p.name for p in (DEMO / "sites").glob("*.yaml"))
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Characters str.splitlines() breaks on: any of them in an output value adds a line.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
HOSTILE = [
    *LINE_BREAKS,
    '"',
    "'",
    ";",
    "{",
    "}",
    "#",
    "$",
    "`",
    "\\",
    "%",
    "\t",
    " ",
    "\x00",
    "\x1b[31m",
    "\u202e",
    "\ufeff",
    "<",
    ">",
    "&",
    "|",
    "*",
    ":",
    "/",
    "..",
    "-",
    "\n  listen 80;\n",
    "\nserver=evil.example.com\n",
    "'; DROP TABLE x; --",
    "${HOME}",
    "{{ 7 * 7 }}",
    "@@POSNET_SECRET_x@@",
]
JUNK = ["\t", "\x00", "\x7f", "\x85", "\u2028", ": ", "- ", "&a ", "*a", "!x ", "%", "@", "`"]
JUNK += ["{", "[", "'", '"', "# ", "|", ">", "<<: ", "---\n", "..."]
BENIGN = ["pos1", "api", "Gent", "a.example.com", "vault:x", "192.0.2.1", "/p/", "PN101", "x"]


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fleet_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "fleet"
        shutil.copytree(DEMO, root)
        yield root


def _restore(root: Path, name: str) -> None:
    shutil.copyfile(DEMO / "sites" / name, root / "sites" / name)


def _run(root: Path) -> list[Diagnostic]:
    """Analyze; anything but PosnetError propagates and fails the property."""
    try:
        return analyze(root).diagnostics
    except PosnetError as exc:
        return exc.diagnostics


def _site_id(name: str) -> str:
    return name.removesuffix(".yaml")


def _assert_located(diags: list[Diagnostic], root: Path, name: str) -> None:
    """Every error belongs to the changed file (or fleet.yaml, or for this store the
    group defaults it inherits), with a line when known.

    The errors allowed elsewhere: a store whose central-proxy route points at the
    changed store says so (E300, or the central-proxy lint rules PN203/PN204 when the
    changed store no longer admits or is no longer reachable by that proxy), naming it.
    """
    own = str(root / "sites" / name)
    fleet = str(root / "fleet.yaml")
    # a key missing from a mapping that only shared defaults give (a store cut short
    # after `group: coast` has no wan: of its own) is placed at those defaults
    shared = {fleet, *(str(p) for p in (root / "groups").glob("*.yaml"))}
    for d in diags:
        for text in (d.message, d.path, d.expected):
            assert not any(c in text for c in LINE_BREAKS), d
        if d.severity != "error":
            continue
        ours = d.location.file in shared and d.site == _site_id(name)
        if d.location.file in (own, fleet) or ours:
            assert d.location.line >= 1, d
            assert d.location.col >= 0, d
            continue
        if d.code in ("PN203", "PN204"):
            assert f" -> {_site_id(name)}/" in d.message, d
        else:
            assert d.code == "E300" and f"'{_site_id(name)}'" in d.message, d
        assert d.location.line >= 1, d


# ----------------------------------------------------------- (a) structural damage


def _lines(text: str) -> list[str]:
    return text.split("\n")


Damage = Callable[[str], str]


@st.composite
def damage(draw: st.DrawFn, text: str) -> tuple[str, bytes]:
    """1-3 random edits; returns a description and the damaged bytes."""
    steps = []
    raw_edit: tuple[int, bytes] | None = None
    for _ in range(draw(st.integers(1, 3))):
        lines = _lines(text)
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        kind = draw(
            st.sampled_from(
                ["delete", "duplicate", "reindent", "swap-indent", "insert", "truncate", "bytes"]
            )
        )
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "reindent":
            lines[i] = " " * draw(st.integers(0, 9)) + lines[i].lstrip(" ")
        elif kind == "swap-indent":
            j = draw(st.integers(0, len(lines) - 1))
            ind_i = len(lines[i]) - len(lines[i].lstrip(" "))
            ind_j = len(lines[j]) - len(lines[j].lstrip(" "))
            lines[i], lines[j] = (
                " " * ind_j + lines[i].lstrip(" "),
                " " * ind_i + lines[j].lstrip(" "),
            )
        elif kind == "insert":
            junk = draw(
                st.lists(
                    st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(JUNK)),
                    min_size=1,
                    max_size=4,
                ).map("".join)
            )
            k = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:k] + junk + lines[i][k:]
        elif kind == "truncate":
            joined = "\n".join(lines)
            lines = _lines(joined[: draw(st.integers(0, len(joined)))])
        else:
            raw_edit = (
                draw(st.integers(0, len(text))),
                draw(st.binary(min_size=1, max_size=4)),
            )
        steps.append(f"{kind}@{i}")
        text = "\n".join(lines)
    data = text.encode()
    if raw_edit is not None:
        k = min(raw_edit[0], len(data))
        data = data[:k] + raw_edit[1] + data[k:]
    return ",".join(steps), data


@SETTINGS
@given(data=st.data())
def test_structural_damage_is_located(fleet_dir: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(SITES), label="site")
    original = (DEMO / "sites" / name).read_text()
    _, broken = data.draw(damage(original), label="damage")
    (fleet_dir / "sites" / name).write_bytes(broken)
    try:
        diags = _run(fleet_dir)
        _assert_located(diags, fleet_dir, name)
        for render in FORMATTERS.values():
            render(diags)
    finally:
        _restore(fleet_dir, name)


# ------------------------------------------------------------ (b) hostile strings


def _string_leaves(data: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _string_leaves(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _string_leaves(v, (*path, i))
    elif isinstance(data, str):
        yield path


LEAVES = {
    name: sorted(_string_leaves(load_file(DEMO / "sites" / name).data), key=repr) for name in SITES
}
FIELDS = [(name, path) for name, paths in LEAVES.items() for path in paths]


def _set(data: Any, path: tuple[Any, ...], value: str) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _plan_strings(obj: Any) -> Iterator[str]:
    """Every string anywhere in a Plan (dataclasses, tuples, lists, dicts)."""
    if isinstance(obj, str):
        yield obj
    elif is_dataclass(obj) and not isinstance(obj, type):
        for f in fields(obj):
            yield from _plan_strings(getattr(obj, f.name))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _plan_strings(k)
            yield from _plan_strings(v)
    elif isinstance(obj, list | tuple | set | frozenset):
        for v in obj:
            yield from _plan_strings(v)


def _renderers() -> list[tuple[str, Callable[[Plan], dict[str, str]]]]:
    """render_site if it renders the whole demo; otherwise each target that does.

    Targets are written in parallel: one that cannot render the valid demo yet says
    nothing about hostile input, so it is left out until it can.
    """
    _, plans = load_plans(DEMO)
    try:
        for p in plans:
            render_site(p)
        return [("render_site", render_site)]
    except Exception:  # an unfinished target must not hide the others
        pass
    out = []
    for mod_name in TARGET_MODULES:
        try:
            mod = importlib.import_module(f"generator.targets.{mod_name}")
            for p in plans:
                mod.render(p)
        except Exception:
            continue
        out.append((mod_name, mod.render))
    return out


RENDERERS = _renderers()

hostile_text = st.lists(
    st.one_of(
        st.sampled_from(HOSTILE),
        st.sampled_from(BENIGN),
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=6),
    ),
    min_size=1,
    max_size=6,
).map("".join)


@SETTINGS
@given(field=st.sampled_from(FIELDS), text=hostile_text)
def test_hostile_string_rejected_or_single_line(
    fleet_dir: Path, field: tuple[str, tuple[Any, ...]], text: str
) -> None:
    name, path = field
    data = load_file(DEMO / "sites" / name).data
    _set(data, path, text)
    # JSON is YAML 1.2: this writes any text, escaped, without a YAML emitter's opinions.
    (fleet_dir / "sites" / name).write_text(json.dumps(data, indent=2))
    try:
        diags = _run(fleet_dir)
        _assert_located(diags, fleet_dir, name)
        errors = [d for d in diags if d.severity == "error"]
        if errors:
            return
        fleet, plans = load_plans(fleet_dir)
        assert fleet.ok
        for plan in plans:
            for s in _plan_strings(plan):
                assert not any(c in s for c in LINE_BREAKS), (plan.site_id, s)
        multi = text.strip()
        if not any(c in multi for c in LINE_BREAKS):
            return
        for label, render in RENDERERS:
            for plan in plans:
                for rel, out in render(plan).items():
                    assert multi not in out, (label, rel)
    finally:
        _restore(fleet_dir, name)


SECRET_KEYS = {
    "password",
    "token",
    "key",
    "certificate",
    "htpasswd",
    "client_ca",
    "client_secret",
    "auth_secret",
}
SECRET_FIELDS = [(n, p) for n, p in FIELDS if p[-1] in SECRET_KEYS]


@SETTINGS
@given(field=st.sampled_from(SECRET_FIELDS), text=hostile_text)
def test_rejected_secret_never_echoed(
    fleet_dir: Path, field: tuple[str, tuple[Any, ...]], text: str
) -> None:
    """A literal typed where a secret reference belongs never reaches any output."""
    name, path = field
    secret = f"Qx7{text}Zk9"
    data = load_file(DEMO / "sites" / name).data
    _set(data, path, secret)
    (fleet_dir / "sites" / name).write_text(json.dumps(data, indent=2))
    try:
        diags = _run(fleet_dir)
        assert any(d.severity == "error" for d in diags)
        _assert_located(diags, fleet_dir, name)
        for render in FORMATTERS.values():
            out = render(diags)
            assert "Qx7" not in out and "Zk9" not in out
    finally:
        _restore(fleet_dir, name)
