"""Every lint rule is a documented, tested unit.

One parametrised test runs each rule's fail and pass fixture (tests/lint_fixtures/<ID>.yaml:
edits to a copy of the demo fleet): the rule fires for the fixture's store on fail and
not on pass. A meta-test fails when a rule lacks documentation or a fixture.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from generator import lint
from generator.cli import cli
from generator.lint import LintContext, all_rules
from generator.pipeline import load_plans
from generator.spec.locate import deep_merge
from generator.yamlload import load_bytes, load_file
from tests.conftest import DEMO
from tests.test_bad_input import diagnostics, make_fleet, sub

FIXTURES = Path(__file__).parent / "lint_fixtures"
RULE_IDS = [r.id for r in all_rules()]


def _apply(root: Path, edits: list[dict[str, str]]) -> None:
    for e in edits:
        path = root / e["file"]
        text = path.read_text()
        if "append" in e:
            text += e["append"]
        else:
            assert text.count(e["old"]) == 1, f"demo changed: {e['old']!r} not found once"
            text = text.replace(e["old"], e["new"])
        path.write_text(text)


def fired(tmp_path: Path, rule_id: str, case: dict[str, Any]) -> list[str]:
    """Messages of `rule_id` for the case's store, after the case's edits to the demo."""
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    _apply(root, case["edits"])
    fleet, plans = load_plans(root)
    assert fleet.ok, [d.message for d in fleet.diagnostics if d.severity == "error"]
    ctx = LintContext(tunnel_limit=case.get("tunnel_limit", 5))
    return [
        f.finding.message
        for f in lint.run(plans, ctx=ctx)
        if f.rule.id == rule_id and f.finding.site == case["site"]
    ]


@pytest.mark.parametrize("rule_id", RULE_IDS)
@pytest.mark.parametrize("kind", ["fail", "pass"])
def test_rule_fixture(tmp_path: Path, rule_id: str, kind: str) -> None:
    spec = yaml.safe_load((FIXTURES / f"{rule_id}.yaml").read_text())
    messages = fired(tmp_path, rule_id, spec[kind])
    if kind == "fail":
        assert messages, f"{rule_id} does not fire on its fail fixture"
    else:
        assert not messages, f"{rule_id} fires on its pass fixture: {messages}"


def test_every_rule_has_docs_and_fixtures() -> None:
    ids = set(RULE_IDS)
    assert {p.stem for p in FIXTURES.glob("*.yaml")} == ids, "fixture files and rules differ"
    assert {p.stem for p in lint.DOCS.glob("*.md")} == ids, "doc files and rules differ"
    for r in all_rules():
        doc = r.doc()
        assert doc.startswith(f"# {r.id} {r.title}\n"), r.id
        parts = re.split(r"^## (Bad|Good)\n", doc, flags=re.M)
        assert len(parts) == 5 and parts[1] == "Bad" and parts[3] == "Good", r.id
        assert len(parts[0].split()) > 20, f"{r.id}: explanation too short"
        for example in (parts[2], parts[4]):
            assert re.search(r"```yaml\n.+\n```", example, re.S), f"{r.id}: example not yaml"
        spec = yaml.safe_load((FIXTURES / f"{r.id}.yaml").read_text())
        assert {"fail", "pass"} <= set(spec), r.id
        assert spec["fail"] != spec["pass"], f"{r.id}: pass and fail fixtures are the same"


def _examples(doc: str) -> dict[str, tuple[str | None, Any]]:
    """'Bad' and 'Good' -> (the file its first comment names, if any; its YAML data)."""
    parts = re.split(r"^## (Bad|Good)\n", doc, flags=re.M)
    out = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        found = re.search(r"```yaml\n(.+?\n)```", body, re.S)
        assert found, name
        block = found.group(1)
        first = block.splitlines()[0]
        named = re.search(r"\b((?:sites/)?[\w.-]+\.yaml)\b", first) if first[0] == "#" else None
        out[name] = (named.group(1) if named else None, load_bytes(block.encode(), name).data)
    return out


def _within(example: Any, target: Any) -> bool:
    """Whether `example` is an excerpt of `target`: its keys with their values (`...`
    elides the rest), each of its list entries an excerpt of one of target's (an empty
    list only of an empty list)."""
    if isinstance(example, dict):
        return isinstance(target, dict) and all(
            k == "..." or (k in target and _within(v, target[k])) for k, v in example.items()
        )
    if isinstance(example, list):
        if not isinstance(target, list) or (not example and target):
            return False
        return all(any(_within(e, t) for t in target) for e in example)
    return type(example) is type(target) and example == target


def _anywhere(example: Any, target: Any) -> bool:
    if _within(example, target):
        return True
    values = target.values() if isinstance(target, dict) else target
    return isinstance(target, dict | list) and any(_anywhere(example, v) for v in values)


@pytest.mark.parametrize("rule_id", RULE_IDS)
@pytest.mark.parametrize(("example", "kind"), [("Bad", "fail"), ("Good", "pass")])
def test_doc_examples_are_what_the_fixtures_test(
    tmp_path: Path, rule_id: str, example: str, kind: str
) -> None:
    """`posnet rules --explain` shows a bad and a good example: each is an excerpt of the
    fleet its fixture runs the rule on (fail: the rule fires, pass: it does not), so no
    example can show a configuration that does not do what it claims. The file is the
    one its first comment names (sites/ID.yaml, fleet.yaml), else the fixture's store
    with its defaults merged in."""
    rule = lint.rule(rule_id)
    assert rule is not None
    named, data = _examples(rule.doc())[example]
    case = yaml.safe_load((FIXTURES / f"{rule_id}.yaml").read_text())[kind]
    root = tmp_path / "fleet"
    shutil.copytree(DEMO, root)
    _apply(root, case["edits"])
    if named is not None:
        target = load_file(root / named).data
    else:
        site = load_file(root / "sites" / f"{case['site']}.yaml").data
        fleet = load_file(root / "fleet.yaml").data
        group = load_file(root / "groups" / f"{site['group']}.yaml").data if "group" in site else {}
        target = deep_merge(deep_merge(fleet.get("defaults", {}), group.get("defaults", {})), site)
    assert _anywhere(data, target), (
        f"{rule_id}: the {example} example of docs/{rule_id}.md is not in the fleet its "
        f"{kind} fixture (tests/lint_fixtures/{rule_id}.yaml) tests"
    )


def test_pn109_ignores_a_fleet_defined_auth_websocket_partner(tmp_path: Path) -> None:
    """The false positive from issue 7: any auth_websocket partner's settings file was
    taken for a payment device without fallback unless the partner was 'powerepos'."""
    case = {
        "site": "bruges-06",
        "edits": [
            {
                "file": "fleet.yaml",
                "old": "partners:\n",
                "new": "partners:\n  acme-ws:\n    title: Acme WS\n"
                '    patterns: [auth_websocket]\n    sources: ["198.51.100.0/28"]\n'
                "    auth_websocket: {auth_path: /auth, token_query_param: token}\n",
            },
            {
                "file": "sites/bruges-06.yaml",
                "old": "  - partner: powerepos\n",
                "new": "  - partner: acme-ws\n",
            },
        ],
    }
    assert fired(tmp_path, "PN109", case) == []
    # ... while a cloud connector without fallback still fires, for its partner only.
    case["edits"].append(
        {"file": "sites/bruges-06.yaml", "old": "    local_fallback_port: 9100\n", "new": ""}
    )
    shutil.rmtree(tmp_path / "fleet")
    assert fired(tmp_path, "PN109", case) == [
        "ppaas: payment devices have no local fallback when the cloud is unreachable"
    ]


def test_rules_explain_prints_the_docs() -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["rules", "--explain", "PN203"])
    assert out.exit_code == 0, out.output
    assert out.stdout == lint.rule("PN203").doc()  # type: ignore[union-attr]
    bad = runner.invoke(cli, ["rules", "--explain", "PN999"])
    assert bad.exit_code == 1
    assert "no code 'PN999'" in bad.stderr and "PN101" in bad.stderr


@pytest.mark.parametrize(
    ("service", "shown"),
    [
        ("{name: api, port: 8080, tls: false}", "plain HTTP"),
        ("{name: api, port: 8080, tls: false, http: false}", "plain TCP"),
        ("{name: api, port: 8080, tls: false, http: false, protocol: udp}", "plain UDP"),
    ],
)
def test_pn106_names_the_protocol_it_forwards(tmp_path: Path, service: str, shown: str) -> None:
    """A UDP service was called 'plain TCP' (the firewall rules were right)."""
    root, _ = make_fleet(
        tmp_path,
        "sites/antwerp-02.yaml",
        sub("{name: api, port: 8080, tls: false}", service),
    )
    found = [d for d in diagnostics(root) if d.code == "PN106"]
    assert [d.message for d in found] == [
        f"public port 28080 forwards to {shown} on till1:8080; traffic crosses the internet "
        "unencrypted"
    ]


def test_pn109_points_at_the_integration_with_the_devices(tmp_path: Path) -> None:
    """It pointed at `integrations`, the whole list, not at the one to fix."""
    root, text = make_fleet(
        tmp_path, "sites/bruges-06.yaml", sub("    local_fallback_port: 9100\n", "")
    )
    (found,) = [d for d in diagnostics(root) if d.code == "PN109"]
    index = [line.strip() for line in text.decode().splitlines() if "- partner:" in line].index(
        "- partner: ppaas"
    )
    assert found.path == f"integrations[{index}]"
    assert found.location.line == text.decode().splitlines().index("  - partner: ppaas") + 1


def test_pn203_points_at_the_route_it_names(tmp_path: Path) -> None:
    """It pointed at `integrations`, the whole list: the route is the line to look at
    (routes[0] of mechelen-hq's proxy goes to gent-01, which stops admitting it)."""
    root, _ = make_fleet(
        tmp_path,
        "sites/gent-01.yaml",
        sub('sources: ["198.51.100.0/28", "203.0.113.20"]', 'sources: ["198.51.100.0/28"]'),
    )
    (found,) = [d for d in diagnostics(root) if d.code == "PN203"]
    assert found.path == "integrations[0].routes[0]"
    hq = (root / "sites/mechelen-hq.yaml").read_text().splitlines()
    assert (
        found.location.line
        == hq.index("      - {site: gent-01, site_service: pos1/api, path: /gent-01/}") + 1
    )
