"""What a host should hold, read from the build tree on the controller.

``posnet_files | posnet_intended(posnet_tree)`` gives each file's destination, mode,
component (and proxy server), the SHA-256 of the rendered file (the manifest's hash:
posnet checks the tree against its manifest before it runs Ansible), and for firewall
files the rendered text, which ``posnet_state`` loads into a scratch namespace. Files
with secrets have no fixed hash (they are filled at apply time): only their mode and the
absence of unfilled markers are checked.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ansible.errors import AnsibleFilterError


def posnet_intended(files: list[dict[str, Any]], tree: str) -> list[dict[str, Any]]:
    root = os.path.realpath(tree)
    out = []
    for spec in files:
        path = os.path.realpath(os.path.join(root, str(spec["src"])))
        if not path.startswith(root + os.sep):
            raise AnsibleFilterError(f"posnet: {spec['src']} is outside the build tree")
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise AnsibleFilterError(f"posnet: cannot read {spec['src']}: {exc}") from exc
        item: dict[str, Any] = {
            "dest": spec["dest"],
            "mode": spec["mode"],
            "component": spec.get("component", ""),
            "server": spec.get("server", ""),
            "secret": bool(spec.get("secrets")),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if item["component"] == "firewall":
            item["text"] = data.decode()
        out.append(item)
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"posnet_intended": posnet_intended}
