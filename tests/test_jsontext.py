"""jsontext.dumps is json.dumps(value, indent=n, sort_keys=True): same text, or the same
error, for any value; the manifest and expectations.json are written with it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from generator import jsontext

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
keys = st.text() | st.integers() | st.floats() | st.booleans() | st.none()


def _values() -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=5)
            | st.lists(inner, max_size=3).map(tuple)
            | st.dictionaries(st.text(max_size=8), inner, max_size=5)
            | st.dictionaries(keys, inner, max_size=3)
        ),
        max_leaves=30,
    )


def _outcome(fn: Any, value: Any, indent: int) -> tuple[str, str]:
    try:
        return "ok", fn(value, indent)
    except (TypeError, ValueError) as exc:
        return "error", type(exc).__name__


@settings(max_examples=1500, deadline=None)
@given(_values(), st.sampled_from([0, 1, 2, 4]))
def test_same_text_or_same_error_as_the_stdlib(value: Any, indent: int) -> None:
    want = _outcome(lambda v, n: json.dumps(v, indent=n, sort_keys=True), value, indent)
    assert _outcome(jsontext.dumps, value, indent) == want


class _Str(str):
    pass


class _Int(int):
    pass


def test_subclasses_and_objects_json_cannot_encode_go_to_the_stdlib() -> None:
    value = {"a": [_Str("x"), _Int(3), {"b": (1.5, None)}], "c": {}}
    assert jsontext.dumps(value, 2) == json.dumps(value, indent=2, sort_keys=True)
    for bad in ({"a": object()}, [{"x": {1, 2}}]):
        try:
            json.dumps(bad, indent=2, sort_keys=True)
        except TypeError as exc:
            want = str(exc)
        try:
            jsontext.dumps(bad, 2)
        except TypeError as exc:
            assert str(exc) == want
        else:
            raise AssertionError("no TypeError")


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _values(), max_size=4), st.sampled_from([0, 1, 2]))
def test_a_document_put_together_from_its_parts_texts_is_the_same_text(
    doc: dict[str, Any], indent: int
) -> None:
    """build.manifest_text reuses the text of each unchanged store's entry."""
    try:
        want = json.dumps(doc, indent=indent, sort_keys=True)
    except (TypeError, ValueError):
        return
    if not doc:
        return
    step = "\n" + " " * indent
    parts = [
        f"{step}{jsontext.quote(k)}: {jsontext.dumps_at(doc[k], indent, 1)}" for k in sorted(doc)
    ]
    assert "{" + ",".join(parts) + "\n}" == want
