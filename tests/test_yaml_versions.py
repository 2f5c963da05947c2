"""A plain scalar means one thing to posnet, to YAML 1.2 editors and to YAML 1.1 tools.

posnet reads YAML 1.2 (README), but ruamel, its parser, still takes some YAML 1.1 number
forms in 1.2 mode: `port: 8_443` and `port: 0b11` were the integers 8443 and 3 to posnet
while an editor checking schema/site.schema.json (YAML 1.2) read the text "8_443" and
flagged it. Each form below is either refused where it is written (a number not in plain
decimal) or read as YAML 1.2 reads it; the readings this table names for YAML 1.1 are
PyYAML's, so the messages that quote them are true.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.errors import PosnetError
from generator.spec.load import load_fleet
from generator.yamlload import loads, ruamel_loads, yaml11_reading, yaml12_reading
from tests.test_schema import SCRATCH, _validator, _write

TEXT = "text"
# plain scalar: (YAML 1.2 core schema's reading, refused by posnet)
FORMS: dict[str, tuple[Any, bool]] = {
    "8443": (8443, False),
    "-1": (-1, False),
    "0": (0, False),
    "8_443": (TEXT, True),  # 1.1: 8443
    "0b11": (TEXT, True),  # 1.1: 3
    "0o17": (15, True),  # 1.1: text
    "017": (17, True),  # 1.1: 15 (octal)
    "08": (8, True),  # 1.1: text
    "-017": (-17, True),  # 1.1: -15
    "+80": (80, True),  # 1.1: 80; YAML's JSON schema: text
    "0x1F": (31, True),  # 1.1: 31; YAML's JSON schema: text
    "-0x1F": (TEXT, True),  # 1.1: -31
    "1_000.5": (TEXT, True),  # 1.1: 1000.5
    "1:20": (TEXT, False),  # 1.1: 80 (base 60); text to posnet as to 1.2
    "yes": (TEXT, False),  # 1.1: true
    "off": (TEXT, False),  # 1.1: false
    "True": (True, False),
    ".inf": (math.inf, False),
    "1e3": (1000.0, False),  # 1.1: text; a float fits no posnet field (E100)
}


def _as_read(form: str, reading: Any) -> Any:
    return form if reading is TEXT else reading


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("loader", [loads, ruamel_loads], ids=["loads", "ruamel"])
def test_a_plain_scalar_is_read_as_yaml_1_2_reads_it_or_refused(form: str, loader: Any) -> None:
    text = f"id: x\nport: {form}\n"
    reading, refused = FORMS[form]
    if not refused:
        assert loader(text, "s.yaml").data == {"id": "x", "port": _as_read(form, reading)}
        return
    with pytest.raises(PosnetError) as exc:
        loader(text, "s.yaml")
    (d,) = exc.value.diagnostics
    assert (d.code, d.location.line, d.location.col) == ("E001", 2, 7)
    assert d.message.startswith(f"'{form}' is not a plain decimal number: ")
    assert d.expected.startswith("a plain decimal")
    assert "in quotes if it is text" in d.expected


@pytest.mark.parametrize("form", sorted(FORMS))
def test_the_readings_quoted_in_messages_are_yaml_1_1s_and_1_2s(form: str) -> None:
    """yaml11_reading is PyYAML's (a YAML 1.1 parser), yaml12_reading the table's, for
    every form a message quotes them for (a refused number, a base-60 number)."""
    if not FORMS[form][1] and ":" not in form:
        return
    pyyaml = yaml.safe_load(f"v: {form}")["v"]
    if isinstance(pyyaml, int | float) and not isinstance(pyyaml, bool):
        assert yaml11_reading(form) == pyyaml
    else:
        assert yaml11_reading(form) == form
    assert yaml12_reading(form) == _as_read(form, FORMS[form][0])


def test_the_messages_say_how_each_version_reads_it() -> None:
    def message(form: str) -> tuple[str, str]:
        with pytest.raises(PosnetError) as exc:
            loads(f"port: {form}\n", "s.yaml")
        return exc.value.diagnostics[0].message, exc.value.diagnostics[0].expected

    assert message("8_443") == (
        "'8_443' is not a plain decimal number: YAML 1.2 reads it as text, "
        "YAML 1.1 as the number 8443",
        "a plain decimal (8443), or the value in quotes if it is text",
    )
    assert message("017")[0].endswith(
        "YAML 1.2 reads it as the number 17, YAML 1.1 as the number 15"
    )
    assert message("0o17")[0].endswith("YAML 1.2 reads it as the number 15, YAML 1.1 as text")
    assert message("0x1F")[0].endswith("posnet reads integers written in plain decimal only")


def test_a_secret_written_as_a_number_is_not_echoed() -> None:
    with pytest.raises(PosnetError) as exc:
        loads("auth:\n  password: 0x5ec7e7\n", "s.yaml")
    (d,) = exc.value.diagnostics
    assert (d.location.line, d.location.col) == (2, 13)
    assert "5ec7e7" not in d.message + d.expected
    assert d.message.startswith("this value is not a plain decimal number")


@pytest.mark.parametrize("form", sorted(FORMS))
def test_posnet_and_the_schema_agree_on_a_port(tmp_path: Path, form: str) -> None:
    """What the site schema rejects as YAML 1.2 reads it, posnet rejects at that line;
    what posnet accepts is the value YAML 1.2 reads (and the schema accepts)."""
    old = "port: 8443"
    site = SCRATCH["sites/north-01.yaml"].replace(old, f"port: {form}")
    root = _write(tmp_path, {**SCRATCH, "sites/north-01.yaml": site})
    reading, _ = FORMS[form]
    data = yaml.safe_load(SCRATCH["sites/north-01.yaml"])
    data["hosts"][0]["services"][0]["port"] = _as_read(form, reading)
    schema_ok = not list(_validator("site").iter_errors(data))
    fleet = load_fleet(root)
    errors = [d for d in fleet.diagnostics if d.severity == "error"]
    if errors or not schema_ok:
        assert errors, f"the schema rejects port: {form}, posnet accepted it"
        line = site.splitlines().index(next(x for x in site.splitlines() if f"port: {form}," in x))
        assert [d.location.line for d in errors] == [line + 1]
    else:
        (store,) = fleet.sites
        assert store.site.hosts[0].services[0].port == reading


@pytest.mark.parametrize(
    ("old", "new", "message", "expected"),
    [
        ("tls: true", "tls: yes", "'yes' is text in YAML 1.2", "true or false"),
        ("tls: true", "tls: Off", "'Off' is text in YAML 1.2", "true or false"),
        ("port: 8443", "port: 1:20", "as the number 80)", "a plain decimal number"),
    ],
)
def test_yaml_1_1_booleans_and_base_60_say_why_they_are_text(
    tmp_path: Path, old: str, new: str, message: str, expected: str
) -> None:
    site = SCRATCH["sites/north-01.yaml"].replace(old, new)
    fleet = load_fleet(_write(tmp_path, {**SCRATCH, "sites/north-01.yaml": site}))
    (d,) = [d for d in fleet.diagnostics if d.severity == "error"]
    assert (d.code, d.location.line) == ("E100", 7)
    assert message in d.message
    assert d.expected == expected


def test_text_that_yaml_1_1_reads_as_a_boolean_stays_text_in_a_text_field(
    tmp_path: Path,
) -> None:
    """`name: yes` is the text "yes" to posnet and to the schema (YAML 1.2)."""
    site = SCRATCH["sites/north-01.yaml"].replace("name: North 01", "name: yes")
    fleet = load_fleet(_write(tmp_path, {**SCRATCH, "sites/north-01.yaml": site}))
    assert fleet.ok, fleet.diagnostics
    assert fleet.sites[0].site.name == "yes"


@pytest.mark.parametrize(
    "text",
    [
        "<<: 5\n",
        "<<: [1]\n",
        "<<:\n",
        '<<: "x"\n',
        "<<: {a: 1}\n",
        "<<: [{a: 1}]\n",
        "a: &x 1\n<<: *x\n",
        "a: &m {c: 1}\n<<: *m\n",
        "a: 1\n? <<\n: 5\n",
    ],
    ids=repr,
)
@pytest.mark.parametrize("loader", [loads, ruamel_loads], ids=["loads", "ruamel"])
def test_a_merge_key_is_refused_at_its_line_whatever_its_value(text: str, loader: Any) -> None:
    """`<<: 5` showed ruamel's "expected a mapping or list of mappings for merging" at
    the value (at the anchor for an alias), with no expectation."""
    with pytest.raises(PosnetError) as exc:
        loader(text, "s.yaml")
    (d,) = exc.value.diagnostics
    lines = text.splitlines()
    line = next(i for i, x in enumerate(lines) if "<<" in x) + 1
    assert (d.code, d.location.line, d.location.col) == (
        "E001",
        line,
        lines[line - 1].index("<<") + 1,
    )
    assert d.message.startswith("merge keys (<<) are not supported")
    assert d.expected == "explicit keys (use fleet or group defaults to share values)"


def test_a_quoted_double_less_than_key_is_a_plain_key() -> None:
    assert loads('"<<": 5\n', "s.yaml").data == {"<<": 5}
