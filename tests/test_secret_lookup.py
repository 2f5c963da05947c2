"""The posnet_secret lookup: whole-file secrets keep their lines, in-line values may not."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest
from ansible.errors import AnsibleError

from tests.conftest import load_playbook_plugin, require_tool

PEM = "-----BEGIN PRIVATE KEY-----\nMIIB\nVQ==\n-----END PRIVATE KEY-----\n"


def lookup(tmp_path: Path, *terms: str, **kwargs: bool) -> list[str]:
    mod = load_playbook_plugin("lookup_plugins", "posnet_secret")
    plugin = mod.LookupModule()
    result: list[str] = plugin.run(list(terms), {"posnet_secrets_dir": str(tmp_path)}, **kwargs)
    return result


def test_a_pem_file_resolves_whole_and_passes_the_check(tmp_path: Path) -> None:
    (tmp_path / "proxy.key").write_text(PEM)
    assert lookup(tmp_path, "file:proxy.key") == [PEM]
    assert lookup(tmp_path, "file:proxy.key", check=True) == ["resolved"]


@pytest.mark.parametrize("value", ["first\nsecond", "a\rb", "nul\0byte"])
def test_one_line_refuses_a_line_break_naming_the_reference_only(
    tmp_path: Path, value: str
) -> None:
    (tmp_path / "token").write_text(value)
    for check in (True, False):
        with pytest.raises(AnsibleError) as err:
            lookup(tmp_path, "file:token", check=check, one_line=True)
        assert str(err.value) == "posnet secret file:token: holds a line break, refused"


def test_one_line_keeps_a_value_ending_in_a_newline(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cr3t\n")
    assert lookup(tmp_path, "file:token", check=True, one_line=True) == ["resolved"]


def test_a_file_outside_the_secrets_dir_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "secrets"
    inside.mkdir()
    (tmp_path / "other").write_text("x")
    mod = load_playbook_plugin("lookup_plugins", "posnet_secret")
    with pytest.raises(AnsibleError, match="outside posnet_secrets_dir, refused"):
        mod.LookupModule().run(["file:../other"], {"posnet_secrets_dir": str(inside)})


class _Templar:
    def template(self, value: object) -> object:
        return value


def vault_lookup(vault: dict[str, object], *terms: str) -> list[str]:
    mod = load_playbook_plugin("lookup_plugins", "posnet_secret")
    plugin = mod.LookupModule()
    plugin._templar = _Templar()
    result: list[str] = plugin.run(list(terms), {"posnet_vault": vault}, one_line=True)
    return result


@pytest.mark.parametrize(
    ("entry", "what"),
    [
        (None, "empty"),
        (True, "bool"),
        (493, "int"),
        (1.5, "float"),
        (["a"], "list"),
        (b"hello", "bytes"),  # !!binary
        ({"a", "b"}, "set"),  # !!set
        (datetime.date(2001, 12, 14), "date"),  # an unquoted date
    ],
)
def test_a_vault_entry_that_is_not_text_is_refused(entry: object, what: str) -> None:
    """`brussels_03_pw:` left empty resolved to the password "None" (`yes`: "True",
    `0755`: "493"), and a public proxy would have been hashed that password."""
    with pytest.raises(AnsibleError) as err:
        vault_lookup({"pw": entry}, "vault:pw")
    assert str(err.value) == (
        f"posnet secret vault:pw: not a text in the posnet_vault mapping ({what}); quote it"
    )
    assert vault_lookup({"pw": "s3cr3t"}, "vault:pw") == ["s3cr3t"]


@pytest.mark.parametrize("value", ["", "\n", "   "])
def test_an_empty_secret_is_refused(tmp_path: Path, value: str) -> None:
    (tmp_path / "pw").write_text(value)
    with pytest.raises(AnsibleError, match=r"^posnet secret file:pw: empty, refused$"):
        lookup(tmp_path, "file:pw")
    with pytest.raises(AnsibleError, match=r"^posnet secret vault:pw: empty, refused$"):
        vault_lookup({"pw": value}, "vault:pw")


def test_a_secret_file_that_is_not_text_names_no_byte(tmp_path: Path) -> None:
    """A UnicodeDecodeError's message quotes the offending byte and its position."""
    (tmp_path / "key.der").write_bytes(b"\x30\x82\xff\xfe secret")
    with pytest.raises(AnsibleError) as err:
        lookup(tmp_path, "file:key.der")
    assert str(err.value) == "posnet secret file:key.der: not UTF-8 text (a PEM file, a password)"


def _ddclient_password_rule() -> str:
    """The regex the installed ddclient reads `password=` lines with."""
    exe = Path(require_tool("ddclient"))
    lines = exe.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "parsing passwords is special" in line)
    rule = lines[at + 1].strip()
    assert rule.startswith("if (/") and rule.endswith(") {"), rule
    return rule[len("if (") : -len(") {")]


@pytest.mark.parametrize("password", ["pa'ss\\word#1", "'quoted'", "back\\", "a b,c=d"])
def test_ddclient_reads_the_filled_password_as_it_was(password: str) -> None:
    """posnet_fill escaped ' and \\ for ddclient, which does not unescape: the login
    then failed with a password that was not the one in the vault."""
    from generator.pipeline import load_plans
    from generator.targets import ddclient
    from tests.conftest import DEMO

    plans = {p.site_id: p for p in load_plans(DEMO)[1]}
    plan = plans["leuven-04"]
    assert plan.ddns is not None
    text = ddclient.render(plan)["ddns/ddclient.conf"]
    fill = load_playbook_plugin("filter_plugins", "posnet_fill").posnet_fill
    spec = {"marker": plan.ddns.password.marker, "style": "ddclient", "ref": "vault:x"}
    filled = fill(text, [spec], [password])
    line = next(x for x in filled.splitlines() if x.startswith("password="))
    script = (
        "$_ = <STDIN>; chomp; if (" + _ddclient_password_rule() + ") "
        "{ my $v = $3; $v = $1 if $v =~ /^'(.*)'$/; print $v } else { print 'NO MATCH' }"
    )
    read = subprocess.run(
        [require_tool("perl"), "-e", script], input=line + "\n", capture_output=True, text=True
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout == password
