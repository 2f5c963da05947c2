"""Basic auth from per-user password references: spec checks, the plan and inventory
entry, the handover (names the password references, never the hash file), and the apply
step's htpasswd builder (playbooks/filter_plugins/posnet_htpasswd.py): bcrypt, a hash
kept while it verifies (a second apply changes nothing), a new hash when the password
changed, hostile values refused without echoing them. The hashes are checked with the
real `htpasswd -v` (apache2-utils) as well as with bcrypt; nginx and Apache reading them
is proven live in tests/lab/test_e2e_proxy.py.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from generator import inventory
from generator.analyze import analyze
from generator.targets import handover
from tests.conftest import load_playbook_plugin, require_tool
from tests.test_bad_input import B, errors, make_fleet, sub

OLD = "      htpasswd: vault:brussels_03_htpasswd\n"
USERS = (
    "      users:\n"
    "        - {name: deliverect, password: vault:deliverect_pw}\n"
    "        - {name: backup, password: env:BACKUP_PW}\n"
)

ROOT = Path(__file__).resolve().parent.parent
Htpasswd = Callable[[str, list[dict[str, Any]], list[str]], str]


@pytest.fixture(scope="module")
def build_htpasswd() -> Htpasswd:
    fn: Htpasswd = load_playbook_plugin("filter_plugins", "posnet_htpasswd").posnet_htpasswd
    return fn


def users(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "password": f"vault:{n}_pw"} for n in names]


def htpasswd_verifies(tmp_path: Path, text: str, user: str, password: str) -> bool:
    """The real htpasswd tool's own verification of one user's line."""
    f = tmp_path / "ht"
    f.write_text(text)
    res = subprocess.run(
        [require_tool("htpasswd"), "-vbB", str(f), user, password],
        capture_output=True,
        text=True,
        check=False,
    )
    return res.returncode == 0


# ------------------------------------------------------------------------------ spec


def test_users_reach_plan_inventory_and_handover(tmp_path: Path) -> None:
    root, _ = make_fleet(tmp_path, B, sub(OLD, USERS))
    a = analyze(root)
    assert not a.failed(), a.diagnostics
    plan = next(p for p in a.plans if p.site_id == "brussels-03")
    (proxy,) = plan.proxies
    assert proxy.basic_users == (("deliverect", "vault:deliverect_pw"), ("backup", "env:BACKUP_PW"))
    assert proxy.htpasswd_ref is None and proxy.htpasswd_path
    needs = {s.ref: s.kind for s in plan.secrets}
    assert needs["vault:deliverect_pw"] == needs["env:BACKUP_PW"] == "basic-auth-password"
    files = inventory.proxy_hosts(plan)
    entries = [f for h in files.values() for f in h["posnet_secret_files"] if "users" in f]
    assert entries == [
        {
            "users": [
                {"name": "deliverect", "password": "vault:deliverect_pw"},
                {"name": "backup", "password": "env:BACKUP_PW"},
            ],
            "dest": proxy.htpasswd_path,
            "purpose": "deliverect-proxy htpasswd",
            "owner": "root",
            "group": "www-data",
            "mode": "0640",
        }
    ]
    sheet = handover.render(plan)["HANDOVER.md"]
    assert (
        "basic auth: user `deliverect` (password in `vault:deliverect_pw`),"
        " user `backup` (password in `env:BACKUP_PW`)"
    ) in sheet
    assert "-u deliverect:PASSWORD https://" in sheet
    assert "htpasswd" not in sheet and proxy.htpasswd_path not in sheet


@pytest.mark.parametrize(
    ("new", "path", "message"),
    [
        ("", "integrations[0].auth", "basic auth needs auth.users"),
        (
            OLD + USERS,
            "integrations[0].auth.htpasswd",
            "auth.users and auth.htpasswd both given",
        ),
        ("      users: []\n", "integrations[0].auth.users", "auth.users is empty"),
        (
            "      users: [{name: a, password: env:A}, {name: a, password: env:B}]\n",
            "integrations[0].auth.users[1].name",
            "user 'a' is declared twice",
        ),
        (
            "      users: [{name: 'a:b', password: env:A}]\n",
            "integrations[0].auth.users[0].name",
            "",
        ),
        (
            "      users: [{name: a, password: hunter2}]\n",
            "integrations[0].auth.users[0].password",
            "",
        ),
    ],
    ids=["neither", "both", "empty", "twice", "colon-in-name", "literal-password"],
)
def test_bad_basic_auth_is_located(tmp_path: Path, new: str, path: str, message: str) -> None:
    root, _ = make_fleet(tmp_path, B, sub(OLD, new))
    hits = [d for d in errors(root) if d.path == path and message in d.message]
    assert hits, errors(root)
    assert all("hunter2" not in d.message + d.expected for d in errors(root))


def test_users_only_with_basic_auth(tmp_path: Path) -> None:
    new = "      type: client_cert\n      client_ca: file:ca.pem\n" + USERS
    root, _ = make_fleet(tmp_path, B, sub("      type: basic\n" + OLD, new))
    assert any(
        d.path == "integrations[0].auth.users" and "for basic auth" in d.message
        for d in errors(root)
    ), errors(root)


# ------------------------------------------------------------------- the apply filter


def test_hashes_are_bcrypt_and_verify_with_htpasswd(
    build_htpasswd: Htpasswd, tmp_path: Path
) -> None:
    # A file-based secret ends in a newline (echo): it is not part of the password.
    text = build_htpasswd("", users("a", "b"), ["pw-a\n", "pw b é"])
    lines = text.splitlines()
    assert [x.split(":")[0] for x in lines] == ["a", "b"]
    assert all(x.split(":", 1)[1].startswith("$2y$10$") for x in lines)
    assert text.endswith("\n") and "pw-a" not in text
    assert htpasswd_verifies(tmp_path, text, "a", "pw-a")
    assert htpasswd_verifies(tmp_path, text, "b", "pw b é")
    assert not htpasswd_verifies(tmp_path, text, "a", "pw-a\n")
    assert not htpasswd_verifies(tmp_path, text, "a", "wrong")


def test_installed_hash_is_kept_while_it_verifies(build_htpasswd: Htpasswd) -> None:
    first = build_htpasswd("", users("a", "b"), ["pw-a", "pw-b"])
    assert build_htpasswd(first, users("a", "b"), ["pw-a", "pw-b"]) == first
    # Only the user whose password changed gets a new hash.
    changed = build_htpasswd(first, users("a", "b"), ["pw-a", "new-b"])
    assert changed.splitlines()[0] == first.splitlines()[0]
    assert changed.splitlines()[1] != first.splitlines()[1]
    # A hash made by `htpasswd -B` (cost 5) that verifies is kept as it is.
    tool = subprocess.run(
        [require_tool("htpasswd"), "-nbB", "a", "pw-a"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert build_htpasswd(tool + "\n", users("a"), ["pw-a"]) == tool + "\n"


@pytest.mark.parametrize(
    "installed",
    [
        "a:$2y$10$damaged\n",
        "a:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",  # SHA1 of "password": never kept
        "a:pw-a\n",  # a plain text password is not a hash
        "\x00garbage:::\n\n:x\n",
    ],
    ids=["damaged", "sha1", "plain", "garbage"],
)
def test_foreign_or_damaged_hash_is_replaced(build_htpasswd: Htpasswd, installed: str) -> None:
    text = build_htpasswd(installed, users("a"), ["pw-a"])
    assert text.startswith("a:$2y$10$") and text != installed


def test_removed_user_disappears(build_htpasswd: Htpasswd) -> None:
    first = build_htpasswd("", users("a", "gone"), ["pw-a", "pw-g"])
    assert build_htpasswd(first, users("a"), ["pw-a"]) == first.splitlines(keepends=True)[0]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("two\nlines", "line break"),
        ("", "empty password"),
        ("\n", "empty password"),
        ("x" * 73, "longer than 72 bytes"),
        ("é" * 37, "longer than 72 bytes"),
    ],
)
def test_hostile_password_refused_without_echo(
    build_htpasswd: Htpasswd, value: str, why: str
) -> None:
    with pytest.raises(AnsibleFilterError) as exc:
        build_htpasswd("", users("a"), [value])
    assert why in str(exc.value) and "vault:a_pw" in str(exc.value)
    if value.strip():
        assert value.strip()[:8] not in str(exc.value)


# ------------------------------------------- the playbook's own expressions, templated


def _proxy_tasks() -> list[dict[str, Any]]:
    play = yaml.safe_load((ROOT / "playbooks" / "proxy.yml").read_text())[0]
    tasks: list[dict[str, Any]] = play["tasks"]
    block = next(t for t in tasks if "block" in t)["block"]
    return tasks + block


_LOADER_READY: list[bool] = []


def _template(expr: str, variables: dict[str, Any]) -> Any:
    """Render one expression of proxy.yml as ansible-playbook does (posnet's plugins)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import add_all_plugin_dirs, init_plugin_loader
    from ansible.template import Templar, trust_as_template

    if not _LOADER_READY:
        init_plugin_loader()
        add_all_plugin_dirs(str(ROOT / "playbooks"))
        _LOADER_READY.append(True)
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expr))


def test_install_task_builds_then_keeps_the_htpasswd() -> None:
    """The copy task's content: no file on the host (slurp failed) gives a fresh hash;
    the same content read back is kept byte for byte (second apply: changed=0); a
    ready htpasswd reference is passed through as before."""
    task = next(t for t in _proxy_tasks() if t["name"].startswith("Install the TLS and auth"))
    expr = task["ansible.builtin.copy"]["content"]
    item = {"users": users("a"), "dest": "/etc/posnet/x.htpasswd"}

    def content(installed: str | None) -> str:
        slurp = {"item": item, "failed": True, "msg": "file not found"}
        if installed is not None:
            slurp = {"item": item, "content": base64.b64encode(installed.encode()).decode()}
        return str(
            _template(
                expr,
                {
                    "item": item,
                    "posnet_vault": {"a_pw": "pw-a"},
                    "posnet_proxy_htpasswd_installed": {"results": [slurp]},
                },
            )
        )

    first = content(None)
    assert first.startswith("a:$2y$10$") and first.endswith("\n")
    assert content(first) == first
    assert content("a:$2y$10$damaged\n") != first
    ready = {"ref": "vault:ht", "dest": "/etc/posnet/y.htpasswd"}
    got = _template(
        expr,
        {
            "item": ready,
            "posnet_vault": {"ht": "u:$2y$05$x\n"},
            "posnet_proxy_htpasswd_installed": {"results": []},
        },
    )
    assert got == "u:$2y$05$x\n"


def test_preflight_names_every_password_reference() -> None:
    task = next(
        t for t in _proxy_tasks() if t["name"] == "Check that every secret reference resolves"
    )
    expr = task["vars"]["posnet_refs"]
    assert _template(expr, {"item": {"users": users("a", "b")}}) == ["vault:a_pw", "vault:b_pw"]
    assert _template(expr, {"item": {"ref": "file:k"}}) == ["file:k"]


def test_preflight_refuses_a_multiline_password_but_not_a_multiline_file() -> None:
    """A user's password becomes one htpasswd line: the pre-flight (not no_log, so its
    message is shown) refuses a line break, naming the reference; a whole-file reference
    such as a PEM key or a ready htpasswd keeps its lines."""
    from ansible.errors import AnsibleError

    task = next(
        t for t in _proxy_tasks() if t["name"] == "Check that every secret reference resolves"
    )
    that = "{{ " + task["ansible.builtin.assert"]["that"] + " }}"
    item = {"users": users("a")}
    variables = {"item": item, "posnet_refs": ["vault:a_pw"]}
    assert _template(that, {**variables, "posnet_vault": {"a_pw": "one-line\n"}}) is True
    with pytest.raises(AnsibleError, match="posnet secret vault:a_pw: holds a line break, refused"):
        _template(that, {**variables, "posnet_vault": {"a_pw": "two\nlines"}})
    pem = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
    whole = {"item": {"ref": "vault:key"}, "posnet_refs": ["vault:key"]}
    assert _template(that, {**whole, "posnet_vault": {"key": pem}}) is True
