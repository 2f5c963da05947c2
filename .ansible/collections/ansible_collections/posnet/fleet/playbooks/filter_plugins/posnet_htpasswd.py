"""Build a basic-auth htpasswd file on the controller from each user's password.

posnet_htpasswd(installed, users, passwords): `installed` is the file now on the proxy
host ('' when there is none), `users` the inventory's [{name, password: ref}], and
`passwords` the resolved values in the same order. bcrypt salts are random, so hashing
anew on every apply would change the file every time: a user's installed hash is kept
while it still verifies against the password, and replaced when the password changed.

Hashes are written as `$2y$` (what `htpasswd -B` writes; nginx's crypt(3) and Apache's
apr-util both read it; `$2b$` is the same algorithm). Cost 10: nginx and Apache verify
the hash on every request, and each extra cost step doubles that CPU time.
Errors name the reference, never a value.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

ROUNDS = 10
BCRYPT_MAX_BYTES = 72


def _installed_hashes(installed: str) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for line in installed.splitlines():
        name, sep, digest = line.partition(":")
        if sep and name and name not in hashes:
            hashes[name] = digest.strip()
    return hashes


def _password(value: str, ref: str) -> bytes:
    value = value.rstrip("\n")
    if any(c in value for c in "\r\n\0"):
        raise AnsibleFilterError(f"posnet secret {ref}: holds a line break, refused")
    raw = value.encode("utf-8")
    if not raw:
        raise AnsibleFilterError(f"posnet secret {ref}: empty password, refused")
    if len(raw) > BCRYPT_MAX_BYTES:
        raise AnsibleFilterError(
            f"posnet secret {ref}: longer than {BCRYPT_MAX_BYTES} bytes, which bcrypt cannot hold"
        )
    return raw


def _verifies(bcrypt: Any, password: bytes, digest: str) -> bool:
    if not digest.startswith(("$2y$", "$2b$", "$2a$")):
        return False
    try:
        return bool(bcrypt.checkpw(password, digest.encode("ascii")))
    except (ValueError, UnicodeEncodeError):
        return False  # a damaged hash is replaced, never trusted


def posnet_htpasswd(installed: str, users: list[dict[str, Any]], passwords: list[str]) -> str:
    try:
        import bcrypt
    except ImportError:
        raise AnsibleFilterError(
            "posnet_htpasswd: the Python package bcrypt is missing on the controller"
            " (pip install 'posnet[apply]')"
        ) from None
    if len(users) != len(passwords):
        raise AnsibleFilterError("posnet_htpasswd: one password per user expected")
    old = _installed_hashes(installed or "")
    lines = []
    for user, value in zip(users, passwords, strict=True):
        name, ref = str(user["name"]), str(user["password"])
        password = _password(str(value), ref)
        digest = old.get(name, "")
        if not _verifies(bcrypt, password, digest):
            fresh = bcrypt.hashpw(password, bcrypt.gensalt(rounds=ROUNDS)).decode("ascii")
            digest = "$2y$" + fresh[4:]
        lines.append(f"{name}:{digest}\n")
    return "".join(lines)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"posnet_htpasswd": posnet_htpasswd}
