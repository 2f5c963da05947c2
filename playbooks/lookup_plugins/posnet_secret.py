"""Resolve a posnet secret reference on the control node at apply time.

env:NAME    the controller's environment
vault:name  the `posnet_vault` mapping (keep it in an ansible-vault encrypted vars file
            and pass it with -e @vault.yml --vault-password-file ...)
file:path   a file on the controller, relative to `posnet_secrets_dir` (default: cwd)

Errors name the reference, never a value.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = """
name: posnet_secret
short_description: resolve posnet secret references (env, vault, file)
description: Returns the secret value for each reference; values are never logged by posnet.
options:
  _terms:
    description: references like env:NAME, vault:name, file:path
    required: true
  check:
    description: >-
      return "resolved" instead of the value (for pre-flight checks that are not no_log)
    type: bool
    default: false
  one_line:
    description: >-
      refuse a value with a line break (a trailing newline excepted): for values that are
      put inside a line (secret markers); whole-file secrets such as PEM keys keep theirs
    type: bool
    default: false
"""


# ansible-vault's encrypted values where a templar leaves them undecrypted: str() decrypts.
VAULT_TYPES = {"AnsibleVaultEncryptedUnicode", "EncryptedString"}


class LookupModule(LookupBase):
    def run(
        self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[str]:
        variables = variables or {}
        out = []
        for term in terms:
            scheme, _, locator = str(term).partition(":")
            if scheme == "env":
                if locator not in os.environ:
                    raise AnsibleError(f"posnet secret {term}: environment variable not set")
                value = os.environ[locator]
            elif scheme == "vault":
                vault = self._templar.template(variables.get("posnet_vault", {}))
                if not isinstance(vault, dict) or locator not in vault:
                    raise AnsibleError(f"posnet secret {term}: not in the posnet_vault mapping")
                entry = vault[locator]
                # Text only: an entry left empty is None, `yes` a bool, `0755` an int, a
                # date a datetime, !!binary bytes; never a password "None", "True",
                # "493" or "b'...'". An ansible-vault value is text once decrypted.
                if not isinstance(entry, str) and type(entry).__name__ not in VAULT_TYPES:
                    raise AnsibleError(
                        f"posnet secret {term}: not a text in the posnet_vault mapping "
                        f"({'empty' if entry is None else type(entry).__name__}); quote it"
                    )
                value = str(entry)
            elif scheme == "file":
                base = os.path.realpath(str(variables.get("posnet_secrets_dir") or os.getcwd()))
                path = os.path.realpath(os.path.join(base, locator))
                if os.path.commonpath([base, path]) != base:
                    raise AnsibleError(f"posnet secret {term}: outside posnet_secrets_dir, refused")
                try:
                    with open(path, encoding="utf-8") as fh:
                        value = fh.read()
                except OSError as exc:
                    raise AnsibleError(
                        f"posnet secret {term}: cannot read ({exc.strerror})"
                    ) from None
                except UnicodeDecodeError:  # its message quotes a byte of the secret
                    raise AnsibleError(
                        f"posnet secret {term}: not UTF-8 text (a PEM file, a password)"
                    ) from None
            else:
                raise AnsibleError(f"posnet secret {term}: unknown scheme")
            # The filters that put a value into a line refuse line breaks too, but they run
            # in no_log tasks whose errors Ansible hides: this pre-flight (check=True, not
            # no_log) reports the problem first, naming the reference, never the value.
            if not value.strip():  # an unset password, an empty key file
                raise AnsibleError(f"posnet secret {term}: empty, refused")
            if kwargs.get("one_line") and any(c in value.rstrip("\n") for c in "\r\n\0"):
                raise AnsibleError(f"posnet secret {term}: holds a line break, refused")
            if kwargs.get("check"):
                value = "resolved"
            out.append(value)
        return out
