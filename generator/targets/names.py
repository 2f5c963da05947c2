"""Bounded identifiers: a generated name that must fit a program's length limit.

Names are built from spec ids (partner, host, service, store), which the spec lets run
to 63 characters each, while the programs reading them cap their identifiers: ipset set
names (31 characters), PCRE2 group names in an nginx map (32), squid ACL names (62) and
nft set names. One rule for all of them keeps every target deterministic: a name that
fits is used unchanged (so ordinary fleets render exactly as before), a longer one keeps
its start and ends in "_" plus the first 8 hex digits of the SHA-256 of the full name,
so two long names that share a prefix still differ.
"""

from __future__ import annotations

import hashlib

DIGEST_LEN = 8


def bounded(name: str, limit: int, *, key: str | None = None) -> str:
    """`name` itself when it has at most `limit` characters, else a prefix of it plus
    "_<digest>" of exactly `limit` characters. The digest is of `key` when given (a
    caller whose name is a lossy spelling of an id hashes the id itself), of `name`
    otherwise. Names are ASCII (spec ids), so characters and bytes agree."""
    if limit < DIGEST_LEN + 2:
        raise ValueError(f"a name limit of {limit} leaves no room for a digest")
    if len(name) <= limit:
        return name
    digest = hashlib.sha256((name if key is None else key).encode()).hexdigest()[:DIGEST_LEN]
    return f"{name[: limit - DIGEST_LEN - 1]}_{digest}"
