"""The posnet_secret lookup: whole-file secrets keep their lines, in-line values may not."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleError

from tests.conftest import load_playbook_plugin

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
