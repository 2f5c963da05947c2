"""The activation tables of the registered targets (firewall back-ends, proxy servers).

The playbooks keep no list of vendors: `query('posnet_kinds', 'firewall')[0]` is the
mapping kind -> recipe that generator.targets declares, entry-point targets included.
Runs on the control node, in the Python that has posnet installed (`posnet apply`).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = """
name: posnet_kinds
short_description: activation recipes of the posnet targets, by kind
description: Returns one mapping (kind -> recipe) per component named.
options:
  _terms:
    description: components, "firewall", "proxy" or "daemons"
    required: true
"""


class LookupModule(LookupBase):
    def run(
        self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[dict[str, dict[str, object]]]:
        try:
            from generator.targets import TargetError, playbook_kinds
        except ImportError as exc:
            raise AnsibleError(
                "posnet_kinds: posnet is not importable here; run the playbooks with "
                "`posnet apply` or the ansible-playbook installed beside posnet"
            ) from exc
        try:
            return [playbook_kinds(str(t)) for t in terms]
        except TargetError as exc:
            raise AnsibleError(f"posnet_kinds: {exc}") from exc
