"""The E-code registry, the codes that replaced E200, the source snippet of the text
format (secrets masked, hostile text escaped), every independent problem of a store in
one run, and a shared file's problem reported once."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.analyze import analyze
from generator.cli import cli
from generator.diagnostics import CODES, UnregisteredCode
from generator.errors import FORMATTERS, Diagnostic, Location, format_text, safe_text
from generator.snippet import MASK, _secret_spans, masked_line, snippet
from generator.yamlload import load_bytes, load_file
from tests.test_bad_input import diagnostics as diags
from tests.test_bad_input import errors

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo-fleet"
B = "sites/brussels-03.yaml"
HUNTER = "hunter2-Sup3rSecret!"


def fleet(tmp_path: Path, edits: dict[str, Callable[[str], str]]) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    for rel, edit in edits.items():
        f = root / rel
        f.write_text(edit(f.read_text()))
    return root


def sub(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert text.count(old) == 1, f"demo changed: {old!r}"
        return text.replace(old, new)

    return edit


# ------------------------------------------------------------------------- registry


def test_every_code_in_the_source_is_registered_and_documented() -> None:
    used = set()
    for f in (ROOT / "generator").rglob("*.py"):
        used |= set(re.findall(r"\"(E\d{3})\"", f.read_text()))
    assert used, "no codes found"
    assert used <= set(CODES), used - set(CODES)
    assert "E200" not in CODES and "E200" not in used  # split by what went wrong
    for c in CODES.values():
        assert c.title and len(c.why) > 30, c.code
        assert c.doc().startswith(f"# {c.code} {c.title}")


def test_every_store_check_code_has_a_bad_and_a_good_example() -> None:
    for c in CODES.values():
        if c.code.startswith(("E1", "E2", "E3")):
            assert c.bad and c.good and c.bad != c.good, c.code


# Codes no excerpt of a fleet's YAML can show, and why: the test below names them
# rather than skipping them.
NOT_AN_EXCERPT = {
    "E001": "a syntax error is text, not data (test_e001_examples_in_a_store_file)",
    "E002": "a missing, unreadable or doubled file",
    "E003": "a file that is not a store, or a source posnet cannot read",
    "E004": "posnet init's refusal",
    "E005": "the report's missing fleet",
    "E401": "a build tree file, not the spec",
    "E402": "a build tree file, not the spec",
    "E403": "a build tree file, not the spec",
}


def _example(text: str) -> tuple[str, Any]:
    """An example's file (its first line, a comment naming it) and its YAML data."""
    first = text.splitlines()[0]
    named = re.fullmatch(r"# ((?:sites/|groups/)?[\w.-]+\.yaml)", first)
    assert named, f"the example's first line must name its file: {first!r}"
    return named.group(1), load_bytes(text.encode(), "example").data


def _placed(example: Any, target: Any) -> Any:
    """`example` placed into `target` (the named file's data). A mapping's keys replace
    the file's, or are placed into the file's mapping there; a list's entries replace
    the file's entries at the same positions (the file's later ones are kept), and a
    first entry `...` keeps all of the file's entries, the example's following them. A
    mapping in a list is a whole entry, unless it has a key `...`: then it is the
    file's entry at its position with its keys placed into it."""
    if isinstance(example, dict) and isinstance(target, dict):
        out = dict(target)
        for k, v in example.items():
            if k != "...":
                out[k] = _placed(v, target[k]) if k in target else _whole(v)
        return out
    if isinstance(example, list) and isinstance(target, list):
        if example[:1] == ["..."]:
            return [*target, *(_whole(e) for e in example[1:])]
        out = list(target)
        for i, e in enumerate(example):
            if isinstance(e, dict) and "..." in e:
                assert i < len(target), f"no entry {i} in the file to complete {e}"
                out[i] = _placed(e, target[i])
            elif i < len(out):
                out[i] = _whole(e)
            else:
                out.append(_whole(e))
        return out
    return _whole(example)


def _whole(example: Any) -> Any:
    assert not (isinstance(example, dict) and "..." in example), f"nothing to complete {example}"
    return example


@pytest.mark.parametrize(
    ("name", "kind"),
    [(c, kind) for c in CODES if c not in NOT_AN_EXCERPT for kind in ("bad", "good")],
)
def test_every_code_example_does_what_it_says(tmp_path: Path, name: str, kind: str) -> None:
    """`posnet rules --explain CODE` shows a bad and a good example: each is an excerpt of
    the demo fleet's file its first comment names (placed as _placed says). Placed there,
    the bad example gets its code in that file, and the good one validates without an
    error: a fix that trades one error for another is no fix."""
    file, data = _example(getattr(CODES[name], kind))
    root = fleet(tmp_path, {})
    path = root / file
    path.write_text(json.dumps(_placed(data, load_file(path).data)))
    found = diags(root)
    if kind == "bad":
        assert any(d.code == name and d.location.file == str(path) for d in found), (
            f"{name}'s bad example gets no {name} in {file}: "
            + "; ".join(f"{d.code} {d.message}" for d in found)
        )
    else:
        wrong = [f"{d.code} {d.message}" for d in found if d.severity == "error"]
        assert not wrong, f"{name}'s good example gets errors: {wrong}"


def test_codes_without_an_excerpt_are_named() -> None:
    """Every code has examples to test, or is named in NOT_AN_EXCERPT with its reason."""
    assert set(NOT_AN_EXCERPT) <= set(CODES)
    for name, c in CODES.items():
        if name not in NOT_AN_EXCERPT or name == "E001":
            assert c.bad and c.good, f"{name} has no examples: name it in NOT_AN_EXCERPT"
        else:
            assert not (c.bad or c.good), f"{name} has examples: test them"


def test_e001_examples_in_a_store_file(tmp_path: Path) -> None:
    """E001's examples are text: each replaces the line of the file that sets its key."""
    for kind, text in (("bad", CODES["E001"].bad), ("good", CODES["E001"].good)):
        first, line = text.splitlines()
        file = re.fullmatch(r"# (sites/[\w.-]+\.yaml)", first)
        assert file, first
        key = line.split(":")[0] + ":"
        shutil.rmtree(tmp_path / "fleet", ignore_errors=True)
        root = fleet(tmp_path, {})
        path = root / file.group(1)
        lines = path.read_text().splitlines(keepends=True)
        at = [i for i, old in enumerate(lines) if old.startswith(key)]
        assert len(at) == 1, f"{key} not once in {file.group(1)}"
        lines[at[0]] = line + "\n"
        path.write_text("".join(lines))
        codes = {d.code for d in errors(root)}
        assert ("E001" in codes) == (kind == "bad"), (kind, codes)
        assert kind == "bad" or not codes, codes


def test_every_code_of_one_store_has_a_case() -> None:
    one_store = {c for c in CODES if c.startswith("E2")}
    assert one_store == {case[2] for case in SPLIT}


def test_an_unregistered_code_cannot_be_made() -> None:
    with pytest.raises(UnregisteredCode):
        Diagnostic(Location("x.yaml", 1, 1), "E999", "not registered")
    Diagnostic(Location("x.yaml", 1, 1), "PN101", "lint ids have their own registry")


# (file, edit, code, path, message fragment): one case per code that replaced E200
SPLIT = [
    (
        B,
        sub("partner: deliverect", "partner: delivernot"),
        "E201",
        "integrations[0].partner",
        "unknown partner",
    ),
    (
        B,
        sub('ip: "198.51.100.140"', 'ip: "198.51.100.250"'),
        "E202",
        "hosts[1].ip",
        "not a host address",
    ),
    (
        B,
        sub('ip: "198.51.100.140"', 'ip: "198.51.100.175"'),
        "E203",
        "hosts[1].ip",
        "inside the DHCP pool",
    ),
    (
        B,
        sub('start: "198.51.100.170"', 'start: "198.51.100.129"'),
        "E203",
        "lan.dhcp_pool",
        "contains the gateway",
    ),
    (
        B,
        sub("partner: deliverect", "partner: openpos"),
        "E204",
        "integrations[0].pattern",
        "does not support",
    ),
    (
        B,
        sub('public_ip: "203.0.113.30"', 'public_ip: "10.1.2.3"'),
        "E205",
        "wan.public_ip",
        "private address",
    ),
    (B, sub('  public_ip: "203.0.113.30"\n', ""), "E206", "wan.ip_mode", "needs wan.public_ip"),
    (
        B,
        sub("lan:\n  subnet:", "lan:\n  interface: wan0\n  subnet:"),
        "E207",
        "lan.interface",
        "must differ",
    ),
    (
        B,
        sub(
            "lan:\n  subnet:",
            'lan:\n  dns: {servers: ["198.51.100.130"], upstreams: ["9.9.9.9"]}\n  subnet:',
        ),
        "E211",
        "lan.dns.upstreams",
        "has no effect",
    ),
    (B, sub("- name: proxy\n", "- name: pos1\n"), "E208", "hosts[1].name", "duplicate host name"),
    (
        B,
        sub("{service: pos1/api, path: /pos1/}", "{service: pos9/api, path: /pos1/}"),
        "E209",
        "integrations[0].routes[0].service",
        "host 'pos9' is not in hosts",
    ),
    (
        B,
        sub("      htpasswd: vault:brussels_03_htpasswd\n", ""),
        "E210",
        "integrations[0].auth",
        "basic auth needs",
    ),
    (B, sub("- name: proxy\n", "- name: edge\n"), "E212", "hosts[0].name", "reserved"),
    (
        B,
        lambda text: (
            text + "  - partner: deliverect\n    pattern: reverse_proxy\n    proxy_host: pos1\n"
            "    tls: {certificate: file:b.pem, key: vault:b}\n"
            "    routes: [{service: pos2/api, path: /x/}]\n"
        ),
        "E213",
        "integrations[1].partner",
        "already writes the files of proxy deliverect-proxy",
    ),
    (
        B,
        sub("proxy_host: proxy", "proxy_host: pos1"),
        "E214",
        "integrations[0].listen_port",
        "already bound by its service api",
    ),
]


@pytest.mark.parametrize(
    "rel, edit, code, path, fragment",
    SPLIT,
    ids=[f"{c}-{i}" for i, (_, _, c, _, _) in enumerate(SPLIT)],
)
def test_each_check_reports_the_code_that_names_it(
    tmp_path: Path, rel: str, edit: Callable[[str], str], code: str, path: str, fragment: str
) -> None:
    found = errors(fleet(tmp_path, {rel: edit}))
    hits = [d for d in found if d.code == code and d.path == path]
    assert hits and fragment in hits[0].message, found
    assert hits[0].location.file.endswith(rel) and hits[0].location.line > 0


# ---------------------------------------------------------------------------- CLI


def test_rules_lists_e_and_pn_codes_in_text_and_json() -> None:
    runner = CliRunner()
    text = runner.invoke(cli, ["rules"])
    assert text.exit_code == 0
    assert re.search(r"^E203\s+error\s+Address inside the DHCP pool", text.stdout, re.M)
    assert re.search(r"^PN101\s+warning", text.stdout, re.M)
    items = json.loads(runner.invoke(cli, ["rules", "--format", "json"]).stdout)
    ids = {i["id"] for i in items}
    assert set(CODES) <= ids and "PN101" in ids
    assert all(i["title"] and i["why"] for i in items)


def test_rules_explain_an_e_code() -> None:
    out = CliRunner().invoke(cli, ["rules", "--explain", "e203"])
    assert out.exit_code == 0
    assert out.stdout == CODES["E203"].doc()
    assert "## Bad" in out.stdout and "## Good" in out.stdout
    bad = CliRunner().invoke(cli, ["rules", "--explain", "E999\x1b[31m"])
    assert bad.exit_code == 1 and "\x1b" not in bad.stderr


def test_machine_formats_carry_the_new_codes(tmp_path: Path) -> None:
    root = fleet(tmp_path, {B: sub('ip: "198.51.100.140"', 'ip: "198.51.100.175"')})
    runner = CliRunner()
    out = {f: runner.invoke(cli, ["validate", str(root), "--format", f]) for f in FORMATTERS}
    assert all(r.exit_code == 1 for r in out.values())
    assert any(d["code"] == "E203" for d in json.loads(out["json"].stdout))
    assert any(d["check_name"] == "E203" for d in json.loads(out["gitlab"].stdout))
    assert re.search(r"^::error .*title=E203", out["github"].stdout, re.M)
    run = json.loads(out["sarif"].stdout)["runs"][0]
    assert any(r["ruleId"] == "E203" for r in run["results"])
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "E203")
    assert rule["shortDescription"]["text"] == "Address inside the DHCP pool"
    assert rule["help"]["markdown"] == CODES["E203"].doc()


# ------------------------------------------------------------------------ snippet


def test_text_format_shows_the_line_with_a_caret_under_the_column(tmp_path: Path) -> None:
    root = fleet(tmp_path, {B: sub('ip: "198.51.100.140"', 'ip: "198.51.100.175"')})
    d = next(d for d in errors(root) if d.code == "E203")
    lines = format_text([d]).splitlines()
    assert lines[0].startswith(f"{d.location}: error[E203]")
    src = (root / B).read_text().splitlines()[d.location.line - 1]
    assert lines[1] == f"{d.location.line:>5} | {src}"
    caret = lines[2].index("^") - lines[1].index("|") - 2
    assert caret == d.location.col - 1 and src[caret] == '"'


@pytest.mark.parametrize(
    "edit",
    [
        sub("htpasswd: vault:brussels_03_htpasswd", f"htpasswd: {HUNTER}"),  # E100 on it
        sub("htpasswd: vault:brussels_03_htpasswd", f"pasword: {HUNTER}"),  # misspelled key
        sub('public_ip: "203.0.113.30"', f'public_ip: "{HUNTER}"'),  # secret in a wrong place
        # An E2xx error on a flow-style line that also holds a secret-like key.
        sub(
            "      - {service: pos1/api, path: /pos1/}",
            f"      - {{service: pos9/api, path: /pos1/, token: '{HUNTER}'}}",
        ),
        sub("      type: basic\n", f'      type: basic\n      client_secret: "{HUNTER}\n'),  # E001
    ],
    ids=["literal-secret", "misspelled-key", "secret-as-ip", "flow-style-neighbour", "syntax"],
)
def test_snippet_never_shows_a_secret(tmp_path: Path, edit: Callable[[str], str]) -> None:
    root = fleet(tmp_path, {B: edit})
    found = [d for d in diags(root) if d.location.file.endswith(B) and d.location.line]
    assert found
    text = format_text(found)
    assert "***" in text and HUNTER not in text
    proc = CliRunner().invoke(cli, ["validate", str(root)])
    assert proc.exit_code == 1 and HUNTER not in proc.output


def test_masking_keeps_other_values_and_moves_the_caret() -> None:
    line = "  ddns: {username: bob, password: 'a,b}', zone: example.com}"
    shown = masked_line(line, keys_only=False)
    text, col = shown.text, shown.column(line.index("zone"))
    assert text == "  ddns: {username: bob, password: ***, zone: example.com}"
    assert text[col:].startswith("zone")
    shown = masked_line('    password: "x y"  # note', keys_only=True)
    text, col = shown.text, shown.column(6)
    assert text == "    password: ***" and col == 6


@pytest.mark.parametrize(
    ("line", "value", "masked", "before"),
    [
        (
            '  - {name: pos1, ip: "10.9.0.10", services: [{name: api, port: 70000}]}',
            "70000",
            "  - {name: ***, ip: ***, services: [{name: ***, port: ***}]}",
            3,
        ),
        ("hosts: [{name: 'a, b', port: x}]  # why", "x", "hosts: [{name: ***, port: ***}]  ***", 1),
        ("ports: [1, 2, 70000]", "70000", "ports: [***, ***, ***]", 2),
        # a broken line (E001 shows keys only too): after a key, all up to ',' is value
        ("  x: {token: s3cret: x, port: 0}", "0}", "  x: {token: ***, port: ***}", 1),
    ],
)
def test_keys_only_masks_each_flow_value_and_keeps_the_caret_under_it(
    line: str, value: str, masked: str, before: int
) -> None:
    """A wrong value inside a flow mapping (E100 shows keys only) had its caret placed at
    the first value of the line: the whole rest of the line was one mask."""
    shown = masked_line(line, keys_only=True)
    assert shown.text == masked
    col = shown.column(line.index(value))
    assert shown.text[col:].startswith("***")
    assert shown.text[:col].count("***") == before  # under that value's mask


def test_snippet_escapes_control_characters_and_forged_file_names(tmp_path: Path) -> None:
    name = tmp_path / "store\n::error file=x::forged.yaml"
    name.write_text('id: x\nname: "a\x1b[31mred\x07\u202e"\nwan: {}\n')
    d = Diagnostic(Location(str(name), 2, 7), "E100", "bad")
    text = format_text([d])
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert len(text.splitlines()) == 3  # no line forged by the file name
    assert "\\x1b[31m" not in text  # E100 masks the value itself
    d2 = Diagnostic(Location(str(name), 2, 1), "E300", "other")
    shown = snippet(d2)
    assert shown[0].endswith('name: "a\\x1b[31mred\\x07\\u202e"') and shown[1].endswith("| ^")


def test_snippet_of_a_long_line_is_cut_around_the_caret(tmp_path: Path) -> None:
    f = tmp_path / "long.yaml"
    f.write_text("x: " + "a" * 500 + "TARGET" + "b" * 500 + "\n")
    d = Diagnostic(Location(str(f), 1, 504), "E300", "m")
    src, caret = snippet(d)
    assert len(src) < 130 and src.endswith("...")
    assert src[caret.index("^") :].startswith("TARGET")


def test_no_snippet_for_a_whole_file_or_an_unreadable_one(tmp_path: Path) -> None:
    assert snippet(Diagnostic(Location(str(tmp_path)), "E002", "m")) == []
    assert snippet(Diagnostic(Location("<builtin catalog>", 3, 1), "E100", "m")) == []
    assert snippet(Diagnostic(Location(str(tmp_path / "gone.yaml"), 3, 1), "E100", "m")) == []


# ------------------------------------------------------ every problem in one run


def test_a_type_error_hides_no_other_problem(tmp_path: Path) -> None:
    """The done-when of issue 7: type error, IP in the DHCP pool, unknown partner."""
    root = fleet(
        tmp_path,
        {
            B: lambda t: sub(
                "{name: api, port: 8080, tls: false}", '{name: api, port: "http", tls: false}'
            )(
                sub('ip: "198.51.100.140"', 'ip: "198.51.100.175"')(
                    sub("partner: deliverect", "partner: delivernot")(t)
                )
            )
        },
    )
    mine = [d for d in errors(root) if d.location.file.endswith(B)]
    got = {(d.code, d.path) for d in mine}
    assert got == {
        ("E100", "hosts[2].services[0].port"),
        ("E203", "hosts[1].ip"),
        ("E201", "integrations[0].partner"),
    }, mine


def test_salvage_drops_what_depends_on_a_cut_part(tmp_path: Path) -> None:
    """pos1 fails to validate: a route to pos1/api is not reported as unknown."""
    root = fleet(tmp_path, {B: sub('mac: "52:54:00:00:03:40"', "mac: 12")})
    mine = [d for d in errors(root) if d.location.file.endswith(B)]
    assert [d.code for d in mine] == ["E100"], mine


def test_salvage_after_a_cut_list_element_keeps_original_indices(tmp_path: Path) -> None:
    edit = sub("  - name: proxy\n", "  - name: proxy\n    bogus: 1\n")
    edit2 = sub('ip: "198.51.100.141"', 'ip: "198.51.100.180"')
    root = fleet(tmp_path, {B: lambda t: edit2(edit(t))})
    mine = {(d.code, d.path) for d in errors(root) if d.location.file.endswith(B)}
    assert ("E203", "hosts[2].ip") in mine and ("E100", "hosts[0].bogus") in mine, mine


# ------------------------------------------------------------- shared files once


def _coast_fleet(tmp_path: Path, group_edit: Callable[[str], str]) -> Path:
    """groups/coast.yaml used by 3 stores (the demo's two, plus brussels-03)."""
    return fleet(
        tmp_path,
        {
            "groups/coast.yaml": group_edit,
            B: sub("name: Brussel Zavel\n", "name: Brussel Zavel\ngroup: coast\n"),
        },
    )


@pytest.mark.parametrize(
    "group_edit",
    [
        sub("    isp: Telenet", "    ips: Telenet"),  # a key its stores need, misspelled
        sub("description:", "descripton:"),  # the group file itself invalid
        sub("defaults:\n", "defaults: [\n"),  # the group file does not parse
    ],
    ids=["typo-in-defaults", "typo-in-group-file", "syntax-error"],
)
def test_a_typo_in_a_group_file_gives_one_error(
    tmp_path: Path, group_edit: Callable[[str], str]
) -> None:
    root = _coast_fleet(tmp_path, group_edit)
    found = errors(root)
    assert len(found) == 1, found
    assert found[0].location.file.endswith("groups/coast.yaml")
    assert not any("unknown group" in d.message for d in found)
    res = analyze(root)
    ids = {ls.id for ls in res.fleet.sites}
    assert not ids & {"ostend-05", "bruges-06", "brussels-03"}  # none is built


def test_a_typo_in_fleet_defaults_gives_one_error(tmp_path: Path) -> None:
    root = fleet(tmp_path, {"fleet.yaml": sub("defaults:\n", "defaults:\n  wan: {ips: X}\n")})
    found = errors(root)
    assert len(found) == 1 and found[0].location.file.endswith("fleet.yaml"), found


def test_a_stores_own_problem_is_still_reported_beside_a_broken_group(tmp_path: Path) -> None:
    root = _coast_fleet(tmp_path, sub("description:", "descripton:"))
    f = root / B
    f.write_text(f.read_text().replace("partner: deliverect", "partner: delivernot"))
    codes = sorted(d.code for d in errors(root))
    assert codes == ["E100", "E201"], codes


def test_readme_example_is_what_validate_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"```\n(examples/demo-fleet/sites/gent-01\.yaml:19:9: error\[E203\].*?)```", readme, re.S
    )
    assert block, "README example missing"
    root = tmp_path / "examples" / "demo-fleet"
    shutil.copytree(DEMO, root)
    f = root / "sites" / "gent-01.yaml"
    f.write_text(f.read_text().replace('ip: "198.51.100.140"', 'ip: "198.51.100.160"', 1))
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(cli, ["validate", "examples/demo-fleet"]).stdout
    assert block.group(1) in out


def test_a_problem_needs_a_registered_code_first() -> None:
    from generator.spec.checks import Problem

    with pytest.raises(TypeError):
        Problem(("wan", "x"), "E205", "message", "expected")  # type: ignore[arg-type]
    with pytest.raises(UnregisteredCode):
        Problem("E299", ("wan",), "message", "expected")


def test_snippet_of_a_file_swapped_for_a_fifo_or_device_is_left_out(tmp_path: Path) -> None:
    """The bad state: a site file replaced by a FIFO (no writer: a blocking read would
    hang the report) or a link to a device after it was loaded. The snippet is judged
    on the file it opened, so it is left out and the report goes on."""
    fifo = tmp_path / "gent-01.yaml"
    os.mkfifo(fifo)
    device = tmp_path / "brugge-01.yaml"
    device.symlink_to("/dev/zero")
    real = tmp_path / "ok.yaml"
    real.write_text("id: ok\nname: Ok\n")
    diags = [
        Diagnostic(Location(str(fifo), 2, 1), "E300", "m"),
        Diagnostic(Location(str(device), 1, 1), "E300", "m"),
        Diagnostic(Location(str(real), 2, 7), "E300", "m"),
    ]
    text = format_text(diags)  # returns: the FIFO was not read
    assert text.count(" | ") == 2, text  # only ok.yaml's line and caret
    assert "    2 | name: Ok" in text
    assert snippet(diags[0]) == [] and snippet(diags[1]) == []


def test_snippet_judges_the_opened_file_not_an_earlier_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: a check of the path (stat) says regular file, then the path is swapped
    for a FIFO before it is opened. Whatever a stat of the path says, the report must
    not block (SIGALRM fails the test instead of hanging it)."""
    import signal

    fifo = tmp_path / "gent-01.yaml"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    monkeypatch.setattr(os, "stat", lambda *a, **k: regular)

    class Hung(BaseException):  # not an OSError: the reader must not swallow it
        pass

    def hung(signum: int, frame: object) -> None:
        raise Hung("the snippet reader blocked on a FIFO")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        assert snippet(Diagnostic(Location(str(fifo), 1, 1), "E300", "m")) == []
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_snippet_shows_the_bytes_that_were_validated(tmp_path: Path) -> None:
    """The bad state: a site file rewritten after it was loaded and before its problems
    are printed. The snippet must show the line that was validated (the one the message
    is about), not whatever the file holds now, and must not read the file again."""
    root = fleet(tmp_path, {})
    analysis = analyze(root)
    first = next(d for d in analysis.diagnostics if "/sites/" in d.location.file)
    bad = [d for d in analysis.diagnostics if d.location.file == first.location.file]
    site = Path(first.location.file)
    parsed = site.read_text().split("\n")
    site.write_text("replaced: after the load\n" * 200)
    text = format_text(bad)
    for d in bad:
        assert parsed[d.location.line - 1].strip() in text
    assert "replaced: after the load" not in text


def _caret_by_rebuilding(line: str, col: int, keys_only: bool) -> tuple[str, int]:
    """The snippet's masked text and caret as first written: mask, then measure the
    escaped prefix, per diagnostic (slow on long lines, obviously right)."""
    spans = _secret_spans(line, keys_only)
    out, pos, new_col = "", 0, col
    for a, b in spans:
        if col >= b:
            new_col -= (b - a) - len(MASK)
        elif col > a:
            new_col = len(out) + (a - pos)
        out += line[pos:a] + MASK
        pos = b
    text = out + line[pos:]
    return safe_text(text), len(safe_text(text[: max(new_col, 0)]))


@given(
    parts=st.lists(
        st.sampled_from(
            ["password: ", "token: 'a,b'", "user: bob", ", ", "{", "}", "\t", "\x1b", "é", "x"]
        ),
        max_size=14,
    ),
    keys_only=st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_a_line_masked_once_places_every_caret_as_masking_it_per_error_did(
    parts: list[str], keys_only: bool
) -> None:
    """Snippets mask a line once and look each caret up (so a long line with thousands
    of errors costs one pass); every column lands where masking per error put it."""
    line = "  ddns: " + "".join(parts)
    shown = masked_line(line, keys_only)
    for col in range(len(line) + 1):
        text, caret = _caret_by_rebuilding(line, col, keys_only)
        assert shown.shown == text
        assert shown.caret(shown.column(col)) == caret, (line, col)


# ------------------------------------------------------------- order and repeats


def _reference_unique_sorted(found: list[Diagnostic]) -> list[Diagnostic]:
    """What unique_sorted() promises, written the plain way (by Location objects)."""
    from dataclasses import replace

    seen: dict[tuple[object, ...], Diagnostic] = {}
    for d in found:
        key = (d.location, d.code, d.message, d.path, d.severity)
        if key not in seen:
            seen[key] = d
        elif seen[key].site != d.site:
            seen[key] = replace(seen[key], site="")
    return sorted(seen.values(), key=lambda d: (d.location, d.code, d.path, d.message))


_DIAG = st.builds(
    Diagnostic,
    location=st.builds(
        Location,
        file=st.sampled_from(["fleet.yaml", "sites/a.yaml", "sites/b.yaml", "sites/a.yaml2"]),
        line=st.integers(0, 3),
        col=st.integers(0, 3),
    ),
    code=st.sampled_from(["E101", "E102", "PN101", "PN202"]),
    message=st.sampled_from(["m", "n", ""]),
    severity=st.sampled_from(["error", "warning", "info"]),
    path=st.sampled_from(["", "wan", "wan.fqdn", "lan"]),
    site=st.sampled_from(["", "a", "b"]),
)


@given(st.lists(_DIAG, max_size=40))
@settings(max_examples=500, deadline=None)
def test_unique_sorted_orders_and_merges_as_promised(found: list[Diagnostic]) -> None:
    from generator.errors import unique_sorted

    # Diagnostic equality includes `site`: a problem shared by stores names none
    assert unique_sorted(found) == _reference_unique_sorted(found)


def test_safe_text_passes_printable_text_as_is() -> None:
    """safe_text() returns printable text untouched without its regex: no character it
    escapes is printable to str.isprintable(), over all of Unicode."""
    from generator.errors import UNSAFE_CHARS

    unsafe = [c for c in map(chr, range(0x110000)) if UNSAFE_CHARS.match(c)]
    assert unsafe and not any(c.isprintable() for c in unsafe)
    assert safe_text("a\u202eb\x00") == "a\\u202eb\\x00"


def test_memoized_snippets_are_drawn_per_diagnostic(tmp_path: Path) -> None:
    """Snippets are memoized by line, masking, number and column: the same source line
    under two codes is drawn for each (one masks its value, one does not)."""
    f = tmp_path / "s.yaml"
    f.write_text("wan:\n  name: abc\n")
    plain = Diagnostic(Location(str(f), 2, 9), "E101", "x")
    masked = Diagnostic(Location(str(f), 2, 9), "E101", "x", path="wan.password")
    assert snippet(plain) != snippet(masked)
    assert snippet(masked)[0].endswith(MASK)
    assert snippet(plain)[0].endswith("name: abc")
    assert snippet(plain) == snippet(Diagnostic(Location(str(f), 2, 9), "E101", "y"))
