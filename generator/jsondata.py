"""JSON read from files posnet does not control (build tree, its cache, drift reports).

Any of them may be damaged or written by a stranger; a document nested deeply enough
raises RecursionError in the standard parser, which is not a ValueError and so escaped
every "damaged file" handler as an internal error. One parser for all of them turns
every kind of damage into ValueError, which each caller already reports or ignores.
"""

from __future__ import annotations

import json
from typing import Any


def parse_untrusted(raw: bytes | str) -> Any:
    """The document in `raw`; ValueError (never RecursionError) when it is not JSON,
    not UTF-8, or nested too deeply to parse."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except UnicodeError as exc:  # a ValueError already; said here so no caller forgets it
        raise ValueError(str(exc)) from None
