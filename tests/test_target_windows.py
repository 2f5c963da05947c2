"""Windows netsh scripts (seed 002), our netsh validator, and device property files.

Windows cannot run here, so the scripts are checked by `generator.verify.netsh_check`;
each class of mistake the checker exists for is shown to be caught on a broken copy.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.plan import DeviceConfig, Plan, WindowsBinding
from generator.targets import devices, netsh
from generator.verify.netsh_check import check_netsh_script
from tests.conftest import load_playbook_plugin

ENABLE = "windows/swiftpos-netpos-backoffice-enable-https.cmd"
UNDO = "windows/swiftpos-netpos-backoffice-undo.cmd"
ROOT = Path(__file__).resolve().parent.parent
THUMB = "00000000000012d9cd34315bb56d78c08da59000"
APPID = "77ba29fd-9f7a-45b0-8d7e-1ee5d879951b"


@pytest.fixture(scope="module")
def ostend(demo_plans: dict[str, Plan]) -> Plan:
    return demo_plans["ostend-05"]


@pytest.fixture(scope="module")
def scripts(ostend: Plan) -> dict[str, str]:
    return netsh.render(ostend)


@pytest.fixture(scope="module")
def enable(scripts: dict[str, str]) -> str:
    return scripts[ENABLE]


def lines_of(text: str) -> list[str]:
    return text.split("\r\n")


def index_of(lines: list[str], start: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(start))


# ---- netsh: rendering ----------------------------------------------------------------


def test_only_stores_with_windows_bindings_get_scripts(demo_plans: dict[str, Plan]) -> None:
    for site_id, plan in demo_plans.items():
        files = netsh.render(plan)
        if site_id == "ostend-05":
            assert sorted(files) == [ENABLE, UNDO]
        else:
            assert files == {}, site_id


def test_scripts_use_crlf_line_endings(scripts: dict[str, str]) -> None:
    """Windows batch files need CRLF: cmd.exe mis-parses labels and goto in LF-only files."""
    for text in scripts.values():
        assert text.endswith("\r\n") and not text.endswith("\r\n\r\n")
        assert "\n" not in text.replace("\r\n", "")
        assert "\r" not in text.replace("\r\n", "")


def test_enable_script_refuses_to_run_unelevated(enable: str) -> None:
    lines = lines_of(enable)
    assert lines[0] == "@echo off"
    assert "setlocal" in lines
    probe = lines.index("net session >nul 2>&1")
    assert lines[probe + 1] == "if errorlevel 1 goto not_elevated"
    assert probe < index_of(lines, "netsh ")
    label = lines.index(":not_elevated")
    assert lines[label + 1].startswith("echo posnet: this script must run elevated")
    assert lines[label + 2] == "exit /b 1"


def test_enable_script_uses_one_port_and_an_sddl(enable: str) -> None:
    lines = lines_of(enable)
    assert "netsh http add urlacl url=https://+:10101/ sddl=D:(A;;GX;;;WD)" in lines
    assert (
        f"netsh http add sslcert ipport=0.0.0.0:10101 certhash={THUMB} appid={{{APPID}}}" in lines
    )
    assert (
        'netsh advfirewall firewall add rule name="posnet swiftpos-netpos-backoffice" dir=in'
        " action=allow protocol=TCP localport=10101 remoteip=198.51.100.11,198.51.100.12"
    ) in lines
    # The seed binds the certificate on 8000 while reserving 10101: never copied.
    assert ":8000" not in enable
    netsh_lines = [line for line in lines_of(enable) if line.startswith("netsh")]
    assert not any("user=" in line.lower() for line in netsh_lines)
    assert "/32" not in enable


@pytest.mark.parametrize(
    ("delete", "add", "check"),
    [
        (
            "netsh http delete urlacl url=https://+:10101/ >nul 2>&1",
            "netsh http add urlacl ",
            "if errorlevel 1 goto fail_urlacl",
        ),
        (
            "netsh http delete sslcert ipport=0.0.0.0:10101 >nul 2>&1",
            "netsh http add sslcert ",
            "if errorlevel 1 goto fail_sslcert",
        ),
        (
            'netsh advfirewall firewall delete rule name="posnet swiftpos-netpos-backoffice"'
            " >nul 2>&1",
            "netsh advfirewall firewall add rule ",
            "if errorlevel 1 goto fail_firewall",
        ),
    ],
)
def test_each_add_is_rerunnable_and_checked(enable: str, delete: str, add: str, check: str) -> None:
    lines = lines_of(enable)
    i = index_of(lines, add)
    assert lines[i - 1] == delete
    assert lines[i + 1] == check
    label = lines.index(":" + check.rsplit(" ", 1)[1])
    block = lines[label + 1 : label + 4]
    assert block[0].startswith("echo posnet: ")
    assert any(re.fullmatch(r"exit /b [2-9]", line) for line in block)


def test_enable_script_tells_the_operator_the_manual_steps(enable: str) -> None:
    echoes = "\n".join(line for line in lines_of(enable) if line.startswith("echo "))
    for needle in (
        "Maintenance window: Monday 02:00-04:00",
        "NetPOS.Net stopped (right-click the tray icon, Stop)",
        "tick Use SSL",
        "start NetPOS.Net",
        "SwiftPOS Touch terminal (touch1 198.51.100.11, touch2 198.51.100.12)",
        "tick Secured, click Refresh Interface List",
    ):
        assert needle in echoes
    # The stop/Use SSL reminder comes before the netsh commands, the start after.
    assert enable.index("Use SSL") < enable.index("netsh http add urlacl")
    assert enable.index("start NetPOS.Net") > enable.index("netsh advfirewall firewall add")


def test_undo_script_deletes_the_three(scripts: dict[str, str]) -> None:
    undo = lines_of(scripts[UNDO])
    assert "net session >nul 2>&1" in undo
    assert "netsh http delete sslcert ipport=0.0.0.0:10101" in undo
    assert "netsh http delete urlacl url=https://+:10101/" in undo
    assert 'netsh advfirewall firewall delete rule name="posnet swiftpos-netpos-backoffice"' in undo
    assert not any(" add " in line for line in undo if line.startswith("netsh"))
    assert any("untick Secured" in line for line in undo)


def test_scripts_are_deterministic(ostend: Plan, scripts: dict[str, str]) -> None:
    assert netsh.render(ostend) == scripts
    for name, text in scripts.items():
        assert text.startswith(f"@echo off\r\nrem posnet ostend-05 {name}: generated, do not edit")


def test_rendered_scripts_pass_the_validator(scripts: dict[str, str]) -> None:
    for name, text in scripts.items():
        assert check_netsh_script(text) == [], name


def test_client_networks_keep_their_prefix() -> None:
    assert netsh.remote_ips(("198.51.100.11/32", "198.51.100.16/28")) == (
        "198.51.100.11,198.51.100.16/28"
    )


def test_text_cmd_would_interpret_is_refused(ostend: Plan) -> None:
    b = dataclasses.replace(ostend.windows[0], maintenance_window="Monday 02:00 & del x")
    plan = dataclasses.replace(ostend, windows=(b,))
    with pytest.raises(ValueError, match="Windows batch line"):
        netsh.render(plan)


@settings(max_examples=40, deadline=None)
@given(
    port=st.integers(min_value=1, max_value=65535),
    thumb=st.text("0123456789abcdef", min_size=40, max_size=40),
    appid=st.uuids().map(str),
    last=st.lists(st.integers(min_value=2, max_value=126), min_size=1, max_size=5, unique=True),
)
def test_any_valid_binding_renders_a_valid_script(
    demo_plans: dict[str, Plan], port: int, thumb: str, appid: str, last: list[int]
) -> None:
    plan = demo_plans["ostend-05"]
    b: WindowsBinding = dataclasses.replace(
        plan.windows[0],
        port=port,
        thumbprint=thumb,
        appid=appid,
        client_sources=tuple(f"198.51.100.{n}/32" for n in sorted(last)),
    )
    for name, text in netsh.render(dataclasses.replace(plan, windows=(b,))).items():
        assert check_netsh_script(text) == [], name
        assert f":{port}" in text


# ---- the validator catches each broken variant -------------------------------------


def mutate(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


def drop_line(text: str, start: str) -> str:
    lines = lines_of(text)
    i = index_of(lines, start)
    return "\r\n".join(lines[:i] + lines[i + 1 :])


def add_line_after(text: str, start: str, extra: str) -> str:
    lines = lines_of(text)
    i = index_of(lines, start)
    return "\r\n".join([*lines[: i + 1], extra, *lines[i + 1 :]])


BROKEN: list[tuple[str, object, str]] = [
    (
        "sslcert on another port (the seed's 10101/8000 bug)",
        lambda t: mutate(t, "ipport=0.0.0.0:10101", "ipport=0.0.0.0:8000"),
        "port mismatch",
    ),
    (
        "firewall on another port",
        lambda t: mutate(t, "localport=10101", "localport=10102"),
        "port mismatch",
    ),
    (
        "user=EVERYONE",
        lambda t: mutate(t, "sddl=D:(A;;GX;;;WD)", "user=EVERYONE"),
        "user=EVERYONE: account names are localized",
    ),
    (
        "appid without braces",
        lambda t: mutate(t, f"appid={{{APPID}}}", f"appid={APPID}"),
        "needs braces",
    ),
    (
        "39-character thumbprint",
        lambda t: mutate(t, f"certhash={THUMB}", f"certhash={THUMB[:39]}"),
        "certhash must be 40 hex digits",
    ),
    (
        "non-hex thumbprint",
        lambda t: mutate(t, f"certhash={THUMB}", f"certhash={THUMB[:39]}g"),
        "certhash must be 40 hex digits",
    ),
    (
        "LF line endings",
        lambda t: t.replace("\r\n", "\n"),
        "LF line ending without CR",
    ),
    (
        "add urlacl without its delete",
        lambda t: drop_line(t, "netsh http delete urlacl"),
        "add urlacl https://+:10101/ is not preceded by a delete",
    ),
    (
        "add rule without its delete",
        lambda t: drop_line(t, "netsh advfirewall firewall delete rule"),
        "add rule posnet swiftpos-netpos-backoffice is not preceded by a delete",
    ),
    (
        "add without errorlevel check",
        lambda t: drop_line(t, "if errorlevel 1 goto fail_sslcert"),
        "add sslcert is not followed by 'if errorlevel 1 goto",
    ),
    (
        "malformed sddl",
        lambda t: mutate(t, "sddl=D:(A;;GX;;;WD)", "sddl=D:(A;;GX;;;)"),
        "is not an SDDL DACL",
    ),
    (
        "url not of the form https://+:port/",
        lambda t: mutate(
            t, "add urlacl url=https://+:10101/", "add urlacl url=https://*:10101/posnet"
        ),
        "is not of the form https://+:<port>/",
    ),
    (
        "ipport without an address",
        lambda t: mutate(t, "add sslcert ipport=0.0.0.0:10101", "add sslcert ipport=10101"),
        "ipport=10101 is not of the form <IPv4>:<port>",
    ),
    (
        "firewall rule open to everyone",
        lambda t: mutate(t, "remoteip=198.51.100.11,198.51.100.12", "remoteip=any"),
        "remoteip=any opens the port",
    ),
    (
        "firewall rule without remoteip",
        lambda t: mutate(t, " remoteip=198.51.100.11,198.51.100.12", ""),
        "missing remoteip=",
    ),
    (
        "unknown netsh command",
        lambda t: add_line_after(t, "setlocal", "netsh http add iplisten ipaddress=0.0.0.0"),
        "unknown netsh command: http add iplisten",
    ),
    (
        "unknown argument",
        lambda t: mutate(t, "sddl=D:(A;;GX;;;WD)", "sddl=D:(A;;GX;;;WD) colour=blue"),
        "unexpected argument colour=",
    ),
    (
        "unknown program",
        lambda t: add_line_after(t, "setlocal", "powershell -Command Get-Date"),
        "unknown command 'powershell'",
    ),
    (
        "stray percent",
        lambda t: add_line_after(t, "setlocal", "echo %PATH%"),
        "stray %",
    ),
    (
        "stray ampersand",
        lambda t: add_line_after(t, "setlocal", "echo done & del C:\\x"),
        "stray &",
    ),
    (
        "stray pipe and caret",
        lambda t: add_line_after(t, "setlocal", "echo a ^| b"),
        "stray ^ |",
    ),
    (
        "line over 8191 characters",
        lambda t: add_line_after(t, "setlocal", "echo " + "x" * 8200),
        "longer than cmd.exe's limit of 8191",
    ),
    (
        "no elevation check",
        lambda t: drop_line(t, "net session"),
        "no elevation check",
    ),
    (
        "goto a missing label",
        lambda t: mutate(t, ":fail_urlacl\r\n", ":fail_url\r\n"),
        "goto fail_urlacl: no such label",
    ),
    (
        "failure path exits 0",
        lambda t: mutate(t, "exit /b 4", "exit /b 0"),
        "label :fail_sslcert is a failure path but exits 0",
    ),
    (
        "certutil checks another certificate",
        lambda t: mutate(t, f"-store My {THUMB}", f"-store My {'1' * 40}"),
        "certutil checks 1111",
    ),
    (
        "unquoted rule name with a space",
        lambda t: mutate(
            t,
            'add rule name="posnet swiftpos-netpos-backoffice"',
            "add rule name=posnet swiftpos-netpos-backoffice",
        ),
        "is not key=value",
    ),
]


@pytest.mark.parametrize(("why", "breaker", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_validator_rejects_broken_script(
    enable: str, why: str, breaker: object, message: str
) -> None:
    assert callable(breaker)
    broken = breaker(enable)
    assert broken != enable
    problems = check_netsh_script(broken)
    assert any(message in p for p in problems), (why, problems)


def test_validator_reports_the_seed_example_verbatim() -> None:
    """The seed's own two commands, as printed, fail three ways."""
    seed = (
        "@echo off\r\n"
        "netsh http add urlacl url=https://+:10101/ user=EVERYONE\r\n"
        "netsh http add sslcert ipport=0.0.0.0:8000 certhash=00000000000012d9cd34315bb56d78c08da590"
        " appid={77ba29fd-9f7a-45b0-8d7e-1ee5d879951b}\r\n"
    )
    problems = "\n".join(check_netsh_script(seed))
    assert "user=EVERYONE" in problems
    assert "port mismatch" in problems
    assert "certhash must be 40 hex digits (the SHA-1 thumbprint); got 38" in problems
    assert "not preceded by a delete" in problems
    assert "no elevation check" in problems


# ---- device property files -----------------------------------------------------------

PPAAS = "devices/ppaas-terminal1.properties"
AUTH = "devices/powerepos-auth.properties"
PPAAS_MARKER = "@@POSNET_SECRET_vault_bruges_06_ppaas_secret@@"
AUTH_MARKER = "@@POSNET_SECRET_vault_bruges_06_auth_secret@@"


@pytest.fixture(scope="module")
def bruges_devices(demo_plans: dict[str, Plan]) -> dict[str, str]:
    return devices.render(demo_plans["bruges-06"])


def parse_properties(text: str) -> list[tuple[str, str]]:
    """Reader of the seed's `key: value` format: `#` comments, double quotes with escapes."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition(": ")
        assert sep, line
        if raw.startswith('"'):
            assert raw.endswith('"') and len(raw) >= 2, line
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        out.append((key, raw))
    return out


def load_fill() -> Callable[[str, list[dict[str, Any]], list[str]], str]:
    """The apply step's own marker filler (playbooks/filter_plugins/posnet_fill.py)."""
    path = ROOT / "playbooks" / "filter_plugins" / "posnet_fill.py"
    if not path.exists():
        pytest.skip("apply filter not present")
    mod = load_playbook_plugin("filter_plugins", "posnet_fill")
    fill: Callable[[str, list[dict[str, Any]], list[str]], str] = mod.posnet_fill
    return fill


def fill(text: str, marker: str, style: str, value: str) -> str:
    return load_fill()(text, [{"marker": marker, "ref": "vault:x", "style": style}], [value])


def test_only_stores_with_devices_get_property_files(demo_plans: dict[str, Plan]) -> None:
    for site_id, plan in demo_plans.items():
        files = devices.render(plan)
        if site_id == "bruges-06":
            assert sorted(files) == [AUTH, PPAAS]
        else:
            assert files == {}, site_id


def test_ppaas_properties_match_the_seed(bruges_devices: dict[str, str]) -> None:
    text = bruges_devices[PPAAS]
    lines = text.splitlines()
    assert lines[0] == f"# posnet bruges-06 {PPAAS}: generated, do not edit."
    assert (
        'custom_registration_data: "{\\"client_id\\":\\"c1d130d2-9dc0-4b0a-89f4-cd8f25d52afd\\",'
        f'\\"client_secret\\":\\"{PPAAS_MARKER}\\"}}"'
    ) in lines
    assert "ep_register_url: wss://api.qa.ppaas.tech/cloud-connector/v1/device-listener" in lines
    assert "enable_ssl: 1" in lines
    assert 'ssl_profile_name: "INGETRUST"' in lines
    assert "ssl_profile_crt: /HOST/INGETRUST.pem" in lines
    assert text.endswith(".pem\n")


def test_properties_keep_the_plan_order(demo_plans: dict[str, Plan]) -> None:
    plan = demo_plans["bruges-06"]
    files = devices.render(plan)
    for d in plan.devices:
        parsed = parse_properties(files[f"devices/{d.id}.properties"])
        assert parsed == list(d.properties)


NASTY = ["JFc9QpS61D5lKIwv0fWPmigdy2sEinl3", 'a"b\\c', "é ü!", "sharedS3cr3t!"]


@pytest.mark.parametrize("secret", NASTY)
def test_secret_style_round_trips_through_the_json_value(
    bruges_devices: dict[str, str], secret: str
) -> None:
    """Filled by the apply filter the SECRET_STYLE way, the device reads the exact secret."""
    text = bruges_devices[PPAAS]
    assert devices.SECRET_STYLE == "json-in-dq"
    assert devices.secret_style_at(text, PPAAS_MARKER) == "json-in-dq"
    props = dict(parse_properties(fill(text, PPAAS_MARKER, "json-in-dq", secret)))
    data = json.loads(props["custom_registration_data"])
    assert data == {"client_id": "c1d130d2-9dc0-4b0a-89f4-cd8f25d52afd", "client_secret": secret}


@pytest.mark.parametrize("secret", NASTY)
def test_a_whole_quoted_secret_needs_plain_quote_escaping(
    bruges_devices: dict[str, str], secret: str
) -> None:
    """AuthSecret is the whole quoted value: "confuse" escaping, not the module default."""
    text = bruges_devices[AUTH]
    assert devices.secret_style_at(text, AUTH_MARKER) == "confuse"
    props = dict(parse_properties(fill(text, AUTH_MARKER, "confuse", secret)))
    assert props["AuthSecret"] == secret
    wrong = dict(parse_properties(fill(text, AUTH_MARKER, "json-in-dq", secret)))
    same_either_way = secret.isascii() and not {'"', "\\"} & set(secret)
    assert (wrong["AuthSecret"] == secret) is same_either_way


def test_a_raw_secret_would_break_the_json_value(bruges_devices: dict[str, str]) -> None:
    """The round trip above can fail: an unescaped quote corrupts the value."""
    filled = bruges_devices[PPAAS].replace(PPAAS_MARKER, 'a"b')
    props = dict(parse_properties(filled))
    with pytest.raises(json.JSONDecodeError):
        json.loads(props["custom_registration_data"])


def test_auth_properties_quote_the_secret(bruges_devices: dict[str, str]) -> None:
    lines = bruges_devices[AUTH].splitlines()
    assert lines[0] == f"# posnet bruges-06 {AUTH}: generated, do not edit."
    assert "ProviderOutletID: 3f49efe7-ea42-4f21-8718-7e6ce9a33512" in lines
    assert "POSRemoteID: TestOrg-7ab4da81-d75b-4239-9aac-bdc0d2fb8f9a" in lines
    assert 'AuthSecret: "@@POSNET_SECRET_vault_bruges_06_auth_secret@@"' in lines


def test_property_files_hold_markers_not_secrets(bruges_devices: dict[str, str]) -> None:
    auth = dict(parse_properties(bruges_devices[AUTH]))
    assert auth["AuthSecret"] == "@@POSNET_SECRET_vault_bruges_06_auth_secret@@"
    ppaas = dict(parse_properties(bruges_devices[PPAAS]))
    assert json.loads(ppaas["custom_registration_data"])["client_secret"] == PPAAS_MARKER


def test_values_are_escaped_and_names_checked(demo_plans: dict[str, Plan]) -> None:
    assert devices.format_value("note", 'say "hi" \\ bye') == '"say \\"hi\\" \\\\ bye"'
    assert devices.format_value("port", "9100") == "9100"
    with pytest.raises(ValueError, match="control characters"):
        devices.quote("two\nlines")
    plan = demo_plans["bruges-06"]
    bad = DeviceConfig("x", "ppaas", "terminal1", (("bad key:", "1"),))
    with pytest.raises(ValueError, match="invalid property name"):
        devices.render(dataclasses.replace(plan, devices=(bad,)))


def test_property_files_are_deterministic(
    demo_plans: dict[str, Plan], bruges_devices: dict[str, str]
) -> None:
    assert devices.render(demo_plans["bruges-06"]) == bruges_devices
    for text in bruges_devices.values():
        assert text.endswith("\n") and not text.endswith("\n\n")
