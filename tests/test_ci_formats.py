"""Machine formats that hold at scale (issue 11, item 4): every format of `validate` and
`render --check` parses as what it claims to be, GitHub annotations stay within what
GitHub shows (10 per type and step) with every finding in the job summary, and SARIF
rules carry full descriptions and help."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from generator.errors import GITHUB_CAP, Diagnostic, Location, format_github
from tests.treeutil import copy_demo, posnet

WORKFLOW = re.compile(r"^::(error|warning|notice) [^:]*::.*$")


@pytest.fixture()
def stale_tree(tmp_path: Path) -> tuple[Path, Path]:
    """The demo fleet rendered, then one file edited, one removed, one stray added."""
    fleet = copy_demo(tmp_path / "fleet")
    out = tmp_path / "build"
    assert posnet("render", fleet, "-o", out).returncode == 0
    (out / "sites" / "gent-01" / "HANDOVER.md").write_text("edited by hand\n")
    (out / "sites" / "gent-01" / "expectations.json").unlink()
    (out / "sites" / "gent-01" / "stray.txt").write_text("left over\n")
    return fleet, out


def _codes(findings: list[dict[str, object]]) -> set[object]:
    return {f["code"] for f in findings}


def test_check_json_is_one_document(stale_tree: tuple[Path, Path]) -> None:
    fleet, out = stale_tree
    res = posnet("render", fleet, "-o", out, "--check", "--format", "json")
    assert res.returncode == 1
    findings = json.loads(res.stdout)  # the whole stdout: nothing printed after it
    assert {"E401", "E402", "E403"} <= _codes(findings)
    assert "PN101" in _codes(findings)  # lint findings travel in the same document
    files = {f["location"]["file"] for f in findings if str(f["code"]).startswith("E40")}
    gent = out / "sites" / "gent-01"
    assert files == {str(gent / n) for n in ("HANDOVER.md", "expectations.json", "stray.txt")}


def test_check_github_is_workflow_commands_only(stale_tree: tuple[Path, Path]) -> None:
    fleet, out = stale_tree
    res = posnet("render", fleet, "-o", out, "--check", "--format", "github")
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert lines and all(WORKFLOW.match(line) for line in lines), res.stdout
    assert any("title=E401" in line and "HANDOVER.md" in line for line in lines)


def test_check_sarif_and_gitlab_parse(stale_tree: tuple[Path, Path]) -> None:
    fleet, out = stale_tree
    sarif = json.loads(posnet("render", fleet, "-o", out, "--check", "--format", "sarif").stdout)
    rules = {r["id"]: r for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {"E401", "E402", "E403", "PN101"} <= set(rules)
    gitlab = json.loads(posnet("render", fleet, "-o", out, "--check", "--format", "gitlab").stdout)
    assert {"E401", "E402", "E403"} <= {f["check_name"] for f in gitlab}


@pytest.mark.parametrize("fmt", ["json", "sarif", "gitlab", "github"])
def test_validate_formats_parse(tmp_path: Path, fmt: str) -> None:
    fleet = copy_demo(tmp_path / "fleet")
    res = posnet("validate", fleet, "--format", fmt)
    assert res.returncode == 0
    if fmt == "github":
        assert all(WORKFLOW.match(line) for line in res.stdout.splitlines())
    else:
        assert json.loads(res.stdout)


def test_sarif_rules_have_full_descriptions_and_help(tmp_path: Path) -> None:
    fleet = copy_demo(tmp_path / "fleet")
    doc = json.loads(posnet("validate", fleet, "--format", "sarif").stdout)
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert rules
    for rule in rules:
        assert rule["fullDescription"]["text"] and rule["shortDescription"]["text"], rule
        assert rule["help"]["markdown"].strip(), rule
    pn101 = next(r for r in rules if r["id"] == "PN101")
    assert "static IP" in pn101["help"]["markdown"]  # the rule's own docs, not a stub


def _many(n: int, severity: str) -> list[Diagnostic]:
    return [
        Diagnostic(Location(f"sites/s-{i:03d}.yaml", 3, 5), "PN101", f"finding {i}", severity)  # type: ignore[arg-type]
        for i in range(n)
    ]


def test_github_annotations_are_capped_with_the_rest_in_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    diags = _many(25, "warning") + _many(3, "error")
    lines = format_github(diags).splitlines()
    assert sum(line.startswith("::warning ") for line in lines) == GITHUB_CAP
    assert sum(line.startswith("::error ") for line in lines) == 3
    notice = [line for line in lines if line.startswith("::notice ")]
    assert len(notice) == 1 and "15 more finding(s)" in notice[0] and "job summary" in notice[0]
    table = summary.read_text()
    assert table.count("| warning | PN101 |") == 25 and table.count("| error |") == 3


def test_github_without_summary_file_says_where_to_look(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    lines = format_github(_many(12, "info")).splitlines()
    assert sum(line.startswith("::notice file=") for line in lines) == GITHUB_CAP
    assert "2 more finding(s)" in lines[-1] and "--format text or json" in lines[-1]


def test_summary_cells_cannot_break_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    hostile = Diagnostic(Location("a|b\n| x |.yaml", 1, 1), "PN101", "m|<script>\nnext")
    format_github([hostile])
    rows = summary.read_text().splitlines()
    assert len(rows) == 5  # heading, blank, header, rule, one row
    assert "<script>" not in rows[-1]


def test_the_job_summary_stays_under_githubs_limit_and_the_notice_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """7,000 findings wrote 1.16 MB (GitHub refuses a step summary over 1 MiB, and then
    shows none) while the notice said all were listed there."""
    from generator.errors import SUMMARY_LIMIT

    summary = tmp_path / "summary.md"
    summary.write_text("x" * 900_000)  # what an earlier posnet step wrote
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    diags = _many(7000, "warning")
    (notice,) = [line for line in format_github(diags).splitlines() if "::notice" in line]
    assert summary.stat().st_size <= SUMMARY_LIMIT < 1 << 20
    listed = summary.read_text().count("| warning | PN101 |")
    assert 0 < listed < 7000
    assert f"{listed} of 7000 are listed in the job summary, all with --format json" in notice
    assert f"… and {7000 - listed} more finding(s) not listed" in summary.read_text()
