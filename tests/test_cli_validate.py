"""`posnet validate` and friends, run as the installed console script.

Exit codes are the contract with CI: 0 ok, 1 invalid input (or warnings with
--strict), 2 usage error. Machine formats must parse as what they claim to be.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = "examples/demo-fleet"
POSNET = Path(sys.executable).with_name("posnet")


def posnet(*args: str) -> subprocess.CompletedProcess[str]:
    exe = POSNET if POSNET.exists() else ROOT / ".venv" / "bin" / "posnet"
    proc = subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    return proc


@cache
def demo(fmt: str, strict: bool = False) -> subprocess.CompletedProcess[str]:
    return posnet("validate", DEMO, "--format", fmt, *(["--strict"] if strict else []))


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """The demo with one error in each of two files."""
    root = tmp_path / "fleet"
    shutil.copytree(ROOT / DEMO, root)
    b = root / "sites" / "brussels-03.yaml"
    b.write_text(b.read_text().replace("public_port: 38443", "public_port: 0"))
    leuven = root / "sites" / "leuven-04.yaml"
    leuven.write_text(leuven.read_text().replace("isp: Orange", "ips: Orange"))
    return root


# ------------------------------------------------------------------------ the demo


def test_demo_is_valid_with_summary() -> None:
    proc = demo("text")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(
        r"posnet: \d+ store\(s\) valid; 0 errors, \d+ warnings?, \d+ infos?", proc.stderr
    )
    # Findings are located: file:line:col: severity[code]
    for line in proc.stdout.splitlines():
        if not line.startswith(" "):
            assert re.match(
                r"^examples/demo-fleet/\S+\.yaml:\d+:\d+: (warning|info)\[PN\d{3}\]", line
            )


def test_json_is_a_list_with_locations() -> None:
    proc = demo("json")
    assert proc.returncode == 0
    items = json.loads(proc.stdout)
    assert isinstance(items, list) and items
    for d in items:
        loc = d["location"]
        assert loc["file"].startswith("examples/demo-fleet/")
        assert loc["line"] >= 1 and loc["col"] >= 1
        assert {"code", "message", "severity", "path", "expected", "site"} <= set(d)
        assert d["severity"] in ("warning", "info")


def _check_sarif(doc: dict[str, object]) -> list[dict[str, object]]:
    assert doc["version"] == "2.1.0"
    assert "sarif-2.1.0" in str(doc["$schema"])
    runs = doc["runs"]
    assert isinstance(runs, list) and len(runs) == 1
    run = runs[0]
    assert run["tool"]["driver"]["name"] == "posnet"
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    results = run["results"]
    for r in results:
        assert r["ruleId"] in rule_ids
        assert r["level"] in ("error", "warning", "note")
        assert r["message"]["text"]
        phys = r["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"]["uri"]
        region = phys.get("region", {})
        assert region.get("startLine", 1) >= 1 and region.get("startColumn", 1) >= 1
    return results


def test_sarif_is_sarif_2_1_0() -> None:
    proc = demo("sarif")
    assert proc.returncode == 0
    results = _check_sarif(json.loads(proc.stdout))
    assert any(r["ruleId"] == "PN101" for r in results)
    for r in results:
        assert r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1


def test_github_annotations() -> None:
    proc = demo("github")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert any(line.startswith("::warning file=") for line in lines)
    for line in lines:
        assert re.match(r"^::(error|warning|notice) file=[^,]+,line=\d+,col=\d+,title=\w+::", line)


def test_strict_fails_on_warnings() -> None:
    assert demo("text").returncode == 0
    proc = demo("text", strict=True)
    assert proc.returncode == 1
    assert "warning[PN101]" in proc.stdout
    # A run that fails never calls the stores valid.
    assert re.search(r"posnet: \d+ store\(s\) checked, not valid; 0 errors", proc.stderr)
    assert " valid;" not in proc.stderr.replace("not valid;", "")


# ------------------------------------------------------------------- broken input


def test_broken_fleet_text(broken: Path) -> None:
    proc = posnet("validate", str(broken))
    assert proc.returncode == 1
    out = proc.stdout
    assert re.search(
        r"brussels-03\.yaml:\d+:\d+: error\[E100\] \[?.*integrations\[0\]\.public_port", out
    )
    assert re.search(r"leuven-04\.yaml:\d+:\d+: error\[E100\] .*ips: unknown key 'ips'", out)
    assert "did you mean 'isp'?" in out
    assert "expected: " in out


def test_broken_fleet_json_sarif_github(broken: Path) -> None:
    js = posnet("validate", str(broken), "--format", "json")
    assert js.returncode == 1
    errors = [d for d in json.loads(js.stdout) if d["severity"] == "error"]
    files = {Path(d["location"]["file"]).name for d in errors}
    assert {"brussels-03.yaml", "leuven-04.yaml"} <= files
    for d in errors:
        assert d["location"]["line"] >= 1 and d["path"]

    sarif = posnet("validate", str(broken), "--format", "sarif")
    assert sarif.returncode == 1
    results = _check_sarif(json.loads(sarif.stdout))
    assert {r["ruleId"] for r in results if r["level"] == "error"} >= {"E100"}

    gh = posnet("validate", str(broken), "--format", "github")
    assert gh.returncode == 1
    err_lines = [x for x in gh.stdout.splitlines() if x.startswith("::error file=")]
    assert len(err_lines) >= 2
    assert any("brussels-03.yaml,line=" in x for x in err_lines)


def test_unparsable_fleet_yaml_exits_1(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(ROOT / DEMO, root)
    (root / "fleet.yaml").write_text("fleet: [demo\n")
    for fmt in ("text", "json", "sarif", "github"):
        proc = posnet("validate", str(root), "--format", fmt)
        assert proc.returncode == 1
        assert "fleet.yaml" in proc.stdout
    js = json.loads(posnet("validate", str(root), "--format", "json").stdout)
    assert js[0]["location"]["line"] == 1


def test_missing_path_exits_1_with_message(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    proc = posnet("validate", str(missing))
    assert proc.returncode == 1
    assert f"{missing}: error[E002] no such file or folder" in proc.stdout


def test_folder_without_fleet_yaml(tmp_path: Path) -> None:
    proc = posnet("validate", str(tmp_path))
    assert proc.returncode == 1
    assert "no fleet.yaml in this folder" in proc.stdout


def test_unknown_option_is_usage_error() -> None:
    proc = posnet("validate", DEMO, "--no-such-option")
    assert proc.returncode == 2
    assert "No such option" in proc.stderr


def test_unknown_format_is_usage_error() -> None:
    proc = posnet("validate", DEMO, "--format", "xml")
    assert proc.returncode == 2


def test_missing_argument_is_usage_error() -> None:
    assert posnet("validate").returncode == 2


# ---------------------------------------------------------------- other commands


def test_version() -> None:
    proc = posnet("--version")
    assert proc.returncode == 0
    assert re.match(r"^posnet, version \d+\.\d+\.\d+", proc.stdout)


def test_schema_site_is_json_schema() -> None:
    proc = posnet("schema", "site")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    assert "properties" in doc
    assert {"id", "wan", "lan", "hosts", "integrations"} <= set(doc["properties"])
    assert doc["additionalProperties"] is False  # unknown keys are errors in editors too
    jsonschema.Draft202012Validator.check_schema(doc)


def test_rules_lists_pn101() -> None:
    proc = posnet("rules")
    assert proc.returncode == 0
    assert re.search(r"^PN101\s+warning\s+\S+", proc.stdout, re.M)
    js = json.loads(posnet("rules", "--format", "json").stdout)
    assert any(r["id"] == "PN101" and r["why"] for r in js)


@pytest.mark.parametrize(
    ("rel", "message"),
    [
        ("fleet.yaml", "fleet.yaml holds the fleet's settings, not a store"),
        ("groups/coast.yaml", "coast.yaml holds a group's defaults, not a store"),
    ],
)
def test_a_fleet_or_group_file_given_as_a_store_says_what_it_is(rel: str, message: str) -> None:
    """They were read as site files: 'unknown key fleet', 'missing required key id'."""
    proc = posnet("validate", f"{DEMO}/{rel}")
    assert proc.returncode == 1
    assert f"{DEMO}/{rel}: error[E003] {message}" in proc.stdout, proc.stdout
    assert f"expected: the fleet folder ({DEMO}) or one of its sites/*.yaml" in proc.stdout


def test_the_summary_counts_the_stores_asked_about_valid_or_not(tmp_path: Path) -> None:
    """One site file of a fleet was '7 store(s) valid' (its fleet's), and a fleet whose
    only store failed said '0 store(s) checked'."""
    assert "posnet: 1 store(s) valid;" in posnet("validate", f"{DEMO}/sites/gent-01.yaml").stderr
    fleet = tmp_path / "fleet"
    shutil.copytree(ROOT / DEMO, fleet)
    site = fleet / "sites" / "gent-01.yaml"
    site.write_text(site.read_text().replace("id: gent-01", "id: gent-01\nbogus: 1"))
    proc = posnet("validate", str(fleet))
    assert proc.returncode == 1
    assert "posnet: 7 store(s) checked, not valid;" in proc.stderr, proc.stderr
