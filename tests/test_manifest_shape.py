"""valid_manifest() refuses every malformed name or hash wherever it sits among 10,000
stores' entries: it checks each distinct file name once and every hash in one pass, and
that shortcut must refuse exactly what a check of each value refuses."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.tree_guard import TreeError, _all_hexes, valid_manifest

Z = "0123456789abcdef" * 4
FILES = ["firewall/nftables.nft", "HANDOVER.md", "proxy/nginx.conf", "ddns/ddclient.conf"]


def _doc(stores: int = 300) -> dict[str, Any]:
    return {
        "fleet": "f",
        "generator": "posnet 0",
        "inventory": {"inventory/hosts.yml": Z},
        "sites": {
            f"s-{i:04d}": {"input": Z, "files": dict.fromkeys(FILES, Z)} for i in range(stores)
        },
    }


def _check(doc: dict[str, Any]) -> dict[str, Any]:
    return valid_manifest(Path("manifest.json"), json.dumps(doc).encode())


def test_a_well_formed_manifest_passes() -> None:
    assert _check(_doc()) == _doc()


BAD_HASHES: list[object] = [
    Z.upper(),
    Z[:-1],
    Z + "0",
    Z[:-1] + "\u0663",  # an Arabic-Indic digit three: a digit, not a hex digit
    Z[:-1] + "g",
    Z[:-1] + " ",
    "",
    7,
    None,
    [Z],
    {"h": Z},
]
BAD_NAMES = ["../x", "a/../../x", "/abs", "a//b", "./a", "a/.", "", "a\\b", "x\0y", "a" * 4097]


@pytest.mark.parametrize("where", [0, 150, 299])
@pytest.mark.parametrize("bad", BAD_HASHES, ids=repr)
def test_one_bad_file_hash_anywhere_is_refused(where: int, bad: object) -> None:
    doc = _doc()
    doc["sites"][f"s-{where:04d}"]["files"]["HANDOVER.md"] = bad
    with pytest.raises(TreeError, match="damaged manifest"):
        _check(doc)


@pytest.mark.parametrize("bad", BAD_HASHES, ids=repr)
def test_a_bad_input_or_inventory_hash_is_refused(bad: object) -> None:
    doc = _doc()
    doc["sites"]["s-0299"]["input"] = bad
    with pytest.raises(TreeError):
        _check(doc)
    doc = _doc()
    doc["inventory"]["inventory/hosts.yml"] = bad
    with pytest.raises(TreeError):
        _check(doc)


@pytest.mark.parametrize("where", [0, 150, 299])
@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
def test_one_bad_file_name_anywhere_is_refused(where: int, bad: str) -> None:
    doc = _doc()
    doc["sites"][f"s-{where:04d}"]["files"][bad] = Z
    with pytest.raises(TreeError, match="outside its store"):
        _check(doc)


def test_a_bad_entry_after_good_ones_is_refused() -> None:
    doc = _doc()
    broken = copy.deepcopy(doc)
    broken["sites"]["s-0299"] = {"input": Z, "files": [Z]}
    with pytest.raises(TreeError):
        _check(broken)
    broken = copy.deepcopy(doc)
    broken["sites"]["s-0299"]["extra"] = 1
    with pytest.raises(TreeError):
        _check(broken)


_ONE = re.compile(r"[0-9a-f]{64}")
HEXISH = st.text(alphabet="0123456789abcdefABCDEF\u0663g", min_size=62, max_size=66)
VALUES = st.one_of(HEXISH, st.text(), st.integers(), st.none(), st.just(Z))


@given(st.lists(VALUES, max_size=12))
def test_all_hexes_is_the_per_value_check(values: list[object]) -> None:
    one_by_one = all(isinstance(v, str) and _ONE.fullmatch(v) for v in values)
    assert _all_hexes(values) == one_by_one
