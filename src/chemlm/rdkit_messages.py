"""What RDKit says about a molecule it cannot read, as one line for an invalid row's reason."""

from __future__ import annotations

import re

# RDKit prefixes each log line with a time stamp, e.g. "[03:12:17] Explicit valence ...".
RDKIT_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\]\s*")


def rdkit_error_text(captured: str) -> str:
    """The first line RDKit logged for a failed parse, without its time stamp."""
    for line in captured.splitlines():
        text = RDKIT_TIMESTAMP.sub("", line).strip()
        if text:
            return text
    return "could not be parsed"
