"""Spec files and names a stranger (or a clumsy user) may commit to a fleet repository.

Each test is one case of issue 6 ("Why"): the same store id twice, %YAML 1.1, secrets
echoed through parser errors, file names forging CI log lines, FIFOs and devices in
sites/, secret references that leave their folder, wide-open sources.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from generator.errors import Diagnostic, Location, format_github, format_sarif, format_text
from generator.spec import model
from generator.yamlload import SECRET_KEYS
from tests.conftest import DEMO
from tests.treeutil import posnet

FORMATS = ("text", "json", "github", "sarif")


@pytest.fixture()
def fleet(tmp_path: Path) -> Path:
    dest = tmp_path / "fleet"
    shutil.copytree(DEMO, dest)
    return dest


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"demo changed: {old!r}"
    path.write_text(text.replace(old, new))


# ------------------------------------------------------------------- input files


def test_same_store_twice_names_both_files(fleet: Path) -> None:
    sites = fleet / "sites"
    shutil.copy(sites / "gent-01.yaml", sites / "gent-01.yml")
    res = posnet("validate", fleet)
    assert res.returncode == 1
    assert f"{sites / 'gent-01.yaml'} and {sites / 'gent-01.yml'}" in res.stdout, res.stdout


def test_hidden_and_editor_files_are_ignored_with_a_note(fleet: Path) -> None:
    sites = fleet / "sites"
    names = [".#gent-01.yaml", "gent-01.yaml~", "#gent-01.yaml#", ".gent-01.yaml.swp"]
    for name in names:
        (sites / name).write_text("id: [unclosed\n")
    (sites / "README.md").write_text("notes\n")
    res = posnet("validate", fleet)
    assert res.returncode == 0, res.stdout
    for name in names:
        assert f"{sites / name}: info[E003] ignored: a hidden or editor backup file" in res.stdout
    assert f"{sites / 'README.md'}: info[E003] ignored: not a store file" in res.stdout


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "link-inside"])
def test_special_files_and_links_in_sites_are_refused(fleet: Path, kind: str) -> None:
    """A FIFO or /dev/zero would hang posnet or fill memory; no link is followed inside
    a fleet folder (its target is not reviewed with the repository)."""
    bad = fleet / "sites" / "zz-bad.yaml"
    if kind == "fifo":
        os.mkfifo(bad)
    elif kind == "dev-zero-link":
        bad.symlink_to("/dev/zero")
    else:
        bad.symlink_to(fleet / "sites" / "gent-01.yaml")
    res = posnet("validate", fleet, timeout=30)
    assert res.returncode == 1
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith(str(bad)))
    assert "symbolic link" in line or "not a regular file" in line, line


@pytest.mark.parametrize("name", ["fleet.yaml", "groups/coast.yaml"])
def test_fleet_and_group_files_may_not_be_links(fleet: Path, name: str) -> None:
    target = fleet / name
    real = fleet.parent / "elsewhere.yaml"
    target.rename(real)
    target.symlink_to(real)
    res = posnet("validate", fleet)
    assert res.returncode == 1 and f"{target}: error[E001] is a symbolic link" in res.stdout


@pytest.mark.parametrize("name", ["sites", "groups"])
def test_sites_and_groups_folders_may_not_be_links(fleet: Path, name: str) -> None:
    """The bad state: sites/ or groups/ itself is a link to a folder outside the
    repository (found by an audit: every store was loaded through it, exit 0). Nothing
    is read through it; the error names the folder, also when one store is validated."""
    real = fleet.parent / f"real-{name}"
    (fleet / name).rename(real)
    (fleet / name).symlink_to(real)
    res = posnet("validate", fleet)
    assert res.returncode == 1
    assert f"{fleet / name}: error[E002] {name}/ is a symbolic link" in res.stdout
    assert "unknown group" not in res.stdout and "missing required key" not in res.stdout
    if name == "sites":
        assert "gent-01" not in res.stdout  # no store was loaded through the link
        one = posnet("validate", fleet / "sites" / "gent-01.yaml")
        assert one.returncode == 1 and f"{name}/ is a symbolic link" in one.stdout


def test_size_is_checked_before_reading(fleet: Path) -> None:
    """A 1 TiB sparse file: reading it first would take hours and all memory."""
    huge = fleet / "sites" / "huge-01.yaml"
    with open(huge, "wb") as fh:
        fh.truncate(1 << 40)
    res = posnet("validate", fleet, timeout=20)
    assert res.returncode == 1 and f"{huge}: error[E001] file is larger than" in res.stdout


@pytest.mark.parametrize(
    ("directive", "value"),
    [("%YAML 1.1", "port: 010"), ("%TAG !e! tag:example.com,2000:", "port: 22")],
)
def test_yaml_directives_are_refused(fleet: Path, directive: str, value: str) -> None:
    """%YAML 1.1 would read 010 as 8, 22:22 as 1342 and `no` as false."""
    site = fleet / "sites" / "gent-01.yaml"
    site.write_text(f"{directive}\n---\n{site.read_text()}")
    res = posnet("validate", fleet)
    assert res.returncode == 1
    assert f"{site}:1:1: error[E001] YAML directives (%YAML, %TAG) are not allowed" in res.stdout


# ------------------------------------------------------------------------ secrets


def _secret_fields() -> set[str]:
    """Every field of the spec whose type is a secret reference."""
    found: set[str] = set()
    seen: set[type] = set()

    def walk(cls: type[BaseModel]) -> None:
        if cls in seen:
            return
        seen.add(cls)
        for name, field in cls.model_fields.items():
            if "_secret" in repr(field.annotation) or any(
                "_secret" in repr(m) for m in field.metadata
            ):
                found.add(name)
            for sub in _classes(field.annotation):
                walk(sub)

    walk(model.Site)
    return found


def _classes(tp: object) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    for arg in typing.get_args(tp):
        out += _classes(arg)
    return out


def test_secret_keys_are_the_secret_fields() -> None:
    """The parser hides tags of exactly these keys: a new secret field must be added."""
    assert _secret_fields() == SECRET_KEYS


SECRET = "Hunter2Secret"
_REF = re.compile(r"^(\s*(?:- )?)(\w+): ((?:env|vault|file):\S+)$", re.MULTILINE)


ROUTE = "      - {site: gent-01, site_service: pos1/api, path: /gent-01/}"


def _secret_lines() -> dict[str, tuple[str, str, str]]:
    """For each secret field, a demo site file, its text, and the line that sets it.
    Fields the demo leaves out (a route's upstream trust) are set on a central-proxy
    route written in block style."""
    found: dict[str, tuple[str, str, str]] = {}
    for path in sorted((DEMO / "sites").glob("*.yaml")):
        text = path.read_text()
        for m in _REF.finditer(text):
            if m.group(2) in SECRET_KEYS:
                found.setdefault(m.group(2), (path.name, text, m.group(0)))
    central = (DEMO / "sites" / "mechelen-hq.yaml").read_text()
    assert ROUTE in central
    for field in sorted(SECRET_KEYS - set(found)):
        line = f"        {field}: file:certs/{field}.pem"
        block = f"      - site: gent-01\n        site_service: pos1/api\n{line}"
        found[field] = ("mechelen-hq.yaml", central.replace(ROUTE, block), line)
    return found


@pytest.mark.parametrize("indicator", list("*&!|>%@`"))
def test_secret_starting_with_an_indicator_is_never_echoed(tmp_path: Path, indicator: str) -> None:
    """Every secret field, with a literal that starts with each YAML indicator, in
    every output format: the literal appears nowhere (stdout or stderr)."""
    lines = _secret_lines()
    assert set(lines) == SECRET_KEYS
    for field, (name, text, line) in sorted(lines.items()):
        site = tmp_path / f"{field}-{name}"
        key = line.split(":", 1)[0]
        site.write_text(text.replace(line, f"{key}: {indicator}{SECRET}", 1))
        for fmt in FORMATS:
            res = posnet("validate", site, "--format", fmt)
            assert res.returncode == 1, (field, indicator, fmt)
            assert SECRET not in res.stdout + res.stderr, (field, indicator, fmt, res.stdout)


@pytest.mark.parametrize(
    "ref", ["file:/etc/shadow", "vault:../../x", "file:certs/../../../root/.ssh/id_rsa", "env:.."]
)
def test_secret_reference_leaving_its_folder_is_a_validation_error(fleet: Path, ref: str) -> None:
    site = fleet / "sites" / "leuven-04.yaml"
    _edit(site, "password: vault:leuven_04_ddns", f"password: {ref}")
    res = posnet("validate", fleet)
    assert res.returncode == 1
    assert "is a secret reference that is absolute or climbs out" in res.stdout
    assert f"{site}:14:" in res.stdout and ref not in res.stdout


# ------------------------------------------------------------------------ lint


@pytest.mark.parametrize(
    ("cidr", "warned"),
    [("0.0.0.0/0", True), ("10.0.0.0/7", True), ("10.0.0.0/8", False), ("192.0.2.64/28", False)],
)
def test_wide_open_management_warns(fleet: Path, cidr: str, warned: bool) -> None:
    _edit(fleet / "fleet.yaml", 'allow_from: ["192.0.2.64/28"]', f'allow_from: ["{cidr}"]')
    res = posnet("validate", fleet, "--format", "json")
    found = [d for d in json.loads(res.stdout) if d["code"] == "PN112"]
    assert bool(found) == warned
    if warned:
        assert found[0]["severity"] == "warning" and "why" in found[0] and found[0]["why"]
        assert found[0]["location"]["file"].endswith("fleet.yaml")
        assert found[0]["location"]["line"] == 16


def test_wide_open_partner_source_warns(fleet: Path) -> None:
    site = fleet / "sites" / "gent-01.yaml"
    _edit(site, 'sources: ["198.51.100.0/28", "203.0.113.20"]', 'sources: ["0.0.0.0/0"]')
    res = posnet("validate", fleet, "--strict")
    assert res.returncode == 1
    assert re.search(rf"{re.escape(str(site))}:\d+:\d+: warning\[PN112\]", res.stdout)
    assert "0.0.0.0/0: practically the whole internet" in res.stdout


# ------------------------------------------------------------------ output formats


FORGED = "x.yaml\n::warning file=ci.yml::pwned\x1b[2J\r"


def _diag() -> Diagnostic:
    return Diagnostic(
        Location(f"sites/{FORGED}", 3, 5), "E100", f"bad\nline {FORGED}", expected="a\nb"
    )


def test_text_format_escapes_control_characters() -> None:
    out = format_text([_diag()])
    assert out.count("\n") == 1  # the problem line and the expected line, nothing forged
    assert not any(ln.startswith("::") for ln in out.splitlines())
    assert "\x1b" not in out and "\r" not in out
    assert "x.yaml\\n::warning" in out


def test_github_format_escapes_newlines() -> None:
    out = format_github([_diag()])
    assert out.count("\n") == 0 and out.startswith("::error file=sites/x.yaml%0A%3A%3Awarning")
    assert "\x1b" not in out


def test_sarif_uri_is_relative_and_percent_encoded(tmp_path: Path) -> None:
    inside = Path.cwd() / "sites" / "a b%.yaml"
    doc = json.loads(format_sarif([Diagnostic(Location(str(inside), 1, 1), "E100", "x")]))
    uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri["uri"] == "sites/a%20b%25.yaml"
    doc = json.loads(format_sarif([_diag()]))
    uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert "\n" not in uri["uri"] and "%0A" in uri["uri"]


def test_file_name_with_a_newline_forges_no_ci_line(fleet: Path) -> None:
    """End to end: a committed file whose name holds a newline and a workflow command."""
    bad = fleet / "sites" / "zz\n::warning file=x::forged.yaml"
    bad.write_text("id: [unclosed\n")
    for fmt in ("text", "github"):
        res = posnet("validate", fleet, "--format", fmt)
        lines = (res.stdout + res.stderr).splitlines()
        assert not any(ln.startswith("::warning file=x::forged") for ln in lines), fmt
    res = posnet("validate", fleet, "--format", "json")
    assert any(d["location"]["file"] == str(bad) for d in json.loads(res.stdout))


def test_editor_files_in_groups_are_not_groups(fleet: Path) -> None:
    (fleet / "groups" / ".#coast.yaml").write_text("group: [unclosed\n")
    assert posnet("validate", fleet).returncode == 0


def test_a_group_file_may_be_yml_but_not_both(fleet: Path) -> None:
    """Store files may be .yaml or .yml; a group file written .yml was silently ignored
    (found by fuzzing: its stores then got a misleading 'unknown group'). It is read
    like a .yaml one, and one group written both ways is an error naming both."""
    groups = sorted(p.name for p in (fleet / "groups").glob("*.yaml"))
    assert groups, "the demo fleet has groups"
    before = posnet("validate", fleet)
    for name in groups:
        (fleet / "groups" / name).rename(fleet / "groups" / name.replace(".yaml", ".yml"))
    after = posnet("validate", fleet)
    assert after.returncode == before.returncode == 0, after.stdout
    assert "unknown group" not in after.stdout
    yml = fleet / "groups" / groups[0].replace(".yaml", ".yml")
    (fleet / "groups" / groups[0]).write_bytes(yml.read_bytes())
    both = posnet("validate", fleet)
    assert both.returncode == 1
    stem = groups[0].removesuffix(".yaml")
    assert f"{yml}: error[E002] group '{stem}' is defined twice" in both.stdout, both.stdout


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85"])
def test_a_yaml_1_1_line_break_is_refused_where_it_is(fleet: Path, char: str) -> None:
    """U+2028/U+2029/NEL end a line for YAML 1.1 parsers (ruamel among them) and are a
    character for YAML 1.2: in a comment, fuzzing got a parse error pointing elsewhere.
    Refused with its own line and column, whatever the parser, and never echoed."""
    site = fleet / "sites" / "gent-01.yaml"
    lines = site.read_text().splitlines(keepends=True)
    lines.insert(2, f"# a note{char}with a separator\n")
    site.write_text("".join(lines))
    res = posnet("validate", fleet)
    assert res.returncode == 1
    assert f"{site}:3:9: error[E001] file contains U+{ord(char):04X}" in res.stdout, res.stdout
    assert char not in res.stdout
