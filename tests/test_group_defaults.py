"""A store's group comes from its own file: `group` among shared defaults is an error.

The store's layers (its file, its group's defaults, the fleet's) are chosen by the group
its own file names, before anything is merged. A `group` under fleet.yaml's or a group
file's `defaults` used to validate: the handover and the inventory showed the group while
none of its settings applied.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.pipeline import load_plans
from tests.test_bad_input import OS, C, diagnostics, errors, make_fleet, pos, sub


def test_a_default_group_in_fleet_yaml_is_an_error_at_its_line(tmp_path: Path) -> None:
    root, text = make_fleet(
        tmp_path, "fleet.yaml", sub("defaults:\n  edge:", "defaults:\n  group: coast\n  edge:")
    )
    errs = errors(root)
    assert [(e.code, e.path) for e in errs] == [("E100", "defaults.group")], errs
    e = errs[0]
    assert e.location.file.endswith("fleet.yaml")
    assert (e.location.line, e.location.col) == pos(text, "group: coast")
    assert "each store names its group in its own file" in e.message


def test_a_default_group_in_a_group_file_is_an_error_and_not_applied(tmp_path: Path) -> None:
    root, text = make_fleet(
        tmp_path,
        "groups/coast.yaml",
        sub("defaults:\n  wan:", "defaults:\n  group: inland\n  wan:"),
    )
    (root / "groups" / "inland.yaml").write_text(
        "group: inland\ndefaults:\n  edge: {egress: restricted}\n"
    )
    errs = errors(root)
    assert [(e.code, e.path) for e in errs] == [("E100", "defaults.group")], errs
    assert errs[0].location.file.endswith("groups/coast.yaml")
    assert (errs[0].location.line, errs[0].location.col) == pos(text, "group: inland")


def test_the_groups_a_store_names_itself_still_apply(tmp_path: Path) -> None:
    """The guard above takes nothing from a store's own `group:` (bruges-06 and
    ostend-05 are in coast, whose default ISP they get)."""
    root, _ = make_fleet(tmp_path, "groups/coast.yaml", sub("isp: Telenet", "isp: Proximus"))
    assert [d for d in diagnostics(root) if d.severity == "error"] == []
    _, plans = load_plans(root)
    by_id = {p.site_id: p for p in plans}
    assert by_id["bruges-06"].group == "coast"
    assert by_id["bruges-06"].wan.isp == "Proximus"


@pytest.mark.parametrize(
    ("rel", "first_key", "written"),
    [("fleet.yaml", "edge", "id: gent-01"), ("groups/coast.yaml", "wan", "id: x")],
)
def test_a_default_id_in_fleet_yaml_or_a_group_file_is_an_error_not_silently_overridden(
    tmp_path: Path, rel: str, first_key: str, written: str
) -> None:
    """Every store's own `id:` replaced a default id, so `defaults.id` validated and
    meant nothing; a store that left its id out took the default and was told its id
    differs from its file name. Like `group`, an id is named in the store's own file."""
    old = f"defaults:\n  {first_key}:"
    root, text = make_fleet(tmp_path, rel, sub(old, f"defaults:\n  {written}\n  {first_key}:"))
    errs = errors(root)
    assert [(e.code, e.path) for e in errs] == [("E100", "defaults.id")], errs
    assert errs[0].location.file.endswith(rel)
    assert (errs[0].location.line, errs[0].location.col) == pos(text, written)


def _e102(root: Path) -> list[tuple[str, str, str, int, int]]:
    return [
        (d.location.file[len(str(root)) + 1 :], d.path, d.site, d.location.line, d.location.col)
        for d in diagnostics(root)
        if d.code == "E102"
    ]


def test_an_unknown_rule_in_a_group_no_store_names_is_an_error_at_its_line(
    tmp_path: Path,
) -> None:
    """E102 was checked per store only: `lint: {disable: [PN999]}` in the defaults of a
    group no store names disabled nothing, and nothing said so. A known id beside it is
    no error."""
    root, _ = make_fleet(tmp_path, "fleet.yaml", lambda raw: raw)
    text = "group: inland\ndefaults:\n  lint: {disable: [PN101, PN999]}\n"
    (root / "groups" / "inland.yaml").write_text(text)
    found = _e102(root)
    at = pos(text.encode(), "PN999")
    assert found == [("groups/inland.yaml", "defaults.lint.disable[1]", "", *at)], found
    assert [e.message for e in errors(root)] == ["unknown lint rule 'PN999'"]


def test_an_unknown_rule_in_shared_defaults_stores_inherit_is_reported_once(
    tmp_path: Path,
) -> None:
    """Inherited by every store of the fleet, or of the group coast, it is one error at
    the shared file's line, not one per store; a store's own list is its own error."""
    root, text = make_fleet(
        tmp_path / "f", "fleet.yaml", sub("defaults:\n", "defaults:\n  lint: {disable: [PN997]}\n")
    )
    assert _e102(root) == [("fleet.yaml", "defaults.lint.disable[0]", "", *pos(text, "PN997"))]
    root, text = make_fleet(tmp_path / "c", C, lambda raw: raw + b"  lint: {disable: [PN998]}\n")
    assert _e102(root) == [
        ("groups/coast.yaml", "defaults.lint.disable[0]", "", *pos(text, "PN998"))
    ]
    root, text = make_fleet(tmp_path / "s", OS, lambda raw: raw + b"lint: {disable: [PN996]}\n")
    assert _e102(root) == [
        ("sites/ostend-05.yaml", "lint.disable[0]", "ostend-05", *pos(text, "PN996"))
    ]
