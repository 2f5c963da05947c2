"""The loader's two paths agree, and a huge document is refused before it is built.

Plain documents are read through libyaml (yamlload's fast path) and everything else
through ruamel; the module promises that the fast path yields exactly what ruamel would:
the same data and the same line and column for every key and value. These tests hold
it to that on generated documents (accented and other non-ASCII text included, since
the fast path takes it) and on every YAML file of the repository.

The value budget (README: at most 200,000 values in a document) is enforced while a
parser emits events: a document past it is refused where the first value too many
starts, and nothing is built or walked first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import yamlload
from generator.errors import PosnetError
from generator.yamlload import Document, loads, ruamel_loads

ROOT = Path(__file__).resolve().parent.parent

# Letters a store's names and notes hold, in several scripts and planes.
_TEXT = st.text(
    alphabet=st.sampled_from([*"abcXYZ09 -_.éèüßøÅłŞΩжД中文ñ😀€", "\u00a0"]),
    min_size=1,
    max_size=8,
).filter(lambda t: t.strip() == t and t[0].isalpha())  # text, never a number or null
_SCALAR = st.one_of(
    _TEXT,
    st.integers(-1000, 70000),
    st.booleans(),
    _TEXT.map(lambda t: ("'", t)),
    _TEXT.map(lambda t: ('"', t)),
)
_NODE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=4),
        st.dictionaries(_TEXT, inner, min_size=1, max_size=4),
    ),
    max_leaves=12,
)


# Keys: plain, quoted, or plain text that is not a string (a number, a boolean, null).
_KEY = st.one_of(
    _TEXT,
    _TEXT.map(lambda t: f"'{t}'"),
    _TEXT.map(lambda t: f'"{t}"'),
    st.sampled_from(["1", "true", "null", "~"]),
)


def _scalar(value: Any) -> str:
    if isinstance(value, tuple):
        quote, text = value
        return f"{quote}{text}{quote}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _block(value: Any, indent: int, flow_below: int, comment: str = "  # é") -> list[str]:
    """Lines of `value` as a block collection, switching to flow style at some depth."""
    pad = " " * indent
    if flow_below <= 0 or not isinstance(value, dict | list):
        return [pad + _flow(value)]
    lines = []
    items = value.items() if isinstance(value, dict) else [("-", v) for v in value]
    for key, sub in items:
        head = f"{pad}{key}:" if isinstance(value, dict) else f"{pad}-"
        if isinstance(sub, dict | list) and flow_below > 1:
            lines.append(head + comment)
            lines.extend(_block(sub, indent + 2, flow_below - 1, comment))
        else:
            lines.append(f"{head} {_flow(sub)}")
    return lines


def _same(fast: Document, slow: Document) -> None:
    assert fast.data == slow.data
    assert fast.positions.values == slow.positions.values
    assert fast.positions.keys == slow.positions.keys


@given(
    data=st.dictionaries(_KEY, _NODE, min_size=1, max_size=5),
    flow_below=st.integers(1, 4),
    comment=st.sampled_from(["  # é", "  # plain ASCII", ""]),
)
@settings(max_examples=300, deadline=None)
def test_the_fast_path_reads_non_ascii_documents_exactly_as_ruamel(
    data: dict[str, Any], flow_below: int, comment: str
) -> None:
    text = "\n".join(_block(data, 0, flow_below, comment)) + "\n"
    try:
        slow = ruamel_loads(text, "gen.yaml")
    except PosnetError:
        assert yamlload._fast_loads(text, "gen.yaml") is None
        return
    fast = yamlload._fast_loads(text, "gen.yaml")
    assert fast is not None, text  # printable non-ASCII stays on the fast path
    _same(fast, slow)


# Characters where the fast path's test must answer exactly: each one it refuses
# (controls, tab, CR, DEL, tag and escape characters, NEL, Unicode line breaks, BOM,
# surrogate-adjacent and private-use code points) and plain text around them.
_EDGE_CHARS = [
    *"\x00\x01\t\r\x1b\x7f\x85\x9f\xa0\u2028\u2029\ud7ff\ue000\ufeff\uffff\ufffd",
    *"!\\%#&*-:'\" \n\n",
    *"aZ9é中😀",
]


@given(st.text(alphabet=st.sampled_from(_EDGE_CHARS), max_size=40))
@settings(max_examples=2000, deadline=None)
def test_the_ascii_shortcut_decides_the_fast_path_as_the_pattern_does(text: str) -> None:
    """_fast_text() answers for ASCII text without the regular expression (20 times
    faster on a store file): it must agree with _NOT_FAST on every text."""
    assert yamlload._fast_text(text) is (yamlload._NOT_FAST.search(text) is None)


# What the fast path reads itself (plain and quoted scalars) and what it leaves to ruamel
# (anchors, tags, block scalars, a plain scalar ruamel reads as more than an int, a
# bool or text), as a mapping's value and as a list's item.
_FAST_ITEMS = ["x", "1", "true", "~", "'1'", '"x"']
_SLOW_ITEMS = ["&a x", "!!str 1", "|\n    x", ">\n    x", "0x1", "1.5"]


@pytest.mark.parametrize("where", ["key: {}\n", "list:\n  - {}\n  - y\n"])
@pytest.mark.parametrize("item", _FAST_ITEMS + _SLOW_ITEMS)
def test_a_scalar_value_or_item_reads_as_ruamel_reads_it(where: str, item: str) -> None:
    text = "id: a\n" + where.format(item)
    fast = yamlload._fast_loads(text, "a.yaml")
    if item in _SLOW_ITEMS:
        assert fast is None, text
    else:
        assert fast is not None, text
        _same(fast, ruamel_loads(text, "a.yaml"))


def _repository_yaml() -> list[Path]:
    found = [*ROOT.glob("examples/**/*.y*ml"), *ROOT.glob("tests/**/*.y*ml")]
    return sorted(p for p in found if p.is_file())


def test_every_yaml_file_of_the_repository_reads_the_same_both_ways() -> None:
    files = _repository_yaml()
    assert len(files) >= 30
    taken = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            slow = ruamel_loads(text, str(path))
        except PosnetError:
            continue
        fast = yamlload._fast_loads(text, str(path))
        if fast is not None:
            taken += 1
            _same(fast, slow)
    assert taken >= len(files) // 2  # the comparison is not vacuous


def test_an_accented_store_takes_the_fast_path() -> None:
    text = (ROOT / "examples/demo-fleet/sites/brussels-03.yaml").read_text(encoding="utf-8")
    accented = text.replace("Brussel Zavel", "Liège Guillemins · 中央 😀")
    assert yamlload._fast_loads(accented, "b.yaml") is not None


# ------------------------------------------------------------------------ value budget


def _values(n: int) -> str:
    """A store-like document of exactly n values: the mapping, two texts, the list and
    its elements."""
    ones = ", ".join(["1"] * (n - 4))
    return f"id: big-01\nname: x\nlint: [{ones}]\n"


def _column_of_value(text: str, index: int) -> tuple[int, int]:
    """Line and column (1-based) of the index-th `1` of the lint list."""
    line_no = text.count("\n", 0, text.index("lint:")) + 1
    line = text.splitlines()[line_no - 1]
    return line_no, line.index("[") + 2 + 3 * index


@pytest.fixture(params=["fast", "ruamel", "ruamel-only"])
def path_taken(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """fast: plain text; ruamel: an escape sends it to ruamel, libyaml counts first;
    ruamel-only: no libyaml at all."""
    monkeypatch.setattr(yamlload, "NODE_BUDGET", 1000)
    if request.param == "ruamel-only":
        monkeypatch.setattr(yamlload, "_CParser", None)
    return str(request.param)


def _text_for(path_taken: str, n: int) -> str:
    text = _values(n)
    return text if path_taken == "fast" else text.replace("name: x", 'name: "x\\t"')


def test_a_document_at_the_value_budget_is_read(path_taken: str) -> None:
    doc = loads(_text_for(path_taken, 1000), "big.yaml")
    assert len(doc.data["lint"]) == 996


def test_a_document_past_the_value_budget_is_refused_before_it_is_built(
    path_taken: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_: object) -> None:
        raise AssertionError("the document was built or walked past the budget")

    monkeypatch.setattr(yamlload, "_Walker", never)
    if path_taken != "ruamel-only":  # libyaml counts; ruamel never starts
        monkeypatch.setattr(yamlload, "_check_events", never)
    if path_taken == "fast":  # the fast path refuses it itself: no second parse
        monkeypatch.setattr(yamlload, "_refuse_too_many_values", never)
    text = _text_for(path_taken, 1001)
    with pytest.raises(PosnetError) as caught:
        loads(text, "big.yaml")
    (diag,) = caught.value.diagnostics
    assert "too many values" in diag.message and "at most 1000 values" in diag.expected
    # the 1,001st value (element 996, counted from 0) is where the budget ran out
    line, col = _column_of_value(text, 996)
    assert (diag.location.line, diag.location.col) == (line, col)
